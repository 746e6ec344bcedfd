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
from collections.abc import Iterator, Sequence
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
    header_lines = 0
    body = text
    if column_names is None:
        end = text.find("\n")
        header = (text if end < 0 else text[:end]).rstrip("\r")
        column_names = next(csv.reader([header], delimiter=delimiter), [])
        if not column_names:
            raise SourceError(f"{path}: no header line; expected the export's column names")
        header_lines = 1
        body = "" if end < 0 else text[end + 1 :]
    names = _unique(column_names)
    data_first = first_line + header_lines
    # The lines as a list only when needed (a 380 k-line export: 51 MB of str objects).
    lines = _Lines(body)
    spans_lines = '"' in body and _odd_quotes(lines.get())
    result = None if spans_lines else _pyarrow(lines, data_first, names, delimiter)
    if result is None:
        result = _stdlib(lines.get(), data_first, names, delimiter)
    df, invalid = result
    if bare_cr:
        df = df.with_columns(pl.col(pl.String).str.replace_all(_CR, "\r", literal=True))
        invalid = [InvalidRow(r.line, r.text.replace(_CR, "\r"), r.fields) for r in invalid]
    return df, invalid


def record_slices(text: str, start: int, size: int) -> Iterator[tuple[int, int, int]]:
    """Pieces of ``text[start:]`` of about ``size`` characters, each ending at a record end.

    A piece ends at the first line end past ``size`` characters that is outside a
    quoted field (an even number of quotes since the piece began), so a record over
    two lines stays in one piece. Yields (start, end, line ends before ``start``
    counted from the first ``start``). Like :func:`complete_length`, it takes quotes
    to open and close fields: a stray quote inside an unquoted field only makes a
    piece longer, unless a record over several lines follows it in the same file.
    """
    pos, lines, n = start, 0, len(text)
    while pos < n:
        end, cut = n, pos + size
        quotes = text.count('"', pos, min(cut, n))
        while cut < n:
            nl = text.find("\n", cut)
            if nl < 0:
                break
            quotes += text.count('"', cut, nl)
            cut = nl + 1
            if quotes % 2 == 0:
                end = cut
                break
        yield pos, end, lines
        lines += text.count("\n", pos, end)
        pos = end


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


class _Lines:
    """A body's lines, split only if someone asks for them."""

    def __init__(self, body: str) -> None:
        self.body = body
        self._lines: list[str] | None = None

    def get(self) -> list[str]:
        if self._lines is None:
            self._lines = self.body.split("\n")
        return self._lines

    def numbers(self, first: int) -> Sequence[int]:
        """Line numbers of the non-blank lines (a range when no line is blank)."""
        body = self.body
        if self._lines is None and body and not body.endswith("\r"):
            blank = body.startswith(("\n", "\r\n")) or "\n\n" in body or "\n\r\n" in body
            if not blank:
                count = body.count("\n") + (0 if body.endswith("\n") else 1)
                return range(first, first + count)
        return [first + i for i, ln in enumerate(self.get()) if ln not in ("", "\r")]


