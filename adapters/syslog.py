"""Reading append-only log files (syslog, PaperCut NG print logs) once, and pairing sessions.

Shared by the VPN and print-log adapters:

- :class:`LogFiles` finds the files of a source, recognises each by the hash of
  its first line (``files.head_fingerprint``), and hands out only the bytes not
  read before. A log that grows is read from where the last run stopped; its
  rotated copy (``vpn.log.1``) or compressed copy (``vpn.log.2.gz``) has the same
  fingerprint and is not read again. When several copies of one log are present
  in the same run, the longest is read.
- :func:`lines_frame` turns the new text into a polars frame of lines with their
  ``path:line`` location, so the adapters parse columns, not rows.
- :class:`OpenSessions` keeps sessions that started but have not ended yet in the
  adapter's checkpoint, so a session whose start and end are in different files
  (or different runs) is still joined.

Checkpoint shape (the same as the other file adapters):
``{"files": {fingerprint: {"offset": bytes, "lines": n, "path": str}}, ...}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.adapters.files import (
    complete_length,
    discover,
    head_fingerprint,
    read_bytes,
    strip_bom,
)
from workstyle.adapters.files import to_utf8 as _to_utf8
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

#: Seconds a file must be unchanged before a last line without a newline is read.
SETTLE_SECONDS = 300.0

#: Options every log-file adapter has.
LOG_FILE_OPTIONS: tuple[Option, ...] = (
    Option(
        "paths",
        "list",
        "Glob patterns of the log files, rotated and .gz copies included"
        " (e.g. ['/var/log/remote/vpn/*.log*']).",
        required=True,
        identity=True,
    ),
    Option(
        "encoding",
        "str",
        "Text encoding of the files.",
        default="auto",
        choices=("utf-8", "cp932", "auto"),
    ),
    Option(
        "timezone",
        "str",
        "IANA zone of the device clock, for timestamps written without an offset;"
        " default: [collector] timezone.",
        default=None,
    ),
)


@dataclass
class Region:
    """The not-yet-read part of one log file, decoded to text."""

    path: Path
    fingerprint: str
    #: 1-based number of the first line in ``text``.
    first_line: int
    text: str
    #: The manifest entry once this region is committed.
    entry: dict[str, Any]
    #: A name for the unit of work in a backfill (fingerprint and length read).
    unit: str


@dataclass
class LogFiles:
    """Finds a source's log files and yields what each holds beyond the last checkpoint."""

    patterns: list[str]
    encoding: str = "auto"
    #: Lines hashed to recognise a file; more than one when files start with a header.
    head_lines: int = 1
    settle_seconds: float = SETTLE_SECONDS
    errors: list[str] = field(default_factory=list)

    def regions(self, request: ReadRequest, manifest: dict[str, Any]) -> list[Region]:
        """New regions of every file; unreadable files are remembered in ``errors``."""
        best: dict[str, tuple[Path, bytes]] = {}
        for path in discover(self.patterns):
            try:
                data = strip_bom(read_bytes(path))
            except SourceError as exc:
                self.errors.append(str(exc))
                continue
            fp = head_fingerprint(data, self.head_lines)
            if fp is None:
                continue  # not even one complete line yet: next run
            # Copies of one log (rotated, compressed, renamed): read the longest once.
            if fp not in best or len(data) > len(best[fp][1]):
                best[fp] = (path, data)
        out: list[Region] = []
        for fp, (path, data) in best.items():
            end = complete_length(data, path, self.settle_seconds)
            unit = f"{fp}:{end}"
            if request.mode == "backfill":
                if unit in request.done_units:
                    continue
                offset, lines = 0, 0
            else:
                entry = manifest.get(fp, {})
                offset, lines = int(entry.get("offset", 0)), int(entry.get("lines", 0))
            if end <= offset:
                continue
            chunk = data[offset:end]
            try:
                text = _to_utf8(chunk, self.encoding, path).decode("utf-8")
            except SourceError as exc:
                self.errors.append(str(exc))
                continue
            n = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            out.append(
                Region(
                    path=path,
                    fingerprint=fp,
                    first_line=lines + 1,
                    text=text,
                    entry={"offset": end, "lines": lines + n, "path": str(path)},
                    unit=unit,
                )
            )
        return out

    def raise_errors(self) -> None:
        """One SourceError naming every file that could not be read, after the others."""
        if self.errors:
            raise SourceError("; ".join(self.errors))


