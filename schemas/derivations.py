"""Canonical derived values, stated once: sheets of a print job, a duration, an end time.

Every adapter that must fill one of these columns from others calls these functions,
so the rule behind a KPI input exists in one place (docs/kpis.md states it for
policy staff). They are polars expressions over canonical columns; this module is
imported only by adapters, never by ``schemas/__init__`` (the light commands must not
import polars).
"""

from __future__ import annotations

import polars as pl


def sheets(pages: pl.Expr, copies: pl.Expr, duplex: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Sheets of a print job by the documented rule, and whether that is only an upper bound.

    ``pages`` is the total over all copies (PaperCut's ``Pages``). Duplex:
    copies x ceil(pages per copy / 2). Simplex: pages. Duplex unknown, or duplex with
    copies unknown: pages, flagged as an upper bound.
    """
    exact_duplex = duplex.fill_null(False) & copies.is_not_null() & (copies > 0)
    # Pages per copy rounded up: a job whose total does not divide evenly (a log
    # quirk) is never under-counted.
    per_copy = (pages + copies - 1) // copies
    value = pl.when(exact_duplex).then(copies * ((per_copy + 1) // 2)).otherwise(pages)
    upper = duplex.is_null() | (duplex.fill_null(False) & ~exact_duplex)
    return value, upper


def duration_seconds(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Whole seconds from start to end (null when either is unknown)."""
    return (end - start).dt.total_seconds().cast(pl.Int64)


def ended_at(start: pl.Expr, duration: pl.Expr) -> pl.Expr:
    """The end time of something that started at ``start`` and lasted ``duration`` seconds."""
    return start + pl.duration(seconds=duration)


#: Canonical column -> the columns it is derived from, per table; a source that maps
#: the inputs need not map the column itself.
DERIVABLE: dict[str, dict[str, tuple[str, ...]]] = {
    "print_jobs": {"sheets": ("pages",), "sheets_upper_bound": ("pages",)},
    "meetings": {
        "duration_seconds": ("start_time", "end_time"),
        "end_time": ("start_time", "duration_seconds"),
    },
    "remote_sessions": {
        "duration_seconds": ("start_time", "end_time"),
        "end_time": ("start_time", "duration_seconds"),
    },
}


def derive(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Fill the table's derivable columns where ``df`` lacks them or holds nulls.

    A value the source gave is kept; a sheet count the source gave is exact unless the
    source also says otherwise.
    """

    def given(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in df.columns else pl.lit(None, dtype)

    if table == "print_jobs" and "pages" in df.columns:
        value, upper = sheets(
            pl.col("pages"),
            given("copies", pl.Int64).cast(pl.Int64),
            given("duplex", pl.Boolean),
        )
        have = given("sheets", pl.Int64)
        return df.with_columns(
            pl.coalesce(have, value).alias("sheets"),
            pl.coalesce(
                given("sheets_upper_bound", pl.Boolean),
                pl.when(have.is_not_null()).then(False).otherwise(upper),
            ).alias("sheets_upper_bound"),
        )
    if table in DERIVABLE and "start_time" in df.columns:
        start = pl.col("start_time")
        end, dur = given("end_time", pl.Datetime("us", "UTC")), given("duration_seconds", pl.Int64)
        return df.with_columns(
            pl.coalesce(dur, duration_seconds(start, end)).alias("duration_seconds"),
            pl.coalesce(end, ended_at(start, dur)).alias("end_time"),
        )
    return df
