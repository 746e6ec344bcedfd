"""Windows print-server jobs from PrintService events 307 (+ 805 for copies) (``print_jobs``).

Channel ``Microsoft-Windows-PrintService/Operational`` (off by default; see
docs/sources/infrastructure.md). Three export forms are read:

- ``wevtutil qe ... /f:xml`` output (``.xml``);
- ``.evtx`` files (``wevtutil epl`` or a copy of the live log), via the ``evtx`` package;
- ``Get-WinEvent ... | Export-Csv`` output: with ``Param1`` .. ``Param9`` columns
  (the documented ``Select-Object`` command, ``Properties[0..8]``), or a plain
  export whose ``Message`` is the English 307 text.

Event 307 ``UserData/DocumentPrinted/Param1..8``: job number, document, owner,
client, printer, port, bytes, pages (per copy). Copies are not in 307: event
805 (``RenderJobDiag``: ``JobId``, ``Color``, ``Copies``) is joined on computer +
job number, the latest 805 at or before the 307 within ``copies_match_minutes``
(job numbers are reused). 805s seen near the end of a run are kept in the
checkpoint for a 307 in the next export. Without an 805, one copy is assumed.
Duplex is in neither event, so ``sheets`` = pages and ``sheets_upper_bound`` is
always true for this source. The key is computer + EventRecordID of the 307.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.filebase import Chunk, live_chunk, live_request
from workstyle.adapters.parsing import DEFAULT_TIME_FORMATS, UTC, parse_int, parse_time, split_bad
from workstyle.adapters.sessions import check_timezone
from workstyle.adapters.winevent import (
    EVENT_FILE_OPTIONS,
    EventExports,
    element,
    system_columns,
)
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

#: The English 307 message (plain ``Get-WinEvent | Export-Csv`` has only this text).
MESSAGE_307 = (
    r"^Document (\d+), (.*) owned by (.*) on (.*) was printed on (.*) through port"
    r" (.*)\.\s+Size in bytes: (\d+)\.\s+Pages printed: (\d+)\."
)
EVENT_COLUMNS = {
    "event_id": pl.String,
    "record_id": pl.String,
    "computer": pl.String,
    "time": UTC,
    "p1": pl.String,
    "p2": pl.String,
    "p3": pl.String,
    "p4": pl.String,
    "p5": pl.String,
    "p6": pl.String,
    "p7": pl.String,
    "p8": pl.String,
    "copies_raw": pl.String,
    "color_raw": pl.String,
    "_location": pl.String,
    "line": pl.String,
}


class WindowsPrintEvents(EventExports):
    """PrintService 307/805 from wevtutil XML, .evtx or Export-Csv -> print_jobs."""

    kind: ClassVar[str] = "windows_print_events"
    allow_csv = True
    tables: ClassVar[tuple[str, ...]] = ("print_jobs",)
    summary: ClassVar[str] = (
        "Windows print server jobs from PrintService event 307 (copies"
        " from 805): wevtutil XML, .evtx or Get-WinEvent CSV."
    )
    options: ClassVar[tuple[Option, ...]] = (
        *EVENT_FILE_OPTIONS,
        Option(
            "timezone",
            "str",
            "Zone of TimeCreated in a plain Export-Csv (written in the exporting"
            " machine's local time); default: [collector] timezone.",
            default=None,
        ),
        Option(
            "copies_match_minutes",
            "int",
            "How long before a 307 its 805 (copies) may be.",
            default=60,
        ),
    )

    @classmethod
    def validate(cls, options: dict[str, Any]) -> list[tuple[str, str]]:  # type: ignore[override]
        return check_timezone(options)

    def parse(self, chunk: Chunk, request: ReadRequest) -> tuple[pl.DataFrame, Quarantined, int]:
        """The 307/805 events of one export (XML, .evtx or CSV)."""
        kind, frame, q = self.events(chunk)
        tz = self.opt("timezone") or request.timezone
        events = from_xml(frame) if kind == "xml" else from_csv(frame, tz, chunk.path)
        return events, q, frame.height

    def combine(
        self,
        frames: list[pl.DataFrame],
        request: ReadRequest,
        state: dict[str, Any],
        q: Quarantined,
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        """Jobs of every 307, copies from the 805s (kept for the next run's 307s too)."""
        events = (
            pl.concat(frames, how="vertical_relaxed")
            if frames
            else pl.DataFrame(schema=EVENT_COLUMNS)
        )
        jobs, pending, bad = self._jobs(events, state.get("pending_805", []))
        q.extend(bad)
        return jobs, {"pending_805": pending}

    def _jobs(
        self, events: pl.DataFrame, saved_805: list[dict[str, Any]]
    ) -> tuple[pl.DataFrame, list[dict[str, Any]], Quarantined]:
        """307 rows joined with their 805, the 805s to keep, and bad 307s."""
        printed = events.filter(pl.col("event_id") == "307").with_columns(
            parse_int(pl.col("p1")).alias("job_no"),
            parse_int(pl.col("p8")).alias("pages_per_copy"),
        )
        printed, q = split_bad(
            printed,
            [
                (pl.col("time").is_null(), "no TimeCreated"),
                (
                    pl.col("record_id").is_null() | pl.col("computer").is_null(),
                    "no EventRecordID or Computer",
                ),
                (pl.col("job_no").is_null(), "Param1 (job number) is not a number"),
                (pl.col("pages_per_copy").is_null(), "Param8 (pages printed) is not a number"),
            ],
            raw="line",
        )
        rendered = events.filter(pl.col("event_id") == "805").select(
            "computer",
            parse_int(pl.col("p1")).alias("job_no"),
            "time",
            parse_int(pl.col("copies_raw")).alias("copies"),
            parse_int(pl.col("color_raw")).alias("color_mode"),
        )
        if saved_805:
            rendered = pl.concat(
                [
                    pl.DataFrame(saved_805).with_columns(
                        pl.col("time")
                        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f")
                        .dt.replace_time_zone("UTC")
                        .cast(UTC)
                    ),
                    rendered,
                ],
                how="diagonal_relaxed",
            )
        rendered = rendered.filter(
            pl.col("job_no").is_not_null()
            & pl.col("time").is_not_null()
            & pl.col("computer").is_not_null()
        )
        window = dt.timedelta(minutes=int(self.opt("copies_match_minutes") or 60))
        joined = printed.sort("time").join_asof(
            rendered.sort("time"),
            on="time",
            by=["computer", "job_no"],
            strategy="backward",
            tolerance=window,
            check_sortedness=False,
        )
        copies = pl.col("copies")
        pages = pl.col("pages_per_copy") * pl.col("copies").fill_null(1)
        jobs = joined.select(
            pl.format("{}:{}", pl.col("computer"), pl.col("record_id")).alias("job_id"),
            pl.col("time").alias("printed_at"),
            pl.col("p3").alias("person"),
            pl.col("p5").alias("printer"),
            pl.col("p4").str.strip_prefix("\\\\").alias("client"),
            pages.alias("pages"),
            copies.alias("copies"),
            pl.lit(None, pl.Boolean).alias("duplex"),
            # dmColor: 1 monochrome, 2 colour (the requested setting, not the output).
            pl.when(pl.col("color_mode") == 2)
            .then(True)
            .when(pl.col("color_mode") == 1)
            .then(False)
            .otherwise(None)
            .alias("color"),
            pl.lit(None, pl.String).alias("paper_size"),
            # Duplex is never known from these events: at most this many sheets.
            pages.alias("sheets"),
            pl.lit(True).alias("sheets_upper_bound"),
            pl.lit(None, pl.String).alias("department"),
            pl.col("p2").alias("document_name"),
            "_location",
        )
        # Keep the 805s of the last window for a 307 in the next export.
        newest = rendered.get_column("time").max()
        keep = rendered.filter(pl.col("time") >= newest - window) if newest else rendered
        pending = keep.with_columns(pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")).to_dicts()
        return jobs, pending, q


def file_jobs(adapter: WindowsPrintEvents, path: Path, data: bytes, tz: str) -> pl.DataFrame:
    """``print_jobs`` rows of one export file (copies from its own 805s): for the live reader."""
    chunk = (
        Chunk(path, "live", 1, "", data)
        if adapter.binary(data)
        else live_chunk(path, data, 1, adapter.opt("encoding"))
    )
    events, _, _ = adapter.parse(chunk, live_request(tz))
    return adapter._jobs(events, [])[0]


def from_xml(frame: pl.DataFrame) -> pl.DataFrame:
    """307/805 fields out of event XML, columnar."""
    df = frame.with_columns(system_columns()).filter(pl.col("event_id").is_in(["307", "805"]))
    p = [element(f"Param{i}").alias(f"p{i}") for i in range(2, 9)]
    return df.with_columns(
        *p,
        element("Copies").alias("copies_raw"),
        element("Color").alias("color_raw"),
        # 307 numbers the job in Param1, 805 in JobId.
        pl.coalesce(element("Param1"), element("JobId")).alias("p1"),
        pl.col("xml").alias("line"),
    ).select(list(EVENT_COLUMNS))


def from_csv(frame: pl.DataFrame, tz: str, path: Path) -> pl.DataFrame:
    """307/805 fields out of a Get-WinEvent CSV (Param columns, or the English Message)."""
    cols = set(frame.columns)
    missing = {"Id", "RecordId", "MachineName", "TimeCreated"} - cols
    if missing:
        raise_csv(path, f"no {', '.join(sorted(missing))} column(s)")
    df = frame.rename({"Id": "event_id", "RecordId": "record_id", "MachineName": "computer"})
    df = df.filter(pl.col("event_id").str.strip_chars().is_in(["307", "805"]))
    line = pl.concat_str(
        [pl.col(c).fill_null("") for c in frame.columns if c in df.columns], separator=","
    )
    time = parse_time(
        pl.col("TimeCreated"), ["%Y-%m-%dT%H:%M:%S%.f%:z", *DEFAULT_TIME_FORMATS], tz
    ).cast(UTC)
    if "Param1" in cols:
        params = [
            pl.col(f"Param{i}") if f"Param{i}" in cols else pl.lit(None, pl.String)
            for i in range(1, 10)
        ]
        is805 = pl.col("event_id") == "805"
        out = df.with_columns(
            *[params[i - 1].alias(f"p{i}") for i in range(1, 9)],
            # RenderJobDiag order: JobId, GdiJobSize, ICMMethod, Color, XRes, YRes,
            # Quality, Copies, TTOption.
            pl.when(is805).then(params[7]).alias("copies_raw"),
            pl.when(is805).then(params[3]).alias("color_raw"),
        )
    elif "Message" in cols:
        m = pl.col("Message").str.extract_groups(MESSAGE_307)
        out = df.with_columns(
            *[m.struct.field(str(i)).alias(f"p{i}") for i in range(1, 9)],
            pl.lit(None, pl.String).alias("copies_raw"),
            pl.lit(None, pl.String).alias("color_raw"),
        )
    else:
        raise_csv(path, "neither Param1..Param8 nor Message columns")
    return out.with_columns(time.alias("time"), line.alias("line")).select(list(EVENT_COLUMNS))


def raise_csv(path: Path, problem: str) -> NoReturn:
    """A whole CSV file is not a usable export: one line naming it and what to do."""
    raise SourceError(
        f"{path}: {problem}; export with the Get-WinEvent | Select-Object |"
        " Export-Csv command in docs/sources/infrastructure.md"
    )
