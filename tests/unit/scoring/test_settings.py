"""The shared settings and the one loading function every front door uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.errors import NOT_SHOWN, SettingsError
from scoring.settings import ModelSettings, environment_names, load


def test_a_front_door_loads_the_shared_settings_with_one_call(tmp_path: Path) -> None:
    keys = tmp_path / "keys.pem"
    keys.write_text("unused")
    secret = tmp_path / "uri"
    secret.write_text("/models/b1/best_model_full.joblib\n")
    settings = load(
        ModelSettings,
        {
            "MODEL_URI_FILE": str(secret),
            "MAX_MESSAGE_BYTES": "4096",
            "MODEL_TRUSTED_KEYS": str(keys),
        },
    )
    assert settings.model_path == Path("/models/b1/best_model_full.joblib")
    assert settings.input_max_message_bytes == 4096  # the deprecated name still works
    assert "KAFKA_BOOTSTRAP_SERVERS" not in environment_names(ModelSettings)


def test_a_bad_setting_names_its_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load(ModelSettings, {"MODEL_URI": "/m/best_model_full.joblib", "MAX_MESSAGE_BYTES": "1"})
    assert caught.value.variable == "MAX_MESSAGE_BYTES"  # the name the operator set
    with pytest.raises(SettingsError) as caught:
        load(ModelSettings, {})
    assert caught.value.variable == "MODEL_URI"
    assert caught.value.value is NOT_SHOWN
