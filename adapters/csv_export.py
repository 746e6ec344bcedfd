"""Generic export files (CSV, plain or gzip) -> any canonical table, by a column mapping.

This is how web-meeting usage exports, paperless-meeting exports, attendance and
telework records, the telework applicant list, the staff directory, terminal
inventories and paper purchases come in until a dedicated adapter exists.

A source maps canonical columns to the file's own headers (Japanese headers
included), optionally maps values (``在宅勤務(午前)`` -> ``home``), names the time
formats and the zone they are written in, and can compose a natural key from
several headers when the export has no single id (a recurring meeting's instances
share one meeting id, so ``meeting_id = ["会議ID", "開始日時"]``).

Rows can be filtered on the file's own columns before mapping (``where`` /
``exclude``, :mod:`.rowfilters`; counted per rule, never silent), columns can declare
the unit they are written in (:mod:`.units`), and derivable columns (sheets, a
duration, an end time) are filled by :mod:`workstyle.schemas.derivations`.

Each file is recognised by a hash of its whole content: an unchanged file is not
read again (nor a copy of it under another name), and a regenerated export is read
whole; the store's upsert keeps one row per natural key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import pyarrow as pa

from workstyle import schemas
from workstyle.adapters import csv_mapping, rowfilters, units
from workstyle.adapters.base import Quarantined, ReadRequest
from workstyle.adapters.csvread import read_csv_lines, record_slices
from workstyle.adapters.filebase import Chunk, FileAdapter
from workstyle.adapters.files import ENCODINGS, decode
from workstyle.adapters.parsing import (
    DEFAULT_DATE_FORMATS,
    DEFAULT_TIME_FORMATS,
    blank_to_null,
    failed,
    parse_bool,
    parse_date,
    parse_float,
    parse_int,
    parse_time,
    split_bad,
)
from workstyle.collector.errors import SourceError
from workstyle.collector.fiscal_year import parse_fiscal_year
from workstyle.collector.options import Option
from workstyle.schemas import derivations

#: Joins the parts of a composite key. Not '/': the parts are often dates written
#: with slashes (04/01/2022), and the keys already stored use '|'.
COMPOSE_SEPARATOR = "|"


#: Characters of an export parsed at once: a yearly export of 380 k rows (10 M
#: characters) parsed whole held ~35 times its size; a slice at a time, the working
#: set is a slice's, whatever the file's size.
SLICE_CHARS = 1 << 20

#: Title and note lines before a header: a few in practice; more is a typo.
MAX_SKIP_ROWS = 10_000


class CsvExport(FileAdapter):
    kind = "csv"
    growth = "whole"
    tables = tuple(schemas.TABLES)
    summary = (
        "Export files (CSV, gzip ok) mapped column by column to a canonical table;"
        " Japanese headers, CP932, value maps, composite keys, row filters, declared units"
        " and derived values (sheets, durations, end times) supported."
    )
    windowed = True
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "table",
            "str",
            "Canonical table the rows go to.",
            required=True,
            identity=True,
            choices=tuple(schemas.TABLES),
        ),
        Option(
            "path",
            "str",
            "Glob of the export files, relative to the config file (e.g. 'exports/teams-*.csv').",
            required=True,
            identity=True,
        ),
        Option(
            "encoding",
            "str",
            "Text encoding (auto: UTF-8 with or without BOM, else CP932).",
            default="auto",
            choices=ENCODINGS,
        ),
        Option("delimiter", "str", "Field separator.", default=","),
        Option("skip_rows", "int", "Lines before the header line (titles, notes).", default=0),
        Option("columns", "table", "Canonical column -> header in the file.", required=True),
        Option(
            "compose",
            "table",
            f"Canonical column -> list of headers joined with '{COMPOSE_SEPARATOR}'"
            " (composite natural keys).",
            default={},
        ),
        Option(
            "values", "table", "Canonical column -> {file value = canonical value}.", default={}
        ),
        Option(
            "formats",
            "table",
            "Canonical time/date column -> strptime format (or list of formats).",
            default={},
        ),
        Option("constants", "table", "Canonical column -> value for every row.", default={}),
        *csv_mapping.OPTIONS,
        Option(
            "timezone",
            "str",
            "Zone of times written without an offset; default [collector] timezone.",
            default=None,
        ),
    )

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        spec = schemas.get(options["table"])
        problems: list[tuple[str, str]] = []
        known = set(spec.columns)
        for key in ("columns", "compose", "values", "formats", "constants", "units"):
            for col in options.get(key) or {}:
                if col not in known:
                    problems.append(
                        (
                            f"{key}.{col}",
                            f"{col!r} is not a column of"
                            f" {spec.name}; expected one of: {', '.join(spec.columns)}",
                        )
                    )
        for col, headers in (options.get("compose") or {}).items():
            if not (
                isinstance(headers, list) and headers and all(isinstance(h, str) for h in headers)
            ):
                problems.append((f"compose.{col}", "expected a list of header names"))
        for col, header in (options.get("columns") or {}).items():
            if not isinstance(header, str):
                problems.append((f"columns.{col}", "expected a header name (string)"))
        for col, mapping in (options.get("values") or {}).items():
            if not isinstance(mapping, dict) or not all(
                isinstance(v, str | int | float | bool) for v in mapping.values()
            ):
                problems.append(
                    (f"values.{col}", "expected a table {file value = canonical value}")
                )
        for col, fmt in (options.get("formats") or {}).items():
            listed = fmt if isinstance(fmt, list) else [fmt]
            if not listed or not all(isinstance(f, str) and f for f in listed):
                problems.append((f"formats.{col}", "expected a strptime format or a list of them"))
        for col, value in (options.get("constants") or {}).items():
            if not isinstance(value, str | int | float | bool):
                problems.append((f"constants.{col}", "expected a single value"))
        if (options.get("skip_rows") or 0) > MAX_SKIP_ROWS:
            problems.append(("skip_rows", f"expected at most {MAX_SKIP_ROWS:,} lines"))
        provided = (
            set(options.get("columns") or {})
            | set(options.get("compose") or {})
            | set(options.get("constants") or {})
        )
        provided |= csv_mapping.derivable(spec, provided)
        for col in spec.required:
            if col not in provided:
                problems.append(
                    (
                        "columns",
                        f"{spec.name} needs column {col!r}: map it"
                        " under columns, compose or constants",
                    )
                )
        tz = options.get("timezone")
        if tz:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                problems.append(("timezone", f"unknown time zone {tz!r}"))
        if len(options.get("delimiter") or "") != 1:
            problems.append(("delimiter", "expected a single character"))
        return problems + csv_mapping.problems(options, spec)

    @classmethod
    def output_tables(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        return (options["table"],)

    def recognise(self, path: Path, data: bytes) -> str:
        chunk = Chunk(path, "", 1, decode(data[:65536], self.opt("encoding"), path, 1)[0])
        text = self._body(chunk)[0].split("\n", 1)[0].rstrip("\r")
        df, _ = read_csv_lines(text, path, first_line=1, delimiter=self.opt("delimiter"))
        self._check_headers(path, [c.strip().lstrip("\ufeff") for c in df.columns])
        return "every mapped header present"

    def batch_table(self) -> str:
        return self.opt("table")

    def _body(self, chunk: Chunk) -> tuple[str, int]:
        """The text from the header line on, and the header's line number."""
        skip = self.opt("skip_rows")
        parts = chunk.text.split("\n", skip)
        return (parts[skip] if len(parts) > skip else ""), skip + 1

    def parse(self, chunk: Chunk, request: ReadRequest) -> tuple[pl.DataFrame, Quarantined, int]:
        """The export's rows, parsed a slice (SLICE_CHARS, whole records) at a time."""
        spec = schemas.get(self.opt("table"))
        tz = self.opt("timezone") or request.timezone
        body, first = self._body(chunk)
        if not body.strip():
            return pl.DataFrame(), Quarantined.empty(), 0  # no header: an empty export
        end = body.find("\n")
        header = body if end < 0 else body[: end + 1]
        # A header alone is one (empty) slice: its headers are still checked.
        pieces = list(record_slices(body, len(header), SLICE_CHARS)) or [
            (len(header), len(header), 0)
        ]
        parts: list[pl.DataFrame] = []
        filtered: list[pl.DataFrame] = []
        q = Quarantined.empty()
        total = 0
        for start, stop, before in pieces:
            # The header again, numbered so that the slice's lines keep their numbers.
            text = header + body[start:stop]
            rows, bad, left, read = self._parse_text(text, chunk.path, first + before, spec, tz)
            parts.append(rows)
            filtered.append(left)
            q.extend(bad)
            total += read
        chunk.filtered = _summed(filtered)
        return pl.concat(parts, how="vertical_relaxed"), q, total

    def _parse_text(
        self, text: str, path: Path, first: int, spec: schemas.TableSpec, tz: str
    ) -> tuple[pl.DataFrame, Quarantined, pl.DataFrame, int]:
        """Rows, quarantine, rows filtered out and rows read of a header and its records."""
        df, invalid = read_csv_lines(text, path, first_line=first, delimiter=self.opt("delimiter"))
        df = df.rename({c: c.strip().lstrip("\ufeff") for c in df.columns if c != "_line"})
        q = Quarantined.empty()
        for row in invalid:
            q.add(
                f"{path}:{row.line}",
                f"expected {df.width - 1} fields, found {row.fields}",
                row.text,
            )
        self._check_headers(path, df.columns)
        total = df.height + len(q)
        raw_text = df.select(
            pl.concat_str(
                [pl.col(c) for c in df.columns if c != "_line"], separator=self.opt("delimiter")
            ).alias("_raw")
        )
        df = df.with_columns(
            # Where a row came from, as PaperCut's rows say it: its text only if quarantined.
            pl.lit(str(path)).cast(pl.Categorical).alias("_file"),
            raw_text.get_column("_raw"),
        )
        df, unjudged, left = self._filter(df, spec, tz, str(path))
        q.extend(unjudged)
        rows, bad = self._to_canonical(df, spec, tz)
        q.extend(bad)
        return rows, q, left, total

    def _filter(
        self, df: pl.DataFrame, spec: schemas.TableSpec, tz: str, location: str
    ) -> tuple[pl.DataFrame, Quarantined, pl.DataFrame]:
        """Apply where/exclude before mapping; left-out rows counted per rule and month."""
        rules = rowfilters.rules(self.source.options)
        df = rowfilters.prepare(df, rules)
        df, unjudged = split_bad(df, rowfilters.unjudged_checks(rules))
        df, left = rowfilters.apply(df, rules)
        field = spec.field(spec.partition_by)
        raw = self._source_expr(spec.partition_by)
        if raw is None or not left.height:
            month = pl.lit(None, pl.String)
        elif spec.partition_by == "fiscal_year":
            month = csv_mapping.month_of(_fiscal_years(left, raw), field, tz)
        else:
            fmt = (self.opt("formats") or {}).get(spec.partition_by)
            month = csv_mapping.month_of(_parse(field, raw, fmt, tz)[0], field, tz)
        return df, unjudged, csv_mapping.filtered_counts(left, month, location)

    def _check_headers(self, path: Path, headers: list[str]) -> None:
        wanted = dict(self.opt("columns"))
        for col, hs in (self.opt("compose") or {}).items():
            for i, h in enumerate(hs):
                wanted[f"{col}[{i}]"] = h
        present = set(headers)
        wanted.update(rowfilters.headers(self.source.options))
        for col, header in wanted.items():
            if header not in present:
                shown = ", ".join(h for h in headers if h != "_line")
                raise SourceError(
                    f"{path}: header {header!r} (mapped to {col}) not found;"
                    f" the file's headers are: {shown}"
                )

    def _source_expr(self, col: str) -> pl.Expr | None:
        """The raw string of a canonical column: a header, a composition or a constant."""
        columns = self.opt("columns") or {}
        compose = self.opt("compose") or {}
        constants = self.opt("constants") or {}
        if col in compose:
            return pl.concat_str(
                [blank_to_null(pl.col(h)) for h in compose[col]], separator=COMPOSE_SEPARATOR
            )
        if col in columns:
            expr = pl.col(columns[col])
        elif col in constants:
            expr = pl.lit(_as_text(constants[col]))
        else:
            return None
        mapping = (self.opt("values") or {}).get(col)
        if mapping:
            text = {str(k).strip(): _as_text(v) for k, v in mapping.items()}
            expr = blank_to_null(expr)
            expr = expr.replace_strict(text, default=expr, return_dtype=pl.String)
        return expr

    def _to_canonical(
        self, df: pl.DataFrame, spec: schemas.TableSpec, tz: str
    ) -> tuple[pl.DataFrame, Quarantined]:
        formats = self.opt("formats") or {}
        parsed: list[pl.Expr] = []
        checks: list[tuple[pl.Expr, pl.Expr]] = []
        for field in spec.fields:
            raw = self._source_expr(field.name)
            if raw is None:
                continue
            value, kind = _parse(field, raw, formats.get(field.name), tz)
            unit = (self.opt("units") or {}).get(field.name)
            if unit:
                value, kind = units.convert(raw, field.name, unit)
            if field.name == "fiscal_year":
                value, kind = _fiscal_years(df, raw), "a fiscal year (R5, 2023 or 令和5年度)"
            parsed.append(value.alias(field.name))
            header = self._describe(field.name)
            checks.append(
                (failed(raw, value), pl.format(f"{field.name} ({header}): {{}} is not {kind}", raw))
            )
        df = df.with_columns(parsed)
        good, q = split_bad(df, checks)
        good = derivations.derive(spec.name, good)
        keep = [f.name for f in spec.fields if f.name in good.columns]
        return good.select(*keep, "_file", "_line", "_raw"), q

    def _describe(self, col: str) -> str:
        if col in (self.opt("compose") or {}):
            return "+".join(self.opt("compose")[col])
        if col in (self.opt("columns") or {}):
            return f"header {self.opt('columns')[col]}"
        return "constant"


