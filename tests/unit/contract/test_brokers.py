"""contract.brokers.connection_from_environment: the brokers of a command without a service's
settings loader (``python -m training collect``), with the same conventions."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.brokers import BrokerSettingError, connection_from_environment


def test_properties_and_their_files(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    connection = connection_from_environment(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "a:9092,b:9092",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_PASSWORD_FILE": str(secret),
            "INPUT_TOPIC": "not a property",
        },
        reserved={"group.id"},
    )
    assert connection.connection_config() == {
        "bootstrap.servers": "a:9092,b:9092",
        "security.protocol": "SASL_SSL",
        "sasl.password": "s3cret",
    }
    assert "s3cret" not in repr(connection)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "a:1", "KAFKA_GROUP_ID": "g"}, "KAFKA_GROUP_ID"),
        ({"KAFKA_BOOTSTRAP_SERVERS_FILE": "/nonexistent/file"}, "KAFKA_BOOTSTRAP_SERVERS_FILE"),
    ],
)
def test_a_bad_variable_is_named(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(BrokerSettingError) as refused:
        connection_from_environment(environ, reserved={"group.id"})
    assert refused.value.variable == variable
