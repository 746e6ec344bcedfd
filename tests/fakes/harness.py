"""Running adapters through the real pipeline against the fake servers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from tests.fakes.server import FakeServer
from workstyle import schemas
from workstyle.collector.config import Config, from_dict
from workstyle.collector.ingest.pipeline import Pipeline, SourceResult
from workstyle.collector.ingest.store import Store
from workstyle.collector.pseudonyms import Pseudonymiser

KEY = b"k" * 32
#: Retry settings that keep every backoff tiny without touching the clock.
FAST = {
    "backoff_max_seconds": 0.01,
    "max_wait_seconds": 30.0,
    "connect_timeout": 2.0,
    "read_timeout": 5.0,
}


def serve() -> Iterator[FakeServer]:
    """A fake API server on 127.0.0.1 for a fixture; fails the test if a handler crashed."""
    s = FakeServer().start()
    yield s
    s.stop()
    assert not s.errors, "fake server handler failed:\n" + "\n".join(s.errors)


def config(tmp_path: Path, source: dict[str, Any]) -> Config:
    """A config with one source and the data directory under ``tmp_path``."""
    return from_dict(
        {
            "collector": {"data_dir": str(tmp_path / "data")},
            "privacy": {"key": "env:X"},
            "sources": [source],
        },
        tmp_path / "collector.toml",
    )


def pipeline(cfg: Config, now: dt.datetime | None = None) -> Pipeline:
    """A pipeline whose run starts at ``now`` (the injected clock), else at the real now."""
    return Pipeline(cfg, Pseudonymiser(KEY), run_start=now)


def incremental(cfg: Config, now: dt.datetime | None = None) -> SourceResult:
    return pipeline(cfg, now).incremental(cfg.sources)[0]


def backfill(
    cfg: Config, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None
) -> SourceResult:
    return pipeline(cfg, now).backfill(cfg.sources[0], start, end)


def table(cfg: Config, name: str = "meetings") -> pl.DataFrame:
    """Everything stored in a table, sorted by its key."""
    spec = schemas.get(name)
    df = Store(cfg.data_dir.resolve()).scan(spec).collect()
    return df.sort(list(spec.key))


def pseudonym(value: str) -> str:
    return Pseudonymiser(KEY).one(value)


def quarantine(cfg: Config) -> pl.DataFrame:
    """The quarantine ledger (location, reason) of all sources."""
    from workstyle.schemas.runs_quarantine import QUARANTINE

    return Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect().sort("location", "reason")


def status(tmp_path: Path, source: dict[str, Any]) -> str:
    """What ``collector status`` prints for the config :func:`config` builds in ``tmp_path``."""
    from click.testing import CliRunner

    from tests.conftest import write_config
    from workstyle.collector.cli import main

    path = write_config(
        tmp_path / "collector.toml",
        {"collector": {"data_dir": str(tmp_path / "data")}, "privacy": {"key": "env:X"}},
        [source],
    )
    result = CliRunner().invoke(main, ["--config", str(path), "status"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output