def _pyarrow(
    lines: _Lines, first: int, names: list[str], delimiter: str
) -> tuple[pl.DataFrame, list[InvalidRow]] | None:
    """One record per non-blank line, parsed by pyarrow; None when rows and lines disagree."""
    invalid: list[tuple[str, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.text, row.actual_columns))
        return "skip"

    body = lines.body.encode("utf-8")
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
    numbers = lines.numbers(first)
    if invalid:
        bad = _locate(lines.get(), first, [t for t, _ in invalid])
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
    return df.with_columns(pl.Series("_line", good, dtype=pl.Int64)), rows


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
    """CSV bodies of several chunks as one lazy plan: string columns, ``_chunk``, ``_line``.

    A kind extends :attr:`plan` with its conversions and checks and runs it with
    :meth:`collect`, so that parsing, conversion and checks are one fused pass: only
    the columns the plan uses are taken from the text, and only its result is kept.
    """

    #: The fields as strings (a missing one null, an empty one ""), the ``spare``
    #: columns (not null when a record has more fields than names), ``_chunk`` (index
    #: of its body) and ``_line`` (physical line).
    plan: pl.LazyFrame
    bodies: list[bytes]
    first_lines: list[int]
    spare: list[str]
    #: Rows the bodies hold if every record is one line.
    expected: int
    delimiter: str = ","

    def collect(self, plan: pl.LazyFrame) -> pl.DataFrame | None:
        """Run the extended plan; None when a record spans lines (rows != lines)."""
        try:
            # A group is a few MB: the in-memory engine ran the whole backfill 4 % faster
            # than the streaming one, in 20 MB less (scale 0.1, 4 MB groups).
            df = plan.collect(engine="in-memory")
        except pl.exceptions.PolarsError:
            return None  # invalid UTF-8, say
        return df if df.height == self.expected else None

    def lines(self, rows: pl.DataFrame) -> list[tuple[int, int, str]]:
        """(chunk, line, text) of a few rows (by ``_chunk`` and ``_line``), from the bodies."""
        split: dict[int, list[bytes]] = {}
        out = []
        for ci, line in rows.select("_chunk", "_line").iter_rows():
            if ci not in split:
                split[ci] = self.bodies[ci].split(b"\n")
            raw = split[ci][line - self.first_lines[ci]].rstrip(b"\r").decode("utf-8")
            out.append((ci, line, raw))
        return out


def read_csv_many(
    bodies: list[bytes],
    first_lines: list[int],
    names: list[str],
    *,
    delimiter: str = ",",
    newlines: list[int | None] | None = None,
) -> ManyRows | None:
    """Many header-less CSV bodies as one lazy parallel scan (the fast path), or None.

    The bodies must be UTF-8 and each end at a line end. A record with fewer fields
    than names has the rest null; one with more has a spare column set. A blank
    line is an all-null row. None (parse each body alone, the careful way) when a
    row may not be one line: a first row of another width; a record over several
    lines (or a quote left open) or invalid UTF-8 is found by :meth:`ManyRows.collect`.
    A bare CR is data, as in the careful path. ``newlines`` are the bodies' line ends
    when the caller has counted them.
    """
    counts = []
    for n, b in enumerate(bodies):
        known = newlines[n] if newlines else None
        if not b.endswith(b"\n"):
            bodies[n] = b = b + b"\n"
            known = None
        counts.append(b.count(b"\n") if known is None else known)
        first = b[: b.find(b"\n")].rstrip(b"\r").decode("utf-8", "replace")
        if first and len(next(csv.reader([first], delimiter=delimiter), [])) != len(names):
            return None  # the parser takes its width from each body's first row
    spare = ["_more", "_more2"]
    # One scan of every body (many scans concatenated cost the streaming engine more
    # than the parse: 0.73 s of overhead for 300 bodies); a row's body and line follow
    # from its position in the whole.
    starts, at = [], 0
    for count in counts:
        starts.append(at)
        at += count
    start = pl.lit(pl.Series(starts, dtype=pl.Int64))
    first = pl.lit(pl.Series(first_lines, dtype=pl.Int64))
    plan = (
        pl.scan_csv(
            bodies,
            has_header=False,
            separator=delimiter,
            schema=dict.fromkeys([*names, *spare], pl.String),
            truncate_ragged_lines=True,
            empty_string_is_null=False,
            missing_columns="insert",
        )
        .with_row_index("_i")
        .with_columns(pl.col("_i").cast(pl.Int64))
        .with_columns((start.search_sorted(pl.col("_i"), side="right") - 1).alias("_chunk"))
        .with_columns(
            (pl.col("_i") - start.gather(pl.col("_chunk")) + first.gather(pl.col("_chunk"))).alias(
                "_line"
            ),
            pl.col("_chunk").cast(pl.UInt32),
        )
        .drop("_i")
    )
    expected = at
    return ManyRows(plan, bodies, first_lines, spare, expected, delimiter)
