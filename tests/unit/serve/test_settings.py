"""serve's settings: the runtime's conventions, its own SERVE_* variables, exit 2 on a bad one."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from scoring.errors import SettingsError
from serve.__main__ import EXIT_SETTINGS, listen, main
from serve.settings import ServeSettings, load_serve_settings

MODEL = {"MODEL_URI": "/models/best_model_full.joblib"}


def test_defaults() -> None:
    settings = load_serve_settings(MODEL)
    assert (settings.serve_host, settings.serve_port) == ("0.0.0.0", 8080)
    assert settings.serve_max_events == 1_000
    assert settings.serve_max_body_bytes == 1_048_576
    assert settings.serve_timeout_ms == 1_000
    assert settings.serve_max_concurrency >= 1
    assert settings.serve_shutdown_timeout_s > 0
    assert settings.input_max_message_bytes == 65_536  # the runtime's, as the consumer's


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SERVE_PORT", "http"),
        ("SERVE_PORT", "70000"),
        ("SERVE_MAX_EVENTS", "0"),
        ("SERVE_MAX_BODY_BYTES", "10"),
        ("SERVE_TIMEOUT_MS", "-1"),
        ("SERVE_MAX_CONCURRENCY", "0"),
        ("SERVE_SHUTDOWN_TIMEOUT_S", "0"),
        ("INPUT_FORMAT", "schema_registry_json"),
    ],
)
def test_a_bad_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_serve_settings({**MODEL, variable: value})
    assert error.value.variable == variable


def test_a_secret_is_read_from_its_file_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    settings = load_serve_settings({**MODEL, "AWS_SECRET_ACCESS_KEY_FILE": str(secret)})
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.object_store)


def test_a_bad_setting_exits_2_with_its_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODEL_URI", "/models/best_model_full.joblib")
    monkeypatch.setenv("SERVE_TIMEOUT_MS", "soon")
    assert main() == EXIT_SETTINGS
    assert "SERVE_TIMEOUT_MS" in capsys.readouterr().err


def test_a_port_taken_is_a_bad_setting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError) as error:
            listen("127.0.0.1", port)
    assert error.value.variable == "SERVE_PORT"


def test_the_settings_are_frozen() -> None:
    settings = ServeSettings(model_uri="/m/best_model_full.joblib")
    with pytest.raises(ValueError, match="frozen"):
        settings.serve_port = 1  # type: ignore[misc]
