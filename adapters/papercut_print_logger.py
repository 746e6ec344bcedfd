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
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.csvread import read_csv_lines, read_csv_many
from workstyle.adapters.filebase import Chunk, FileAdapter, Parsed, live_chunk, live_request
from workstyle.adapters.files import ENCODINGS, MAX_LINE_BYTES, strip_bom
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
    grouped = True
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
        df = df.with_columns(
            pl.lit(str(path)).cast(pl.Categorical).alias("_file"),
            pl.lit(chunk.identity[:16]).alias("_fp"),
        )
        rows, bad = self._to_canonical(df, self.opt("timezone") or request.timezone)
        if len(bad):
            raw_lines = text.split("\n")
            bad.raw = [
                raw_lines[int(loc.rsplit(":", 1)[1]) - first_line].rstrip("\r")
                for loc in bad.location
            ]
        q.extend(bad)
        return rows, q, rows.height + len(q)

    def parse_many(self, chunks: list[Chunk], request: ReadRequest) -> Parsed | None:
        """Many chunks' rows in one parse and one plan; None for what needs :meth:`parse`."""
        if (self.opt("encoding") or "auto") not in ("auto", "utf-8"):
            return None
        bodies: list[bytes] = []
        firsts: list[int] = []
        for c in chunks:
            data = c.data
            if c.memo.get("encoding") not in (None, "utf-8") or len(data) > MAX_LINE_BYTES:
                return None
            if data.count(b'"') % 2:
                return None  # a quote left open: a record over lines, or a truncated one
            first = c.first_line
            if first == 1:
                data = strip_bom(data)
                end = data.find(b"\n", data.find(b"\n") + 1)
                header = data[data.find(b"\n") + 1 : end].rstrip(b"\r").rstrip(b",")
                if end < 0 or header != HEADER.encode():
                    return None  # parse() says what is wrong with this file
                data, first = data[end + 1 :], 3
            bodies.append(data)
            firsts.append(first)
        # The row form (with or without the trailing comma) is the first row's; a row
        # of the other form is read too.
        trailing = next((_trailing_comma(b) for b in bodies if b), True)
        many = read_csv_many(bodies, firsts, FIELDS if trailing else NAMES)
        if many is None:
            return None
        df = many.frame
        if not trailing:
            df = df.with_columns(pl.lit("").alias("_trailing"))
        files = pl.DataFrame(
            {
                "_chunk": pl.Series(range(len(chunks)), dtype=pl.UInt32),
                "_file": pl.Series([str(c.path) for c in chunks], dtype=pl.Categorical),
                "_fp": [c.identity[:16] for c in chunks],
            }
        )
        df = df.join(files, on="_chunk", how="left", maintain_order="left")
        more = (pl.col("_more"), "more fields")  # its reason is the width, below
        rows, bad = self._to_canonical(
            df, self.opt("timezone") or request.timezone, more, many.texts
        )
        # The few bad rows: a blank line is none; a record of another width is
        # quarantined for that alone (its other fields are shifted).
        q = Quarantined.empty()
        for location, reason, raw in zip(bad.location, bad.reason, bad.raw, strict=True):
            width = many.width(raw) if raw.strip() else 0
            if not width:
                continue
            if width not in (len(NAMES), len(FIELDS)):
                reason = f"expected {len(NAMES)} fields (+ trailing comma), found {width}"
            q.add(location, reason, raw)
        for c in chunks:
            c.memo["encoding"] = "utf-8"
        return rows, q, rows.height + len(q)

    @staticmethod
    def _to_canonical(
        df: pl.DataFrame,
        tz: str,
        more: tuple[pl.Expr, str] | None = None,
        raw_of: Callable[[pl.DataFrame], list[str]] | None = None,
    ) -> tuple[pl.DataFrame, Quarantined]:
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
        if more is not None:
            checks.append(more)
        good, q = split_bad(df, checks, raw_of=raw_of)
        duplex = pl.col("_duplex") == "DUPLEX"
        sheets, _ = derivations.sheets(pl.col("pages"), pl.col("copies"), duplex)
        rows = good.select(
            pl.format("{}:{}", pl.col("_fp"), pl.col("_line")).alias("job_id"),
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


def _trailing_comma(body: bytes) -> bool:
    """Whether the body's first row ends with the logger's trailing comma."""
    end = body.find(b"\n")
    return body[: end if end >= 0 else len(body)].rstrip(b"\r").endswith(b",")


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
