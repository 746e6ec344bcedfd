"""Remote Desktop Gateway sessions from exported gateway events (``remote_sessions``).

Channel ``Microsoft-Windows-TerminalServices-Gateway/Operational``:

- 302 "user connected to resource": ``UserData/EventInfo`` has ``Username``,
  ``IpAddress`` (client), ``Resource``, ``ConnectionProtocol``;
- 303 "user disconnected": the same plus ``BytesReceived``, ``BytesTransfered``
  and ``SessionDuration`` (seconds).

A session row is written from each end event (303 by default; 202/307/309 carry
the same fields and can be added with ``end_events`` if the gateway logs them
without a 303). Its key is the end event's computer + EventRecordID, and its start
is the end time minus the duration. 302s without a 303 yet are kept in the
checkpoint, and quarantined if no end ever comes. Event times are UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.filebase import Chunk
from workstyle.adapters.parsing import parse_int, split_bad, unparsed
from workstyle.adapters.sessions import SESSION_OPTIONS, OpenSessions, SessionPairing, digest
from workstyle.adapters.winevent import (
    EVENT_FILE_OPTIONS,
    EventExports,
    element,
    system_columns,
)
from workstyle.collector.options import Option


class RdGateway(SessionPairing, EventExports):
    """RD Gateway 302/303 events (wevtutil XML or .evtx) -> remote_sessions."""

    kind: ClassVar[str] = "rd_gateway"
    tables: ClassVar[tuple[str, ...]] = ("remote_sessions",)
    summary: ClassVar[str] = (
        "Remote Desktop Gateway sessions from exported 302/303 events (wevtutil XML or .evtx)."
    )
    options: ClassVar[tuple[Option, ...]] = (
        *EVENT_FILE_OPTIONS,
        Option(
            "end_events",
            "list",
            "Event ids that end a session and carry its duration and bytes.",
            default=[303],
        ),
        *SESSION_OPTIONS,
    )

    @classmethod
    def validate(cls, options: Any) -> list[tuple[str, str]]:
        return []

    def parse(self, chunk: Chunk, request: ReadRequest) -> tuple[pl.DataFrame, Quarantined, int]:
        """The 302 and end events of one export, with their fields; bad events quarantined."""
        _, frame, q = self.events(chunk)
        ends = [str(e) for e in (self.opt("end_events") or [303])]
        events = frame.with_columns(system_columns())
        read = events.height
        events = events.filter(pl.col("event_id").is_in(["302", *ends])).with_columns(
            element("Username").alias("user"),
            element("IpAddress").alias("ip"),
            element("Resource").alias("resource"),
            element("ConnectionProtocol").alias("protocol"),
            element("SessionDuration").alias("_duration"),
            element("BytesReceived").alias("_received"),
            element("BytesTransfered").alias("_sent"),
            pl.col("xml").alias("line"),
        )
        events = events.with_columns(
            parse_int(pl.col("_duration")).alias("duration_s"),
            parse_int(pl.col("_received")).alias("received"),
            parse_int(pl.col("_sent")).alias("sent"),
        )
        is_end = pl.col("event_id").is_in(ends)
        events, bad = split_bad(
            events,
            [
                (pl.col("time").is_null(), "no TimeCreated SystemTime"),
                (
                    pl.col("record_id").is_null() | pl.col("computer").is_null(),
                    "no EventRecordID or Computer",
                ),
                (pl.col("user").is_null(), "no Username in EventInfo"),
                (is_end & pl.col("duration_s").is_null(), "end event without SessionDuration"),
                unparsed(pl.col("_received"), pl.col("received"), "BytesReceived"),
                unparsed(pl.col("_sent"), pl.col("sent"), "BytesTransfered"),
            ],
            raw="line",
        )
        q.extend(bad)
        return events, q, read

    def pair(
        self, events: pl.DataFrame, sessions: OpenSessions, q: Quarantined, state: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return self._pair(events, sessions)

    @staticmethod
    def _pair(events: pl.DataFrame, sessions: OpenSessions) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        # Only 302/303 events reach this loop (a few per session).
        for r in events.iter_rows(named=True):
            key = digest(r["computer"], (r["user"] or "").lower(), r["ip"], r["resource"])
            if r["event_id"] == "302":
                sessions.open(key, r["time"], r["_location"])
                continue
            sessions.pop(key)
            end: dt.datetime = r["time"]
            duration = int(r["duration_s"])
            rows.append(
                {
                    "session_id": f"{r['computer']}:{r['record_id']}",
                    "person": r["user"],
                    "start_time": end - dt.timedelta(seconds=duration),
                    "end_time": end,
                    "duration_seconds": duration,
                    "gateway": r["computer"],
                    "tunnel_type": f"rdg-{(r['protocol'] or 'unknown').lower()}",
                    # "the client transferred BytesTransfered and received BytesReceived"
                    "bytes_in": r["received"],
                    "bytes_out": r["sent"],
                    "_location": r["_location"],
                }
            )
        return rows
