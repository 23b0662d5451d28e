"""Small real model builds for tests: the training job run on generated sessions."""

from __future__ import annotations

from pathlib import Path

from training.__main__ import main as train_main
from training.synthetic import generate_sessions


def train_tiny_build(registry: Path, rows: int = 1500, seed: int = 7) -> Path:
    """Run the real training CLI on generated data; return the new build directory."""
    registry.mkdir(parents=True, exist_ok=True)
    data = registry.parent / f"synthetic-{seed}-{rows}.csv"
    generate_sessions(rows, seed=seed).to_csv(data, index=False)
    before = set(registry.iterdir())
    status = train_main(
        [
            "--data",
            str(data),
            "--out",
            str(registry),
            "--n-iter",
            "1",
            "--seed",
            str(seed),
            "--families",
            "xgboost",
        ]
    )
    assert status == 0, f"training exited {status}"
    (build,) = [p for p in registry.iterdir() if p not in before and p.is_dir()]
    return build


class MarkerPickle:
    """Unpickling this creates the file at `path`: proof that a pickle's code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))
