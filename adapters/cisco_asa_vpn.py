"""Cisco ASA / AnyConnect (Secure Client) VPN sessions from syslog files (``remote_sessions``).

Messages used (everything else in the log is skipped):

- 113039 ``Group <g> User <u> IP <ip> AnyConnect parent session started.`` - start
- 716001 ``Group <g> User <u> IP <ip> WebVPN session started.`` - clientless start
- 722051 ``... IPv4 Address <a> IPv6 address <a6> assigned to session`` - read, not stored
- 113019 ``Group = g, Username = u, IP = ip, Session disconnected. Session Type: t,
  Duration: d, Bytes xmt: n, Bytes rcv: n, Reason: r`` - end, with duration and bytes
- 716002 ``Group <g> User <u> IP <ip> WebVPN session terminated: reason.`` - clientless end

A session is keyed by ASA host, a hash of user and public IP, and its start second. 113019
carries the duration (``0h:32m:16s``, ``1d 19h:41m:14s`` or ``H:MM:SS``), so its
start is end minus duration whatever was read before; a 716002 takes its start
from the 716001 kept in the checkpoint. When an ASA logs both 716002 and 113019
for one clientless session, the second updates the first's row instead of adding one.

Timestamps come from the syslog header: ISO 8601 with an offset when the relay
writes one, else the ASA's ``May 13 2024 09:12:33`` (``logging timestamp``), else a
BSD ``May 13 09:12:33``; the last two are in the source's ``timezone`` (the ASA
clock's zone). A BSD timestamp's year comes from evidence that travels with the
data, in this order: a dated line of the same file (or the last read of it), a
date in the file name, and only then the modification time (a copy may not keep
it); the year advances where the months wrap (December, then January). The rule
used is kept in the file's manifest entry. A BSD timestamp that lands more than a
day after the run's start is quarantined, not shifted into another year.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.filebase import (
    PATHS_OPTIONS,
    TIMEZONE_OPTION,
    Chunk,
    FileAdapter,
    lines_frame,
    quarantine_rows,
)
from workstyle.adapters.parsing import UTC, parse_int, parse_time, split_bad, unparsed
from workstyle.adapters.sessions import (
    SESSION_OPTIONS,
    OpenSessions,
    SessionPairing,
    digest,
    from_iso,
    iso,
)
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

SESSION_IDS = ("113039", "113019", "716001", "716002", "722051")
#: What the message text must say for each id (a guard against a changed format).
MARKERS = {
    "113039": "AnyConnect parent session started",
    "716001": "WebVPN session started",
    "716002": "WebVPN session terminated",
    "722051": "assigned to session",
    "113019": "Session disconnected",
}
#: A 113019 this close to a 716002 for the same user and IP ends the same session.
SAME_END = dt.timedelta(seconds=120)

_ISO = r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
_MDY = r"([A-Z][a-z]{2}\s+\d{1,2}\s+\d{4}\s+\d{2}:\d{2}:\d{2})"
_MD = r"([A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2})"
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%:z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
)


def duration_seconds(col: pl.Expr) -> pl.Expr:
    """ASA durations: ``0h:32m:16s``, ``1d 19h:41m:14s``, ``H:MM:SS``, ``1d 19:41:14``."""
    s = col.str.strip_chars()
    hms = s.str.extract_groups(r"^(?:(\d+)d\s*)?(\d+)h:(\d+)m:(\d+)s$")
    colon = s.str.extract_groups(r"^(?:(\d+)d\s*)?(\d+):(\d{1,2}):(\d{1,2})$")

    def total(g: pl.Expr) -> pl.Expr:
        f = [g.struct.field(str(i)).cast(pl.Int64, strict=False) for i in (1, 2, 3, 4)]
        return f[0].fill_null(0) * 86400 + f[1] * 3600 + f[2] * 60 + f[3]

    return pl.coalesce(total(hms), total(colon))


#: A date in a file name: 2024-05-13, 2024_05_13, 20240513.
_NAME_DATE = re.compile(r"(20\d{2})[-_]?(0[1-9]|1[0-2])[-_]?([0-3]\d)")
#: A month number lower than the previous one by more than this wraps the year.
_WRAP_MONTHS = 6


class CiscoAsaVpn(SessionPairing, FileAdapter):
    """Cisco ASA AnyConnect / WebVPN syslog -> remote_sessions."""

    kind: ClassVar[str] = "cisco_asa_vpn"
    summary: ClassVar[str] = (
        "Cisco ASA AnyConnect and WebVPN sessions from syslog files (113039/113019/716001/716002)."
    )
    options: ClassVar[tuple[Option, ...]] = (
        *PATHS_OPTIONS,
        TIMEZONE_OPTION,
        Option(
            "exclude_session_types",
            "list",
            "113019 'Session Type' values that are not mobile work (site-to-site).",
            default=["LAN-to-LAN"],
        ),
        *SESSION_OPTIONS,
    )

    def recognise(self, path: Path, data: bytes) -> str:
        if b"%ASA-" not in data[:65536] and b"%FTD-" not in data[:65536]:
            raise SourceError(f"{path}: no %ASA-n-nnnnnn: message in its first 64 KiB")
        return "Cisco ASA syslog"

    def parse(self, chunk: Chunk, request: ReadRequest) -> tuple[pl.DataFrame, Quarantined, int]:
        """The session messages of a chunk, with time, host and fields; bad lines quarantined."""
        tz = self.zone(request)
        df = lines_frame(chunk).filter(pl.col("line").str.strip_chars() != "")
        read = df.height
        df = df.with_columns(
            pl.col("line").str.extract(r"%(?:ASA|FTD)-\d-(\d{6}):", 1).alias("msgid"),
            pl.col("line").str.extract(r"%(?:ASA|FTD)-\d-\d{6}:\s?(.*)$", 1).alias("body"),
            pl.col("line").str.extract(r"^(.*?)%(?:ASA|FTD)-", 1).alias("header"),
        )
        noise = pl.col("line").str.contains(r"last message repeated \d+ times")
        q = quarantine_rows(
            df.filter(pl.col("msgid").is_null() & ~noise),
            "not an ASA syslog line (no %ASA-n-nnnnnn: tag)",
        )
        df = _with_time(df, chunk, tz, request.run_start)
        future = df.filter(pl.col("_future") & pl.col("msgid").is_in(list(SESSION_IDS)))
        q.extend(
            quarantine_rows(
                future,
                pl.format(
                    "year-less timestamp would be {} (year from the {}), in the future; not read",
                    pl.col("time").dt.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    pl.lit(chunk.memo.get("year_rule", "")),
                ),
            )
        )
        df = df.filter(pl.col("msgid").is_in(list(SESSION_IDS)) & ~pl.col("_future"))
        df = df.with_columns(
            pl.col("header")
            .str.extract(r"\s([A-Za-z][\w.-]*)\s*:?\s*$", 1)
            .fill_null("")
            .alias("host"),
        )
        b = pl.col("body")
        df = df.with_columns(
            pl.coalesce(
                b.str.extract(r"Group <([^>]*)>", 1), b.str.extract(r"Group = ([^,]*),", 1)
            ).alias("group"),
            pl.coalesce(
                b.str.extract(r"User <([^>]*)>", 1), b.str.extract(r"Username = ([^,]*),", 1)
            ).alias("user"),
            pl.coalesce(
                b.str.extract(r"IP <([^>]*)>", 1), b.str.extract(r"IP = ([^,]*),", 1)
            ).alias("ip"),
            b.str.extract(r"Session Type: ([^,]*),", 1).alias("session_type"),
            b.str.extract(r"Duration: ([^,]*),", 1).alias("duration"),
            parse_int(b.str.extract(r"Bytes xmt: (\S+),", 1)).alias("xmt"),
            parse_int(b.str.extract(r"Bytes rcv: (\S+),", 1)).alias("rcv"),
        ).with_columns(duration_seconds(pl.col("duration")).alias("duration_s"))
        marker = pl.col("msgid").replace_strict(MARKERS, default=None)
        df, bad = split_bad(
            df,
            [
                (
                    ~b.str.contains(marker, literal=True).fill_null(False),
                    pl.format("message {} does not read as documented", pl.col("msgid")),
                ),
                (pl.col("time").is_null(), "no usable timestamp in the syslog header"),
                (pl.col("user").is_null() | pl.col("ip").is_null(), "no user or IP"),
                (
                    (pl.col("msgid") == "113019") & pl.col("duration_s").is_null(),
                    pl.format("duration {} is in no known format", pl.col("duration")),
                ),
                unparsed(b.str.extract(r"Bytes xmt: (\S+),", 1), pl.col("xmt"), "Bytes xmt"),
                unparsed(b.str.extract(r"Bytes rcv: (\S+),", 1), pl.col("rcv"), "Bytes rcv"),
            ],
            raw="line",
        )
        q.extend(bad)
        return df, q, read

    def pair(
        self, events: pl.DataFrame, sessions: OpenSessions, q: Quarantined, state: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Starts open sessions; 113019 and 716002 close them into rows."""
        excluded = {str(t) for t in (self.opt("exclude_session_types") or [])}
        closed: dict[str, dict[str, Any]] = dict(state.get("closed", {}))
        rows: list[dict[str, Any]] = []
        # Only session messages reach this loop; the bulk of the log was filtered.
        for r in events.iter_rows(named=True):
            # User names never go into ids or the checkpoint as they are.
            key = f"{r['host']}/{digest(r['user'].lower(), r['ip'])}"
            msg, end = r["msgid"], r["time"]
            if msg in ("113039", "716001"):
                sessions.open(
                    key, end, r["_location"], kind="AnyConnect" if msg == "113039" else "WebVPN"
                )
                continue
            if msg == "722051":
                continue
            opened = sessions.pop(key)
            if msg == "716002":
                if opened is None:
                    q.add(
                        r["_location"],
                        "WebVPN session end without its start (716001); the duration is unknown",
                        r["line"],
                    )
                    continue
                start = from_iso(opened["start"])
                row = self._row(
                    r,
                    f"{key}/{int(start.timestamp())}",
                    start,
                    end,
                    int((end - start).total_seconds()),
                    "WebVPN",
                    None,
                    None,
                )
                closed[key] = {
                    "session_id": row["session_id"],
                    "start": iso(start),
                    "end": iso(end),
                    "type": "WebVPN",
                }
                rows.append(row)
                continue
            # 113019
            if r["session_type"] in excluded:
                continue
            recent = closed.get(key)
            if (
                opened is None
                and recent is not None
                and abs(end - from_iso(recent["end"])) <= SAME_END
            ):
                start = from_iso(recent["start"])
                session_id = recent["session_id"]
            else:
                start = end - dt.timedelta(seconds=r["duration_s"])
                session_id = f"{key}/{int(start.timestamp())}"
            # The ASA's "xmt" is what it sent to the client: the client's download.
            rows.append(
                self._row(
                    r,
                    session_id,
                    start,
                    end,
                    r["duration_s"],
                    r["session_type"],
                    r["xmt"],
                    r["rcv"],
                )
            )
        # Remember clientless ends for a day, to merge a late 113019 into them.
        newest = events.get_column("time").max()
        if isinstance(newest, dt.datetime):
            closed = {
                k: v
                for k, v in closed.items()
                if newest - from_iso(v["end"]) <= dt.timedelta(days=1)
            }
        state["closed"] = closed
        return rows

    @staticmethod
    def _row(
        r: dict[str, Any],
        session_id: str,
        start: dt.datetime,
        end: dt.datetime,
        duration: int,
        tunnel_type: str | None,
        bytes_in: int | None,
        bytes_out: int | None,
    ) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "person": r["user"],
            "start_time": start,
            "end_time": end,
            "duration_seconds": duration,
            "gateway": r["host"] or None,
            "tunnel_type": tunnel_type,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "_location": r["_location"],
        }


