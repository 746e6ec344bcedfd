"""Reading CSV bytes into string columns with the physical line number of every row.

pyarrow parses in bulk (multi-threaded); rows with the wrong number of fields are
handed back with their text so that they can be quarantined, never dropped. Line
numbers are exact when the data has no quoted line breaks (a quoted line break
makes the row's halves invalid rows of their own, which are quarantined).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from workstyle.adapters.files import locate_lines
from workstyle.collector.errors import SourceError


@dataclass
class InvalidRow:
    line: int
    text: str
    fields: int


def read_csv_lines(
    body: bytes,
    path: Path,
    *,
    first_line: int,
    column_names: list[str] | None = None,
    delimiter: str = ",",
) -> tuple[pl.DataFrame, list[InvalidRow]]:
    """Parse UTF-8 CSV ``body`` whose first byte is at line ``first_line``.

    With ``column_names`` None, the body's first line is the header. Returns every
    column as strings plus ``_line`` (1-based physical line), and the invalid rows.
    """
    invalid: list[tuple[str, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.text, row.actual_columns))
        return "skip"

    header_lines = 0 if column_names is not None else 1
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=column_names, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=_all_strings(body, column_names, delimiter),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{path}: not readable as CSV: {str(exc).splitlines()[0]}") from None
    df = pl.from_arrow(table)
    if not isinstance(df, pl.DataFrame):  # pragma: no cover - from_arrow of a table
        raise TypeError("expected a DataFrame")
    data_first = first_line + header_lines
    has_blank = b"\n\n" in body or b"\n\r\n" in body
    if not invalid and not has_blank:
        return df.with_row_index("_line", offset=data_first).with_columns(
            pl.col("_line").cast(pl.Int64)
        ), []
    text = body.decode("utf-8")
    data_text = text.split("\n", header_lines)[-1] if header_lines else text
    numbers = [data_first + i for i, ln in enumerate(data_text.split("\n")) if ln.strip("\r")]
    bad_lines = locate_lines(data_text, data_first, [t for t, _ in invalid])
    bad_set = set(bad_lines)
    good = [n for n in numbers if n not in bad_set]
    if len(good) != df.height:
        raise SourceError(
            f"{path}: could not align rows with lines (quoted line breaks?);"
            " the file was not ingested"
        )
    rows = [InvalidRow(ln, t, n) for (t, n), ln in zip(invalid, bad_lines, strict=True)]
    return df.with_columns(pl.Series("_line", good, pl.Int64)), rows


def _all_strings(
    body: bytes, column_names: list[str] | None, delimiter: str
) -> dict[str, pa.DataType]:
    if column_names is None:
        first = body.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
        import csv

        column_names = next(csv.reader([first], delimiter=delimiter), [])
    return {name: pa.string() for name in column_names}