def lines_frame(region: Region) -> pl.DataFrame:
    """The region's lines as a frame: ``line`` (text, CR removed) and ``_location``."""
    text = region.text[:-1] if region.text.endswith("\n") else region.text
    lines = pl.Series("line", text.split("\n"), dtype=pl.String)
    return (
        pl.DataFrame([lines])
        .with_row_index("_n")
        .with_columns(
            pl.col("line").str.strip_suffix("\r"),
            pl.format("{}:{}", pl.lit(str(region.path)), pl.col("_n") + region.first_line).alias(
                "_location"
            ),
        )
        .drop("_n")
    )


def quarantine_rows(df: pl.DataFrame, reason: str | pl.Expr, raw: str = "line") -> Quarantined:
    """Quarantine every row of ``df`` with its location and raw text."""
    if df.height == 0:
        return Quarantined.empty()
    reasons = (
        df.select(reason.alias("r")).get_column("r").to_list()
        if isinstance(reason, pl.Expr)
        else [reason] * df.height
    )
    return Quarantined(
        location=df.get_column("_location").to_list(),
        reason=reasons,
        raw=df.get_column(raw).cast(pl.String).to_list(),
    )


def kv(key: str) -> pl.Expr:
    """The value of ``key=value`` or ``key="quoted value"`` in the ``line`` column."""
    value = pl.col("line").str.extract(r"(?:^|[\s>:])" + key + r'=("[^"]*"|[^\s]*)', 1)
    return value.str.strip_chars('"').alias(key)


def to_epoch(ts: dt.datetime) -> int:
    return int(ts.timestamp())


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).isoformat()


def from_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class OpenSessions:
    """Sessions that started and have not ended, kept in the checkpoint between runs.

    Each entry remembers when the session started and where its start was read,
    so a session that never closes (the device lost the log line) is quarantined
    with that location once it is older than ``max_age`` instead of waiting forever.
    """

    def __init__(self, saved: dict[str, Any] | None, max_age: dt.timedelta) -> None:
        self.items: dict[str, dict[str, Any]] = dict(saved or {})
        self.max_age = max_age

    def open(self, key: str, start: dt.datetime, location: str, **extra: Any) -> None:
        self.items[key] = {"start": iso(start), "location": location, **extra}

    def pop(self, key: str) -> dict[str, Any] | None:
        return self.items.pop(key, None)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.items.get(key)

    def expire(self, now: dt.datetime | None, q: Quarantined) -> None:
        """Quarantine sessions older than ``max_age`` before ``now`` (newest event seen)."""
        if now is None:
            return
        for key in list(self.items):
            item = self.items[key]
            if now - from_iso(item["start"]) > self.max_age:
                q.add(
                    item["location"],
                    f"session start never followed by an end within {self.max_age}; not counted",
                    key,
                )
                del self.items[key]

    def dump(self) -> dict[str, dict[str, Any]]:
        return dict(self.items)