def _with_time(df: pl.DataFrame, chunk: Chunk, tz: str, run_start: dt.datetime) -> pl.DataFrame:
    """``time`` (UTC) of every line, and ``_future`` for year-less ones that land ahead.

    Year-less (BSD) lines get ``year = base + wraps``: ``wraps`` counts the times
    the month fell back (December, then January) since the chunk's start, and
    ``base`` comes from the nearest dated line, else the last read of this file,
    else the file name's date, else the modification time.
    """
    h = pl.col("header").str.replace_all(r"\s+", " ")
    iso_t = parse_time(h.str.extract(_ISO, 1).str.replace(" ", "T"), ISO_FORMATS, tz)
    mdy = parse_time(h.str.extract(_MDY, 1), ["%b %d %Y %H:%M:%S"], tz)
    df = df.with_columns(
        pl.coalesce(iso_t, mdy).cast(UTC).alias("_dated"),
        h.str.extract(_MD, 1).alias("_md"),
    )
    # Month (and day) of every timestamped line; 2000 is a leap year, for Feb 29.
    md_local = pl.lit("2000 ") + pl.col("_md")
    local = pl.col("_dated").dt.convert_time_zone(tz)
    month = pl.coalesce(
        local.dt.month(),
        md_local.str.strptime(pl.Datetime, "%Y %b %d %H:%M:%S", strict=False).dt.month(),
    ).cast(pl.Int32)
    memo = chunk.memo
    prev = month.forward_fill().shift(1)
    if memo.get("last_month"):
        prev = prev.fill_null(int(memo["last_month"]))
    wraps = ((prev - month) > _WRAP_MONTHS).fill_null(False).cast(pl.Int32).cum_sum()
    df = df.with_columns(month.alias("_month"), wraps.alias("_wraps"))
    dated_base = (local.dt.year().cast(pl.Int32) - pl.col("_wraps")).forward_fill()
    if memo.get("last_year"):
        rule, fallback = memo.get("year_rule", "previous read"), int(memo["last_year"])
    else:
        rule, fallback = _year_evidence(df, chunk, tz)
    has_dated = df.get_column("_dated").is_not_null().any()
    if has_dated and not memo.get("last_year"):
        rule = "dated line in the file"
        base = dated_base.backward_fill()
    else:
        base = dated_base.fill_null(fallback)
    year = base + pl.col("_wraps")
    bsd = parse_time(
        year.cast(pl.String) + pl.lit(" ") + pl.col("_md"), ["%Y %b %d %H:%M:%S"], tz
    ).cast(UTC)
    df = df.with_columns(
        pl.coalesce(pl.col("_dated"), bsd).alias("time"),
        (pl.col("_dated").is_null() & (bsd > run_start + dt.timedelta(days=1)))
        .fill_null(False)
        .alias("_future"),
        year.alias("_year"),
    )
    stamped = df.filter(pl.col("_month").is_not_null())
    if stamped.height:
        memo["last_month"] = int(stamped.get_column("_month")[-1])
        memo["last_year"] = int(stamped.get_column("_year")[-1])
    if df.select((pl.col("_dated").is_null() & pl.col("_md").is_not_null()).any()).item():
        memo["year_rule"] = rule  # only where a year had to be found
    return df


def _year_evidence(df: pl.DataFrame, chunk: Chunk, tz: str) -> tuple[str, int]:
    """The year of the chunk's first year-less line: from the file name, else its mtime."""
    m = _NAME_DATE.search(chunk.path.name)
    if m:
        ref = dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=ZoneInfo(tz))
        rule = "date in the file name"
    else:
        ref = dt.datetime.fromtimestamp(chunk.path.stat().st_mtime, ZoneInfo(tz))
        rule = "file's modification time"
    first = df.filter(pl.col("_md").is_not_null()).head(1).get_column("_md").to_list()
    if not first:
        return rule, ref.year
    md = dt.datetime.strptime(f"2000 {first[0]}", "%Y %b %d %H:%M:%S")  # noqa: DTZ007 - month/day only
    # The first line is not after the reference (+1 day): else it is from the year before.
    day = dt.date(ref.year, md.month, min(md.day, 28 if md.month == 2 else md.day))
    return rule, ref.year - 1 if day > ref.date() + dt.timedelta(days=1) else ref.year
