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
import os
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.adapters.csvread import read_csv_lines
from workstyle.adapters.files import (
    ENCODINGS,
    FileErrors,
    complete_length,
    discover,
    head_fingerprint,
    read_bytes,
    strip_bom,
    to_utf8,
)
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
HEAD_LINES = 3  # banner, header, first job
HEAD_BYTES = 64 * 1024  # enough for the three head lines of any real file
#: Parse threads, and how many bytes of files may be read ahead of the pipeline.
PARSE_THREADS = max(2, os.cpu_count() or 1)
PARSE_AHEAD_BYTES = 64 * 1024 * 1024
_FILE_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?\.csv")


class PaperCutPrintLogger(Adapter):
    kind = "papercut_print_logger"
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

    def files(self) -> list[Path]:
        folder = self.source.path("path")
        return discover([folder / self.opt("pattern")])

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        files = self.files()
        manifest: dict[str, Any] = dict(request.state.get("files", {}))
        tz = self.opt("timezone") or request.timezone
        failures: list[tuple[int, str]] = []
        # Files are parsed ahead on worker threads (pyarrow and polars release the GIL),
        # so parsing uses every core and overlaps the pipeline's flushes. Batches are
        # still yielded in file order, each with the manifest as of that file.
        pending: deque[_Pending] = deque()
        ahead = 0

        def finish() -> Batch | None:
            nonlocal ahead
            job = pending.popleft()
            ahead -= job.size
            try:
                rows, q, lines = job.future.result()
            except SourceError as exc:
                failures.append((job.n, str(exc)))
                return None
            manifest[job.fp] = {"offset": job.end, "lines": lines, "path": str(job.path)}
            return Batch(
                table="print_jobs",
                rows=rows,
                quarantined=q,
                rows_read=rows.height + len(q),
                checkpoint={"files": dict(manifest)},
                unit=job.fp,
                progress=(job.n, len(files)),
            )

        pool = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="papercut-parse")
        try:
            for n, path in enumerate(files, start=1):
                if request.mode == "backfill" and not _may_hold_window(path, request):
                    continue
                if request.mode == "incremental" and _unchanged(path, manifest):
                    continue  # known and not grown: skipped without reading it whole
                try:
                    data = read_bytes(path)
                    if data and not strip_bom(data[:64]).startswith(BANNER[: len(data)]):
                        raise SourceError(
                            f"{path}: not a PaperCut Print Logger CSV (first line"
                            " is not the 'PaperCut Print Logger' banner)"
                        )
                    fp = head_fingerprint(data, HEAD_LINES)
                except SourceError as exc:
                    failures.append((n, str(exc)))
                    continue
                if fp is None:
                    continue  # no job written yet
                if request.mode == "backfill" and fp in request.done_units:
                    continue
                if any(job.fp == fp for job in pending):
                    # A copy of a file still being parsed: its manifest entry decides.
                    while pending:
                        if (batch := finish()) is not None:
                            yield batch
                prev = manifest.get(fp) if request.mode == "incremental" else None
                offset = prev["offset"] if prev else 0
                line = prev["lines"] if prev else 0
                end = complete_length(data, path, self.opt("settle_seconds"))
                if end <= offset:
                    continue
                future = pool.submit(self._parse, path, data, offset, end, line, fp, tz)
                pending.append(_Pending(n, path, fp, end, len(data), future))
                ahead += len(data)
                while pending and (ahead > PARSE_AHEAD_BYTES or pending[0].future.done()):
                    if (batch := finish()) is not None:
                        yield batch
            while pending:
                if (batch := finish()) is not None:
                    yield batch
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        errors = FileErrors()
        # In file order, as a sequential read would have met them.
        errors.errors.extend(message for _, message in sorted(failures))
        errors.raise_if_any()

    def _parse(
        self, path: Path, data: bytes, offset: int, end: int, line: int, fp: str, tz: str
    ) -> tuple[pl.DataFrame, Quarantined, int]:
        """Parse bytes [offset, end) of one file; return rows, quarantine, lines consumed."""
        encoding = self.opt("encoding")
        if offset == 0:
            head = strip_bom(data[:4096])
            if not head.startswith(BANNER):
                raise SourceError(
                    f"{path}: not a PaperCut Print Logger CSV (first line is not"
                    " the 'PaperCut Print Logger' banner)"
                )
            body = to_utf8(data[:end], encoding, path)
            first_nl = body.find(b"\n")
            second_nl = body.find(b"\n", first_nl + 1)
            header = body[first_nl + 1 : second_nl].decode().strip().rstrip(",")
            if header != HEADER:
                raise SourceError(
                    f"{path}: unexpected header {header[:80]!r}; expected {HEADER[:40]}..."
                )
            body = body[second_nl + 1 :]
            first_line = 3
        else:
            body = to_utf8(data[offset:end], encoding, path)
            first_line = line + 1
        lines_in_body = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
        consumed = first_line - 1 + lines_in_body

        df, invalid = read_csv_lines(body, path, first_line=first_line, column_names=FIELDS)
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
        rows, bad = self._to_canonical(df, fp, tz)
        if len(bad):
            raw_lines = body.decode("utf-8").split("\n")
            bad.raw = [
                raw_lines[int(loc.rsplit(":", 1)[1]) - first_line].rstrip("\r")
                for loc in bad.location
            ]
        q.extend(bad)
        return rows, q, consumed

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
            pl.col("copies").cast(pl.Int32),
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


def parse_chunk(
    adapter: PaperCutPrintLogger, path: Path, data: bytes, offset: int, line: int, tz: str
) -> tuple[pl.DataFrame, Quarantined, int]:
    """``print_jobs`` rows of the complete lines in ``data[offset:]`` (offset 0 checks the
    banner and header) and the lines consumed: for the live reader."""
    end = data.rfind(b"\n") + 1
    if end <= offset:
        return pl.DataFrame(), Quarantined.empty(), line
    return adapter._parse(path, data, offset, end, line, "live", tz)


@dataclass
class _Pending:
    """A file handed to a parse thread, in file order."""

    n: int
    path: Path
    fp: str
    end: int
    size: int
    future: Future[tuple[pl.DataFrame, Quarantined, int]]


def _unchanged(path: Path, manifest: dict[str, Any]) -> bool:
    """Whether a file is known and has not grown, judged from its head and size alone.

    A nightly run then reads only the new files (and the grown tail of today's),
    not every file of the years already ingested. A compressed file, or one whose
    first lines are longer than the head read, is left to the full read.
    """
    if not manifest:
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return False  # the full read reports it
    if head[:2] == b"\x1f\x8b":
        return False
    fp = head_fingerprint(head, HEAD_LINES)
    prev = manifest.get(fp) if fp else None
    return prev is not None and size <= prev["offset"]


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
