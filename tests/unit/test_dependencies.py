"""The direction of dependencies, enforced: contract <- scoring <- {consumer, serve, quality};
training <- contract. The contract stands alone, the scoring runtime knows no transport, a
front door never imports another or training, training speaks Kafka in one module only
(``training/collect.py``, which reads the topics), and no module reaches into another module's
private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = frozenset(
    {"contract", "scoring", "consumer", "serve", "quality", "training", "benchmarks", "tests"}
)
ALLOWED: dict[str, frozenset[str]] = {
    "contract": frozenset(),
    "scoring": frozenset({"contract"}),
    "consumer": frozenset({"contract", "scoring"}),
    "serve": frozenset({"contract", "scoring"}),
    # The quality monitor: the runtime's settings loader and errors, never a front door.
    "quality": frozenset({"contract", "scoring"}),
    "training": frozenset({"contract"}),
}
"""The project packages each package may import besides itself."""
FORBIDDEN: dict[str, frozenset[str]] = {
    package: PROJECT - allowed - {package} for package, allowed in ALLOWED.items()
}
TRANSPORT_FREE = {"contract", "scoring", "serve"}
"""Packages that never import a Kafka client (the runtime is shared by every front door)."""
KAFKA = "confluent_kafka"
TRAINING_KAFKA_MODULES = {"training/collect.py"}
"""The only modules of training that read Kafka: the rest of it (and every training run) needs
no broker."""


def _imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) of every import in a file, nested ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def _package_files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))  # none yet for a package still to come


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_they_stand_on(package: str) -> None:
    broken = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in _package_files(package)
        for line, module, _ in _imports(path)
        if module.split(".")[0] in FORBIDDEN[package]
    ]
    assert not broken, "dependency rule broken:\n" + "\n".join(broken)


@pytest.mark.parametrize("package", sorted({*TRANSPORT_FREE, "serve"}))
def test_the_runtime_and_the_http_front_door_know_no_kafka(package: str) -> None:
    broken = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in _package_files(package)
        for line, module, _ in _imports(path)
        if module.split(".")[0] == KAFKA
    ]
    assert not broken, f"{KAFKA} imported outside the Kafka adapter:\n" + "\n".join(broken)


def test_training_reads_kafka_in_its_collect_module_only() -> None:
    importers = {
        path.relative_to(REPO).as_posix()
        for path in _package_files("training")
        for _, module, _ in _imports(path)
        if module.split(".")[0] == KAFKA
    }
    assert importers <= TRAINING_KAFKA_MODULES, f"{KAFKA} imported in training outside collect"


def test_only_the_front_doors_themselves_import_them() -> None:
    """Nothing in the project packages imports a front door (consumer, serve) or the quality
    monitor but itself; benchmarks and tests may."""
    services = {"consumer", "serve", "quality"}
    assert all(services - {p} <= FORBIDDEN[p] for p in ALLOWED)


@pytest.mark.parametrize("package", [*sorted(FORBIDDEN), "benchmarks"])
def test_no_module_imports_private_names_of_another(package: str) -> None:
    broken = []
    for path in _package_files(package):
        own = _module_of(path)
        for line, module, names in _imports(path):
            if module.split(".")[0] not in {*FORBIDDEN, "benchmarks"} or module == own:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                broken.append(f"{path.relative_to(REPO)}:{line} imports {private} from {module}")
    assert not broken, "private names imported across modules:\n" + "\n".join(broken)


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    """The walk finds imports inside functions too (the consumer once imported lazily)."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from training.synthetic import generate_sessions\n")
    assert [(m, n) for _, m, n in _imports(source)] == [
        ("training.synthetic", ["generate_sessions"])
    ]
