"""Live values from the logs themselves, no API needed: VPN sessions open now, print today.

Both follow their files with :class:`~workstyle.collector.live.tail.Tail` and parse new
lines with the adapter's own parser (``adapters.sessions.parse_text``,
``adapters.papercut_print_logger.parse_chunk``), so a line reads the same live and at
night. Person names are reduced to a keyed hash in memory to count distinct users;
nothing but counts leaves a reader.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any, ClassVar

from workstyle.collector.config import Config
from workstyle.collector.errors import SourceError
from workstyle.collector.live.base import Clock, LiveReader, full_options
from workstyle.collector.live.tail import Chunk, Tail
from workstyle.collector.options import SourceConfig


class _LogReader(LiveReader):
    """Builds the kind's adapter (for its parser) and a tail over its files."""

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock) -> None:
        super().__init__(source, cfg, clock)
        from workstyle.adapters import adapter_class

        self.full = full_options(source, cfg)
        self.adapter = adapter_class(source.kind)(self.full)
        self.tz = self.full.options.get("timezone") or cfg.timezone


class VpnLogReader(_LogReader):
    """Sessions open now: starts without an end in the tail of FortiGate or ASA syslog."""

    platform: ClassVar[str] = "vpn"

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock) -> None:
        super().__init__(source, cfg, clock)
        self.tail = Tail(list(self.full.options["paths"]), self.full.base_dir)
        #: session key -> (start, hashed user); the hash key lives in memory only.
        self.open: dict[str, tuple[dt.datetime, str]] = {}
        self._salt = secrets.token_bytes(16)
        hours = float(self.full.options.get("open_session_max_hours") or 72)
        self.max_age = dt.timedelta(hours=hours)

    def read(self) -> dict[str, float]:
        import polars as pl

        from workstyle.adapters.sessions import normalise_person, parse_text

        frames: list[Any] = []
        chunks = self.tail.read()
        errors = list(self.tail.errors)
        for chunk in chunks:
            try:
                text = _decode(chunk.data, self.full.options.get("encoding") or "auto", chunk)
                events, _ = parse_text(self.adapter, chunk.path, text, chunk.line + 1, self.tz)
            except SourceError as exc:
                # This file is read again next poll; the others' lines are applied now.
                self.tail.forget(chunk.key)
                errors.append(str(exc))
                continue
            if events.height:
                frames.append(self.changes(events))
        if frames:
            # In time order across files: a rotated file's end may close the new one's start.
            events = pl.concat(frames, how="vertical_relaxed").sort("time", maintain_order=True)
            events = normalise_person(
                events,
                self.full.options.get("lowercase_users") is not False,
                self.full.options.get("strip_domain") is not False,
            )
            for key, opens, time, person in events.select(
                "key", "opens", "time", "person"
            ).iter_rows():
                if opens is None:
                    continue
                if opens:
                    self.open[key] = (time, self._hash(person))
                else:
                    self.open.pop(key, None)
        if errors:
            raise SourceError("; ".join(errors))
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        # A start whose end the device never logged is not a session open now.
        self.open = {k: v for k, v in self.open.items() if now - v[0] <= self.max_age}
        return {
            "vpn_sessions": float(len(self.open)),
            "vpn_users": float(len({user for _, user in self.open.values()})),
        }

    def changes(self, events: Any) -> Any:
        """Parsed events as ``key``, ``opens`` (True start, False end, None neither),
        ``time`` and ``person``: the same session key the adapter pairs on."""
        raise NotImplementedError

    def _hash(self, person: str | None) -> str:
        return hashlib.blake2b((person or "").encode(), key=self._salt, digest_size=12).hexdigest()


class FortiGateLogReader(VpnLogReader):
    platform: ClassVar[str] = "fortigate"

    def changes(self, events: Any) -> Any:
        import polars as pl

        key = pl.format(
            "{}/{}/{}",
            pl.col("devid").fill_null(""),
            pl.col("vd").fill_null(""),
            pl.col("tunnelid"),
        )
        return events.select(
            key.alias("key"),
            (pl.col("action") == "tunnel-up").alias("opens"),
            pl.col("time"),
            pl.col("user").alias("person"),
        )


