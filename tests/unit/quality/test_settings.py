"""quality.settings: read once, bad settings named (exit 2), secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from consumer.settings import Settings as ConsumerSettings
from contract.brokers import BrokerConnection
from quality.settings import QualitySettings, load_settings
from scoring.errors import SettingsError

REPO = Path(__file__).resolve().parents[3]
BASE = {"KAFKA_BOOTSTRAP_SERVERS": "broker:9092"}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.topics == ("session-scores", "session-outcomes")
    assert settings.outcome_window == 86_400
    assert settings.missing_outcome == "unknown"
    assert settings.quality_window_labels == 5_000
    assert settings.quality_sample_rate == 1.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86_400), ("7d", 604_800), ("42", 42)]
)
def test_durations(text: str, seconds: float) -> None:
    assert load_settings({**BASE, "OUTCOME_WINDOW": text}).outcome_window == seconds


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OUTCOME_WINDOW", "a fortnight"),
        ("MISSING_OUTCOME", "positive"),
        ("QUALITY_SAMPLE_RATE", "0"),
        ("QUALITY_SAMPLE_RATE", "1.5"),
        ("QUALITY_WINDOW_LABELS", "1"),
        ("QUALITY_MODEL_REGISTRY", "ftp://somewhere"),
    ],
)
def test_a_bad_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, variable: value})
    assert caught.value.variable == variable


def test_the_same_topic_twice_is_refused() -> None:
    with pytest.raises(SettingsError, match="different topics"):
        load_settings({**BASE, "SCORES_TOPIC": "t", "OUTCOME_TOPIC": "t"})


def test_the_assignor_is_the_monitors_own() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "KAFKA_PARTITION_ASSIGNMENT_STRATEGY": "roundrobin"})
    assert caught.value.variable == "KAFKA_PARTITION_ASSIGNMENT_STRATEGY"


def test_secrets_from_files_and_never_in_the_repr(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    settings = load_settings({**BASE, "KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert settings.connection_config()["sasl.password"] == "hunter2"
    assert "hunter2" not in repr(settings)


def test_one_implementation_of_the_broker_connection() -> None:
    assert issubclass(QualitySettings, BrokerConnection)
    assert issubclass(ConsumerSettings, BrokerConnection)


def test_a_bad_setting_exits_2_naming_it_without_the_secret() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        **BASE,
        "KAFKA_SASL_PASSWORD": "hunter2",
        "QUALITY_SAMPLE_RATE": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "quality"], env=env, cwd=REPO, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"QUALITY_SAMPLE_RATE" in done.stderr
    assert b"hunter2" not in done.stderr + done.stdout
