"""What the web-conferencing adapters share: windows, the meetings frame, skipped calls.

Each platform module only knows its API; the range arithmetic (first-run history,
the API's history limit, resuming after a partial run), the backfill units and the
construction of canonical ``meetings`` rows live here once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.adapters.http import HttpClient, HttpError, HttpSettings, TokenCache

log = logging.getLogger("collector.webconf")

MEETING_SCHEMA: dict[str, pl.DataType] = {
    "meeting_id": pl.String(),
    "platform": pl.String(),
    "start_time": pl.Datetime("us", "UTC"),
    "end_time": pl.Datetime("us", "UTC"),
    "duration_seconds": pl.Int64(),
    "participants": pl.Int32(),
    "host": pl.String(),
    "department": pl.String(),
    "series_id": pl.String(),
    "topic": pl.String(),
    "_location": pl.String(),
}


def parse_iso(value: Any) -> dt.datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None when absent or malformed."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    """Whole seconds from start to end; None when either is unknown or end is before start."""
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds())


def meetings_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Canonical ``meetings`` rows (plus ``_location``) from dicts, with fixed dtypes."""
    return (
        pl.DataFrame(rows, schema=MEETING_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=MEETING_SCHEMA)
    )


@dataclass(frozen=True)
class Window:
    """A half-open UTC window ``[start, end)``: one backfill unit."""

    start: dt.datetime
    end: dt.datetime

    def unit(self, kind: str) -> str:
        return f"{kind}:{self.start:%Y-%m-%dT%H:%M:%SZ}/{self.end:%Y-%m-%dT%H:%M:%SZ}"


def split(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[Window]:
    """Consecutive windows of at most ``step`` covering ``[start, end)``."""
    out: list[Window] = []
    cursor = start
    while cursor < end:
        nxt = min(cursor + step, end)
        out.append(Window(cursor, nxt))
        cursor = nxt
    return out


def read_range(
    adapter: Adapter, request: ReadRequest, *, initial_days: int, history_days: int | None
) -> tuple[dt.datetime, dt.datetime]:
    """The range to read: first-run default, resume point, and the API's history limit."""
    end = min(request.end or request.run_start, request.run_start)
    if request.start is not None:
        start = request.start
    else:
        # First incremental run: a bounded, documented history instead of "everything".
        start = request.run_start - dt.timedelta(days=initial_days)
    if request.mode == "incremental":
        done = parse_iso(request.state.get("done_until"))
        # A run stopped by a quota committed windows up to done_until: resume there
        # (minus the lookback, so late data is still re-read) rather than from scratch.
        if done is not None and done - adapter.source.lookback > start:
            start = min(done - adapter.source.lookback, end)
    if history_days is not None:
        earliest = request.run_start - dt.timedelta(days=history_days)
        if start < earliest:
            log.warning(
                "%s: the %s API keeps only %d days of history; reading from %s"
                " instead of %s (older data cannot be fetched)",
                adapter.name,
                adapter.kind,
                history_days,
                f"{earliest:%Y-%m-%d}",
                f"{start:%Y-%m-%d}",
            )
            start = earliest
    return start, max(start, end)


def pending_windows(
    adapter: Adapter, request: ReadRequest, windows: list[Window]
) -> Iterator[tuple[int, Window]]:
    """The windows still to read, with their 1-based position; done backfill units skipped."""
    for i, w in enumerate(windows, start=1):
        if request.mode == "backfill" and w.unit(adapter.kind) in request.done_units:
            continue
        yield i, w


def window_batch(
    adapter: Adapter,
    request: ReadRequest,
    w: Window,
    progress: tuple[int, int],
    rows: list[dict[str, Any]],
    q: Quarantined,
    read: int,
) -> Batch:
    """The meetings of one API window as a batch; nightly runs remember the window's end."""
    return Batch(
        table="meetings",
        rows=meetings_frame(rows),
        quarantined=q,
        rows_read=read,
        unit=w.unit(adapter.kind),
        progress=progress,
        checkpoint={"done_until": w.end.isoformat()} if request.mode == "incremental" else None,
    )


def skipped(q: Quarantined, err: HttpError, what: str) -> None:
    """Record an API error on a sub-resource that the run skips (counted, never silent)."""
    log.warning("%s", err)
    q.add(err.endpoint, f"skipped {what}: HTTP {err.status} ({err.api_message})", "")


def make_client(adapter: Adapter, token: TokenCache | None = None, **kwargs: Any) -> HttpClient:
    """An :class:`HttpClient` configured from the source's HTTP options."""
    ca = adapter.source.path("ca_bundle")
    settings = HttpSettings.from_options(adapter.opt, str(ca) if ca else None)
    return HttpClient(adapter.name, settings, token, **kwargs)


def base_url(adapter: Adapter, key: str, default: str) -> str:
    """A configured base URL without its trailing slash."""
    return str(adapter.opt(key) or default).rstrip("/")


def finish(adapter: Adapter, client: HttpClient) -> None:
    """Log what the run cost and every API error per endpoint, then release the session."""
    st = client.stats
    log.info(
        "%s: %d HTTP requests, %d retries, %.1f s waited",
        adapter.name,
        st.requests,
        st.retries,
        st.waited,
    )
    for (endpoint, status), message in sorted(st.errors.items()):
        count = st.by_status[(endpoint, status)]
        log.warning(
            "%s: %s answered HTTP %d %d time(s): %s", adapter.name, endpoint, status, count, message
        )
    client.close()
