"""The exporter's custom collector: KPI tables and source state as Prometheus metrics.

It reads only what the nightly run already computed: ``<data_dir>/kpi/yearly.parquet``
and ``monthly.parquet``, the per-source state files and the targets file (for each
KPI's direction). Each file is parsed once and kept in memory until its mtime, size
or inode changes, so a scrape costs a few ``stat`` calls whatever the dataset's size.
A missing or unreadable file never fails a scrape: it sets
``workstyle_exporter_input_up{input=...}`` to 0, and a file that turns bad keeps its
last good contents (their age shows in the ``*_timestamp_seconds`` metrics).

Labels are bounded and carry no person, document or meeting: KPI id, fiscal year,
month, status, configured source name and kind, outcome, input. Department
breakdowns stay in the report (small departments could single people out).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import CollectorRegistry

from workstyle.collector import __version__
from workstyle.collector.config import Config
from workstyle.collector.ingest.state import SourceState, StateStore
from workstyle.collector.live.snapshot import (
    PLATFORMS,
    VALUES,
    Snapshot,
    read_snapshot,
    snapshot_path,
)
from workstyle.schemas.kpi import STATUSES

log = logging.getLogger("collector")

PREFIX = "workstyle"
OUTCOMES = ("success", "partial", "failed")
INPUTS = ("kpi_yearly", "kpi_monthly", "targets", "state")
#: Every label name the exporter may use; tests assert nothing else appears.
LABEL_NAMES = frozenset(
    {
        "kpi",
        "fiscal_year",
        "month",
        "status",
        "unit",
        "better",
        "source",
        "kind",
        "outcome",
        "input",
        "version",
        "platform",
    }
)
#: A live reading older than this many intervals (and at least LIVE_GRACE s) is stale:
#: the poller stopped writing.
LIVE_STALE_INTERVALS = 3
LIVE_GRACE = 30.0
_LIVE_HELP = {
    "meetings": "Web meetings in progress now.",
    "meeting_participants": "Participants in the web meetings in progress now.",
    "vpn_users": "Distinct users connected over the VPN now.",
    "vpn_sessions": "VPN sessions (tunnels) open now.",
    "print_jobs_today": "Print jobs so far today (local day of [collector] timezone).",
    "print_sheets_today": "Sheets printed so far today (local day of [collector] timezone).",
}

_KPI_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_KPI_COLUMNS = (
    "kpi",
    "fiscal_year",
    "month",
    "department",
    "value",
    "target",
    "unit",
    "status",
    "complete",
    "as_of",
    "computed_at",
)
#: Columns the KPI engine added later; read when present.
_KPI_OPTIONAL = ("direction", "projected")

T = TypeVar("T")


@dataclass(frozen=True)
class KpiRow:
    """One whole-organisation row of a KPI table, with percentages as ratios 0-1."""

    kpi: str
    fiscal_year: int
    month: str | None
    value: float | None
    target: float | None
    unit: str
    status: str
    complete: bool
    as_of: dt.date
    computed_at: dt.datetime
    #: "higher" or "lower" is better, when the KPI table says so.
    direction: str | None = None
    #: Straight-line projection to the end of a fiscal year in progress.
    projected: float | None = None


@dataclass(frozen=True)
class KpiTable:
    rows: tuple[KpiRow, ...]
    computed_at: dt.datetime | None
    as_of: dt.date | None


class CachedFile(Generic[T]):
    """A file parsed once per change of (mtime, size, inode); a bad parse keeps the last good."""

    def __init__(self, path: Path, parse: Callable[[Path], T], *, required: bool = True) -> None:
        self.path = path
        self.parse = parse
        #: A missing required file is an error; a missing optional one just has no value.
        self.required = required
        self.value: T | None = None
        self.error: str | None = None
        self.loads = 0
        self.signature: tuple[int, int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def refresh(self) -> None:
        """Re-read the file if it changed since the last look."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self.signature, self.value = None, None
            self._set_error(f"{self.path}: missing" if self.required else None)
            return
        except OSError as exc:
            self._set_error(f"{self.path}: cannot stat: {exc.strerror}")
            return
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if signature == self.signature:
            return
        self.signature = signature
        try:
            self.value = self.parse(self.path)
        except Exception as exc:  # noqa: BLE001 - any bad file must become a metric, not a 500
            self._set_error(f"{self.path}: unreadable: {_one_line(exc)}")
            return
        self.loads += 1
        self._set_error(None)

    def _set_error(self, error: str | None) -> None:
        # Log transitions only: a scrape every 15 s must not repeat the same line.
        if error != self.error:
            if error:
                log.warning("exporter input %s", error)
            elif self.error:
                log.info("exporter input %s: readable again", self.path)
        self.error = error


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def read_kpi_table(path: Path) -> KpiTable:
    """The whole-organisation rows of a KPI Parquet file (department rows are skipped)."""
    # polars, not pyarrow: the CLI has it loaded already, and pyarrow's to_pylist() pulls
    # in some 40 MB of modules and pools that a small resident exporter does not need.
    import polars as pl

    if not isinstance(path, Path):  # object storage: one GET, then parsed in memory
        path = io.BytesIO(path.read_bytes())
    names = pl.read_parquet_schema(path)
    if isinstance(path, io.BytesIO):
        path.seek(0)
    missing = [c for c in _KPI_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}")
    columns = [*_KPI_COLUMNS, *(c for c in _KPI_OPTIONAL if c in names)]
    frame = pl.read_parquet(path, columns=columns).filter(pl.col("department").is_null())
    rows = []
    for r in frame.to_dicts():
        kpi, month = r["kpi"], r["month"]
        # Label values come from a file: only well-formed, bounded ones get through.
        if not isinstance(kpi, str) or not _KPI_ID.match(kpi):
            raise ValueError(f"kpi id {kpi!r} is not snake_case")
        if month is not None and not _MONTH.match(month):
            raise ValueError(f"month {month!r} is not YYYY-MM")
        scale = 0.01 if r["unit"] == "%" else 1.0
        direction = r.get("direction")
        projected = r.get("projected")
        rows.append(
            KpiRow(
                kpi=kpi,
                fiscal_year=int(r["fiscal_year"]),
                month=month,
                value=None if r["value"] is None else r["value"] * scale,
                target=None if r["target"] is None else r["target"] * scale,
                unit="ratio" if r["unit"] == "%" else r["unit"],
                status=r["status"],
                complete=bool(r["complete"]),
                as_of=r["as_of"],
                computed_at=r["computed_at"],
                direction=direction if direction in ("higher", "lower") else None,
                projected=None if projected is None else projected * scale,
            )
        )
    return KpiTable(
        tuple(rows),
        max((r.computed_at for r in rows), default=None),
        max((r.as_of for r in rows), default=None),
    )


