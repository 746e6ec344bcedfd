"""Reading CSV text into string columns with the physical line number of every record.

pyarrow parses in bulk (multi-threaded); rows with the wrong number of fields are
handed back with their text so that they can be quarantined, never dropped. A row's
``_line`` is the physical line its record starts on, whether the file is read whole
or from the middle, so keys built from it never change:

- a quoted line break (a field over two lines) is read by the standard library's
  csv module, which tracks the lines each record consumes;
- a bare CR inside a line is data, not a line end (pyarrow would split the row);
- a field over pyarrow's block size is read with a block large enough.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from workstyle.collector.errors import SourceError

#: Stands in for a bare CR while pyarrow parses (it would end the row there).
_CR = "\ufffc"
_BARE_CR = re.compile(r"\r(?!\n|$)")


@dataclass
class InvalidRow:
    line: int
    text: str
    fields: int


def read_csv_lines(
    text: str,
    path: Path,
    *,
    first_line: int,
    column_names: list[str] | None = None,
    delimiter: str = ",",
) -> tuple[pl.DataFrame, list[InvalidRow]]:
    """Parse CSV ``text`` whose first character is at line ``first_line``.

    With ``column_names`` None, the first line is the header. Returns every column
    as strings plus ``_line`` (1-based physical line of the record), and the
    records with another number of fields.
    """
    bare_cr = "\r" in text and _BARE_CR.search(text) is not None
    if bare_cr:
        text = _BARE_CR.sub(_CR, text)
    lines = text.split("\n")
    header_lines = 0
    if column_names is None:
        header = lines[0].rstrip("\r") if lines else ""
        column_names = next(csv.reader([header], delimiter=delimiter), [])
        if not column_names:
            raise SourceError(f"{path}: no header line; expected the export's column names")
        header_lines = 1
    names = _unique(column_names)
    data = lines[header_lines:]
    data_first = first_line + header_lines
    spans_lines = '"' in text and _odd_quotes(data)
    result = None if spans_lines else _pyarrow(data, data_first, names, delimiter)
    if result is None:
        result = _stdlib(data, data_first, names, delimiter)
    df, invalid = result
    if bare_cr:
        df = df.with_columns(pl.col(pl.String).str.replace_all(_CR, "\r", literal=True))
        invalid = [InvalidRow(r.line, r.text.replace(_CR, "\r"), r.fields) for r in invalid]
    return df, invalid


def _unique(names: list[str]) -> list[str]:
    """Header names made unique (pyarrow and polars need that): a repeat gets ``_2``."""
    out: list[str] = []
    for n in names:
        name, k = n, 2
        while name in out:
            name, k = f"{n}_{k}", k + 1
        out.append(name)
    return out


def _odd_quotes(lines: list[str]) -> bool:
    """Whether some line has an odd number of quotes: a quoted field goes on past it."""
    counts = pl.Series(lines, dtype=pl.String).str.count_matches('"', literal=True)
    return bool((counts % 2 == 1).any())


def _pyarrow(
    lines: list[str], first: int, names: list[str], delimiter: str
) -> tuple[pl.DataFrame, list[InvalidRow]] | None:
    """One record per non-blank line, parsed by pyarrow; None when rows and lines disagree."""
    invalid: list[tuple[str, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.text, row.actual_columns))
        return "skip"

    body = "\n".join(lines).encode("utf-8")
    table = None
    block = 1 << 20
    while table is None:
        invalid.clear()
        try:
            table = pacsv.read_csv(
                io.BytesIO(body),
                read_options=pacsv.ReadOptions(
                    column_names=names, use_threads=True, block_size=block
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            if "straddl" in str(exc) and block < len(body):
                block = len(body) + 1  # a field over the block: one block then
                continue
            return None
    df = pl.from_arrow(table)
    if not isinstance(df, pl.DataFrame):  # pragma: no cover - from_arrow of a table
        raise TypeError("expected a DataFrame")
    numbers = [first + i for i, ln in enumerate(lines) if ln not in ("", "\r")]
    if invalid:
        bad = _locate(lines, first, [t for t, _ in invalid])
        if bad is None:
            return None
        bad_set = set(bad)
        good = [n for n in numbers if n not in bad_set]
        rows = [
            InvalidRow(ln, t.rstrip("\r\n"), n) for (t, n), ln in zip(invalid, bad, strict=True)
        ]
    else:
        good, rows = numbers, []
    if len(good) != df.height:
        return None
    return df.with_columns(pl.Series("_line", good, pl.Int64)), rows


def _locate(lines: list[str], first: int, wanted: list[str]) -> list[int] | None:
    """Line numbers of ``wanted`` texts among ``lines`` (in order), or None if one is missing."""
    out: list[int] = []
    start = 0
    for w in wanted:
        w = w.rstrip("\r\n")
        for i in range(start, len(lines)):
            if lines[i].rstrip("\r") == w:
                out.append(first + i)
                start = i + 1
                break
        else:
            return None
    return out


def _stdlib(
    lines: list[str], first: int, names: list[str], delimiter: str
) -> tuple[pl.DataFrame, list[InvalidRow]]:
    """Records over several lines: the csv module, which counts the lines each one takes."""
    columns: list[list[str]] = [[] for _ in names]
    numbers: list[int] = []
    invalid: list[InvalidRow] = []
    feed = (ln + "\n" for ln in lines)
    reader = csv.reader(feed, delimiter=delimiter)
    consumed = 0
    while True:
        start = consumed
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            consumed = reader.line_num
            text = "\n".join(lines[start:consumed])
            invalid.append(InvalidRow(first + start, f"{text} ({exc})", 0))
            continue
        consumed = reader.line_num
        if not row:
            continue  # a blank line
        if len(row) != len(names):
            invalid.append(
                InvalidRow(first + start, "\n".join(lines[start:consumed]).rstrip("\r"), len(row))
            )
            continue
        numbers.append(first + start)
        for col, value in zip(columns, row, strict=True):
            col.append(value)
    df = pl.DataFrame(
        {n: pl.Series(n, c, pl.String) for n, c in zip(names, columns, strict=True)}
    ).with_columns(pl.Series("_line", numbers, pl.Int64))
    return df, invalid


@dataclass
class ManyRows:
    """CSV bodies of several chunks parsed in one call: string columns, ``_chunk``, ``_line``."""

    #: The fields as strings (missing ones empty), ``_more`` (non-empty when a record
    #: has more fields than names), ``_chunk`` (index of its body) and ``_line``.
    frame: pl.DataFrame
    bodies: list[bytes]
    first_lines: list[int]
    delimiter: str = ","

    def texts(self, rows: pl.DataFrame) -> list[str]:
        """The lines of a few rows (by ``_chunk`` and ``_line``), from the bodies."""
        split: dict[int, list[bytes]] = {}
        out = []
        for ci, line in rows.select("_chunk", "_line").iter_rows():
            if ci not in split:
                split[ci] = self.bodies[ci].split(b"\n")
            out.append(split[ci][line - self.first_lines[ci]].rstrip(b"\r").decode("utf-8"))
        return out

    def width(self, text: str) -> int:
        """The number of fields of one record's text."""
        return len(next(csv.reader([text], delimiter=self.delimiter), []))


