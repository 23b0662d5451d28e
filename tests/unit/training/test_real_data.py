"""Training on the shared UCI dataset (small search budget) meets the quality floors."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from contract.manifest import read_manifest
from training.__main__ import main

# tests/unit/training/ -> repo root -> ../shared/data
DATASET = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / ("online_shoppers_intention.csv")
)
FLOORS = {
    "best_model_full.joblib": {"roc_auc": 0.92, "pr_auc": 0.70},
    "best_model_no_page_values.joblib": {"roc_auc": 0.76, "pr_auc": 0.33},
}


@pytest.mark.data
@pytest.mark.slow
def test_real_dataset_meets_quality_floors(tmp_path: Path) -> None:
    assert DATASET.is_file(), f"the shared dataset is missing: {DATASET}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(
            [
                "--data",
                str(DATASET),
                "--out",
                str(tmp_path),
                "--n-iter",
                "4",
                "--families",
                "xgboost",
            ]
        )
    assert status == 0
    (build,) = list(tmp_path.iterdir())
    manifest = read_manifest(build).model_dump()
    assert manifest["data"]["rows_raw"] == 12_330
    assert manifest["data"]["rows_deduplicated"] == 12_330 - 119  # README: 119 exact duplicates
    for name, floors in FLOORS.items():
        test = manifest["artifacts"][name]["metrics"]["test"]
        for metric, floor in floors.items():
            assert test[metric] >= floor, f"{name}: test {metric} {test[metric]:.4f} < {floor}"
    assert out.getvalue().count("MODEL_URI=file://") == 2
