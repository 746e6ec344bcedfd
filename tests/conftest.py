"""Shared fixtures: a config file on disk, a pipeline, a CLI runner, the fixture folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent
TEST_KEY = "test-pseudonymisation-key-0123456789"


def toml_value(value: Any) -> str:
    """A small TOML writer for test configs (strings, numbers, bools, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items())
            + "}"
        )
    raise TypeError(type(value))


def write_config(
    path: Path, sections: dict[str, dict[str, Any]], sources: list[dict[str, Any]]
) -> Path:
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    for src in sources:
        lines.append("[[sources]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in src.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLLECTOR_TEST_KEY", TEST_KEY)
    return "env:COLLECTOR_TEST_KEY"


@pytest.fixture
def make_config(tmp_path: Path, key_env: str) -> Callable[..., Path]:
    """Write a config file in tmp_path with the given sources; returns its path."""

    def make(sources: list[dict[str, Any]], **sections: dict[str, Any]) -> Path:
        base = {"collector": {"data_dir": str(tmp_path / "data")}, "privacy": {"key": key_env}}
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        return write_config(tmp_path / "collector.toml", base, sources)

    return make


@pytest.fixture
def load_config() -> Callable[[Path], Any]:
    from workstyle.collector import config

    return lambda path: config.load(path)


@pytest.fixture
def pipeline_for() -> Callable[[Any], Any]:
    from workstyle.collector.ingest.pipeline import Pipeline
    from workstyle.collector.pseudonyms import Pseudonymiser

    return lambda cfg: Pipeline(cfg, Pseudonymiser(TEST_KEY.encode()))


@pytest.fixture
def copy_fixture(tmp_path: Path) -> Callable[..., Path]:
    """Copy files from tests/fixtures/<kind>/ into a fresh folder under tmp_path."""

    def copy(kind: str, *names: str, into: str = "in") -> Path:
        dest = tmp_path / into
        dest.mkdir(parents=True, exist_ok=True)
        src = FIXTURES / kind
        for name in names or [p.name for p in src.iterdir()]:
            shutil.copy2(src / name, dest / name)
        return dest

    return copy


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Invoke the real click CLI in-process; returns click's Result."""
    from click.testing import CliRunner

    from workstyle.collector.cli import main

    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)

    def invoke(*args: str, cwd: Path | None = None) -> Any:
        runner = CliRunner()
        old = os.getcwd()
        try:
            if cwd is not None:
                os.chdir(cwd)
            return runner.invoke(main, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)

    return invoke