class CiscoAsaLogReader(VpnLogReader):
    platform: ClassVar[str] = "cisco_asa"

    def changes(self, events: Any) -> Any:
        import polars as pl

        from workstyle.adapters.sessions import digest

        excluded = [str(t) for t in self.full.options.get("exclude_session_types") or []]
        msg = pl.col("msgid")
        opens = (
            pl.when(msg.is_in(["113039", "716001"]))
            .then(True)
            .when((msg == "716002") | ((msg == "113019") & ~pl.col("session_type").is_in(excluded)))
            .then(False)
            .otherwise(None)
        )
        keys = [
            f"{h}/{digest(u.lower(), ip)}"
            for h, u, ip in events.select("host", "user", "ip").iter_rows()
        ]
        return events.select(
            pl.Series("key", keys, dtype=pl.String),
            opens.alias("opens"),
            pl.col("time"),
            pl.col("user").alias("person"),
        )


class PrintLogReader(_LogReader):
    """Jobs and sheets so far today (local day of [collector] timezone) in growing print logs.

    Counts are kept per file and local day, so a job written late to yesterday's file
    counts for yesterday and the new day starts at zero; only files modified since local
    midnight are opened. A kind supplies its files and how a chunk becomes job rows.
    """

    #: Whether the parser needs the file from its start (a header) with each chunk.
    whole: ClassVar[bool] = False

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock) -> None:
        super().__init__(source, cfg, clock)
        self.tail = Tail(self.patterns(), self.full.base_dir)
        #: file -> local date -> [jobs, sheets]
        self.counts: dict[tuple[int, int], dict[dt.date, list[float]]] = {}

    def patterns(self) -> list[str]:
        return [str(p) for p in self.full.options["paths"]]

    def rows(self, chunk: Chunk) -> Any:
        """The ``print_jobs`` rows (``printed_at``, ``sheets``) of a chunk's new lines."""
        raise NotImplementedError

    def read(self) -> dict[str, float]:
        from zoneinfo import ZoneInfo

        import polars as pl

        zone = ZoneInfo(self.cfg.timezone)
        now = dt.datetime.fromtimestamp(self.clock(), zone)
        midnight = dt.datetime.combine(now.date(), dt.time(), zone).timestamp()
        chunks = self.tail.read(whole=self.whole, since=midnight)
        errors = list(self.tail.errors)
        for chunk in chunks:
            try:
                rows = self.rows(chunk)
            except SourceError as exc:
                # This file is read again from its start next poll; the others count now.
                self.tail.forget(chunk.key)
                self.counts.pop(chunk.key, None)
                errors.append(str(exc))
                continue
            per_day = {} if chunk.fresh else self.counts.get(chunk.key, {})
            if rows.height:
                days = rows.group_by(
                    pl.col("printed_at").dt.convert_time_zone(self.cfg.timezone).dt.date()
                ).agg(pl.len().alias("jobs"), pl.col("sheets").sum().alias("sheets"))
                for day, jobs, sheets in days.iter_rows():
                    got = per_day.setdefault(day, [0.0, 0.0])
                    got[0] += jobs
                    got[1] += float(sheets or 0)
            self.counts[chunk.key] = per_day
        live = set(self.tail.places)
        self.counts = {k: v for k, v in self.counts.items() if k in live}
        if errors:
            raise SourceError("; ".join(errors))
        today = now.date()
        return {
            "print_jobs_today": sum(c.get(today, [0, 0])[0] for c in self.counts.values()),
            "print_sheets_today": sum(c.get(today, [0, 0])[1] for c in self.counts.values()),
        }


