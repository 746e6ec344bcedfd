"""The runner: read each source through its adapter, validate, pseudonymise, commit, record.

For each source, in order: build the adapter, load its state, ask for a window
(incremental: from the watermark minus the lookback to the run's start; backfill:
exactly the window given), then for every batch: quarantine rows that break the
schema, drop titles unless the source keeps them, pseudonymise identifiers, and
buffer. Buffers are flushed into the store partition by partition; only after a
flush is the adapter's checkpoint (or the backfill's list of done units) saved.
A source that fails is recorded and the next source still runs.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa

from workstyle import schemas
from workstyle.adapters import adapter_class
from workstyle.adapters.base import Adapter, Quarantined, ReadRequest
from workstyle.adapters.parsing import split_bad
from workstyle.collector.config import Config, identity_of
from workstyle.collector.errors import CollectorError, ConfigError, QuotaExhausted
from workstyle.collector.ingest.state import SourceState, StateStore
from workstyle.collector.ingest.store import (
    MergeStream,
    MonthStream,
    Store,
    UpsertResult,
    stored_types,
)
from workstyle.collector.options import SourceConfig
from workstyle.collector.pseudonyms import DEVICE, Pseudonymiser
from workstyle.collector.secrets import read_secret, redact
from workstyle.schemas.runs_quarantine import FILTERED, QUARANTINE, RUNS
from workstyle.schemas.tables import TableSpec
from workstyle.schemas.tables import empty as empty_table

log = logging.getLogger("collector")

#: Rows buffered (all tables of a source) before a flush into the store. A month's
#: partition is written across flushes (MonthStream), so this bounds memory, not the
#: number of times a month is written. Peak RSS over a quarter of scale 0.3 (1.3 M
#: rows): 621 MB at 1 M rows, 390 MB at 100 k, 352 MB at 50 k (CPU +4 %).
FLUSH_ROWS = 50_000
#: Longest time read rows wait in the buffer before they are written. The state
#: moves once every month they belong to is complete (file kinds read in time order),
#: so a killed run loses at most the month being read.
FLUSH_SECONDS = 60.0
LOCATION_COL = "_location"
#: Optional column of the source's raw text, kept for quarantined rows.
RAW_COL = "_raw"

#: Batches read and not yet committed: each one's newest partition month (None: no
#: rows), checkpoint and unit, in read order.
_Pending = list[tuple[int | None, dict[str, Any] | None, str | None]]


@dataclass
class SourceResult:
    """The outcome of one source in one run, as printed, stored in the ledger and state."""

    source: str
    kind: str
    mode: str
    run_id: str
    started_at: dt.datetime
    outcome: str = "success"  # success | failed | partial
    rows_read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    #: Rows that repeated a natural key already in the same read (kept once).
    duplicates: int = 0
    outside_window: int = 0
    #: Rows left out on purpose by the source's where/exclude rules, and per rule.
    filtered: int = 0
    filtered_by: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0
    error: str | None = None
    error_kind: str | None = None  # config | source | quota | bug
    #: Something the user should know although the run succeeded ("no files matched ...").
    warning: str | None = None
    #: File kinds: files the source's patterns matched.
    files_matched: int | None = None
    newest_event: dt.datetime | None = None
    window: tuple[dt.datetime | None, dt.datetime | None] = (None, None)
    by_table: dict[str, int] = field(default_factory=dict)
    #: Spans ``[start, end)`` (UTC) asked for that the source no longer keeps, merged.
    unavailable: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "mode": self.mode,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "outcome": self.outcome,
            "rows_read": self.rows_read,
            "rows_new": self.new,
            "rows_updated": self.updated,
            "rows_unchanged": self.unchanged,
            "rows_quarantined": self.quarantined,
            "rows_duplicate": self.duplicates,
            "rows_outside_window": self.outside_window,
            "rows_filtered": self.filtered,
            "filtered_by": dict(self.filtered_by),
            "duration_seconds": self.duration,
            "error": self.error,
            "error_kind": self.error_kind,
            "warning": self.warning,
            "files_matched": self.files_matched,
            "newest_event": self.newest_event,
            "window_start": self.window[0],
            "window_end": self.window[1],
            "unavailable": [[lo, hi] for lo, hi in self.unavailable],
        }


ProgressFn = Callable[[str, int, int], None]


class Pipeline:
    """Runs sources for one command invocation (one run id)."""

    def __init__(
        self,
        cfg: Config,
        pseudonymiser: Pseudonymiser,
        *,
        progress: ProgressFn | None = None,
        flush_rows: int = FLUSH_ROWS,
        run_start: dt.datetime | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = Store.at(cfg.location)
        self.states = StateStore(cfg.location)
        self.pseudonymiser = pseudonymiser
        self.progress = progress
        self.flush_rows = flush_rows
        # The run's clock: injectable, so a test can rerun "a day later" without waiting.
        self.run_start = (run_start or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        self.run_id = f"{self.run_start:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"

    def build_adapter(self, source: SourceConfig) -> Adapter:
        cls = adapter_class(source.kind)

        def secrets(key: str) -> str:
            ref = source.options.get(key)
            if ref is None:
                raise ConfigError(
                    f"{self.cfg.path}: [[sources]] ({source.name}) key"
                    f" '{key}': required; expected 'env:VARIABLE' or 'file:PATH'"
                )
            return read_secret(ref, f"{self.cfg.path}: [[sources]] ({source.name}) key '{key}'")

        return cls(source, secrets)

    # -- public entry points --------------------------------------------------------
    def incremental(self, sources: Iterable[SourceConfig]) -> list[SourceResult]:
        return [self._run_source(s, "incremental", None, None) for s in sources]

    def backfill(
        self,
        source: SourceConfig,
        start: dt.datetime,
        end: dt.datetime,
        *,
        dry_run: bool = False,
        restart: bool = False,
    ) -> SourceResult:
        return self._run_source(source, "backfill", start, end, dry_run=dry_run, restart=restart)

    # -- one source -----------------------------------------------------------------
    def _run_source(
        self,
        source: SourceConfig,
        mode: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        dry_run: bool = False,
        restart: bool = False,
    ) -> SourceResult:
        t0 = time.monotonic()
        res = SourceResult(
            source=source.name,
            kind=source.kind,
            mode=mode,
            run_id=self.run_id,
            started_at=self.run_start,
        )
        state: SourceState | None = None
        try:
            identity = identity_of(source)
            state = self.states.load(source.name, identity)
            adapter = self.build_adapter(source)
            if mode == "incremental":
                start = state.watermark - source.lookback if state.watermark else None
                end = self.run_start
                done: set[str] = set()
            else:
                if restart:
                    self.states.clear_backfill(source.name, identity, start, end)
                done = self.states.backfill_done(source.name, identity, start, end)
                # What earlier attempts found unavailable is part of this backfill's answer.
                res.unavailable = self.states.backfill_unavailable(
                    source.name, identity, start, end
                )
            request = ReadRequest(
                mode=mode,
                run_start=self.run_start,
                start=start,
                end=end,
                state=dict(state.checkpoint),
                done_units=frozenset(done),
                timezone=self.cfg.timezone,
            )
            if done:
                log.info(
                    "%s: resuming backfill, %d unit(s) already committed", source.name, len(done)
                )
            res.window = (start, end)
            log.info(
                "%s: %s read, window %s .. %s",
                source.name,
                mode,
                start.isoformat() if start else "beginning",
                end.isoformat() if end else "now",
            )
            try:
                self._consume(adapter, source, request, state, res, done, dry_run=dry_run)
            finally:
                _note_files(adapter, res)
            if mode == "incremental" and not dry_run:
                # Everything before this run's start has now been read and committed.
                state.watermark = max(filter(None, [state.watermark, self.run_start]))
            if mode == "backfill" and not dry_run:
                self.states.clear_backfill(source.name, identity, start, end)
        except QuotaExhausted as exc:
            res.outcome, res.error, res.error_kind = "partial", str(exc), "quota"
        except ConfigError as exc:
            res.outcome, res.error, res.error_kind = "failed", str(exc), "config"
        except CollectorError as exc:
            res.outcome, res.error, res.error_kind = "failed", str(exc), "source"
        except Exception as exc:  # noqa: BLE001 - a bug in one adapter must not stop the others
            res.outcome, res.error, res.error_kind = "failed", f"internal error: {exc!r}", "bug"
            log.error(
                "%s: internal error (please report):\n%s", source.name, traceback.format_exc()
            )
        res.duration = round(time.monotonic() - t0, 3)
        if res.error:
            # The error goes to the terminal, the state and the ledger: never a secret.
            res.error = redact(res.error)
            log.error("%s: %s", source.name, res.error)
        if not dry_run:
            self._record(source, state, res)
        return res

    def _consume(
        self,
        adapter: Adapter,
        source: SourceConfig,
        request: ReadRequest,
        state: SourceState,
        res: SourceResult,
        done: set[str],
        *,
        dry_run: bool,
    ) -> None:
        buffers: dict[str, list[pl.DataFrame]] = {}
        quarantine: list[pl.DataFrame] = []
        filtered: list[pl.DataFrame] = []
        buffered = 0
        pending: _Pending = []
        #: New partitions being written across flushes, by table and month: each month
        #: is written once per run, however many flushes its rows span.
        streams: dict[tuple[str, int], MonthStream | MergeStream] = {}

        def write(
            table: str,
            frames: list[pl.DataFrame],
            ingested_at: dt.datetime,
            quarantine: list[pl.DataFrame],
        ) -> None:
            spec = schemas.get(table)
            # Frames of one schema (a kind's batches) are stacked as they are; others
            # are unified column by column.
            same = all(f.schema == frames[0].schema for f in frames)
            frame = pl.concat(frames, how="vertical" if same else "diagonal_relaxed", rechunk=False)
            frames.clear()
            # Validated and pseudonymised once per flush (a few large columnar steps),
            # then split into months once: the store writes each without splitting again.
            rows, bad, outside = self._prepare(spec, frame, source, request)
            del frame
            res.outside_window += outside
            res.by_table[table] = res.by_table.get(table, 0) + rows.height
            newest = _newest(spec, rows, self.cfg.timezone)
            if newest is not None and (res.newest_event is None or newest > res.newest_event):
                res.newest_event = newest
            if bad.height:
                quarantine.append(bad)
            if dry_run:
                return
            upserted = UpsertResult()
            for month, part in self.store.months(spec, rows):
                key = (table, _month_number(month))
                stream = streams.get(key)
                if stream is None and key[1]:
                    stream = self.store.open_month(spec, source.name, month, ingested_at)
                    if stream is not None:
                        streams[key] = stream
                if stream is not None:
                    upserted += stream.write(part, unique=adapter.unique_keys)
                else:  # the partition exists: merged (upserted) now
                    upserted += self.store.upsert_partition(
                        spec, source.name, month, part, ingested_at
                    )
            res.new += upserted.new
            res.updated += upserted.updated
            res.unchanged += upserted.unchanged
            res.duplicates += upserted.duplicates

        def write_out(
            buffers: dict[str, list[pl.DataFrame]],
            quarantine: list[pl.DataFrame],
            filtered: list[pl.DataFrame],
            pending: _Pending,
            final: bool,
        ) -> _Pending:
            """Write the buffers, commit what is visible; the batches not yet committed.

            Unless ``final``, each table's newest month stays open.
            """
            ingested_at = dt.datetime.now(dt.UTC)
            for table, frames in buffers.items():
                write(table, frames, ingested_at, quarantine)
            # Files come in time order: a month older than the newest of its table is
            # complete, and becomes visible now.
            newest: dict[str, int] = {}
            for table, month in streams:
                newest[table] = max(newest.get(table, 0), month)
            for (table, month), stream in list(streams.items()):
                if final or month < newest[table]:
                    stream.close()
                    del streams[(table, month)]
            # Counted once written: the run line never reports rows _quarantine lacks.
            held = sum(f.height for f in quarantine)
            if not dry_run and quarantine:
                q = pl.concat(quarantine, how="vertical_relaxed")
                self.store.upsert(QUARANTINE, source.name, q, ingested_at)
            res.quarantined += held
            # The batches whose rows are all visible: those before the first batch with
            # a row of a month still open.
            n = len(pending)
            if streams:
                still_open = min(month for _, month in streams)
                n = next(
                    (i for i, (m, _, _) in enumerate(pending) if m is not None and m >= still_open),
                    n,
                )
            committed, pending = pending[:n], pending[n:]
            checkpoint = next((c for _, c, _ in reversed(committed) if c is not None), None)
            units = [u for _, _, u in committed if u is not None]
            if not dry_run:
                if filtered:
                    f = pl.concat(filtered, how="vertical_relaxed").with_columns(
                        pl.lit(self.run_id).alias("run_id"),
                        pl.lit(self.run_start, dtype=pl.Datetime("us", "UTC")).alias("seen_at"),
                    )
                    self.store.upsert(FILTERED, source.name, f, ingested_at)
                # The data is committed: now, and only now, the state may move.
                if checkpoint is not None and request.mode == "incremental":
                    state.checkpoint = checkpoint
                    self.states.save(state)
                if units and request.mode == "backfill":
                    done.update(units)
                    self.states.save_backfill(
                        source.name,
                        state.identity,
                        request.start,
                        request.end,
                        done,
                        res.unavailable,
                    )
            return pending

        # One flush is written on this thread while the next one's batches are read
        # (the reading and the writing each kept a core half idle); flushes stay in
        # order, and the next waits for the one before.
        flusher = ThreadPoolExecutor(1, "flush")
        inflight: Future[_Pending] | None = None

        #: A flush failed: its months may hold part of it, so none may close (become
        #: visible) and nothing more is committed; the run reports that failure.
        broken = False

        def settle() -> None:
            """Wait for the flush in flight; its batches not yet committed go back in front."""
            nonlocal inflight, pending, broken
            if inflight is not None:
                job, inflight = inflight, None
                try:
                    left = job.result()
                except BaseException:
                    broken = True
                    raise
                pending = left + pending

        def flush(final: bool = True, wait: bool = True) -> None:
            nonlocal buffers, quarantine, filtered, pending, buffered, inflight
            settle()
            job = (buffers, quarantine, filtered, pending)
            buffers, quarantine, filtered, pending, buffered = {}, [], [], [], 0
            inflight = flusher.submit(write_out, *job, final)
            if wait:
                settle()

        last_flush = time.monotonic()
        try:
            for batch in adapter.read(request):
                res.rows_read += batch.rows_read or (batch.rows.height + len(batch.quarantined))
                rows = batch.rows
                if rows.height:
                    if LOCATION_COL not in rows.columns and "_file" not in rows.columns:
                        where = batch.unit or source.name
                        rows = rows.with_columns(
                            pl.format(
                                "{} row {}", pl.lit(where), pl.int_range(1, pl.len() + 1)
                            ).alias(LOCATION_COL)
                        )
                    buffers.setdefault(batch.table, []).append(rows)
                if batch.filtered is not None and batch.filtered.height:
                    _count_filtered(res, batch.filtered)
                    filtered.append(batch.filtered.with_columns(pl.lit(batch.table).alias("table")))
                if len(batch.quarantined):
                    quarantine.append(self._quarantine_frame(batch.table, batch.quarantined))
                buffered += rows.height + len(batch.quarantined)
                pending.append((_newest_month(batch.table, rows), batch.checkpoint, batch.unit))
                if batch.unavailable:
                    res.unavailable = merge_spans(res.unavailable + batch.unavailable)
                if batch.progress and self.progress:
                    self.progress(source.name, *batch.progress)
                if adapter.commit_each_batch:
                    flush()
                elif buffered >= self.flush_rows or time.monotonic() - last_flush >= FLUSH_SECONDS:
                    # Not final: closing the newest month here would make its later rows
                    # a merge with the whole partition (at scale 1, 1 M rows: +550 MB).
                    # The state moves as each month completes.
                    flush(final=False, wait=False)
                    last_flush = time.monotonic()
        finally:
            # Whatever was read before a failure to read is valid: commit it and its
            # checkpoint (after a failure to write, nothing more).
            try:
                if not broken:
                    flush()
            finally:
                flusher.shutdown(wait=True)
                for stream in streams.values():
                    stream.abort()  # left open only when the flush failed: none shows

    # -- validation and privacy ------------------------------------------------------
    def _prepare(
        self, spec: TableSpec, rows: pl.DataFrame, source: SourceConfig, request: ReadRequest
    ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
        """Split rows into valid canonical rows (pseudonymised) and quarantined ones."""
        missing = [c for c in spec.columns if c not in rows.columns]
        if missing:
            rows = rows.with_columns(
                pl.lit(None, dtype=_polars_type(spec, c)).alias(c) for c in missing
            )
        good, q = split_bad(
            rows,
            _violations(spec),
            location=LOCATION_COL,
            raw=RAW_COL,
            raw_of=lambda bad: [
                _raw_json(r) for r in bad.select(spec.columns).iter_rows(named=True)
            ],
        )

        outside = 0
        if request.mode == "backfill" and good.height and (request.start or request.end):
            in_window = _window_expr(spec, request.start, request.end, self.cfg.timezone)
            mask = good.select(in_window.alias("w")).get_column("w")
            if not mask.all():  # a backfill's files mostly hold only its window
                before = good.height
                good = good.filter(mask)
                outside = before - good.height

        if not source.keep_titles and spec.title_columns:
            good = good.with_columns(pl.lit(None, pl.String).alias(c) for c in spec.title_columns)
        good = self.pseudonymiser.frame(good.select(spec.columns), spec.person_columns)
        if spec.device_columns and not source.keep_device_names:
            good = self.pseudonymiser.frame(good, spec.device_columns, DEVICE)

        return good, self._quarantine_frame(spec.name, q), outside

    def _quarantine_frame(self, table: str, q: Quarantined) -> pl.DataFrame:
        if not len(q):
            return pl.DataFrame()
        # Raw text holds raw identifiers: kept only when the operator asked for it.
        raw = q.raw if self.cfg.quarantine_raw else [None] * len(q)
        frame = pl.DataFrame(
            {
                "table": [table] * len(q),
                "location": q.location,
                "reason": q.reason,
                "fields": [_field_count(r) for r in q.raw],
                "raw": raw,
            },
            schema={
                "table": pl.String,
                "location": pl.String,
                "reason": pl.String,
                "fields": pl.Int32,
                "raw": pl.String,
            },
        )
        frame = frame.with_columns(
            pl.lit(self.run_id).alias("run_id"),
            pl.lit(self.run_start, dtype=pl.Datetime("us", "UTC")).alias("first_seen"),
        )
        return frame.unique(
            subset=["table", "location", "reason"], keep="last", maintain_order=True
        )

    # -- bookkeeping -----------------------------------------------------------------
    def _record(self, source: SourceConfig, state: SourceState | None, res: SourceResult) -> None:
        if state is None:
            state = SourceState(source=source.name, identity={"kind": source.kind})
        if res.newest_event and (
            state.newest_event is None or res.newest_event > state.newest_event
        ):
            state.newest_event = res.newest_event
        state.last_run = res.to_json()
        if res.mode == "incremental":
            if res.ok:
                state.last_success_at = dt.datetime.now(dt.UTC)
                state.consecutive_failures = 0
            else:
                state.consecutive_failures += 1
        try:
            self.states.save(state)
            ledger = pl.DataFrame(
                [
                    {
                        "run_id": res.run_id,
                        "mode": res.mode,
                        "started_at": res.started_at,
                        "ended_at": dt.datetime.now(dt.UTC),
                        "outcome": res.outcome,
                        "window_start": res.window[0],
                        "window_end": res.window[1],
                        "rows_read": res.rows_read,
                        "rows_new": res.new,
                        "rows_updated": res.updated,
                        "rows_unchanged": res.unchanged,
                        "rows_quarantined": res.quarantined,
                        "rows_duplicate": res.duplicates,
                        "rows_filtered": res.filtered,
                        "newest_event": res.newest_event,
                        "error": res.error,
                    }
                ],
                schema=pl.from_arrow(empty_table(RUNS.schema)).drop("ingested_at").schema,
            )
            self.store.upsert(RUNS, source.name, ledger, dt.datetime.now(dt.UTC))
        except OSError as exc:
            log.error("%s: could not record the run: %s", source.name, exc)


def _newest_month(table: str, rows: pl.DataFrame) -> int | None:
    """The newest partition month (year * 100 + month) of the rows; None without rows."""
    spec = schemas.get(table)
    if not rows.height or not spec.monthly or spec.partition_by not in rows.columns:
        return None
    value = rows.get_column(spec.partition_by).max()
    if isinstance(value, dt.date):  # a datetime is a date too
        return value.year * 100 + value.month
    if isinstance(value, int) and pa.types.is_integer(spec.field(spec.partition_by).type):
        return value
    return None  # not of the stored type: validation says why


def _month_number(month: str) -> int:
    """``YYYY-MM`` as year * 100 + month (0 for a table not split by month)."""
    year, _, mm = month.partition("-")
    return int(year) * 100 + int(mm) if mm.isdigit() and year.isdigit() else 0


def _note_files(adapter: Adapter, res: SourceResult) -> None:
    """A file source whose patterns matched nothing says so."""
    matched = adapter.files_matched
    if matched is None:
        return
    res.files_matched = sum(matched.values())
    unmatched = [p for p, n in matched.items() if n == 0]
    if unmatched:
        res.warning = f"no files matched {', '.join(unmatched)}"
        log.warning("%s: %s", res.source, res.warning)


def merge_spans(
    spans: list[tuple[dt.datetime, dt.datetime]],
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Half-open spans, sorted, with overlapping and touching ones joined."""
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _count_filtered(res: SourceResult, frame: pl.DataFrame) -> None:
    for rule, rows in frame.group_by("rule", maintain_order=True).agg(pl.col("rows").sum()).rows():
        res.filtered += rows
        res.filtered_by[rule] = res.filtered_by.get(rule, 0) + rows


