"""Settings: read once from the environment; a bad one names its variable."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from consumer.__main__ import main as consumer_main
from consumer.kafka import RESERVED_PROPERTIES, consumer_config, producer_config
from consumer.publish import DEAD_LETTER_BUDGET_BYTES, DEAD_LETTER_MARGIN_BYTES
from consumer.settings import load_settings
from contract.framing import Framing
from scoring.errors import SettingsError

BASE = {"MODEL_URI": "/models/b1/best_model_full.joblib", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}


def test_defaults_and_required_values() -> None:
    settings = load_settings(BASE)
    assert settings.processing_guarantee == "at_least_once"
    assert settings.input_topic == "sessions"
    assert settings.model_path == Path("/models/b1/best_model_full.joblib")
    assert settings.librdkafka_properties() == {}
    assert settings.drift_enabled is True
    assert (settings.drift_window_events, settings.drift_refresh_events) == (10_000, 1_000)
    off = load_settings({**BASE, "DRIFT_ENABLED": "false", "DRIFT_WINDOW_EVENTS": "500"})
    assert off.drift_enabled is False
    assert off.drift_window_events == 500


def test_input_format_and_schema_ids_make_the_framing() -> None:
    assert load_settings(BASE).framing == Framing("auto", None)
    settings = load_settings(
        {**BASE, "INPUT_FORMAT": "schema_registry_json", "SCHEMA_REGISTRY_SCHEMA_IDS": "7, 12"}
    )
    assert settings.framing == Framing("schema_registry_json", frozenset({7, 12}))


def test_file_uri_is_a_path() -> None:
    settings = load_settings({**BASE, "MODEL_URI": "file:///models/b%202/best_model_full.joblib"})
    assert settings.model_path == Path("/models/b 2/best_model_full.joblib")


def test_kafka_properties_pass_through_with_dots() -> None:
    settings = load_settings(
        {**BASE, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN"}
    )
    assert settings.librdkafka_properties() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
    }


def test_secret_read_from_file_and_hidden_in_repr(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    settings = load_settings({**BASE, "KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert settings.librdkafka_properties()["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)


def test_missing_secret_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "absent")})
    assert caught.value.variable == "KAFKA_SASL_PASSWORD_FILE"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PROCESSING_GUARANTEE", "at_most_once"),
        ("BATCH_MAX_MESSAGES", "0"),
        ("BATCH_MAX_MESSAGES", "many"),
        ("BATCH_MAX_WAIT_MS", "-5"),
        ("METRICS_PORT", "70000"),
        ("MODEL_URI", "gs://bucket/model.joblib"),
        ("MODEL_URI", "s3:///no-bucket/model.joblib"),
        ("SHADOW_MODEL_URI", "hdfs://x/model.joblib"),
        ("SHADOW_OUTPUT_TOPIC", "session-scores"),
        ("SHADOW_OUTPUT_TOPIC", "shadow-scores"),  # without SHADOW_MODEL_URI
        ("MODEL_FETCH_ATTEMPTS", "0"),
        ("OUTPUT_TOPIC", "sessions"),
        ("KAFKA_ENABLE_AUTO_COMMIT", "false"),
        ("KAFKA_AUTO_OFFSET_RESET", "latest"),
        ("KAFKA_STATISTICS_INTERVAL_MS", "0"),
        ("KAFKA_DELIVERY_REPORT_ONLY_ERROR", "true"),
        ("KAFKA_REQUEST_REQUIRED_ACKS", "1"),  # librdkafka's other name for acks
        ("KAFKA_METADATA_BROKER_LIST", "other:9092"),
        ("TRANSACTIONAL_ID", "t-1"),  # under the default at_least_once
        ("INPUT_MAX_MESSAGE_BYTES", "100"),
        ("MAX_MESSAGE_BYTES", "100"),  # the deprecated name is reported as set
        ("PUBLISH_TIMEOUT_S", "0"),
        ("INPUT_FORMAT", "avro"),
        ("SCHEMA_REGISTRY_SCHEMA_IDS", ""),
        ("SCHEMA_REGISTRY_SCHEMA_IDS", "1,two"),
        ("SCHEMA_REGISTRY_SCHEMA_IDS", "-1"),
        ("DRIFT_WINDOW_EVENTS", "10"),
        ("DRIFT_REFRESH_EVENTS", "0"),
        ("DRIFT_ENABLED", "maybe"),
    ],
)
def test_bad_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, variable: value})
    # A rule across settings names all the variables it involves, this one among them.
    assert variable in caught.value.variables
    assert "SETTINGS" not in str(caught.value)


@pytest.mark.parametrize("missing", ["MODEL_URI", "KAFKA_BOOTSTRAP_SERVERS"])
def test_required_setting_missing(missing: str) -> None:
    environ = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert caught.value.variable == missing


def test_the_dead_letter_budget_follows_kafka_message_max_bytes() -> None:
    assert load_settings(BASE).dead_letter_budget_bytes == DEAD_LETTER_BUDGET_BYTES
    custom = load_settings({**BASE, "KAFKA_MESSAGE_MAX_BYTES": "2000000"})
    assert custom.dead_letter_budget_bytes == 2_000_000 - DEAD_LETTER_MARGIN_BYTES
    for bad in ("10000", "lots"):
        with pytest.raises(SettingsError) as caught:
            load_settings({**BASE, "KAFKA_MESSAGE_MAX_BYTES": bad})
        assert caught.value.variable == "KAFKA_MESSAGE_MAX_BYTES"


def test_object_store_settings_from_files_and_standard_names(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3-secret\n")
    settings = load_settings(
        {
            **BASE,
            "MODEL_URI": "s3://models/prod/b1/best_model_full.joblib",
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY_FILE": str(secret),
            "AWS_ENDPOINT_URL": "http://fallback:9000",
            "AWS_ENDPOINT_URL_S3": "http://s3:9000",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    options = settings.object_store
    assert options.attempts == 1  # scoring.fetch retries whole downloads itself
    assert options.access_key_id == "AKID"
    assert options.secret_access_key == "s3-secret"
    assert options.endpoint_url == "http://s3:9000"  # the S3-specific name wins
    assert options.region == "eu-west-1"
    assert "s3-secret" not in repr(settings)
    assert "s3-secret" not in repr(options)
    with pytest.raises(SettingsError):
        _ = settings.model_path  # an s3:// build is fetched, never read in place


# --- no secret in any message ---------------------------------------------------------------

PASSWORD = "kafka-pw-Zq81xX"
AWS_SECRET = "aws-secret-Jr55wW"
FILE_SECRET = "file-secret-Hb27yY"
SECRETS = (PASSWORD, AWS_SECRET, FILE_SECRET)


def _secret_environ(tmp_path: Path) -> dict[str, str]:
    """BASE with a SASL password, an S3 secret key and a secret in a file, all recognisable."""
    key_password = tmp_path / "ssl-key-password"
    key_password.write_text(FILE_SECRET + "\n")
    return {
        **BASE,
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "KAFKA_SSL_KEY_PASSWORD_FILE": str(key_password),
    }


def _file_with(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# Every way load_settings refuses the environment: (the variables named, the bad variables set).
# A value of FILE_SECRET or PASSWORD in a bad variable must not be echoed either.
ERROR_PATHS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    # one field's own rule
    "model uri scheme": (("MODEL_URI",), {"MODEL_URI": "gs://b/best_model_full.joblib"}),
    "model uri missing": (("MODEL_URI",), {"MODEL_URI": ""}),  # removed below
    "shadow uri": (("SHADOW_MODEL_URI",), {"SHADOW_MODEL_URI": "hdfs://x/m.joblib"}),
    "fetch attempts": (("MODEL_FETCH_ATTEMPTS",), {"MODEL_FETCH_ATTEMPTS": "0"}),
    "shadow batch timeout": (("SHADOW_BATCH_TIMEOUT_S",), {"SHADOW_BATCH_TIMEOUT_S": "0"}),
    "guarantee": (("PROCESSING_GUARANTEE",), {"PROCESSING_GUARANTEE": "at_most_once"}),
    "blank topic": (("INPUT_TOPIC",), {"INPUT_TOPIC": " "}),
    "blank group": (("CONSUMER_GROUP",), {"CONSUMER_GROUP": ""}),
    "batch size": (("BATCH_MAX_MESSAGES",), {"BATCH_MAX_MESSAGES": "many"}),
    "batch wait": (("BATCH_MAX_WAIT_MS",), {"BATCH_MAX_WAIT_MS": "-5"}),
    "input cap": (("INPUT_MAX_MESSAGE_BYTES",), {"INPUT_MAX_MESSAGE_BYTES": "10"}),
    "deprecated input cap": (("MAX_MESSAGE_BYTES",), {"MAX_MESSAGE_BYTES": "10"}),
    "metrics port": (("METRICS_PORT",), {"METRICS_PORT": "70000"}),
    "shutdown timeout": (("SHUTDOWN_TIMEOUT_S",), {"SHUTDOWN_TIMEOUT_S": "0"}),
    "publish timeout": (("PUBLISH_TIMEOUT_S",), {"PUBLISH_TIMEOUT_S": "601"}),
    "library mismatch": (("ALLOW_LIBRARY_MISMATCH",), {"ALLOW_LIBRARY_MISMATCH": "maybe"}),
    "require signed": (("REQUIRE_SIGNED_MODEL",), {"REQUIRE_SIGNED_MODEL": "maybe"}),
    "input format": (("INPUT_FORMAT",), {"INPUT_FORMAT": "avro"}),
    "schema ids": (("SCHEMA_REGISTRY_SCHEMA_IDS",), {"SCHEMA_REGISTRY_SCHEMA_IDS": "1,two"}),
    "drift enabled": (("DRIFT_ENABLED",), {"DRIFT_ENABLED": "maybe"}),
    "drift window": (("DRIFT_WINDOW_EVENTS",), {"DRIFT_WINDOW_EVENTS": "10"}),
    "drift refresh": (("DRIFT_REFRESH_EVENTS",), {"DRIFT_REFRESH_EVENTS": "0"}),
    "log format": (("LOG_FORMAT",), {"LOG_FORMAT": "xml"}),
    "log level": (("LOG_LEVEL",), {"LOG_LEVEL": "TRACE"}),
    # rules across settings
    "same topics": (("OUTPUT_TOPIC", "DLQ_TOPIC"), {"OUTPUT_TOPIC": "sessions-dlq"}),
    "shadow topic taken": (("SHADOW_OUTPUT_TOPIC",), {"SHADOW_OUTPUT_TOPIC": "sessions"}),
    "shadow without model": (
        ("SHADOW_OUTPUT_TOPIC", "SHADOW_MODEL_URI"),
        {"SHADOW_OUTPUT_TOPIC": "shadow-scores"},
    ),
    "signed without keys": (
        ("REQUIRE_SIGNED_MODEL", "MODEL_TRUSTED_KEYS"),
        {"REQUIRE_SIGNED_MODEL": "true"},
    ),
    "transactional id": (
        ("TRANSACTIONAL_ID", "PROCESSING_GUARANTEE"),
        {"TRANSACTIONAL_ID": "scorer-0"},
    ),
    "old and new name": (
        ("INPUT_MAX_MESSAGE_BYTES", "MAX_MESSAGE_BYTES"),
        {"INPUT_MAX_MESSAGE_BYTES": "1000", "MAX_MESSAGE_BYTES": "2000"},
    ),
    # librdkafka properties
    "reserved property": (("KAFKA_GROUP_ID",), {"KAFKA_GROUP_ID": PASSWORD}),
    "overwritten property": (("KAFKA_AUTO_OFFSET_RESET",), {"KAFKA_AUTO_OFFSET_RESET": PASSWORD}),
    "message.max.bytes not a number": (
        ("KAFKA_MESSAGE_MAX_BYTES",),
        {"KAFKA_MESSAGE_MAX_BYTES": PASSWORD},
    ),
    "message.max.bytes too small": (
        ("KAFKA_MESSAGE_MAX_BYTES",),
        {"KAFKA_MESSAGE_MAX_BYTES": "10000"},
    ),
}


def _error_environ(case: str, tmp_path: Path) -> dict[str, str]:
    environ = {**_secret_environ(tmp_path), **ERROR_PATHS[case][1]}
    if case == "model uri missing":
        del environ["MODEL_URI"]  # pydantic's "input" of a missing field is every setting
    return environ


FILE_ERROR_PATHS: dict[str, tuple[str, str]] = {
    # (the variable named, its file's contents or None for no file)
    "unreadable kafka secret file": ("KAFKA_SASL_USERNAME_FILE", ""),
    "unreadable object store file": ("AWS_ACCESS_KEY_ID_FILE", ""),
    "bad value from a file": ("BATCH_MAX_MESSAGES", FILE_SECRET),
    "bad kafka value from a file": ("KAFKA_MESSAGE_MAX_BYTES", FILE_SECRET),
    "reserved property from a file": ("KAFKA_ACKS", FILE_SECRET),
}


def _file_error_environ(case: str, tmp_path: Path) -> dict[str, str]:
    variable, contents = FILE_ERROR_PATHS[case]
    environ = _secret_environ(tmp_path)
    if contents:
        environ[f"{variable}_FILE"] = _file_with(tmp_path, variable, contents)
    else:
        environ[variable] = str(tmp_path / "absent")
    return environ


def _all_error_environs(tmp_path: Path) -> list[tuple[str, tuple[str, ...], dict[str, str]]]:
    cases = [
        (case, named, _error_environ(case, tmp_path)) for case, (named, _) in ERROR_PATHS.items()
    ]
    cases += [
        (case, (variable,), _file_error_environ(case, tmp_path))
        for case, (variable, _) in FILE_ERROR_PATHS.items()
    ]
    return cases


def _assert_no_secret(text: str, case: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{case}: a secret is shown: {text}"


def test_no_settings_error_shows_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every refusal, as raised and as ``python -m consumer``'s main() prints it."""
    assert load_settings(_secret_environ(tmp_path))  # the secrets alone are fine
    for case, named, environ in _all_error_environs(tmp_path):
        with pytest.raises(SettingsError) as caught:
            load_settings(environ)
        error = caught.value
        assert set(named) <= set(error.variables), f"{case}: {error}"
        assert "SETTINGS" not in error.variables
        shown = [str(error), repr(error), repr(error.value), *traceback.format_exception(error)]
        _assert_no_secret("\n".join(shown), case)

        monkeypatch.setattr(os, "environ", environ)
        assert consumer_main() == 2, case
        printed = capsys.readouterr()
        assert "bad setting" in printed.err, printed.err
        assert named[0] in printed.err, printed.err
        _assert_no_secret(printed.out + printed.err, case)


