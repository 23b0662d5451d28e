"""Every module path the documentation names exists: docs/*.md and README.md against the code.

What counts as a module path: the text of an inline code span (`like this`, also when the span
wraps a line) of one of these three forms. Prose, fenced code blocks and spans of any other form
(commands, settings, metric names, JSON keys) are not read.

- A repository path: it starts with a top-level folder of the project (`consumer/loop.py`,
  `deploy/local/kafka.sh`, `docs/`) and the file or folder exists. After `::` comes a name the
  Python file defines at module level (`tests/unit/contract/test_schema.py::CATALOGUE`). A span
  with a placeholder in it (`<name>`, `*`, `{a,b}`, `$VAR`) is not a path and is skipped.
- A bare Python file name (`batch.py`): some file of the project has that name.
- A dotted name that starts with a project package (`consumer.loop`,
  `contract.manifest.read_manifest(build_dir)`): its longest prefix that is a module is imported
  and the rest are attributes of it (a class's annotated fields count). Whatever follows the
  name (call arguments, `-> T`) is not read. `NOT_MODULE_PATHS` lists the few spans of this
  form that name something else (a Kafka header).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
PACKAGES = ("contract", "scoring", "consumer", "serve", "quality", "training", "benchmarks")
TOP_FOLDERS = (*PACKAGES, "tests", "deploy", "docs")
PLACEHOLDER = re.compile(r"[<>*{}$]")
# Spans of the dotted form that name something else: the dead letters' header (consumer/publish.py).
NOT_MODULE_PATHS = frozenset({"contract.version"})

_FENCED = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_PATH = re.compile(rf"(?:{'|'.join(TOP_FOLDERS)})/[\w./-]*(?:::\w+)?")
_BARE_FILE = re.compile(r"[\w-]+\.py")
_DOTTED = re.compile(rf"(?:{'|'.join(PACKAGES)})(?:\.\w+)+")
_SKIPPED_DIRS = {".venv", ".tools", ".local", ".git", "build", "registry", "node_modules"}


def code_spans(markdown: str) -> list[str]:
    """The inline code spans of a Markdown text, whitespace collapsed; fenced blocks left out."""
    text = _FENCED.sub("", markdown)
    return [" ".join(match.group(2).split()) for match in _SPAN.finditer(text)]


@cache
def _project_file_names() -> frozenset[str]:
    names = set()
    for folder in TOP_FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if not _SKIPPED_DIRS.intersection(path.relative_to(REPO).parts):
                names.add(path.name)
    return frozenset(names)


def _module_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _missing_path(span: str) -> str | None:
    path, _, name = span.partition("::")
    target = REPO / path
    if not target.exists():
        return f"`{span}`: no such file or folder"
    if name and name not in _module_level_names(target):
        return f"`{span}`: {path} defines no {name}"
    return None


def _has_attribute(owner: object, name: str) -> bool:
    if hasattr(owner, name):
        return True
    if not isinstance(owner, type):
        return False
    # Fields of a dataclass or a pydantic model are annotations, not class attributes.
    annotated = {key for cls in owner.__mro__ for key in getattr(cls, "__annotations__", {})}
    fields = {f.name for f in dataclasses.fields(owner)} if dataclasses.is_dataclass(owner) else ()
    return name in annotated or name in fields


def _missing_dotted(dotted: str) -> str | None:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        module_name = ".".join(parts[:end])
        try:
            found = importlib.util.find_spec(module_name) is not None
        except ImportError:  # a prefix is a module, not a package: try a shorter one
            found = False
        if found:
            break
    else:
        return f"`{dotted}`: no such module"
    owner: object = importlib.import_module(module_name)
    for depth in range(end, len(parts)):
        if not _has_attribute(owner, parts[depth]):
            return f"`{dotted}`: {'.'.join(parts[:depth])} has no {parts[depth]}"
        owner = getattr(owner, parts[depth], None)
    return None


def stale_references(markdown: str) -> list[str]:
    """What the text names (by the rule above) that does not exist, one line each."""
    problems = []
    for span in code_spans(markdown):
        if _PATH.fullmatch(span) and not PLACEHOLDER.search(span):
            problem = _missing_path(span)
        elif _BARE_FILE.fullmatch(span):
            problem = None if span in _project_file_names() else f"`{span}`: no such file"
        elif (dotted := _DOTTED.match(span)) and dotted.group(0) not in NOT_MODULE_PATHS:
            problem = _missing_dotted(dotted.group(0))
        else:
            continue
        if problem is not None:
            problems.append(problem)
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_module_path_a_document_names_exists(document: Path) -> None:
    problems = stale_references(document.read_text(encoding="utf-8"))
    assert not problems, f"{document.relative_to(REPO)} names what the code lacks:\n" + "\n".join(
        sorted(set(problems))
    )


def test_the_rule_reads_module_paths_and_nothing_else() -> None:
    markdown = """
The fast path was `contract/compiled.py`, checked by `test_perf_decode.py`; the manifest is
read by `training.artifact.read_manifest(build_dir)` and decoding is
`scoring.decode.no_such_function(raw,
  quotes)`, guarded by `tests/unit/contract/test_schema.py::NO_SUCH_NAME`.
Still there: `consumer/loop.py`, `batch.py`, `contract.manifest.read_manifest(build_dir)`,
`consumer.loop`, `contract.manifest.Manifest.build_id`, `deploy/local/kafka.sh`, `docs/`,
`tests/unit/contract/test_schema.py::CATALOGUE`. Not paths: `python -m consumer`, `consumer_lag`,
`consumer/<module>.py`, `INPUT_FORMAT`, `scorer_messages_total{outcome="scored"}`,
`contract.version` (a header), contract/nothing.py.

```
consumer/   fenced.py  not read
```
"""
    assert stale_references(markdown) == [
        "`contract/compiled.py`: no such file or folder",
        "`test_perf_decode.py`: no such file",
        "`training.artifact.read_manifest`: training.artifact has no read_manifest",
        "`scoring.decode.no_such_function`: scoring.decode has no no_such_function",
        "`tests/unit/contract/test_schema.py::NO_SUCH_NAME`: "
        "tests/unit/contract/test_schema.py defines no NO_SUCH_NAME",
    ]
