"""Settings: read once from the environment; a bad one names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.errors import SettingsError
from consumer.framing import Framing
from consumer.limits import DEAD_LETTER_BUDGET_BYTES, DEAD_LETTER_MARGIN_BYTES
from consumer.settings import load_settings

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
    assert caught.value.variable == variable or (
        variable.endswith("OUTPUT_TOPIC") and "OUTPUT_TOPIC" in str(caught.value)
    )


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
    options = settings.s3_options()
    assert options.access_key_id == "AKID"
    assert options.secret_access_key == "s3-secret"
    assert options.endpoint_url == "http://s3:9000"  # the S3-specific name wins
    assert options.region == "eu-west-1"
    assert "s3-secret" not in repr(settings)
    assert "s3-secret" not in repr(options)
    with pytest.raises(SettingsError):
        _ = settings.model_path  # an s3:// build is fetched, never read in place