def read_directions(path: Path) -> dict[str, str]:
    """KPI id -> 'higher' or 'lower' (is better), from any table of the targets file saying so."""
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    out: dict[str, str] = {}

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, key)
            return
        if not isinstance(node, dict):
            return
        better = node.get("better", node.get("direction"))
        if isinstance(node.get("higher_is_better"), bool):
            better = "higher" if node["higher_is_better"] else "lower"
        kpi = node.get("id") or node.get("kpi") or key
        if better in ("higher", "lower") and isinstance(kpi, str):
            out[kpi] = better
        for k, v in node.items():
            walk(v, k)

    walk(doc, None)
    return out


@dataclass(frozen=True)
class SourceHealth:
    """What the metrics need from a state file, already converted (so a scrape cannot fail)."""

    last_success: float | None
    newest_event: float | None
    watermark: float | None
    consecutive_failures: int
    outcome: str | None
    started: float | None
    duration: float | None
    read: float | None
    ingested: float | None
    quarantined: float | None
    files_matched: float | None = None


def read_state(path: Path) -> SourceHealth:
    """Parse a source's state file into :class:`SourceHealth`; any bad value raises."""
    with path.open(encoding="utf-8") as fh:
        st = SourceState.from_json(json.load(fh))
    last = st.last_run

    def number(*keys: str) -> float | None:
        if not last:
            return None
        return float(sum(float(last.get(k) or 0) for k in keys))

    def epoch(when: dt.datetime | str | None) -> float | None:
        if isinstance(when, str):
            when = dt.datetime.fromisoformat(when)
        return when.timestamp() if when else None

    outcome = last.get("outcome")
    return SourceHealth(
        last_success=epoch(st.last_success_at),
        newest_event=epoch(st.newest_event),
        watermark=epoch(st.watermark),
        consecutive_failures=st.consecutive_failures,
        outcome=outcome if outcome in OUTCOMES else None,
        started=epoch(last.get("started_at")),
        duration=number("duration_seconds"),
        read=number("rows_read"),
        ingested=number("rows_new", "rows_updated", "rows_unchanged"),
        quarantined=number("rows_quarantined"),
        files_matched=number("files_matched") if last.get("files_matched") is not None else None,
    )