def test_python_m_consumer_exits_2_without_showing_a_secret(tmp_path: Path) -> None:
    """The real process: the rules across settings once printed every setting, secrets too."""
    cases = ["shadow without model", "model uri missing"]
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path.cwd())}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "consumer"],
            env={**base, **_error_environ(case, tmp_path)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case in cases
    ]
    for case, process in zip(cases, processes, strict=True):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 2, f"{case}: {err}"
        assert ERROR_PATHS[case][0][0] in err
        _assert_no_secret(out + err, case)


# --- settings that say what they do ----------------------------------------------------------


def test_max_message_bytes_is_a_deprecated_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="consumer.settings"):
        settings = load_settings({**BASE, "MAX_MESSAGE_BYTES": "4096"})
    assert settings.input_max_message_bytes == 4096
    assert "MAX_MESSAGE_BYTES is deprecated" in caplog.text
    assert "INPUT_MAX_MESSAGE_BYTES" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="consumer.settings"):
        current = load_settings({**BASE, "INPUT_MAX_MESSAGE_BYTES": "4096"})
    assert current.input_max_message_bytes == 4096
    assert "deprecated" not in caplog.text
    both = {**BASE, "INPUT_MAX_MESSAGE_BYTES": "4096", "MAX_MESSAGE_BYTES": "4096"}
    assert load_settings(both).input_max_message_bytes == 4096  # the same value twice is fine
    with pytest.raises(SettingsError) as caught:
        load_settings({**both, "MAX_MESSAGE_BYTES": "8192"})
    assert caught.value.variables == ("INPUT_MAX_MESSAGE_BYTES", "MAX_MESSAGE_BYTES")
    assert "4096" not in str(caught.value)


