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
from workstyle.adapters.csvread import read_csv_lines, read_csv_many
from workstyle.adapters.filebase import Chunk, FileAdapter, Parsed, live_chunk, live_request
from workstyle.adapters.files import BOM, ENCODINGS, MAX_LINE_BYTES, strip_bom
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
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FIELDS = [*NAMES, "_trailing"]
_FILE_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?\.csv")


class PaperCutPrintLogger(FileAdapter):
    kind = "papercut_print_logger"
    head_lines = 3  # banner, header, first job
    quoted = True
    threaded = True
    grouped = True
    recognise_on_read = True
    unique_keys = True  # job_id: the file's identity and the line; each read once a run
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
            "A last line without newline (or with a quote still open) is read once the file"
            " has not changed for this long.",
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
        tz = self.opt("timezone") or request.timezone
        rows, q = self._parse_lines(text, None, first_line, path, chunk.identity, tz)
        return rows, q, rows.height + len(q)

    def _parse_lines(
        self,
        text: str,
        numbers: list[int] | None,
        first_line: int,
        path: Path,
        identity: str,
        tz: str,
    ) -> tuple[pl.DataFrame, Quarantined]:
        """Rows of the lines of ``text`` from ``first_line``, or with these line ``numbers``.

        The careful path: every record's width counted, each row checked alone.
        """
        number = (lambda n: n) if numbers is None else (lambda n: numbers[n - first_line])
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
                    f"{path}:{number(row.line)}",
                    f"expected {len(NAMES)} fields (+ trailing comma), found {row.fields}",
                    row.text,
                )
        if rescued:
            extra = pl.DataFrame(
                rescued, schema={**{f: pl.String for f in FIELDS}, "_line": pl.Int64}
            )
            df = pl.concat([df, extra]).sort("_line")
        if numbers is not None:
            df = df.with_columns(
                pl.col("_line").replace_strict(
                    range(first_line, first_line + len(numbers)), numbers, return_dtype=pl.Int64
                )
            )
        df = df.with_columns(
            pl.lit(str(path)).cast(pl.Categorical).alias("_file"),
            pl.lit(identity[:16]).alias("_fp"),
        )
        rows, bad = self._to_canonical(df, tz)
        if len(bad):
            lines = text.split("\n")
            raw_of = dict(
                zip(map(number, range(first_line, first_line + len(lines))), lines, strict=True)
            )
            bad.raw = [raw_of[int(loc.rsplit(":", 1)[1])].rstrip("\r") for loc in bad.location]
        q.extend(bad)
        return rows, q

    def parse_many(self, chunks: list[Chunk], request: ReadRequest) -> Parsed | None:
        """Many chunks' rows in one fused plan; None for what needs :meth:`parse`.

        Parse, conversion and checks run as one streaming plan. A row any check
        doubts (or whose width may be wrong: an empty ``Size``, an extra field) is
        parsed again the careful way (:meth:`_parse_lines`), which keeps it or says
        exactly why not.
        """
        if (self.opt("encoding") or "auto") not in ("auto", "utf-8"):
            return None
        bodies: list[bytes] = []
        firsts: list[int] = []
        counts: list[int | None] = []
        for c in chunks:
            data = c.data
            if c.memo.get("encoding") not in (None, "utf-8") or len(data) > MAX_LINE_BYTES:
                return None
            first = c.first_line
            if first == 1:
                # One slice past the BOM, banner and header (each copy is the file again).
                bom = len(BOM) if data.startswith(BOM) else 0
                banner_end = data.find(b"\n", bom)
                end = data.find(b"\n", banner_end + 1)
                header = data[banner_end + 1 : end].rstrip(b"\r").rstrip(b",")
                if banner_end < 0 or end < 0 or header != HEADER.encode():
                    return None  # parse() says what is wrong with this file
                data, first = data[end + 1 :], 3
            bodies.append(data)
            firsts.append(first)
            counts.append(None if c.newlines is None else c.newlines - (first - c.first_line))
        # The row form (with or without the trailing comma) is the first row's; a row
        # of the other form is read too.
        trailing = next((_trailing_comma(b) for b in bodies if b), True)
        many = read_csv_many(bodies, firsts, FIELDS if trailing else NAMES, newlines=counts)
        if many is None:
            return None
        tz = self.opt("timezone") or request.timezone
        fps = pl.Series([c.identity[:16] for c in chunks], dtype=pl.String)
        files = pl.Series([str(c.path) for c in chunks], dtype=pl.Categorical)
        more = pl.col(many.spare[0] if trailing else many.spare[1]) != ""
        plan = many.plan.with_columns(
            pl.lit(fps).gather(pl.col("_chunk")).alias("_fp"),
            pl.lit(files).gather(pl.col("_chunk")).alias("_file"),
        )
        doubt = more | (pl.col("Size") == "")
        df = many.collect(self._canonical_plan(plan, tz, doubt, self.source.keep_titles))
        if df is None:
            return None
        q = Quarantined.empty()
        if df.get_column("_doubt").any():
            doubted = df.filter(pl.col("_doubt"))
            df = df.filter(~pl.col("_doubt"))
            by_chunk: dict[int, list[tuple[int, str]]] = {}
            for ci, line, raw in many.lines(doubted):
                by_chunk.setdefault(ci, []).append((line, raw))
            again = []
            for ci, found in by_chunk.items():
                c = chunks[ci]
                text = "\n".join(raw for _, raw in found)
                numbers = [n for n, _ in found]
                good, bad = self._parse_lines(text, numbers, 1, c.path, c.identity, tz)
                # A blank line is no record, and no error.
                for location, reason, raw in zip(bad.location, bad.reason, bad.raw, strict=True):
                    if raw.strip():
                        q.add(location, reason, raw)
                again.append(good.with_columns(pl.lit(ci, dtype=pl.UInt32).alias("_chunk")))
            df = pl.concat([df.drop("_doubt"), *again], how="diagonal_relaxed").sort(
                "_chunk", "_line", maintain_order=True
            )
        else:
            df = df.drop("_doubt")
        for c in chunks:
            c.memo["encoding"] = "utf-8"
        return df.drop("_chunk", strict=False), q, df.height + len(q)

    @staticmethod
    def _converted(tz: str) -> list[pl.Expr]:
        """The typed columns every row gets before its checks."""
        time = parse_time(pl.col("Time"), (TIME_FORMAT,), tz)
        # PaperCut writes plain integers: a direct cast is enough (and much cheaper).
        pages = pl.col("Pages").str.strip_chars().cast(pl.Int64, strict=False)
        copies = pl.col("Copies").str.strip_chars().cast(pl.Int64, strict=False)
        return [
            time.alias("printed_at"),
            pages.alias("pages"),
            copies.alias("copies"),
            blank_to_null(pl.col("Duplex")).str.to_uppercase().alias("_duplex"),
            blank_to_null(pl.col("Grayscale")).str.to_uppercase().alias("_gray"),
        ]

    @staticmethod
    def _checks() -> list[tuple[pl.Expr, pl.Expr | str]]:
        """(row is bad, reason) over the converted columns."""
        return [
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

    @staticmethod
    def _canonical(titles: bool = True) -> list[pl.Expr]:
        # Titles not kept are not even taken from the text (the pipeline would null them).
        document = pl.col("Document Name") if titles else pl.lit(None, pl.String)
        duplex = pl.col("_duplex") == "DUPLEX"
        sheets, _ = derivations.sheets(pl.col("pages"), pl.col("copies"), duplex)
        return [
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
            document.alias("document_name"),
            pl.col("_file"),
            pl.col("_line"),
        ]

    @classmethod
    def _to_canonical(cls, df: pl.DataFrame, tz: str) -> tuple[pl.DataFrame, Quarantined]:
        """Canonical rows of parsed string columns, and the rows that fail a check."""
        good, q = split_bad(df.with_columns(cls._converted(tz)), cls._checks())
        return good.select(cls._canonical()), q

    @classmethod
    def _canonical_plan(
        cls, plan: pl.LazyFrame, tz: str, doubt: pl.Expr, titles: bool
    ) -> pl.LazyFrame:
        """The canonical rows of a plan, each with ``_doubt``: true unless plainly fine.

        Only the form the logger writes is converted here (plain integers, upper-case
        flags, the one time format); anything else is doubted and parsed again the
        careful way, so the checks here are null tests, not the careful path's
        reasons (which would cost as much as the parse).
        """
        naive = pl.col("Time").str.strptime(pl.Datetime("us"), TIME_FORMAT, strict=False)
        time = naive.dt.replace_time_zone(
            tz, ambiguous="earliest", non_existent="null"
        ).dt.convert_time_zone("UTC")
        pages = pl.col("Pages").cast(pl.Int64, strict=False)
        copies = pl.col("Copies").cast(pl.Int64, strict=False)
        plain = (
            pl.col("printed_at").is_not_null()
            & (pl.col("pages") >= 0)
            & (pl.col("copies") >= 1)
            & pl.col("_duplex").is_in(["DUPLEX", "NOT DUPLEX"])
            & pl.col("_gray").is_in(["GRAYSCALE", "NOT GRAYSCALE"])
        )
        return plan.with_columns(
            time.alias("printed_at"),
            pages.alias("pages"),
            copies.alias("copies"),
            pl.col("Duplex").alias("_duplex"),
            pl.col("Grayscale").alias("_gray"),
        ).select(
            *cls._canonical(titles),
            pl.col("_chunk"),
            (~plain.fill_null(False) | doubt.fill_null(True)).alias("_doubt"),
        )


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