def achievement(value: float | None, target: float | None, better: str | None) -> float | None:
    """Value against target, 1 meaning the target is met, whichever direction is better."""
    if value is None or target is None or better is None:
        return None
    if better == "higher":
        return value / target if target > 0 else None
    return target / value if value > 0 else None


class WorkstyleCollector:
    """Builds fresh metric families from the cached inputs on every ``collect()``."""

    def __init__(
        self, cfg: Config, *, live: bool = True, clock: Callable[[], float] = time.time
    ) -> None:
        location = cfg.location
        self.cfg = cfg
        #: ``serve`` adds scrape-time metrics (data age, scrape duration, reload counts)
        #: that would be frozen and misleading in a textfile.
        self.live = live
        self.clock = clock
        self.tz = cfg.tz
        kpi = location.org_parts("kpi")
        self.yearly = CachedFile(location.file(*kpi, "yearly.parquet"), read_kpi_table)
        self.monthly = CachedFile(location.file(*kpi, "monthly.parquet"), read_kpi_table)
        self.targets = CachedFile(cfg.targets_file, read_directions)
        store = StateStore(location)
        self.sources = [
            (source, CachedFile(store.summary_file(source.name), read_state, required=False))
            for source in cfg.sources
        ]
        self._files: list[CachedFile[Any]] = [
            self.yearly,
            self.monthly,
            self.targets,
            *(c for _, c in self.sources),
        ]
        #: Live sources and the poller's snapshot (``serve`` only; see collector.live).
        self.live_sources = [s for s in cfg.sources if s.live]
        self.live_snapshot = CachedFile(
            snapshot_path(location.machine_dir()), read_snapshot, required=False
        )
        self._live_cache: tuple[tuple[Any, ...], list[Any]] | None = None
        self._snapshot: tuple[tuple[Any, ...], list[Any]] | None = None
        self._lock = threading.Lock()

    def refresh(self) -> dict[str, bool]:
        """Re-read changed inputs; return whether each input is healthy."""
        with self._lock:
            self._refresh_files()
        return self._health()

    def _refresh_files(self) -> None:
        for cached in self._files:
            cached.refresh()

    def _health(self) -> dict[str, bool]:
        return {
            "kpi_yearly": self.yearly.ok,
            "kpi_monthly": self.monthly.ok,
            "targets": self.targets.ok,
            "state": all(cached.ok for _, cached in self.sources),
        }

    def collect(self) -> Iterator[Any]:
        started = time.perf_counter()
        with self._lock:
            self._refresh_files()
            # The families only change when an input does: build them once per change
            # and serve the same immutable objects to every scrape until then.
            key = tuple((c.signature, c.error) for c in self._files)
            if self._snapshot is None or self._snapshot[0] != key:
                self._snapshot = (key, self._build())
            families = self._snapshot[1]
        # Measured before yielding: the registry renders each family as it is yielded.
        spent = time.perf_counter() - started
        yield from families
        if self.live:
            yield from self._live_families()
            yield from self._scrape_families(spent)

    def _build(self) -> list[Any]:
        yearly, monthly = self.yearly.value, self.monthly.value
        return [
            *self._kpi_families(yearly, monthly, self.targets.value or {}),
            *self._source_families([(s, c.value) for s, c in self.sources]),
            *self._exporter_families(self._health()),
        ]

    # -- KPIs -----------------------------------------------------------------------
    def _kpi_families(
        self, yearly: KpiTable | None, monthly: KpiTable | None, directions: dict[str, str]
    ) -> Iterator[Any]:
        note = " Read from the KPI tables of the last `collector run`."
        fy = ["kpi", "fiscal_year"]
        info = GaugeMetricFamily(
            f"{PREFIX}_kpi_info",
            "KPI metadata: unit of value and target (percentages are"
            " ratios 0-1), and whether higher or lower is better.",
            labels=["kpi", "unit", "better"],
        )
        value = GaugeMetricFamily(
            f"{PREFIX}_kpi_value",
            "KPI value per fiscal year, in the unit of workstyle_kpi_info." + note,
            labels=fy,
        )
        target = GaugeMetricFamily(
            f"{PREFIX}_kpi_target",
            "The plan's target for the KPI and fiscal year." + note,
            labels=fy,
        )
        ratio = GaugeMetricFamily(
            f"{PREFIX}_kpi_achievement_ratio",
            "Value against target, direction-aware: 1 or more means the target is met." + note,
            labels=fy,
        )
        status = GaugeMetricFamily(
            f"{PREFIX}_kpi_status",
            "1 for the KPI-year's status (achieved, on_track, behind,"
            " no_data), 0 for the others." + note,
            labels=[*fy, "status"],
        )
        complete = GaugeMetricFamily(
            f"{PREFIX}_kpi_fiscal_year_complete",
            "1 when the fiscal year has ended, 0 while in progress.",
            labels=fy,
        )
        projected = GaugeMetricFamily(
            f"{PREFIX}_kpi_projected",
            "Straight-line projection of a fiscal year in progress to its end." + note,
            labels=fy,
        )
        kpis: dict[str, tuple[str, str]] = {}
        for row in yearly.rows if yearly else ():
            if row.month is not None:
                continue
            labels = [row.kpi, str(row.fiscal_year)]
            better = row.direction or directions.get(row.kpi)
            kpis.setdefault(row.kpi, (row.unit, better or "unknown"))
            if row.value is not None:
                value.add_metric(labels, row.value)
            if row.target is not None:
                target.add_metric(labels, row.target)
            met = achievement(row.value, row.target, better)
            if met is not None:
                ratio.add_metric(labels, met)
            for s in STATUSES:
                status.add_metric([*labels, s], 1.0 if row.status == s else 0.0)
            complete.add_metric(labels, 1.0 if row.complete else 0.0)
            if row.projected is not None and not row.complete:
                projected.add_metric(labels, row.projected)
        for kpi, (unit, better) in kpis.items():
            info.add_metric([kpi, unit, better], 1.0)

        fym = [*fy, "month"]
        m_value = GaugeMetricFamily(
            f"{PREFIX}_kpi_monthly_value",
            "KPI value per month (for KPIs with a monthly series)." + note,
            labels=fym,
        )
        cur_value = GaugeMetricFamily(
            f"{PREFIX}_kpi_current_month_value",
            "KPI value of the month in progress so far (the month"
            " of the KPI tables' as-of date)." + note,
            labels=["kpi"],
        )
        cur_target = GaugeMetricFamily(
            f"{PREFIX}_kpi_current_month_target",
            "The target that applies to the month in progress.",
            labels=["kpi"],
        )
        current = f"{monthly.as_of:%Y-%m}" if monthly and monthly.as_of else None
        for row in monthly.rows if monthly else ():
            if row.month is None or row.value is None:
                continue
            m_value.add_metric([row.kpi, str(row.fiscal_year), row.month], row.value)
            if row.month == current:
                cur_value.add_metric([row.kpi], row.value)
                if row.target is not None:
                    cur_target.add_metric([row.kpi], row.target)

        computed = GaugeMetricFamily(
            f"{PREFIX}_kpi_computed_timestamp_seconds",
            "When the KPI tables being served were computed.",
        )
        as_of = GaugeMetricFamily(
            f"{PREFIX}_kpi_as_of_timestamp_seconds",
            "Start (local midnight) of the as-of date the KPIs were evaluated against.",
        )
        if yearly and yearly.computed_at:
            computed.add_metric([], yearly.computed_at.timestamp())
        if yearly and yearly.as_of:
            midnight = dt.datetime.combine(yearly.as_of, dt.time(), self.tz)
            as_of.add_metric([], midnight.timestamp())
        yield from (
            info,
            value,
            target,
            ratio,
            status,
            complete,
            projected,
            m_value,
            cur_value,
            cur_target,
            computed,
            as_of,
        )

    # -- sources ----------------------------------------------------------------------
    def _source_families(self, sources: list[tuple[Any, SourceHealth | None]]) -> Iterator[Any]:
        src = ["source"]

        def gauge(name: str, doc: str, labels: list[str] = src) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_source_{name}", doc, labels=labels)

        info = gauge("info", "A configured source and its adapter kind.", ["source", "kind"])
        enabled = gauge("enabled", "1 when `collector run` reads this source.")
        success = gauge(
            "last_success_timestamp_seconds",
            "End of the last incremental run of this source that succeeded.",
        )
        started = gauge(
            "last_run_timestamp_seconds",
            "Start of the last run of this source (incremental or backfill).",
        )
        outcome = gauge(
            "last_run_outcome",
            "1 for the outcome of the last run (success, partial, failed), 0 for"
            " the others; all 0 before the first run.",
            ["source", "outcome"],
        )
        duration = gauge("last_run_duration_seconds", "Wall time of the last run.")
        read = gauge("last_run_read_rows", "Rows read from the source in the last run.")
        ingested = gauge(
            "last_run_ingested_rows",
            "Rows committed to the dataset in the last run (new, updated or unchanged).",
        )
        quarantined = gauge(
            "last_run_quarantined_rows", "Rows quarantined (unreadable or invalid) in the last run."
        )
        newest = gauge(
            "newest_event_timestamp_seconds",
            "Time of the newest event in committed data (data freshness).",
        )
        watermark = gauge(
            "watermark_timestamp_seconds",
            "Everything before this instant is committed (incremental runs).",
        )
        matched = gauge(
            "files_matched",
            "File sources: files the source's patterns matched in the last run (0: none).",
        )
        failures = gauge(
            "consecutive_failures",
            "Incremental runs in a row that did not succeed (0 after a success).",
        )
        for source, st in sources:
            name = [source.name]
            info.add_metric([source.name, source.kind], 1.0)
            enabled.add_metric(name, 1.0 if source.enabled else 0.0)
            for o in OUTCOMES:
                outcome.add_metric([source.name, o], 1.0 if st and st.outcome == o else 0.0)
            failures.add_metric(name, float(st.consecutive_failures if st else 0))
            if st is None:
                continue
            for family, v in (
                (success, st.last_success),
                (newest, st.newest_event),
                (watermark, st.watermark),
                (started, st.started),
                (duration, st.duration),
                (read, st.read),
                (ingested, st.ingested),
                (quarantined, st.quarantined),
                (matched, st.files_matched),
            ):
                if v is not None:
                    family.add_metric(name, v)
        yield from (
            info,
            enabled,
            success,
            started,
            outcome,
            duration,
            read,
            ingested,
            quarantined,
            newest,
            watermark,
            matched,
            failures,
        )

    # -- the exporter itself ------------------------------------------------------------
    def _exporter_families(self, inputs: dict[str, bool]) -> Iterator[Any]:
        build = InfoMetricFamily(f"{PREFIX}_build", "Version of the workstyle collector.")
        build.add_metric([], {"version": __version__})
        up = GaugeMetricFamily(
            f"{PREFIX}_exporter_up",
            "1 when every input (KPI tables, targets, source state) was read successfully, else 0.",
        )
        up.add_metric([], 1.0 if all(inputs.values()) else 0.0)
        input_up = GaugeMetricFamily(
            f"{PREFIX}_exporter_input_up",
            "1 when the input was read successfully; 0 when it is"
            " missing or unreadable (the log names the file).",
            labels=["input"],
        )
        for name in INPUTS:
            input_up.add_metric([name], 1.0 if inputs[name] else 0.0)
        yield from (build, up, input_up)

    def _live_families(self) -> Iterator[Any]:
        """What is happening now, from the live poller's snapshot (a file, never a source)."""
        now = self.clock()
        with self._lock:
            self.live_snapshot.refresh()
            snap: Snapshot | None = self.live_snapshot.value
            readings = [
                (source, snap.sources.get(source.name) if snap else None)
                for source in self.live_sources
            ]
            fresh = tuple(
                r is not None
                and r.last_attempt is not None
                and now - r.last_attempt
                <= max(LIVE_STALE_INTERVALS * r.interval, r.interval + LIVE_GRACE)
                for _, r in readings
            )
            # Rebuilt only when the snapshot changed or a reading went stale.
            key = (self.live_snapshot.signature, fresh)
            if self._live_cache is None or self._live_cache[0] != key:
                self._live_cache = (key, self._build_live(readings, fresh))
            families = self._live_cache[1]
        yield from families

    def _build_live(self, readings: list[tuple[Any, Any]], fresh: tuple[bool, ...]) -> list[Any]:
        labels = ["source", "platform"]
        values = {
            name: GaugeMetricFamily(f"{PREFIX}_live_{name}", _LIVE_HELP[name], labels=labels)
            for name in VALUES
        }
        up = GaugeMetricFamily(
            f"{PREFIX}_live_up",
            "1 when the source's last live poll succeeded and is recent; 0 when it failed"
            " or the poller stopped (the values are then the last good ones: stale).",
            labels=labels,
        )
        success = GaugeMetricFamily(
            f"{PREFIX}_live_last_success_timestamp_seconds",
            "When the source's last successful live poll started.",
            labels=labels,
        )
        duration = GaugeMetricFamily(
            f"{PREFIX}_live_poll_duration_seconds",
            "How long the source's last live poll took.",
            labels=labels,
        )
        for (source, reading), recent in zip(readings, fresh, strict=True):
            if reading is None or reading.kind != source.kind:
                # Configured but never polled (poller not running yet, or not at all).
                up.add_metric([source.name, PLATFORMS.get(source.kind, source.kind)], 0.0)
                continue
            lv = [source.name, reading.platform]
            up.add_metric(lv, 1.0 if reading.ok and recent else 0.0)
            if reading.last_success is not None:
                success.add_metric(lv, reading.last_success)
            if reading.duration is not None:
                duration.add_metric(lv, reading.duration)
            for name, value in reading.values.items():
                values[name].add_metric(lv, value)
        return [*values.values(), up, success, duration]

    def _scrape_families(self, spent: float) -> Iterator[Any]:
        """Metrics of the moment of the scrape (``serve`` only; frozen in a textfile)."""
        yearly = self.yearly.value
        age = GaugeMetricFamily(
            f"{PREFIX}_exporter_data_age_seconds",
            "Seconds since the KPI tables being served were computed.",
        )
        if yearly and yearly.computed_at:
            age.add_metric([], max(0.0, self.clock() - yearly.computed_at.timestamp()))
        loads = CounterMetricFamily(
            f"{PREFIX}_exporter_input_loads",
            "Times an input file was (re)loaded after a change.",
            labels=["input"],
        )
        for name, count in (
            ("kpi_yearly", self.yearly.loads),
            ("kpi_monthly", self.monthly.loads),
            ("targets", self.targets.loads),
            ("state", sum(c.loads for _, c in self.sources)),
        ):
            loads.add_metric([name], float(count))
        duration = GaugeMetricFamily(
            f"{PREFIX}_exporter_scrape_duration_seconds",
            "Time this exporter took to collect the metrics of this scrape (rendering excluded).",
        )
        duration.add_metric([], spent)
        yield from (age, loads, duration)


def registry(cfg: Config, *, live: bool = True) -> tuple[CollectorRegistry, WorkstyleCollector]:
    """A registry holding only the workstyle collector (no process metrics in textfiles)."""
    # auto_describe=False: registering must not read any file.
    reg = CollectorRegistry(auto_describe=False)
    collector = WorkstyleCollector(cfg, live=live)
    reg.register(collector)
    return reg, collector