def test_publish_timeout_is_its_own_setting() -> None:
    settings = load_settings({**BASE, "SHUTDOWN_TIMEOUT_S": "90"})
    assert (settings.shutdown_timeout_s, settings.publish_timeout_s) == (90.0, 30.0)
    assert load_settings({**BASE, "PUBLISH_TIMEOUT_S": "5"}).publish_timeout_s == 5.0


def test_transactional_id_only_with_exactly_once() -> None:
    settings = load_settings(
        {**BASE, "PROCESSING_GUARANTEE": "exactly_once", "TRANSACTIONAL_ID": "scorer-0"}
    )
    assert settings.effective_transactional_id == "scorer-0"
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "TRANSACTIONAL_ID": "scorer-0"})
    assert caught.value.variables == ("TRANSACTIONAL_ID", "PROCESSING_GUARANTEE")


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_every_property_the_clients_set_is_refused_or_yours_to_change(guarantee: str) -> None:
    """No KAFKA_<PROPERTY> is accepted and then silently overwritten by the client configs."""
    settings = load_settings({**BASE, "PROCESSING_GUARANTEE": guarantee})
    configs = [
        consumer_config(settings, lambda error: None, lambda stats: None),
        producer_config(settings, lambda error: None),
    ]
    for config in configs:
        # A variable's underscores become dots: error_cb and stats_cb cannot be named by one.
        for name in (n for n in config if "_" not in n):
            variable = "KAFKA_" + name.upper().replace(".", "_")
            if variable == "KAFKA_BOOTSTRAP_SERVERS":  # a setting of ours, not a property
                assert config[name] == "k:9092"
            elif name in RESERVED_PROPERTIES:
                with pytest.raises(SettingsError) as caught:
                    load_settings({**BASE, variable: "x"})
                assert caught.value.variable == variable
            else:
                chosen = load_settings({**BASE, "PROCESSING_GUARANTEE": guarantee, variable: "7"})
                remade = [
                    consumer_config(chosen, lambda error: None, lambda stats: None),
                    producer_config(chosen, lambda error: None),
                ]
                assert all(c[name] == "7" for c in remade if name in c), name
    # A default of ours does not overwrite the user's choice under librdkafka's other name.
    chosen = load_settings({**BASE, "KAFKA_QUEUE_BUFFERING_MAX_MS": "50"})
    producer = producer_config(chosen)
    assert producer["queue.buffering.max.ms"] == "50"
    assert "linger.ms" not in producer
