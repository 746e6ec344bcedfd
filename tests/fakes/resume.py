"""The resume scenario every windowed API source must pass, against its fake server.

A backfill over the whole history is stopped by a quota after a few windows, then run
again ``delta`` later (the clock is injected, nobody sleeps). The rerun must send no
request for a window the first attempt committed, and every meeting must land once.
An uninterrupted run of the same backfill, on its own data directory, gives the
number of window requests the two attempts together may send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.harness import backfill, config, table
from tests.fakes.server import Request
from workstyle.collector.ingest.pipeline import SourceResult


@dataclass
class Resumable:
    """How a test drives one fake for the scenario."""

    #: The first-page listing requests the fake has seen so far (one per window and host).
    window_calls: Callable[[], list[Request]]
    #: Move the fake's clock (the API's "now").
    set_now: Callable[[dt.datetime], None]
    #: Make the fake answer the listing request after the next ``n`` with a quota stop.
    stop_after: Callable[[int], None]


def _key(r: Request) -> tuple[Any, ...]:
    return tuple(sorted(r.query.items()))


def check_resume(
    tmp_path: Path,
    src: dict[str, Any],
    fake: Resumable,
    start: dt.datetime,
    end: dt.datetime,
    t0: dt.datetime,
    delta: dt.timedelta,
    expected: list[str],
    *,
    committed_windows: int = 3,
) -> tuple[SourceResult, SourceResult]:
    """Fresh run, then a run stopped after ``committed_windows`` resumed ``delta`` later."""
    fresh_dir, resumed_dir = tmp_path / "fresh", tmp_path / "resumed"
    fresh_dir.mkdir()
    resumed_dir.mkdir()

    fake.set_now(t0)
    fresh = backfill(config(fresh_dir, src), start, end, now=t0)
    assert fresh.ok, fresh.error
    n_fresh = len(fake.window_calls())
    assert n_fresh > committed_windows + 1, "the scenario needs more windows"
    assert sorted(table(config(fresh_dir, src))["meeting_id"]) == sorted(expected)

    mark = n_fresh
    fake.stop_after(committed_windows)
    cfg = config(resumed_dir, src)
    first = backfill(cfg, start, end, now=t0)
    assert first.outcome == "partial" and first.error_kind == "quota", first.error
    run1 = fake.window_calls()[mark:]
    assert len(run1) == committed_windows + 1  # the refused request is the last one
    committed = table(cfg).height

    fake.set_now(t0 + delta)
    second = backfill(cfg, start, end, now=t0 + delta)
    assert second.ok, second.error
    run2 = fake.window_calls()[mark + len(run1) :]

    # No request for a committed window: the two attempts send what one run sends.
    assert not {_key(r) for r in run1[:-1]} & {_key(r) for r in run2}
    assert len(run1) - 1 + len(run2) == n_fresh
    got = table(cfg)
    assert sorted(got["meeting_id"]) == sorted(expected)
    assert got["meeting_id"].n_unique() == got.height
    assert second.unchanged == 0 and second.new == len(expected) - committed
    return first, second
