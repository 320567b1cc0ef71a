"""The package's shape, read from its source: no private name crosses a module line, a whole build and an
update do not lean on each other, engines stand alone, snapshot/ and store/ import in one direction; and
the store seam as an engine sees it (ENGINES, SegmentStore, the engine-neutral settings)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from policyqa.config import Settings
from policyqa.errors import StoreError
from policyqa.store import ENGINES, connect
from policyqa.store.base import SegmentStore

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "policyqa"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """Each import of a module: (module, names taken from it), outside `if TYPE_CHECKING:` blocks."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, []) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                found.append((child.module, [a.name for a in child.names]))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def dependencies(name: str) -> set[str]:
    """The modules of the package that `name` imports (a name taken from a package may be its module)."""
    out = set()
    for module, names in imported(MODULES[name]):
        out |= {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES} or {module}
    return {m for m in out if m in MODULES and m != name}


def test_no_private_name_is_imported_from_another_module() -> None:
    crossing = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}  # local name -> module of the package imported under it
        for node in ast.walk(tree):  # TYPE_CHECKING imports too
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("policyqa"):
                names = [a.name for a in node.names]
                crossing += [f"{name}: from {node.module} import {n}" for n in names if n.startswith("_")]
                aliases |= {(a.asname or a.name): f"{node.module}.{a.name}" for a in node.names}
            if isinstance(node, ast.Import):
                aliases |= {(a.asname or a.name): a.name for a in node.names if a.name in MODULES and a.asname}
        aliases = {local: module for local, module in aliases.items() if module in MODULES}
        for node in ast.walk(tree):
            private = isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
            if private and isinstance(node.value, ast.Name) and node.value.id in aliases:
                crossing.append(f"{name}: {node.value.id}.{node.attr}")
    assert crossing == []


def test_a_whole_build_and_an_update_do_not_import_each_other() -> None:
    assert "policyqa.snapshot.update" not in dependencies("policyqa.snapshot.build")
    assert "policyqa.snapshot.build" not in dependencies("policyqa.snapshot.update")
    # both stand on the shared steps and the layout
    for name in ("policyqa.snapshot.build", "policyqa.snapshot.update"):
        assert {"policyqa.snapshot.steps", "policyqa.snapshot.layout"} <= dependencies(name)


def test_no_engine_imports_another_engine() -> None:
    engines = {f"policyqa.store.{e}" for e in ENGINES}
    for engine in engines:
        assert dependencies(engine) & engines == set(), engine


def test_snapshot_and_store_modules_import_in_one_direction() -> None:
    """No cycle among the modules of snapshot/ and store/ (function-level imports count too)."""
    ours = {n for n in MODULES if n.startswith(("policyqa.snapshot", "policyqa.store"))}
    graph = {n: dependencies(n) & ours for n in ours}
    done: set[str] = set()

    def walk(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, " -> ".join([*path, node])
        if node in done:
            return
        for nxt in graph[node]:
            walk(nxt, (*path, node))
        done.add(node)

    for node in sorted(graph):
        walk(node, ())


def test_every_engine_is_named_once_and_connects() -> None:
    assert len(set(ENGINES)) == len(ENGINES) and "faiss" in ENGINES
    assert all((PACKAGE / "store" / f"{e}.py").is_file() for e in ENGINES)
    assert isinstance(connect("faiss"), SegmentStore)  # a store of segments: updates write only what changed
    assert not isinstance(connect("qdrant"), SegmentStore)  # whole snapshots only
    for name in ("base", "segments", "vectors", "lexical", "milvus"):  # modules of store/ that are no engine
        with pytest.raises(StoreError, match="set POLICYQA_STORE to faiss or qdrant"):
            connect(name)


def test_the_store_server_settings_are_engine_neutral(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="policyqa"):
        settings = Settings.from_env({"POLICYQA_STORE_URL": "http://store:6333", "POLICYQA_STORE_API_KEY": "k"})
    assert (settings.store_url, settings.store_api_key) == ("http://store:6333", "k")
    assert caplog.records == []


def test_the_qdrant_names_still_work_with_one_deprecation_line(caplog: pytest.LogCaptureFixture) -> None:
    old = {"POLICYQA_QDRANT_URL": "http://qdrant:6333", "POLICYQA_QDRANT_API_KEY": "secret"}
    with caplog.at_level(logging.WARNING, logger="policyqa"):
        settings = Settings.from_env(old)
    assert (settings.store_url, settings.store_api_key) == ("http://qdrant:6333", "secret")
    [line] = [r.getMessage() for r in caplog.records]
    assert "POLICYQA_QDRANT_URL" in line and "deprecated" in line and "POLICYQA_STORE_URL" in line
    assert "POLICYQA_STORE_API_KEY" in line and "secret" not in line


def test_the_new_name_wins_over_the_old_one(caplog: pytest.LogCaptureFixture) -> None:
    env = {"POLICYQA_STORE_URL": "http://new:6333", "POLICYQA_QDRANT_URL": "http://old:6333"}
    with caplog.at_level(logging.WARNING, logger="policyqa"):
        assert Settings.from_env(env).store_url == "http://new:6333"
    assert caplog.records == []


def test_the_deprecation_line_reaches_stderr_from_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"POLICYQA_QDRANT_URL": "http://qdrant:6333", "PATH": "", "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "policyqa", "documents", "--index", str(tmp_path / "none")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert "POLICYQA_QDRANT_URL is deprecated: set POLICYQA_STORE_URL instead" in done.stderr


def test_no_function_is_longer_than_sixty_lines() -> None:
    """Functions short enough to read at once (STYLE.md): a longer one is split into named steps."""
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 60:
                    long.append(f"{name}.{node.name}: {size} lines")
    assert long == []


def test_every_module_and_package_says_what_it_holds() -> None:
    """Each module and package opens with a docstring whose first line says what it holds."""
    for name, path in MODULES.items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and doc.splitlines()[0].strip(), name
