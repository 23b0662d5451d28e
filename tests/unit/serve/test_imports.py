"""serve is a front door on the runtime: it imports contract/ and scoring/, never the Kafka
adapter, training, benchmarks or tests, and never confluent_kafka (not even through the
runtime)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
FORBIDDEN = frozenset({"consumer", "training", "benchmarks", "tests", "confluent_kafka"})


def test_serve_imports_only_what_it_stands_on() -> None:
    broken = []
    for path in sorted((REPO / "serve").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            broken += [
                f"{path.relative_to(REPO)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in FORBIDDEN
            ]
    assert not broken, "serve imports what it must not:\n" + "\n".join(broken)


def test_running_serve_loads_no_kafka_client() -> None:
    code = (
        "import sys, serve.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(FORBIDDEN)!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
