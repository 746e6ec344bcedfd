"""Columnar parsing helpers for adapters: times with zones, numbers, flags, bad rows.

All of them are polars expressions over string columns, so a file of a million rows
is parsed without a Python loop. A value that does not parse becomes null, and
:func:`split_bad` turns "was there but did not parse" into a quarantine reason.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from workstyle.adapters.base import Quarantined

#: Time formats tried, in order, when a source does not name its own.
DEFAULT_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%:z",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
)
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日")

TRUE_WORDS = ("true", "yes", "y", "1", "○", "◯", "〇", "有", "あり", "可", "はい", "対応", "済")
FALSE_WORDS = (
    "false",
    "no",
    "n",
    "0",
    "×",
    "✕",
    "無",
    "なし",
    "不可",
    "いいえ",
    "非対応",
    "-",
    "－",
)

UTC = pl.Datetime("us", "UTC")


def blank_to_null(col: pl.Expr) -> pl.Expr:
    """The text with surrounding whitespace removed; null when nothing is left."""
    # One strip: a when/then over the stripped text stripped it twice (no shared
    # subexpression), 0.59 s against 0.34 s for three columns of 1.5 M print jobs.
    return col.cast(pl.String).str.strip_chars().replace("", None)


def _has_zone(fmt: str) -> bool:
    return "%z" in fmt or "%:z" in fmt or fmt.endswith("Z") or "%Z" in fmt


def parse_time(col: pl.Expr, formats: tuple[str, ...] | list[str], tz: str) -> pl.Expr:
    """Parse strings to UTC timestamps; text without an offset is local time in ``tz``.

    In a zone with daylight saving, an ambiguous local time takes the earlier
    instant and a non-existent one is null (quarantined); Asia/Tokyo has neither.
    """
    s = blank_to_null(col)
    attempts = []
    for fmt in formats:
        if fmt.endswith("Z") and "%" in fmt:
            naive = s.str.strptime(pl.Datetime("us"), fmt, strict=False)
            attempts.append(naive.dt.replace_time_zone("UTC"))
        elif _has_zone(fmt):
            attempts.append(s.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False))
        else:
            naive = s.str.strptime(pl.Datetime("us"), fmt, strict=False)
            attempts.append(
                naive.dt.replace_time_zone(
                    tz, ambiguous="earliest", non_existent="null"
                ).dt.convert_time_zone("UTC")
            )
    return pl.coalesce(attempts)


def parse_date(col: pl.Expr, formats: tuple[str, ...] | list[str]) -> pl.Expr:
    s = blank_to_null(col)
    return pl.coalesce([s.str.strptime(pl.Date, f, strict=False) for f in formats])


def parse_int(col: pl.Expr) -> pl.Expr:
    """Integers, tolerating thousands separators and full-width digits."""
    s = blank_to_null(col).str.replace_all(",", "").str.replace_all("，", "")
    s = s.str.normalize("NFKC")
    return s.cast(pl.Int64, strict=False)


def parse_float(col: pl.Expr) -> pl.Expr:
    s = blank_to_null(col).str.replace_all(",", "").str.normalize("NFKC")
    return s.cast(pl.Float64, strict=False)


def parse_bool(
    col: pl.Expr,
    true_words: tuple[str, ...] = TRUE_WORDS,
    false_words: tuple[str, ...] = FALSE_WORDS,
) -> pl.Expr:
    s = blank_to_null(col).str.normalize("NFKC").str.to_lowercase()
    t = [w.lower() for w in true_words] + [w.lower() for w in _nfkc(true_words)]
    f = [w.lower() for w in false_words] + [w.lower() for w in _nfkc(false_words)]
    return pl.when(s.is_in(t)).then(True).when(s.is_in(f)).then(False).otherwise(None)


def _nfkc(words: tuple[str, ...]) -> list[str]:
    import unicodedata

    return [unicodedata.normalize("NFKC", w) for w in words]


def fast_or_careful(
    df: pl.DataFrame,
    fast: dict[str, pl.Expr],
    doubt: pl.Expr,
    careful: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """Columns ``fast`` computes for every row; ``careful`` recomputes them for rows in ``doubt``.

    A device writes its numbers and times in one form: ``fast`` reads only that form
    (a plain cast), and a row it could not read is read again by the careful parse
    (separators, full-width digits, other fields), so every row gets the careful
    parse's value at the cost of the fast one.
    """
    df = df.with_columns(**fast)
    mask = df.select(doubt.fill_null(False)).to_series()
    if not mask.any():
        return df
    where = mask.arg_true()
    again = careful(df.filter(mask))
    return df.with_columns(
        df.get_column(name).clone().scatter(where, again.get_column(name)) for name in fast
    )


def failed(raw: pl.Expr, parsed: pl.Expr) -> pl.Expr:
    """True where the raw value was present but did not parse."""
    return blank_to_null(raw).is_not_null() & parsed.is_null()


def unparsed(raw: pl.Expr, parsed: pl.Expr, label: str) -> tuple[pl.Expr, pl.Expr]:
    """A ``split_bad`` check: ``label``'s value was there but is not a whole number in range."""
    return (
        failed(raw, parsed),
        pl.format(f"{label} {{}} is not a whole number (or out of range)", raw),
    )


def locations(rows: pl.DataFrame, location: str = "_location") -> list[str]:
    """Where each row came from: a ``location`` column, or ``_file`` and ``_line``.

    File adapters give ``_file`` (categorical) and ``_line`` rather than a string per
    row: the ``path:line`` text is only ever needed for the few rows quarantined.
    """
    if location in rows.columns:
        return rows.get_column(location).cast(pl.String).to_list()
    return (
        rows.select(pl.format("{}:{}", pl.col("_file").cast(pl.String), pl.col("_line")))
        .to_series()
        .to_list()
    )


def split_bad(
    df: pl.DataFrame,
    checks: list[tuple[pl.Expr, pl.Expr | str]],
    location: str = "_location",
    raw: str = "_raw",
    raw_of: Callable[[pl.DataFrame], list[str]] | None = None,
) -> tuple[pl.DataFrame, Quarantined]:
    """Split rows into good ones and quarantined ones (location, reasons, raw text).

    ``checks`` pairs a boolean "this row is bad" expression with its reason (a
    string or a string expression); a row failing several gets all reasons. The raw
    text comes from the ``raw`` column, else from ``raw_of(bad_rows)``.
    """
    q = Quarantined.empty()
    if not checks or df.height == 0:
        return df, q
    # Most rows are fine: find the bad ones with one boolean pass, and build reason
    # strings only for those (not for every row), copying the frame only when needed.
    is_bad = pl.any_horizontal([bad.fill_null(False) for bad, _ in checks])
    mask = df.select(is_bad.alias("m")).get_column("m")
    if not mask.any():
        return df, q
    bad = df.filter(mask)
    reasons = [pl.when(b).then(r if isinstance(r, pl.Expr) else pl.lit(r)) for b, r in checks]
    why = bad.select(pl.concat_str(reasons, separator="; ", ignore_nulls=True)).to_series()
    q = Quarantined(
        location=locations(bad, location),
        reason=why.to_list(),
        raw=(
            bad.get_column(raw).to_list()
            if raw in bad.columns
            else raw_of(bad)
            if raw_of
            else [None] * bad.height
        ),
    )
    return df.filter(~mask), q
