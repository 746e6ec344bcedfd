"""Who is who, and in which department, at a given day: built from ``staff_directory``.

Event tables may carry any alias of a person (account, employee number, e-mail; all
pseudonymised with the same key). The directory links them to one person id and
gives the department valid on each day. It is small (staff x transfers), so it is
collected once and turned into an interval table keyed by alias, in which every
directory alias has exactly one row for every day (gaps and the time before the
first entry carry a null department). An event then needs only a hash join on
its person column and a range filter, which streams over hundreds of millions of
rows, instead of an as-of join that would have to sort them.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from workstyle.collector.ingest.reader import DatasetReader
from workstyle.schemas.tables import STAFF_DIRECTORY

MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(9999, 12, 31)

INTERVALS_SCHEMA = {
    "alias": pl.String,
    "canon": pl.String,
    "d_from": pl.Date,
    "d_to": pl.Date,
    "dir_department": pl.String,
}


def load_intervals(store: DatasetReader, as_of: dt.date) -> pl.DataFrame:
    """Alias -> (person, department) intervals covering every day, from the directory."""
    entries = (
        store.scan(STAFF_DIRECTORY)
        # A directory entry that starts after the as-of date did not exist then.
        .filter(pl.col("valid_from") <= as_of)
        .select("person", "employee_no", "email", "department", "valid_from", "valid_to")
        .unique(subset=["person", "valid_from"], keep="last")
        .sort("person", "valid_from")
        .collect()
    )
    if entries.height == 0:
        return pl.DataFrame(schema=INTERVALS_SCHEMA)
    nxt = pl.col("valid_from").shift(-1).over("person")
    # An entry ends at its valid_to (inclusive) or the day before the next one starts,
    # whichever is first, so overlapping entries never give a day two departments.
    entries = entries.with_columns(
        pl.min_horizontal(
            pl.col("valid_to").fill_null(MAX_DATE),
            (nxt - pl.duration(days=1)).fill_null(MAX_DATE),
        ).alias("eff_to"),
        nxt.alias("next_from"),
    )
    one = pl.duration(days=1)
    head = entries.group_by("person").agg(pl.col("valid_from").min().alias("first"))
    parts = [
        entries.select(
            "person",
            pl.col("valid_from").alias("d_from"),
            pl.col("eff_to").alias("d_to"),
            pl.col("department").alias("dir_department"),
        ),
        # Before the first entry: the person was not (yet) in the directory.
        head.filter(pl.col("first") > MIN_DATE).select(
            "person",
            pl.lit(MIN_DATE).alias("d_from"),
            (pl.col("first") - one).alias("d_to"),
            pl.lit(None, pl.String).alias("dir_department"),
        ),
        # Gaps between entries and the time after the last one (a leaver).
        entries.filter(pl.col("eff_to") < MAX_DATE)
        .with_columns(
            pl.when(pl.col("next_from").is_null())
            .then(pl.lit(MAX_DATE))
            .otherwise(pl.col("next_from") - one)
            .alias("gap_end")
        )
        .filter(pl.col("eff_to") < pl.col("gap_end"))
        .select(
            "person",
            (pl.col("eff_to") + one).alias("d_from"),
            pl.col("gap_end").alias("d_to"),
            pl.lit(None, pl.String).alias("dir_department"),
        ),
    ]
    intervals = pl.concat(parts).filter(pl.col("d_from") <= pl.col("d_to"))
    aliases = (
        pl.concat(
            [
                entries.select(pl.col("person").alias("alias"), "person", pl.lit(0).alias("prio")),
                entries.select(
                    pl.col("employee_no").alias("alias"), "person", pl.lit(1).alias("prio")
                ),
                entries.select(pl.col("email").alias("alias"), "person", pl.lit(2).alias("prio")),
            ]
        )
        .drop_nulls("alias")
        .unique()
    )
    # An alias claimed by two people (a reused number) goes to the one whose account it
    # is, else to one fixed person, so that every event resolves the same way each run.
    aliases = aliases.sort("alias", "prio", "person").unique("alias", keep="first")
    return (
        aliases.join(intervals, on="person", how="inner")
        .select("alias", pl.col("person").alias("canon"), "d_from", "d_to", "dir_department")
        .cast(INTERVALS_SCHEMA)  # type: ignore[arg-type]
    )


def attach(
    lf: pl.LazyFrame,
    intervals: pl.DataFrame,
    person: str | None,
    day: pl.Expr,
    own_department: str | None,
    unknown: str,
) -> pl.LazyFrame:
    """Add ``canon`` (resolved person) and ``dept`` (at ``day``) to an event frame.

    The row's own department wins; else the directory's department on that day;
    else ``unknown``. ``canon`` is the directory person, or the row's own value.
    """
    lf = lf.with_columns(day.alias("__day"))
    own = pl.col(own_department) if own_department else pl.lit(None, pl.String)
    if person is None:
        return lf.with_columns(
            pl.lit(None, pl.String).alias("canon"),
            pl.coalesce(own, pl.lit(unknown)).alias("dept"),
            pl.lit(False).alias("in_directory"),
        )
    joined = lf.join(intervals.lazy(), left_on=person, right_on="alias", how="left", coalesce=False)
    # The intervals cover every day exactly once per alias, so this keeps one row per
    # event: the unmatched (alias unknown to the directory) and the one valid interval.
    joined = joined.filter(
        pl.col("d_from").is_null()
        | ((pl.col("__day") >= pl.col("d_from")) & (pl.col("__day") <= pl.col("d_to")))
    )
    return joined.with_columns(
        pl.coalesce(pl.col("canon"), pl.col(person)).alias("canon"),
        pl.coalesce(own, pl.col("dir_department"), pl.lit(unknown)).alias("dept"),
        pl.col("d_from").is_not_null().alias("in_directory"),
    ).drop("d_from", "d_to", "dir_department", "alias", strict=False)