class PaperCutLogReader(PrintLogReader):
    """PaperCut Print Logger: the daily CSV, banner and header checked from its start."""

    platform: ClassVar[str] = "papercut"
    whole: ClassVar[bool] = True

    def patterns(self) -> list[str]:
        folder = self.full.path("path")
        return [str(folder / str(self.full.options.get("pattern") or "*.csv"))]

    def rows(self, chunk: Chunk) -> Any:
        from workstyle.adapters.papercut_print_logger import parse_chunk

        return parse_chunk(self.adapter, chunk.path, chunk.data, chunk.offset, chunk.line, self.tz)[
            0
        ]


class PaperCutNgLogReader(PrintLogReader):
    """PaperCut NG/MF's tab-separated print log (printlog_yyyy_mm_dd.log)."""

    platform: ClassVar[str] = "papercut"

    def rows(self, chunk: Chunk) -> Any:
        from workstyle.adapters.papercut_ng_print_log import parse_lines

        text = _decode(chunk.data, self.full.options.get("encoding") or "auto", chunk)
        header = int(self.full.options.get("header_lines") or 0)
        # Read from a tail: the lines before are not header lines whatever their number.
        first = chunk.line + 1 if chunk.offset == 0 or chunk.line else header + 1
        return parse_lines(self.adapter, chunk.path, text, first, self.tz)


class WindowsPrintReader(_LogReader):
    """Jobs and sheets so far today in the PrintService exports written today.

    Exports are whole files written again and again (a scheduled ``wevtutil qe`` every few
    minutes), not appended logs: a changed file is parsed whole, and a job (computer +
    EventRecordID) found in several overlapping exports counts once.
    """

    platform: ClassVar[str] = "windows"

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock) -> None:
        super().__init__(source, cfg, clock)
        self.tail = Tail(list(self.full.options["paths"]), self.full.base_dir)
        #: file (device, inode) -> (size, mtime_ns), {job id: (local date, sheets)}
        self.files: dict[tuple[int, int], tuple[tuple[int, int], dict[str, tuple[Any, float]]]] = {}

    def read(self) -> dict[str, float]:
        from zoneinfo import ZoneInfo

        import polars as pl

        from workstyle.adapters.windows_print_events import file_jobs

        zone = ZoneInfo(self.cfg.timezone)
        now = dt.datetime.fromtimestamp(self.clock(), zone)
        midnight = dt.datetime.combine(now.date(), dt.time(), zone).timestamp()
        seen, errors = set(), []
        for path, st in self.tail.files(since=midnight):
            key, signature = (st.st_dev, st.st_ino), (st.st_size, st.st_mtime_ns)
            seen.add(key)
            if key in self.files and self.files[key][0] == signature:
                continue
            try:
                rows = file_jobs(self.adapter, path, path.read_bytes(), self.tz)
            except OSError as exc:
                errors.append(f"{path}: cannot read: {exc.strerror}")
                continue
            except SourceError as exc:
                errors.append(str(exc))
                continue
            local = pl.col("printed_at").dt.convert_time_zone(self.cfg.timezone).dt.date()
            jobs = {
                job: (day, float(sheets or 0))
                for job, day, sheets in rows.select("job_id", local, "sheets").iter_rows()
            }
            self.files[key] = (signature, jobs)
        self.files = {k: v for k, v in self.files.items() if k in seen}
        if errors:
            raise SourceError("; ".join(errors))
        today = {
            job: sheets
            for _, jobs in self.files.values()
            for job, (day, sheets) in jobs.items()
            if day == now.date()
        }
        return {"print_jobs_today": float(len(today)), "print_sheets_today": sum(today.values())}


def _decode(data: bytes, encoding: str, chunk: Any) -> str:
    from workstyle.adapters.files import decode

    # Live has no quarantine: a line that does not decode fails this file's poll (the
    # nightly run quarantines that line alone and reads the rest).
    text, _, bad = decode(data, encoding, chunk.path, chunk.line + 1)
    if len(bad):
        raise SourceError(f"{bad.location[0]}: {bad.reason[0]}")
    return text
