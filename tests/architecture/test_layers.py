"""The layers of docs/architecture.md, enforced: every import edge between our modules.

Reads the import graph of every module with ast (imports under ``if TYPE_CHECKING:``
are type hints, not dependencies, and are skipped) and fails on any edge the table
below does not allow, naming it. The table is the architecture; change it only with
docs/architecture.md.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import workstyle.collector

PACKAGE_DIRS = {
    "workstyle.collector": Path(workstyle.collector.__file__).parent,
}
for _name in ("adapters", "aggregates", "schemas", "config"):
    _mod = __import__(f"workstyle.{_name}", fromlist=["_"])
    PACKAGE_DIRS[f"workstyle.{_name}"] = Path(_mod.__file__).parent

#: Modules every layer may import: declarations and primitives that import nothing
#: of ours except each other.
LEAVES = (
    "workstyle.collector.errors",
    "workstyle.collector.options",
    "workstyle.collector.fiscal_year",
    "workstyle.collector.secrets",
    "workstyle.collector.pseudonyms",
    "workstyle.collector.logs",
    # Where the data lives (local folder or s3://): every room that reads or writes the
    # data directory opens it through this one module.
    "workstyle.collector.storage",
)

#: Room (module prefix) -> the prefixes it may import, besides itself and the leaves.
#: The most specific room of a module applies.
ALLOWED: dict[str, tuple[str, ...]] = {
    "workstyle.schemas": (),
    "workstyle.config": (),
    "workstyle.adapters": ("workstyle.schemas",),
    "workstyle.aggregates": ("workstyle.schemas", "workstyle.collector.ingest.reader"),
    "workstyle.collector.config": (
        "workstyle.adapters.__init__",  # the registry only: kind names, lazily loaded
        "workstyle.aggregates.settings",
        "workstyle.collector.exporter.settings",
        "workstyle.collector.report.settings",
        "workstyle.config",
    ),
    "workstyle.collector.ingest": (
        "workstyle.adapters",
        "workstyle.schemas",
        "workstyle.collector.config",
    ),
    "workstyle.collector.exporter": (
        "workstyle.schemas.kpi",
        "workstyle.collector.ingest.state",
        "workstyle.collector.config",
        "workstyle.collector.live",
    ),
    "workstyle.collector.live": (
        "workstyle.schemas",
        "workstyle.collector.config",
        "workstyle.collector.ingest.state",
        "workstyle.adapters",
    ),
    "workstyle.collector.report": (
        "workstyle.schemas",
        "workstyle.aggregates",
        "workstyle.collector.config",
        "workstyle.collector.ingest.status",
    ),
    # The CLI is the top: it may import everything.
    "workstyle.collector.cli": ("workstyle",),
}


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts]
            name = ".".join([package, *parts])
            out[name] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """The workstyle modules a file imports at run time (module level or in functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for sub in ast.walk(node):
                skipped.add(id(sub))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            # `from pkg import module` is an edge to the submodule, not to the package
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {f for f in found if f == "workstyle" or f.startswith("workstyle.")}


def _room(module: str) -> str:
    rooms = [r for r in ALLOWED if module == r or module.startswith(r + ".")]
    if module in LEAVES:
        return "leaf"
    if not rooms:
        return "workstyle.collector"  # the package's own __init__
    return max(rooms, key=len)


def _allowed(module: str, target: str, known: dict[str, Path]) -> bool:
    if target not in known and f"{target}.__init__" not in known:
        return True  # `from pkg import name` where name is not a module
    room = _room(module)
    if target in LEAVES or target == "workstyle.collector":
        return room != "leaf" or target in LEAVES or target == "workstyle.collector"
    if room == "leaf":
        return False
    if target == room or target.startswith(room + "."):
        return True
    for prefix in ALLOWED.get(room, ()):
        if prefix.endswith(".__init__"):
            if target == prefix[: -len(".__init__")]:
                return True
        elif target == prefix or target.startswith(prefix + "."):
            return True
    return False


def forbidden_edges() -> list[str]:
    known = {m.removesuffix(".__init__"): p for m, p in _modules().items()}
    known_names = {**known, **{f"{m}.__init__": p for m, p in known.items()}}
    edges = []
    for module, path in sorted(known.items()):
        for target in sorted(imports_of(path, module, known)):
            if not _allowed(module, target, known_names):
                edges.append(f"{module} -> {target}")
    return edges


def test_no_forbidden_import_edge() -> None:
    assert forbidden_edges() == []


def test_a_planted_forbidden_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker itself: an adapter importing the KPI engine is caught and named."""
    planted = tmp_path / "adapters"
    planted.mkdir()
    (planted / "__init__.py").write_text("")
    (planted / "leaky.py").write_text(
        "from workstyle.aggregates import engine\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from workstyle.collector.ingest.store import Store\n"
    )
    monkeypatch.setitem(PACKAGE_DIRS, "workstyle.adapters", planted)
    edges = forbidden_edges()
    assert "workstyle.adapters.leaky -> workstyle.aggregates.engine" in edges
    assert not any("ingest.store" in e for e in edges if e.startswith("workstyle.adapters"))


#: What light commands may import of the heavy dependencies: nothing.
HEAVY = ("polars", "pyarrow", "requests", "pysnmp", "matplotlib", "xlsxwriter", "cryptography")


def _loaded_after(code: str) -> set[str]:
    """Top-level modules loaded after running ``code`` in a fresh interpreter."""
    report = "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)"
    probe = f"import sys\n{code}\n{report}\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stderr.split())  # stdout carries the command's own output


def test_help_imports_only_click_beyond_the_standard_library() -> None:
    """An allow-list, as click's own tests do: `collector --help` needs click and us."""
    loaded = _loaded_after(
        "from workstyle.collector.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    extra = loaded - set(sys.stdlib_module_names) - {"__main__", "_distutils_hack"}
    assert extra <= {"click", "workstyle", "__editable___workstyle_collector_0_1_0_finder"}, extra


def test_serve_setup_imports_no_adapter_or_ingest_library(tmp_path: Path) -> None:
    """What `collector serve` loads for the bundled example: the exporter, not the adapters."""
    loaded = _loaded_after(
        "from workstyle.collector import config\n"
        "from workstyle.collector.exporter.server import build_server\n"
        "from workstyle.collector.exporter.settings import settings\n"
        f"cfg = config.load(None, {str(tmp_path)!r}, source_options=False)\n"
        "server = build_server(cfg, settings(cfg, listen='127.0.0.1:0'))\n"
        "server.server_close()\n"
        "import workstyle.adapters, sys\n"
        "assert not [m for m in sys.modules if m.startswith('workstyle.adapters.')], "
        "[m for m in sys.modules if m.startswith('workstyle.adapters.')]"
    )
    assert not loaded & {"requests", "pysnmp", "polars", "matplotlib", "cryptography"}, sorted(
        loaded & set(HEAVY)
    )
