"""PaperCut NG/MF plain-text print logs ``printlog_yyyy_mm_dd.log`` (``print_jobs``).

PaperCut NG/MF writes one tab-separated file a day into
``[app-path]/server/logs/print-logs`` (kept 30 days). The manual lists fields 1-9:
date ``yyyy-MM-dd\\th:mm:ss a/p`` (the ``\\t`` makes date and time two tab-separated
fields), server, printer, user, account charged, client, document, total pages,
total colour pages; it does not list what follows, nor whether a header line
comes first. Those are therefore settings, not guesses:

- ``columns``: the field names in file order (default: the manual's nine fields
  with the date split in two). Add ``copies``, ``duplex``, ``grayscale``,
  ``paper_size``, ``department`` where your files carry them; ``-`` skips a field.
- ``header_lines``: lines before the first job (default 0).
- ``time_formats``: how date and time read (default: 12-hour with AM/PM, a/p or
  午前/午後, and 24-hour).

``pages`` is the total over all copies (PaperCut's convention). Sheets follow the
canonical rule when duplex and copies are known; otherwise ``sheets`` = pages and
``sheets_upper_bound`` says so. The log only grows during its day, so files are
read from where the last run stopped; the job key is the file's fingerprint + line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.filebase import (
    PATHS_OPTIONS,
    TIMEZONE_OPTION,
    Chunk,
    FileAdapter,
    lines_frame,
    live_request,
)
from workstyle.adapters.parsing import UTC, failed, parse_bool, parse_int, parse_time, split_bad
from workstyle.adapters.sessions import check_timezone
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option, SourceConfig
from workstyle.schemas import derivations

MANUAL_COLUMNS = [
    "date",
    "time",
    "server",
    "printer",
    "user",
    "account",
    "client",
    "document",
    "pages",
    "color_pages",
]
KNOWN = {
    "date",
    "time",
    "datetime",
    "server",
    "printer",
    "user",
    "account",
    "client",
    "document",
    "pages",
    "color_pages",
    "copies",
    "duplex",
    "grayscale",
    "paper_size",
    "department",
    "-",
}
DEFAULT_TIME_FORMATS = [
    "%Y-%m-%d %I:%M:%S %p",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %I:%M:%S %p",
    "%Y/%m/%d %H:%M:%S",
]


def parse_lines(
    adapter: PaperCutNgPrintLog, path: Path, text: str, first_line: int, tz: str
) -> pl.DataFrame:
    """``print_jobs`` rows of log text whose first line is ``first_line``: for the live reader."""
    return adapter.parse(Chunk(path, "live", first_line, text), live_request(tz))[0]


class PaperCutNgPrintLog(FileAdapter):
    """PaperCut NG/MF tab-separated daily print logs -> print_jobs."""

    kind: ClassVar[str] = "papercut_ng_print_log"
    tables: ClassVar[tuple[str, ...]] = ("print_jobs",)
    summary: ClassVar[str] = (
        "PaperCut NG/MF server print logs (printlog_yyyy_mm_dd.log, tab-separated)."
    )
    options: ClassVar[tuple[Option, ...]] = (
        *PATHS_OPTIONS,
        TIMEZONE_OPTION,
        Option(
            "columns",
            "list",
            "Field names in file order; the manual documents the first nine (date and"
            " time are two fields). Known: " + ", ".join(sorted(KNOWN)) + ".",
            default=MANUAL_COLUMNS,
        ),
        Option("header_lines", "int", "Lines before the first job in each file.", default=0),
        Option(
            "time_formats",
            "list",
            "strftime formats of the date (+ ' ' + time) text; AM/PM marks 'a', 'p',"
            " '午前', '午後' are read as AM/PM.",
            default=DEFAULT_TIME_FORMATS,
        ),
    )

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = check_timezone(options)
        cols = options.get("columns") or MANUAL_COLUMNS
        unknown = [c for c in cols if c not in KNOWN]
        if unknown:
            problems.append(
                (
                    "columns",
                    f"unknown field name(s) {', '.join(unknown)};"
                    f" expected names from: {', '.join(sorted(KNOWN))}",
                )
            )
        has_time = "datetime" in cols or ("date" in cols and "time" in cols)
        for need in ("printer", "user", "pages"):
            if need not in cols:
                problems.append(("columns", f"must name the '{need}' field"))
        if not has_time:
            problems.append(("columns", "must name 'date' and 'time', or 'datetime'"))
        return problems

    def __init__(self, source: SourceConfig, secrets: Any = None) -> None:
        super().__init__(source, secrets)
        # Hash past the header too: daily files share an identical header line.
        self.head_lines = int(self.opt("header_lines") or 0) + 1

    def recognise(self, path: Path, data: bytes) -> str:
        first = data.split(b"\n", int(self.opt("header_lines") or 0) + 1)[-2:][0]
        if first.count(b"\t") < 3:
            raise SourceError(f"{path}: the first job line is not tab-separated fields")
        return "PaperCut NG/MF tab-separated print log"

    def parse(self, chunk: Chunk, request: ReadRequest) -> tuple[pl.DataFrame, Quarantined, int]:
        header = int(self.opt("header_lines") or 0)
        df = lines_frame(chunk)
        df = df.filter((pl.col("_n") > header) & (pl.col("line").str.strip_chars() != ""))
        rows, q = self._parse(df, chunk.identity, self.opt("timezone") or request.timezone)
        return rows, q, df.height

    def _parse(
        self, df: pl.DataFrame, fingerprint: str, tz: str
    ) -> tuple[pl.DataFrame, Quarantined]:
        cols: list[str] = list(self.opt("columns") or MANUAL_COLUMNS)
        parts = pl.col("line").str.split("\t")
        df = df.with_columns(
            parts.list.len().alias("_fields"),
            *[
                parts.list.get(i, null_on_oob=True).str.strip_chars().alias(c)
                for i, c in enumerate(cols)
                if c != "-"
            ],
        )

        def field(name: str) -> pl.Expr:
            return pl.col(name) if name in cols else pl.lit(None, pl.String)

        text = (
            field("datetime")
            if "datetime" in cols
            else (field("date") + pl.lit(" ") + field("time"))
        )
        # Java's a/p marks, Japanese locale marks -> %p.
        text = (
            text.str.replace(r"\s*(午前)\s*", " AM ")
            .str.replace(r"\s*(午後)\s*", " PM ")
            .str.replace(r"\s+[aA]\.?$", " AM")
            .str.replace(r"\s+[pP]\.?$", " PM")
            .str.replace_all(r"\s+", " ")
            .str.strip_chars()
        )
        formats = [str(f) for f in (self.opt("time_formats") or DEFAULT_TIME_FORMATS)]
        pages = parse_int(field("pages"))
        copies = parse_int(field("copies"))
        duplex = parse_bool(
            field("duplex"),
            ("duplex", "true", "yes", "y", "1"),
            ("not duplex", "simplex", "false", "no", "n", "0"),
        )
        gray = parse_bool(
            field("grayscale"),
            ("grayscale", "true", "yes", "y", "1"),
            ("not grayscale", "color", "colour", "false", "no", "n", "0"),
        )
        color_pages = parse_int(field("color_pages"))
        df = df.with_columns(
            parse_time(text, formats, tz).cast(UTC).alias("printed_at"),
            pages.alias("pages"),
            copies.alias("copies"),
            duplex.alias("duplex"),
            pl.coalesce(~gray, color_pages > 0).alias("color"),
        )
        need = max(i for i, c in enumerate(cols) if c in ("pages", "printer", "user")) + 1
        # A short line gets one reason, not one per missing field.
        enough = pl.col("_fields") >= need
        df, q = split_bad(
            df,
            [
                (
                    pl.col("_fields") < need,
                    pl.format(
                        "{} tab-separated fields, expected at least {}; check the 'columns'"
                        " setting",
                        pl.col("_fields"),
                        pl.lit(need),
                    ),
                ),
                (
                    enough & pl.col("printed_at").is_null(),
                    pl.format("time {} matches no time_formats", text),
                ),
                (enough & pl.col("pages").is_null(), "pages is not a number"),
                (
                    enough & failed(field("copies"), pl.col("copies")),
                    pl.format("copies {} is not a number", field("copies")),
                ),
            ],
            raw="line",
        )
        sheets, upper = derivations.sheets(
            pl.col("pages"), pl.col("copies").cast(pl.Int64), pl.col("duplex")
        )
        rows = df.select(
            pl.format("{}:{}", pl.lit(fingerprint[:20]), pl.col("_n")).alias("job_id"),
            "printed_at",
            field("user").alias("person"),
            field("printer").alias("printer"),
            field("client").alias("client"),
            "pages",
            "copies",
            "duplex",
            "color",
            field("paper_size").alias("paper_size"),
            sheets.alias("sheets"),
            upper.alias("sheets_upper_bound"),
            field("department").alias("department"),
            field("document").alias("document_name"),
            "_location",
        )
        return rows, q
