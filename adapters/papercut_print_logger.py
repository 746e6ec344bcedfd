"""PaperCut Print Logger daily CSV files -> ``print_jobs``.

The free PaperCut Print Logger writes ``papercut-print-log-YYYY-MM-DD.csv``::

    PaperCut Print Logger - http://www.papercut.com/
    Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,Height,...
    2020-05-29 17:50:10,pmerton,1,1,HP-MFT01,"Notepad",JUMP01,LETTER,PCL6,,,...,19kb,

A banner line precedes the header; data rows end with a trailing comma (15 fields
for 14 names, a row without it is accepted too); ``Time`` is server-local time
without a zone; ``Size`` carries its unit. ``Pages`` is the total over all copies.

Sheets of a job: when duplex, ``copies x ceil(pages per copy / 2)`` with pages per
copy = ``ceil(Pages / Copies)``; otherwise ``Pages``. Duplex and copies are always
known here, so ``sheets_upper_bound`` is false.

The daily file grows during the day: it is recognised by a fingerprint of its
first three lines and read from the byte where the last run stopped; a job's key
is that fingerprint plus its line number, so a copied or renamed file (or its
``.gz``) is never counted twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import ClassVar

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.csvread import read_csv_lines
from workstyle.adapters.filebase import Chunk, FileAdapter, live_chunk, live_request
from workstyle.adapters.files import ENCODINGS, strip_bom
from workstyle.adapters.parsing import blank_to_null, failed, parse_time, split_bad
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option
from workstyle.schemas import derivations

BANNER = b"PaperCut Print Logger"
HEADER = (
    "Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,"
    "Height,Width,Duplex,Grayscale,Size"
)
NAMES = HEADER.split(",")
FIELDS = [*NAMES, "_trailing"]
_FILE_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?\.csv")


class PaperCutPrintLogger(FileAdapter):
    kind = "papercut_print_logger"
    head_lines = 3  # banner, header, first job
    quoted = True
    threaded = True
    recognise_on_read = True
    tables = ("print_jobs",)
    summary = "PaperCut Print Logger daily CSV files (papercut-print-log-YYYY-MM-DD.csv)."
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "path",
            "path",
            "Folder holding the daily CSV files (the logger's logs\\csv\\daily).",
            required=True,
            identity=True,
        ),
        Option(
            "pattern",
            "str",
            "File name glob inside the folder (.gz copies match too).",
            default="papercut-print-log-????-??-??.csv*",
        ),
        Option("encoding", "str", "Text encoding of the files.", default="auto", choices=ENCODINGS),
        Option(
            "timezone",
            "str",
            "Zone of the print server's clock; default [collector] timezone.",
            default=None,
        ),
        Option(
            "settle_seconds",
            "float",
            "A last line without newline is read once the file has not changed for this long.",
            default=300.0,
        ),
    )

    def patterns(self) -> list[Path]:
        return [self.source.path("path") / self.opt("pattern")]

    def may_hold(self, path: Path, request: ReadRequest) -> bool:
        return request.mode != "backfill" or _may_hold_window(path, request)

    def recognise(self, path: Path, data: bytes) -> str:
        if not strip_bom(data[:64]).startswith(BANNER[: len(data)]):
            raise SourceError(
                f"{path}: not a PaperCut Print Logger CSV (first line"
                " is not the 'PaperCut Print Logger' banner)"
            )
        return "PaperCut Print Logger CSV"

    def parse(self, chunk: Chunk, request: ReadRequest) -> tuple[pl.DataFrame, Quarantined, int]:
        """Rows of one chunk (from the banner, or from where the last run stopped)."""
        text, first_line, path = chunk.text, chunk.first_line, chunk.path
        if first_line == 1:
            banner, header, text = (text.split("\n", 2) + ["", ""])[:3]
            header = header.strip().rstrip(",")
            if header != HEADER:
                raise SourceError(
                    f"{path}: unexpected header {header[:80]!r}; expected {HEADER[:40]}..."
                )
            first_line = 3
        df, invalid = read_csv_lines(text, path, first_line=first_line, column_names=FIELDS)
        q = Quarantined.empty()
        rescued = []
        for row in invalid:
            if row.fields == len(NAMES):  # a row without the trailing comma is fine
                rescued.append(
                    {
                        **dict(zip(NAMES, next(csv.reader([row.text])), strict=True)),
                        "_trailing": "",
                        "_line": row.line,
                    }
                )
            else:
                q.add(
                    f"{path}:{row.line}",
                    f"expected {len(NAMES)} fields (+ trailing comma), found {row.fields}",
                    row.text,
                )
        if rescued:
            extra = pl.DataFrame(
                rescued, schema={**{f: pl.String for f in FIELDS}, "_line": pl.Int64}
            )
            df = pl.concat([df, extra]).sort("_line")
        df = df.with_columns(pl.lit(str(path)).cast(pl.Categorical).alias("_file"))
        rows, bad = self._to_canonical(df, chunk.identity, self.opt("timezone") or request.timezone)
        if len(bad):
            raw_lines = text.split("\n")
            bad.raw = [
                raw_lines[int(loc.rsplit(":", 1)[1]) - first_line].rstrip("\r")
                for loc in bad.location
            ]
        q.extend(bad)
        return rows, q, rows.height + len(q)

    @staticmethod
    def _to_canonical(df: pl.DataFrame, fp: str, tz: str) -> tuple[pl.DataFrame, Quarantined]:
        time = parse_time(pl.col("Time"), ("%Y-%m-%d %H:%M:%S",), tz)
        # PaperCut writes plain integers: a direct cast is enough (and much cheaper).
        pages = pl.col("Pages").str.strip_chars().cast(pl.Int64, strict=False)
        copies = pl.col("Copies").str.strip_chars().cast(pl.Int64, strict=False)
        duplex_raw = blank_to_null(pl.col("Duplex")).str.to_uppercase()
        gray_raw = blank_to_null(pl.col("Grayscale")).str.to_uppercase()
        df = df.with_columns(
            time.alias("printed_at"),
            pages.alias("pages"),
            copies.alias("copies"),
            duplex_raw.alias("_duplex"),
            gray_raw.alias("_gray"),
        )
        checks = [
            (
                pl.col("printed_at").is_null(),
                pl.format("Time {} is not yyyy-MM-dd HH:mm:ss", pl.col("Time")),
            ),
            (
                failed(pl.col("Pages"), pl.col("pages")) | pl.col("Pages").str.strip_chars().eq(""),
                pl.format("Pages {} is not a whole number", pl.col("Pages")),
            ),
            (pl.col("pages") < 0, "negative Pages"),
            (
                failed(pl.col("Copies"), pl.col("copies")) | (pl.col("copies") < 1),
                pl.format("Copies {} is not a whole number >= 1", pl.col("Copies")),
            ),
            (
                ~pl.col("_duplex").is_in(["DUPLEX", "NOT DUPLEX"]).fill_null(False),
                pl.format("Duplex {} is not DUPLEX or NOT DUPLEX", pl.col("Duplex")),
            ),
            (
                ~pl.col("_gray").is_in(["GRAYSCALE", "NOT GRAYSCALE"]).fill_null(False),
                pl.format("Grayscale {} is not GRAYSCALE or NOT GRAYSCALE", pl.col("Grayscale")),
            ),
        ]
        good, q = split_bad(df, checks)
        duplex = pl.col("_duplex") == "DUPLEX"
        sheets, _ = derivations.sheets(pl.col("pages"), pl.col("copies"), duplex)
        rows = good.select(
            pl.format("{}:{}", pl.lit(fp[:16]), pl.col("_line")).alias("job_id"),
            pl.col("printed_at"),
            pl.col("User").alias("person"),
            blank_to_null(pl.col("Printer")).alias("printer"),
            blank_to_null(pl.col("Client")).alias("client"),
            pl.col("pages"),
            pl.col("copies"),
            duplex.alias("duplex"),
            (pl.col("_gray") == "NOT GRAYSCALE").alias("color"),
            blank_to_null(pl.col("Paper Size")).alias("paper_size"),
            sheets.alias("sheets"),
            pl.lit(False).alias("sheets_upper_bound"),
            pl.col("Document Name").alias("document_name"),
            pl.col("_file"),
            pl.col("_line"),
        )
        return rows, q


def _may_hold_window(path: Path, request: ReadRequest) -> bool:
    """Skip daily files whose name date is clearly outside a backfill window."""
    m = _FILE_DATE.search(path.name)
    if not m:
        return True
    year, month = int(m.group(1)), int(m.group(2))
    if m.group(3):  # a daily file
        first = last = dt.date(year, month, int(m.group(3)))
    else:  # a monthly file
        first = dt.date(year, month, 1)
        last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    margin = dt.timedelta(days=1)  # the file's local days vs the UTC window
    if request.start and last < request.start.date() - margin:
        return False
    return not (request.end and first > request.end.date() + margin)


def parse_chunk(
    adapter: PaperCutPrintLogger, path: Path, data: bytes, offset: int, line: int, tz: str
) -> tuple[pl.DataFrame, Quarantined, int]:
    """``print_jobs`` rows of the complete lines in ``data[offset:]`` (offset 0 checks the
    banner and header) and the lines consumed: for the live reader."""
    end = data.rfind(b"\n") + 1
    if end <= offset:
        return pl.DataFrame(), Quarantined.empty(), line
    chunk = live_chunk(path, data[offset:end], line + 1, adapter.opt("encoding"))
    rows, q, _ = adapter.parse(chunk, live_request(tz))
    return rows, q, line + data.count(b"\n", offset, end)