def sessions_frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Session dicts as a ``remote_sessions`` frame (keeps the last row per session id)."""
    schema = {
        "session_id": pl.String,
        "person": pl.String,
        "start_time": pl.Datetime("us", "UTC"),
        "end_time": pl.Datetime("us", "UTC"),
        "duration_seconds": pl.Int64,
        "gateway": pl.String,
        "tunnel_type": pl.String,
        "bytes_in": pl.Int64,
        "bytes_out": pl.Int64,
        "_location": pl.String,
    }
    df = pl.DataFrame(list(rows), schema=schema, orient="row")
    return df.unique(subset=["session_id"], keep="last", maintain_order=True)


def empty_frame(columns: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=columns)


class SessionLogAdapter(Adapter):
    """Base of the VPN adapters: new lines of every file, parsed, sorted, paired into sessions.

    Subclasses turn one region into a frame of session events (``parse``: columnar,
    only the few session lines survive the filter) and walk the sorted events
    (``pair``) with the open sessions carried over from the last run.
    """

    tables = ("remote_sessions",)
    windowed = True

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return check_timezone(options)

    def zone(self, request: ReadRequest) -> str:
        return self.opt("timezone") or request.timezone

    def parse(self, region: Region, tz: str) -> tuple[pl.DataFrame, Quarantined]:
        """Session events of one region (with ``time`` and ``_location``) and bad lines."""
        raise NotImplementedError

    def pair(
        self, events: pl.DataFrame, sessions: OpenSessions, q: Quarantined, state: dict[str, Any]
    ) -> list[dict[str, Any]] | pl.DataFrame:
        """Walk the time-sorted events; return closed sessions (dicts or a frame)."""
        raise NotImplementedError

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        state = request.state if request.mode == "incremental" else {}
        manifest = dict(state.get("files", {}))
        files = LogFiles([str(p) for p in self.opt("paths")], self.opt("encoding") or "auto")
        regions = files.regions(request, manifest)
        tz = self.zone(request)
        q = Quarantined.empty()
        frames: list[pl.DataFrame] = []
        lines_read = 0
        for region in regions:
            events, bad = self.parse(region, tz)
            lines_read += region.entry["lines"] - region.first_line + 1
            frames.append(events)
            q.extend(bad)
            manifest[region.fingerprint] = region.entry
        events = (
            pl.concat(frames, how="diagonal_relaxed").sort("time", "_location")
            if frames
            else pl.DataFrame()
        )
        max_age = dt.timedelta(hours=float(self.opt("open_session_max_hours") or 72))
        sessions = OpenSessions(state.get("open"), max_age)
        extra: dict[str, Any] = {k: v for k, v in state.items() if k not in ("files", "open")}
        paired = self.pair(events, sessions, q, extra) if events.height else []
        # A pairing in columns returns a frame; a loop returns session dicts.
        rows = paired if isinstance(paired, pl.DataFrame) else sessions_frame(paired)
        newest = events.get_column("time").max() if events.height else None
        sessions.expire(newest if isinstance(newest, dt.datetime) else None, q)
        checkpoint = {"files": manifest, "open": sessions.dump(), **extra}
        units = [r.unit for r in regions]
        frame = normalise_person(
            rows,
            self.opt("lowercase_users") is not False,
            self.opt("strip_domain") is not False,
        )
        yield Batch(
            table="remote_sessions",
            rows=frame,
            quarantined=q,
            rows_read=lines_read,
            checkpoint=checkpoint,
            unit=units[0] if units else None,
            progress=(len(regions), len(regions)),
        )
        # The other files of this read are committed with the same flush.
        for unit in units[1:]:
            yield Batch(table="remote_sessions", rows=sessions_frame([]), unit=unit)
        files.raise_errors()


def parse_text(
    adapter: SessionLogAdapter, path: Path, text: str, first_line: int, tz: str
) -> tuple[pl.DataFrame, Quarantined]:
    """Session events of log text as ``adapter.parse`` reads them: for the live readers."""
    return adapter.parse(Region(path, "", first_line, text, {}, ""), tz)


def check_timezone(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A config problem when the ``timezone`` option is not an IANA zone."""
    tz = options.get("timezone")
    if tz is None:
        return []
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return [
            (
                "timezone",
                f"unknown time zone {tz!r}; expected an IANA name like"
                " 'Asia/Tokyo' (the device clock's zone)",
            )
        ]
    return []


#: Options of the adapters that pair session starts and ends.
SESSION_OPTIONS: tuple[Option, ...] = (
    Option(
        "open_session_max_hours",
        "float",
        "A session start with no end after this many hours (of log time) is"
        " quarantined as never closed.",
        default=72.0,
    ),
    Option(
        "lowercase_users",
        "bool",
        "Lower-case user names so 'Yamada' and 'yamada' are one person.",
        default=True,
    ),
    Option(
        "strip_domain",
        "bool",
        "Drop a 'DOMAIN\\' prefix from user names so gateways that log it and gateways"
        " that do not name the same person alike.",
        default=True,
    ),
)


def normalise_person(df: pl.DataFrame, lowercase: bool, strip_domain: bool) -> pl.DataFrame:
    """Trim the ``person`` column, optionally drop ``DOMAIN\\`` and lower-case it."""
    p = pl.col("person").str.strip_chars()
    if strip_domain:
        p = p.str.replace(r"^[^\\]*\\", "")
    if lowercase:
        p = p.str.to_lowercase()
    return df.with_columns(pl.when(p.str.len_chars() > 0).then(p).otherwise(None).alias("person"))


def digest(*parts: object) -> str:
    """A short stable hash, so keys built from user names never store the name itself."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
