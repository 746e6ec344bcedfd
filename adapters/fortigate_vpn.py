"""FortiGate SSL-VPN sessions from the FortiGate's syslog files (``remote_sessions``).

A FortiGate sends one ``key=value`` line per event. An SSL-VPN session is a
``type=event subtype=vpn action=tunnel-up`` line and, when it ends, an
``action=tunnel-down`` line carrying ``duration`` (seconds), ``sentbyte`` and
``rcvdbyte``. Log ids changed across FortiOS versions (0101039424/39425 and
0101039947/39948), so lines are matched on subtype and action, not log id.

A session is keyed by device serial (``devid``), VDOM (``vd``) and ``tunnelid``,
plus its start second: tunnel ids are reused after a reboot. The start is the
tunnel-down time minus its duration, so re-reading the same line always yields
the same key. Tunnel-ups without a tunnel-down yet stay in the checkpoint; a
tunnel-down without a duration takes its start from that tunnel-up.

Times: ``eventtime`` (epoch, seconds to nanoseconds by FortiOS version) is UTC and
preferred; else ``date`` + ``time`` with the ``tz`` field (``+0900``); else
``date`` + ``time`` in the source's ``timezone`` (the device clock's zone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.filebase import (
    PATHS_OPTIONS,
    TIMEZONE_OPTION,
    Chunk,
    FileAdapter,
    Parsed,
    lines_frame,
    lines_frame_many,
    quarantine_rows,
)
from workstyle.adapters.parsing import (
    UTC,
    failed,
    fast_or_careful,
    parse_int,
    parse_time,
    split_bad,
    unparsed,
)
from workstyle.adapters.sessions import (
    SESSION_OPTIONS,
    OpenSessions,
    SessionPairing,
    from_iso,
    sessions_frame,
)
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

#: The fields a session needs from an event line (``date``, ``time`` and ``tz`` only
#: when it has no ``eventtime``); ``subtype``, ``action`` and ``tunneltype`` select it.
FIELDS = (
    "eventtime",
    "devid",
    "devname",
    "vd",
    "tunnelid",
    "user",
    "duration",
    "sentbyte",
    "rcvdbyte",
)


#: The columns of an event, as :meth:`FortiGateVpn.pair` reads them (and ``line``).
EVENT_COLUMNS = (
    "_location",
    "time",
    "action",
    "devid",
    "devname",
    "vd",
    "tunnelid",
    "tunneltype",
    "user",
    "duration_s",
    "sent",
    "rcvd",
)


def kv(key: str) -> pl.Expr:
    """The value of ``key=value`` or ``key="quoted value"`` in the ``line`` column."""
    value = pl.col("line").str.extract(r"(?:^|[\s>:])" + key + r'=("[^"]*"|[^\s]*)', 1)
    return value.str.strip_chars('"').alias(key)


def epoch_us(n: pl.Expr) -> pl.Expr:
    """FortiOS ``eventtime`` (an integer): seconds, milli-, micro- or nanoseconds by magnitude."""
    us = (
        pl.when(n >= 10**17)
        .then(n // 1000)
        .when(n >= 10**14)
        .then(n)
        .when(n >= 10**11)
        .then(n * 1000)
        .otherwise(n * 1_000_000)
    )
    return us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


class FortiGateVpn(SessionPairing, FileAdapter):
    """FortiGate SSL-VPN tunnel-up/down syslog lines -> remote_sessions."""

    kind: ClassVar[str] = "fortigate_vpn"
    summary: ClassVar[str] = "FortiGate SSL-VPN sessions from syslog files (tunnel-up/down)."
    options: ClassVar[tuple[Option, ...]] = (
        *PATHS_OPTIONS,
        TIMEZONE_OPTION,
        Option(
            "tunnel_types",
            "list",
            "FortiGate tunneltype values that count as mobile work (site-to-site IPsec does not).",
            default=["ssl-tunnel", "ssl-web"],
        ),
        *SESSION_OPTIONS,
    )

    def recognise(self, path: Path, data: bytes) -> str:
        if b"logid=" not in data[:65536]:
            raise SourceError(f"{path}: no FortiGate log line (logid=...) in its first 64 KiB")
        return "FortiGate key=value syslog"

    def parse(self, chunk: Chunk, request: ReadRequest) -> tuple[pl.DataFrame, Quarantined, int]:
        """The tunnel-up/down lines of a chunk, with their times; bad lines quarantined."""
        return self._events(lines_frame(chunk), request)

    def parse_many(self, chunks: list[Chunk], request: ReadRequest) -> Parsed:
        """The events of many decoded chunks in one pass (one plan, not one per file)."""
        return self._events(lines_frame_many(chunks), request)

    def _events(self, lines: pl.DataFrame, request: ReadRequest) -> Parsed:
        tz = self.zone(request)
        df = lines.filter(pl.col("line").str.strip_chars() != "")
        read = df.height
        fortinet = pl.col("line").str.contains(r'(?:^|[\s>:])logid="?\d') & pl.col(
            "line"
        ).str.contains(r'(?:^|[\s>:])type="?[a-z]')
        q = quarantine_rows(
            df.filter(~fortinet), "not a FortiGate log line (no logid=/type= fields)"
        )
        # Only a line naming a tunnel-up or -down can be one (a plain substring test,
        # before the fields of every traffic line are extracted by pattern).
        df = df.filter(fortinet & pl.col("line").str.contains("tunnel-", literal=True))
        df = df.with_columns(kv("subtype"), kv("action"), kv("tunneltype"))
        types = [str(t) for t in (self.opt("tunnel_types") or [])]
        df = df.filter(
            (pl.col("subtype") == "vpn")
            & pl.col("action").is_in(["tunnel-up", "tunnel-down"])
            & (pl.col("tunneltype").is_in(types) | pl.col("tunneltype").is_null())
        )
        df = df.with_columns(kv(f) for f in FIELDS)
        ints = {"duration_s": "duration", "sent": "sentbyte", "rcvd": "rcvdbyte"}
        fast = {
            "time": epoch_us(pl.col("eventtime").cast(pl.Int64, strict=False)),
            **{name: pl.col(raw).cast(pl.Int64, strict=False) for name, raw in ints.items()},
        }
        doubt = pl.col("time").is_null() | pl.any_horizontal(
            pl.col(raw).is_not_null() & pl.col(name).is_null() for name, raw in ints.items()
        )

        def careful(rows: pl.DataFrame) -> pl.DataFrame:
            # Rows with no plain epoch (or an odd number): every form, and the date
            # and time fields, which a row with an epoch never needs.
            rows = rows.with_columns(kv("date"), kv("time"), kv("tz"))
            offset_time = pl.concat_str(
                pl.col("date"), pl.lit(" "), pl.col("time"), pl.lit(" "), pl.col("tz")
            )
            local_time = pl.concat_str(pl.col("date"), pl.lit(" "), pl.col("time"))
            return rows.with_columns(
                pl.coalesce(
                    epoch_us(parse_int(pl.col("eventtime"))),
                    parse_time(offset_time, ["%Y-%m-%d %H:%M:%S %z"], "UTC"),
                    parse_time(local_time, ["%Y-%m-%d %H:%M:%S"], tz),
                )
                .cast(UTC)
                .alias("time"),
                *(parse_int(pl.col(raw)).alias(name) for name, raw in ints.items()),
            )

        df = fast_or_careful(df, fast, doubt, careful)
        down = pl.col("action") == "tunnel-down"
        user = pl.col("user").fill_null("")
        df, bad = split_bad(
            df,
            [
                (pl.col("time").is_null(), "no usable time (eventtime, or date and time)"),
                (pl.col("tunnelid").is_null() | (pl.col("tunnelid") == ""), "no tunnelid"),
                (down & (user.is_in(["", "N/A"])), "tunnel-down without a user"),
                (
                    # An empty ``duration=`` is no duration: the tunnel-up gives the start.
                    down & failed(pl.col("duration"), pl.col("duration_s")),
                    pl.format("duration {} is not a number of seconds", pl.col("duration")),
                ),
                unparsed(pl.col("sentbyte"), pl.col("sent"), "sentbyte"),
                unparsed(pl.col("rcvdbyte"), pl.col("rcvd"), "rcvdbyte"),
            ],
            raw="line",
        )
        q.extend(bad)
        # What pairing needs: the raw line only where it may be quarantined (a
        # tunnel-down with no duration), so a window's text is freed once parsed.
        needs_line = down & pl.col("duration_s").is_null()
        return df.select(*EVENT_COLUMNS, pl.when(needs_line).then(pl.col("line"))), q, read

    def pair(
        self, events: pl.DataFrame, sessions: OpenSessions, q: Quarantined, state: dict[str, Any]
    ) -> pl.DataFrame:
        """Tunnel-ups open sessions; tunnel-downs close them into rows (in columns).

        Events are in time order. Within one tunnel key a down closes the up just
        before it; the first event of a key in this read may close a session opened in
        an earlier run (kept in the checkpoint); a key whose last event is an up stays
        open for the next run. A down carries its own duration in every FortiOS
        version seen; the up is needed only when it does not.
        """
        ev = events.with_columns(
            pl.format(
                "{}/{}/{}",
                pl.col("devid").fill_null(""),
                pl.col("vd").fill_null(""),
                pl.col("tunnelid"),
            ).alias("key")
        )
        up = pl.col("action") == "tunnel-up"
        # One stable sort by key (time order kept within a key) finds each event's
        # predecessor and the first and last event of every key in one pass.
        ev = ev.with_row_index("_i").sort("key", maintain_order=True)
        same_prev = (pl.col("key") == pl.col("key").shift(1)).fill_null(False)
        same_next = (pl.col("key") == pl.col("key").shift(-1)).fill_null(False)
        ev = ev.with_columns(
            pl.when(same_prev).then(pl.col("action").shift(1)).alias("_prev_action"),
            pl.when(same_prev).then(pl.col("time").shift(1)).alias("_prev_time"),
            (~same_prev).alias("_first"),
            (~same_next).alias("_last"),
        )
        saved = {k: v for k, v in sessions.items.items()}
        # An open session with an event now is closed or reopened by it; one with no
        # event now stays open; the last event of a key that is an up opens it.
        for key in ev.filter(pl.col("_first") & pl.col("key").is_in(list(saved)))["key"]:
            sessions.pop(key)
        last = ev.filter(pl.col("_last") & up).select("key", "time", "_location")
        for key, time, location in last.iter_rows():
            sessions.open(key, time, location)

        downs = ev.filter(~up).sort("_i")
        if downs.height == 0:
            return sessions_frame([])
        earlier = pl.DataFrame(
            {
                "key": list(saved),
                "_saved_start": [from_iso(v["start"]) for v in saved.values()],
            },
            schema={"key": pl.String, "_saved_start": pl.Datetime("us", "UTC")},
        )
        downs = downs.join(earlier, on="key", how="left")
        opener = (
            pl.when(pl.col("_prev_action") == "tunnel-up")
            .then(pl.col("_prev_time"))
            .when(pl.col("_first"))
            .then(pl.col("_saved_start"))
        )
        start = (
            pl.when(pl.col("duration_s").is_not_null())
            .then(pl.col("time") - pl.duration(seconds=pl.col("duration_s")))
            .otherwise(opener)
        )
        downs = downs.with_columns(start.alias("start_time"))
        unknown = downs.filter(pl.col("start_time").is_null())
        if unknown.height:
            q.extend(
                quarantine_rows(
                    unknown,
                    "tunnel-down without duration and no tunnel-up seen;"
                    " the session's start is unknown",
                )
            )
        closed = downs.filter(pl.col("start_time").is_not_null())
        return closed.select(
            pl.format("{}/{}", pl.col("key"), pl.col("start_time").dt.epoch("s")).alias(
                "session_id"
            ),
            pl.col("user").alias("person"),
            pl.col("start_time"),
            pl.col("time").alias("end_time"),
            pl.coalesce(
                pl.col("duration_s"),
                (pl.col("time") - pl.col("start_time")).dt.total_seconds(),
            ).alias("duration_seconds"),
            pl.coalesce(pl.col("devname"), pl.col("devid")).alias("gateway"),
            pl.col("tunneltype").alias("tunnel_type"),
            # UNVERIFIED direction: FortiOS documents sentbyte/rcvdbyte without a side;
            # we read them from the FortiGate's side (sent = to the client).
            pl.col("sent").alias("bytes_in"),
            pl.col("rcvd").alias("bytes_out"),
            pl.col("_location"),
        ).unique(subset=["session_id"], keep="last", maintain_order=True)
