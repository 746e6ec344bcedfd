"""Session pairing for the remote-access kinds (VPN syslog, RD Gateway events).

- :class:`SessionPairing` is a mix-in over :class:`~workstyle.adapters.filebase.FileAdapter`:
  the base parses every new chunk into session events (``time`` and
  ``_location``), the mix-in sorts them and hands them to the kind's :meth:`pair`
  with the sessions left open by the last run.
- :class:`OpenSessions` keeps sessions that started but have not ended yet in the
  adapter's checkpoint, so a session whose start and end are in different files
  (or different runs) is still joined; one that never closes is quarantined.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.collector.options import Option


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


class SessionPairing:
    """Mix-in for a FileAdapter whose events pair into ``remote_sessions`` rows across files.

    The kind parses chunks into events (``parse``) and walks the time-sorted events
    (``pair``) with the sessions carried over from the last run.
    """

    tables = ("remote_sessions",)
    combined = True
    opt: Any  # provided by the Adapter it is mixed into

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        return check_timezone(options)

    def zone(self, request: ReadRequest) -> str:
        return self.opt("timezone") or request.timezone

    def pair(
        self, events: pl.DataFrame, sessions: OpenSessions, q: Quarantined, state: dict[str, Any]
    ) -> list[dict[str, Any]] | pl.DataFrame:
        """Walk the time-sorted events; return closed sessions (dicts or a frame)."""
        raise NotImplementedError

    def combine(
        self,
        frames: list[pl.DataFrame],
        request: ReadRequest,
        state: dict[str, Any],
        q: Quarantined,
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        frames = [f for f in frames if f.height]
        events = (
            # Stable: events of the same second stay in the order the files hold them.
            pl.concat(frames, how="diagonal_relaxed").sort("time", maintain_order=True)
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
        frame = normalise_person(
            rows,
            self.opt("lowercase_users") is not False,
            self.opt("strip_domain") is not False,
        )
        return frame, {"open": sessions.dump(), **extra}


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


def parse_text(
    adapter: Any, path: Path, text: str, first_line: int, tz: str
) -> tuple[pl.DataFrame, Quarantined]:
    """Session events of log text as ``adapter.parse`` reads them: for the live readers."""
    from workstyle.adapters.filebase import Chunk, live_request

    events, q, _ = adapter.parse(Chunk(path, "", first_line, text), live_request(tz))
    return events, q