def read_csv_many(
    bodies: list[bytes], first_lines: list[int], names: list[str], *, delimiter: str = ","
) -> ManyRows | None:
    """Parse many header-less CSV bodies in one parallel polars scan (the fast path), or None.

    The bodies must be UTF-8 and each end at a line end. A record with fewer fields
    than names has the rest empty; one with more has ``_more`` set: a record whose
    width matters is counted exactly (:meth:`ManyRows.width`) among the few rows a
    kind's checks find bad. A blank line is an all-empty row. None (parse each body
    alone, the careful way) when a row may not be one line: a record over several
    lines, a bare CR, a first row of another width, or invalid UTF-8.
    """
    bodies = [b if b.endswith(b"\n") else b + b"\n" for b in bodies]
    for b in bodies:
        if b"\r" in b and b.count(b"\r") != b.count(b"\r\n"):
            return None
        first = b[: b.find(b"\n")].rstrip(b"\r").decode("utf-8", "replace")
        if first and len(next(csv.reader([first], delimiter=delimiter), [])) != len(names):
            return None  # the parser takes its width from each body's first row
    counts = [b.count(b"\n") for b in bodies]
    more = ["_more", "_more2"]
    try:
        df = pl.scan_csv(
            bodies,
            has_header=False,
            separator=delimiter,
            schema=dict.fromkeys([*names, *more], pl.String),
            truncate_ragged_lines=True,
            empty_string_is_null=False,
            missing_columns="insert",
        ).collect()
    except pl.exceptions.PolarsError:
        return None  # invalid UTF-8, say
    if df.height != sum(counts):
        return None  # a record over several lines: not one row per line
    n = len(bodies)
    chunk = pl.select(
        pl.int_range(n, dtype=pl.UInt32).repeat_by(pl.Series(counts, dtype=pl.UInt32)).explode()
    ).to_series()
    # A row's line: its position in the whole, less its body's start, plus that
    # body's first line.
    shift, start = [], 0
    for count, first in zip(counts, first_lines, strict=True):
        shift.append(first - start)
        start += count
    line = pl.int_range(df.height, dtype=pl.Int64, eager=True) + pl.Series(
        shift, dtype=pl.Int64
    ).gather(chunk)
    df = df.with_columns(
        ((pl.col("_more") != "") | (pl.col("_more2") != "")).alias("_more"),
        chunk.alias("_chunk"),
        line.alias("_line"),
    ).drop("_more2")
    return ManyRows(df, bodies, first_lines, delimiter)
