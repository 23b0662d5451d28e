"""How to reach the Kafka brokers: one implementation for every Kafka client of the project (the
scoring consumer, the quality monitor, ``python -m training collect``), as ``contract.storage``
is for the object store.

The settings: ``KAFKA_BOOTSTRAP_SERVERS``, and any librdkafka property as ``KAFKA_<PROPERTY>``
with dots written as underscores (``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` is
``security.protocol``; SASL and TLS files the same way), each also readable from a file named
by ``<NAME>_FILE``. A property value is held as a ``SecretStr`` and never shown in a message.
Each client refuses the properties it sets itself (its ``reserved`` set): they would be
overwritten, or would break its guarantees.

This module knows no Kafka client library (the contract is transport-free): the clients build
their configuration from :meth:`BrokerConnection.connection_config`, and
:func:`fatal_client_error` reads librdkafka's error codes through a small protocol.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol

from pydantic import BaseModel, Field, SecretStr

from contract.errors import ContractError

__all__ = [
    "OWN_KAFKA_NAMES",
    "READER_PROPERTIES",
    "BrokerConnection",
    "BrokerSettingError",
    "connection_from_environment",
    "fatal_client_error",
    "is_property_variable",
    "properties_from_environment",
    "property_variable",
]

OWN_KAFKA_NAMES: Final = frozenset({"KAFKA_BOOTSTRAP_SERVERS"})
READER_PROPERTIES: Final = frozenset(
    {
        "bootstrap.servers",
        "metadata.broker.list",
        "group.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "enable.partition.eof",
        "isolation.level",
    }
)
"""The librdkafka properties a reader that never commits (the quality monitor, the collect)
sets itself, so a ``KAFKA_<PROPERTY>`` may not name them."""
"""Settings that start with ``KAFKA_`` and are not librdkafka properties."""
_PREFIX: Final = "KAFKA_"
_PROPERTIES_FIELD: Final = "kafka_properties"

# librdkafka's error codes (rdkafka.h, RD_KAFKA_RESP_ERR__*): stable across versions.
AUTHENTICATION_ERROR: Final = -169
SSL_ERROR: Final = -181
ALL_BROKERS_DOWN: Final = -187


class BrokerSettingError(ContractError):
    """A ``KAFKA_*`` variable that cannot be used; names it, never its value."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"{variable}: {reason}")


def is_property_variable(variable: str) -> bool:
    """``KAFKA_<PROPERTY>``: a librdkafka property, possibly a secret."""
    return variable.startswith(_PREFIX) and variable not in OWN_KAFKA_NAMES


def properties_from_environment(
    values: Mapping[str, str], reserved: Collection[str]
) -> dict[str, str]:
    """The librdkafka properties of the ``KAFKA_<PROPERTY>`` variables (upper-case names,
    ``*_FILE`` already resolved); one naming a ``reserved`` property is refused."""
    properties: dict[str, str] = {}
    for upper, value in values.items():
        if not is_property_variable(upper):
            continue
        name = upper[len(_PREFIX) :].lower().replace("_", ".")
        if name in reserved:
            raise BrokerSettingError(upper, "the service sets this property itself")
        properties[name] = value
    return properties


def property_variable(location: Sequence[str]) -> str | None:
    """The variable behind a validation error in ``kafka_properties`` (else None)."""
    if location and location[0] == _PROPERTIES_FIELD:
        return _PREFIX + "_".join(location[1:]).upper().replace(".", "_")
    return None


class BrokerConnection(BaseModel):
    """The connection fields a Kafka client's settings carry (mixed into its settings class)."""

    kafka_bootstrap_servers: str = Field(description="Comma-separated host:port list.")
    kafka_properties: dict[str, SecretStr] = Field(
        default_factory=dict, description="librdkafka properties from KAFKA_<PROPERTY> variables."
    )

    def librdkafka_properties(self) -> dict[str, str]:
        """The user's librdkafka properties in clear text, for the client configs only."""
        return {name: secret.get_secret_value() for name, secret in self.kafka_properties.items()}

    def connection_config(self) -> dict[str, str]:
        """The brokers and the user's properties: the base of every client's configuration."""
        return {
            **self.librdkafka_properties(),
            "bootstrap.servers": self.kafka_bootstrap_servers,
        }


def connection_from_environment(
    environ: Mapping[str, str], reserved: Collection[str]
) -> BrokerConnection:
    """The connection of a command that reads its environment directly, without a service's
    settings loader (``python -m training collect``): ``KAFKA_BOOTSTRAP_SERVERS`` and the
    ``KAFKA_<PROPERTY>`` variables, each also as ``<NAME>_FILE``. A variable that cannot be used
    is a BrokerSettingError naming it, never its value."""
    values: dict[str, str] = {}
    for name, value in environ.items():
        upper = name.upper()
        base = upper.removesuffix("_FILE")
        if not base.startswith(_PREFIX):
            continue
        if upper != base:
            try:
                values[base] = Path(value).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise BrokerSettingError(upper, f"cannot read the file: {exc.strerror}") from None
        else:
            values.setdefault(upper, value)
    bootstrap = values.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not bootstrap:
        raise BrokerSettingError("KAFKA_BOOTSTRAP_SERVERS", "must be set (host:port, ...)")
    properties = properties_from_environment(values, reserved)
    return BrokerConnection(
        kafka_bootstrap_servers=bootstrap,
        kafka_properties={name: SecretStr(value) for name, value in properties.items()},
    )


class ClientError(Protocol):
    """What :func:`fatal_client_error` reads of a client error (``confluent_kafka.KafkaError``)."""

    def code(self) -> int: ...
    def str(self) -> str: ...
    def fatal(self) -> bool: ...


def fatal_client_error(error: ClientError) -> str | None:
    """Why a client must stop for this error, or None when librdkafka retries it.

    Credentials and certificates do not heal by retrying: a wrong password or a broker
    certificate that the configured CA does not vouch for stops the service at once with a
    message naming the settings to check (never their values).
    """
    if error.code() == AUTHENTICATION_ERROR:
        return (
            f"authentication failed: {error.str()} "
            "(check KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME "
            "and KAFKA_SASL_PASSWORD)"
        )
    # Other TLS failures ("Disconnected" during a handshake) can be a broker restarting.
    if error.code() == SSL_ERROR and "certificate" in error.str():
        return (
            f"TLS handshake failed, the broker's certificate was not accepted: {error.str()} "
            "(check KAFKA_SSL_CA_LOCATION: the CA that signed the broker certificate, and that "
            "the certificate names the host in KAFKA_BOOTSTRAP_SERVERS)"
        )
    if error.fatal():
        return f"fatal kafka error: {error.str()}"
    return None
