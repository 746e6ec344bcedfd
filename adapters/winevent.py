"""Reading Windows event exports: ``wevtutil qe /f:xml`` output and ``.evtx`` files.

Shared by ``windows_print_events`` and ``rd_gateway``. Every event becomes one row
holding its XML text and ``path:line`` location; fields are then pulled out of
all events at once with polars regular expressions, so a year of a busy print
server's events is parsed without a Python loop per event. The XML that
wevtutil and the evtx parser write is machine-made and regular (no CDATA, the
five predefined entities), which is what makes that safe.

``.evtx`` files are read with the ``evtx`` package (Rust parser, Python wheels),
which renders each record to the same XML a wevtutil export holds.

Export files are written once, so :class:`EventExports` (the FileAdapter of both
kinds) recognises them by a hash of their whole content: a copy or a rename is
not read again; a re-export that overlaps the last one is read whole and the
natural keys (computer + EventRecordID) keep one row per event.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from workstyle.adapters.base import Quarantined
from workstyle.adapters.csvread import read_csv_lines
from workstyle.adapters.filebase import PATHS_OPTIONS, Chunk, FileAdapter, quarantine_rows
from workstyle.adapters.parsing import UTC, parse_time
from workstyle.collector.errors import SourceError

EVTX_MAGIC = b"ElfFile\x00"
SYSTEM_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
)

#: Options of the event-export kinds (the same shape as every glob-reading kind).
EVENT_FILE_OPTIONS = PATHS_OPTIONS


class EventExports(FileAdapter):
    """Base of the event-export kinds: each file whole, decoded into a frame of events."""

    growth = "whole"
    combined = True
    #: Whether ``Get-WinEvent | Export-Csv`` files are accepted.
    allow_csv: ClassVar[bool] = False

    def binary(self, data: bytes) -> bool:
        return data.startswith(EVTX_MAGIC)

    def recognise(self, path: Path, data: bytes) -> str:
        if data.startswith(EVTX_MAGIC):
            return ".evtx file"
        head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"<"):
            return "wevtutil XML export"
        header = [*head.split(b"\n", 2), b""][1 if head.startswith(b"#TYPE") else 0]
        if self.allow_csv and all(c in header for c in (b"Id", b"RecordId", b"TimeCreated")):
            return "Get-WinEvent CSV export"
        raise SourceError(
            f"{path}: neither a wevtutil XML export nor an .evtx file"
            + (
                " nor a Get-WinEvent | Export-Csv file (Id, RecordId, TimeCreated)"
                if self.allow_csv
                else ""
            )
            + "; export with 'wevtutil qe <channel> /f:xml' or 'wevtutil epl'"
        )

    def events(self, chunk: Chunk) -> tuple[str, pl.DataFrame, Quarantined]:
        """``xml`` (rows of ``xml``, ``_location``) or ``csv`` (the export's columns)."""
        what = self.recognise(chunk.path, chunk.data)
        if what == ".evtx file":
            return "xml", evtx_events(chunk.path), Quarantined.empty()
        if what == "wevtutil XML export":
            frame, q = xml_events(chunk.text, chunk.path)
            return "xml", frame, q
        frame, q = csv_events(chunk.text, chunk.path)
        return "csv", frame, q


def xml_events(text: str, path: Path) -> tuple[pl.DataFrame, Quarantined]:
    """Split a wevtutil XML export into one row per ``<Event>`` with its line number."""
    chunks = pl.DataFrame({"chunk": pl.Series([text]).str.split("</Event>").explode()})
    chunks = chunks.with_columns(
        pl.col("chunk").str.count_matches("\n").alias("_nl"),
        pl.col("chunk").str.find("<Event[ >]").alias("_at"),
    ).with_columns(
        (pl.col("_nl").cum_sum().shift(1, fill_value=0) + 1).alias("_first"),
    )
    lead = pl.col("chunk").str.slice(0, pl.col("_at")).str.count_matches("\n")
    chunks = chunks.with_columns(
        pl.format("{}:{}", pl.lit(str(path)), pl.col("_first") + lead.fill_null(0)).alias(
            "_location"
        ),
        (pl.col("chunk").str.slice(pl.col("_at")) + pl.lit("</Event>")).alias("xml"),
    )
    last = chunks.height - 1
    trailing = chunks.with_row_index("_i").filter(pl.col("_i") == last)
    events = chunks.with_row_index("_i").filter(pl.col("_i") < last)
    q = Quarantined.empty()
    # After the last </Event> only the closing root element (or nothing) may follow.
    rest = trailing.filter(~pl.col("chunk").str.contains(r"^\s*(</Events>)?\s*$"))
    q.extend(
        quarantine_rows(
            rest.rename({"chunk": "line"}), "truncated event at the end of the export (no </Event>)"
        )
    )
    bad = events.filter(pl.col("_at").is_null())
    q.extend(
        quarantine_rows(
            bad.rename({"chunk": "line"}), "text between events is not an <Event> element"
        )
    )
    return events.filter(pl.col("_at").is_not_null()).select("xml", "_location"), q


def evtx_events(path: Path) -> pl.DataFrame:
    """The records of an .evtx file as XML text, located by record number."""
    try:
        from evtx import PyEvtxParser
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise SourceError(f"{path}: reading .evtx needs the 'evtx' package ({exc})") from None
    xml: list[str] = []
    where: list[str] = []
    try:
        # The parser is Rust; this loop only collects its rendered strings.
        for record in PyEvtxParser(str(path)).records():
            xml.append(record["data"])
            where.append(f"{path}:record {record['event_record_id']}")
    except (OSError, RuntimeError) as exc:
        raise SourceError(
            f"{path}: not a readable .evtx file ({exc}); copy it again from"
            " the server or export with 'wevtutil epl'"
        ) from None
    return pl.DataFrame(
        {"xml": xml, "_location": where}, schema={"xml": pl.String, "_location": pl.String}
    )


def csv_events(text: str, path: Path) -> tuple[pl.DataFrame, Quarantined]:
    """A ``Get-WinEvent | Export-Csv`` file, all columns as text, with ``path:line``."""
    first = 1
    if text.startswith("#TYPE"):
        # Windows PowerShell 5.1 writes a '#TYPE ...' line unless -NoTypeInformation.
        text = text.split("\n", 1)[1] if "\n" in text else ""
        first = 2
    df, invalid = read_csv_lines(text, path, first_line=first)
    q = Quarantined.empty()
    for row in invalid:
        q.add(f"{path}:{row.line}", f"expected {df.width - 1} fields, found {row.fields}", row.text)
    located = pl.format("{}:{}", pl.lit(str(path)), pl.col("_line")).alias("_location")
    return df.with_columns(located).drop("_line"), q


def unescape(col: pl.Expr) -> pl.Expr:
    """Undo the XML escapes wevtutil writes (``&amp;`` last, so ``&amp;lt;`` stays ``&lt;``)."""
    return (
        col.str.replace_all("&lt;", "<", literal=True)
        .str.replace_all("&gt;", ">", literal=True)
        .str.replace_all("&quot;", '"', literal=True)
        .str.replace_all("&apos;", "'", literal=True)
        .str.replace_all("&#13;", "", literal=True)
        .str.replace_all("&#10;", "\n", literal=True)
        .str.replace_all("&amp;", "&", literal=True)
    )


def element(name: str) -> pl.Expr:
    """Text of ``<name>..</name>`` or ``<Data Name='name'>..</Data>`` in the event XML."""
    x = pl.col("xml")
    return unescape(
        pl.coalesce(
            x.str.extract(rf"<{name}(?:\s[^>]*)?>([^<]*)</{name}>", 1),
            x.str.extract(rf"<Data Name=[\"']{name}[\"']>([^<]*)</Data>", 1),
        )
    )


def system_columns() -> list[pl.Expr]:
    """EventID, EventRecordID, Computer, provider and TimeCreated (UTC) of each event."""
    x = pl.col("xml")
    return [
        x.str.extract(r"<EventID[^>]*>(\d+)</EventID>", 1).alias("event_id"),
        x.str.extract(r"<EventRecordID>(\d+)</EventRecordID>", 1).alias("record_id"),
        unescape(x.str.extract(r"<Computer>([^<]*)</Computer>", 1)).alias("computer"),
        x.str.extract(r"<Provider Name=[\"']([^\"']+)[\"']", 1).alias("provider"),
        parse_time(
            x.str.extract(r"<TimeCreated SystemTime=[\"']([^\"']+)[\"']", 1),
            SYSTEM_TIME_FORMATS,
            "UTC",
        )
        .cast(UTC)
        .alias("time"),
    ]