def _summed(filtered: list[pl.DataFrame]) -> pl.DataFrame:
    """The slices' counts of rows left out, one row per location, rule and period."""
    counts = pl.concat(filtered, how="vertical_relaxed")
    if len(filtered) == 1 or not counts.height:
        return counts
    return counts.group_by("location", "rule", "period", maintain_order=True).agg(
        pl.col("rows").sum()
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse(
    field: pa.Field, raw: pl.Expr, fmt: str | list[str] | None, tz: str
) -> tuple[pl.Expr, str]:
    t = field.type
    fmts = [fmt] if isinstance(fmt, str) else fmt
    if pa.types.is_timestamp(t):
        return parse_time(raw, tuple(fmts or DEFAULT_TIME_FORMATS), tz), "a time"
    if pa.types.is_date32(t):
        return parse_date(raw, tuple(fmts or DEFAULT_DATE_FORMATS)), "a date"
    if pa.types.is_boolean(t):
        return parse_bool(raw), "yes/no (○/×, あり/なし, true/false)"
    if pa.types.is_integer(t):
        return parse_int(raw), "a whole number"
    if pa.types.is_floating(t):
        return parse_float(raw), "a number"
    return blank_to_null(raw), "text"


def _fiscal_years(df: pl.DataFrame, raw: pl.Expr) -> pl.Expr:
    """'R5', '2023', '令和5年度' -> 2023, parsed once per distinct value."""
    distinct = df.select(blank_to_null(raw).unique().alias("v")).get_column("v").to_list()
    mapping: dict[str, int | None] = {}
    for v in distinct:
        if v is None:
            continue
        try:
            mapping[v] = parse_fiscal_year(v)
        except ValueError:
            mapping[v] = None
    return blank_to_null(raw).replace_strict(mapping, default=None, return_dtype=pl.Int64)
