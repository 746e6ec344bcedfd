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
from collections.abc import Iterator
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.adapters.parsing import parse_int, split_bad
from workstyle.adapters.syslog import (
    SESSION_OPTIONS,
    OpenSessions,
    digest,
    normalise_person,
    sessions_frame,
)
from workstyle.adapters.winevent import EVENT_FILE_OPTIONS, EventFiles, element, system_columns
from workstyle.collector.options import Option


class RdGateway(Adapter):
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

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        state = request.state if request.mode == "incremental" else {}
        manifest = dict(state.get("files", {}))
        files = EventFiles([str(p) for p in self.opt("paths")], self.opt("encoding") or "auto")
        new = files.new_files(request, manifest)
        q = Quarantined.empty()
        frames = []
        for f in new:
            q.extend(f.quarantined)
            frames.append(f.frame)
            manifest[f.fingerprint] = {"path": str(f.path)}
        ends = [str(e) for e in (self.opt("end_events") or [303])]
        events = (
            pl.concat(frames).with_columns(system_columns())
            if frames
            else pl.DataFrame(schema={"xml": pl.String})
        )
        rows_read = events.height
        if events.height:
            events = events.filter(pl.col("event_id").is_in(["302", *ends])).with_columns(
                element("Username").alias("user"),
                element("IpAddress").alias("ip"),
                element("Resource").alias("resource"),
                element("ConnectionProtocol").alias("protocol"),
                parse_int(element("SessionDuration")).alias("duration_s"),
                parse_int(element("BytesReceived")).alias("received"),
                parse_int(element("BytesTransfered")).alias("sent"),
                pl.col("xml").alias("line"),
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
                ],
                raw="line",
            )
            q.extend(bad)
            events = events.sort("time", "_location")
        sessions = OpenSessions(
            state.get("open"), dt.timedelta(hours=float(self.opt("open_session_max_hours") or 72))
        )
        rows = self._pair(events, sessions) if events.height else []
        newest = events.get_column("time").max() if events.height else None
        sessions.expire(newest if isinstance(newest, dt.datetime) else None, q)
        frame = normalise_person(
            sessions_frame(rows),
            self.opt("lowercase_users") is not False,
            self.opt("strip_domain") is not False,
        )
        yield Batch(
            table="remote_sessions",
            rows=frame,
            quarantined=q,
            rows_read=rows_read,
            checkpoint={"files": manifest, "open": sessions.dump()},
            unit=new[0].fingerprint if new else None,
            progress=(len(new), len(new)),
        )
        for f in new[1:]:
            yield Batch(table="remote_sessions", rows=sessions_frame([]), unit=f.fingerprint)
        files.raise_errors()

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
