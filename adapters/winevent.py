"""Reading Windows event exports: ``wevtutil qe /f:xml`` output and ``.evtx`` files.

Shared by ``windows_print_events`` and ``rd_gateway``. Every event becomes one row
holding its XML text and ``path:line`` location; fields are then pulled out of
all events at once with polars regular expressions, so a year of a busy print
server's events is parsed without a Python loop per event. The XML that
wevtutil and the evtx parser write is machine-made and regular (no CDATA, the
five predefined entities), which is what makes that safe.

``.evtx`` files are read with the ``evtx`` package (Rust parser, Python wheels),
which renders each record to the same XML a wevtutil export holds.

Export files are written once, so they are recognised by a hash of their whole
content: a copy or a rename is not read again; a re-export that overlaps the
last one is read whole and the natural keys (computer + EventRecordID) keep one
row per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.files import content_fingerprint, discover, read_bytes, to_utf8
from workstyle.adapters.parsing import UTC, parse_time
from workstyle.adapters.syslog import quarantine_rows
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

EVTX_MAGIC = b"ElfFile\x00"
SYSTEM_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
)

EVENT_FILE_OPTIONS: tuple[Option, ...] = (
    Option(
        "paths",
        "list",
        "Glob patterns of the exported files: wevtutil XML (*.xml), .evtx, or CSV"
        " where the kind accepts it.",
        required=True,
        identity=True,
    ),
    Option(
        "encoding",
        "str",
        "Text encoding of XML/CSV exports.",
        default="auto",
        choices=("utf-8", "cp932", "auto"),
    ),
)


@dataclass
class EventFile:
    """One export file not read before, decoded into a frame of events."""

    path: Path
    fingerprint: str
    #: ``xml`` (one row per event: ``xml``, ``_location``) or ``csv`` (the CSV's columns).
    kind: str
    frame: pl.DataFrame
    quarantined: Quarantined


@dataclass
class EventFiles:
    """Finds export files and decodes the ones not read before."""

    patterns: list[str]
    encoding: str = "auto"
    allow_csv: bool = False
    errors: list[str] = field(default_factory=list)

    def new_files(self, request: ReadRequest, manifest: dict[str, Any]) -> list[EventFile]:
        """Files whose content was not read before (incremental) or not done (backfill)."""
        out: list[EventFile] = []
        seen: set[str] = set()
        for path in discover(self.patterns):
            try:
                data = read_bytes(path)
                fp = content_fingerprint(data)
                if (
                    fp in seen
                    or (request.mode == "incremental" and fp in manifest)
                    or (request.mode == "backfill" and fp in request.done_units)
                ):
                    continue
                seen.add(fp)
                out.append(self._decode(path, fp, data))
            except SourceError as exc:
                self.errors.append(str(exc))
        return out

    def _decode(self, path: Path, fp: str, data: bytes) -> EventFile:
        if data.startswith(EVTX_MAGIC):
            return EventFile(path, fp, "xml", evtx_events(path), Quarantined.empty())
        text = to_utf8(data, self.encoding, path).decode("utf-8")
        head = text.lstrip()[:200]
        if head.startswith("<"):
            frame, q = xml_events(text, path)
            return EventFile(path, fp, "xml", frame, q)
        if self.allow_csv:
            return EventFile(path, fp, "csv", csv_events(text, path), Quarantined.empty())
        raise SourceError(
            f"{path}: neither a wevtutil XML export nor an .evtx file; export"
            " with 'wevtutil qe <channel> /f:xml' or 'wevtutil epl'"
        )

    def raise_errors(self) -> None:
        """One SourceError naming every file that could not be read, after the others."""
        if self.errors:
            raise SourceError("; ".join(self.errors))


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


def csv_events(text: str, path: Path) -> pl.DataFrame:
    """A ``Get-WinEvent | Export-Csv`` file, all columns as text, with ``path:line``."""
    lines = text.splitlines()
    if lines and lines[0].startswith("#TYPE"):
        # Windows PowerShell 5.1 writes a '#TYPE ...' line unless -NoTypeInformation.
        text = "\n".join(lines[1:])
        skipped = 1
    else:
        skipped = 0
    try:
        df = pl.read_csv(text.encode("utf-8"), infer_schema=False, truncate_ragged_lines=True)
    except pl.exceptions.PolarsError as exc:
        raise SourceError(f"{path}: not a readable CSV export ({exc})") from None
    # Data row i is on line i + 2 (+1 after a #TYPE line); events have one-line values.
    return (
        df.with_row_index("_i")
        .with_columns(
            pl.format("{}:{}", pl.lit(str(path)), pl.col("_i") + 2 + skipped).alias("_location")
        )
        .drop("_i")
    )


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