def _polars_type(spec: TableSpec, column: str) -> pl.DataType:
    return stored_types(spec)[column]


def _violations(spec: TableSpec) -> list[tuple[pl.Expr, pl.Expr | str]]:
    """The table's schema checks as (row is bad, reason) pairs."""
    checks: list[tuple[pl.Expr, pl.Expr | str]] = []
    for col in spec.required:
        checks.append((pl.col(col).is_null(), f"missing {col}"))
    for col in spec.non_negative:
        checks.append((pl.col(col) < 0, f"negative {col}"))
    # Before the store's cast to the stored type, which would fail the whole write.
    for col, (lo, hi, type_name) in spec.int_ranges.items():
        checks.append(
            (
                (pl.col(col) < lo) | (pl.col(col) > hi),
                pl.format(f"{col} {{}} is out of range for {type_name}", pl.col(col)),
            )
        )
    for col, allowed in spec.enums.items():
        checks.append(
            (
                pl.col(col).is_not_null() & ~pl.col(col).is_in(list(allowed)),
                pl.format("{} {} is not one of " + ", ".join(allowed), pl.lit(col), pl.col(col)),
            )
        )
    return checks


def _window_expr(
    spec: TableSpec, start: dt.datetime | None, end: dt.datetime | None, timezone: str
) -> pl.Expr:
    col = spec.field(spec.partition_by)
    c = pl.col(spec.partition_by)
    import pyarrow as pa

    if pa.types.is_timestamp(col.type):
        lo, hi = start, end
    elif pa.types.is_date32(col.type):
        # Dates are local calendar days: compare with the window's local dates.
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(timezone)
        lo = start.astimezone(tz).date() if start else None
        hi = end.astimezone(tz).date() if end else None
    else:
        return pl.lit(True)
    expr = pl.lit(True)
    if lo is not None:
        expr = expr & (c >= lo)
    if hi is not None:
        expr = expr & (c < hi)
    return expr


def _newest(spec: TableSpec, rows: pl.DataFrame, timezone: str) -> dt.datetime | None:
    """The newest event time of the rows; a calendar date counts from its local midnight."""
    import pyarrow as pa

    col = spec.field(spec.partition_by)
    if not (pa.types.is_timestamp(col.type) or pa.types.is_date32(col.type)) or not rows.height:
        return None
    value = rows.get_column(spec.partition_by).max()
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        from zoneinfo import ZoneInfo

        local = dt.datetime.combine(value, dt.time(), ZoneInfo(timezone))
        return local.astimezone(dt.UTC)
    return None


def _field_count(raw: str | None) -> int | None:
    """Fields of a raw row: JSON keys, else tab-, comma- or key=value-separated fields."""
    if raw is None:
        return None
    text = raw.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return len(obj)
    if "\t" in text or "," in text:
        delimiter = "\t" if "\t" in text else ","
        return len(next(csv.reader([text], delimiter=delimiter), []))
    pairs = len(re.findall(r"(?:^|\s)[\w.-]+=", text))
    return pairs or len(text.split())


def _raw_json(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)
