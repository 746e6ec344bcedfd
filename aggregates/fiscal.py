"""The Japanese fiscal calendar: April to March, Reiwa labels both ways.

FY 2023 = 2023-04-01 .. 2024-03-31 = R5 = 令和5年度. Reiwa n = 2018 + n; FY2019 is
written 令和元年度 (although April 2019 was still Heisei).
"""

from __future__ import annotations

import datetime as dt

from workstyle.collector.fiscal_year import REIWA_OFFSET, japanese_label, label, parse_fiscal_year

__all__ = ["REIWA_OFFSET", "japanese_label", "label", "parse_fiscal_year"]


def fiscal_year_of(day: dt.date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def fy_start(fy: int) -> dt.date:
    return dt.date(fy, 4, 1)


def fy_end(fy: int) -> dt.date:
    """The first day after the fiscal year (exclusive end)."""
    return dt.date(fy + 1, 4, 1)


def fy_months(fy: int) -> list[str]:
    """The twelve months of a fiscal year as 'YYYY-MM', April first."""
    return [f"{fy + (m < 4)}-{m:02d}" for m in (*range(4, 13), 1, 2, 3)]


# -- helpers for the KPI engine ------------------------------------------------------------
def month_start(month: str) -> dt.date:
    """'2024-04' -> 2024-04-01."""
    return dt.date(int(month[:4]), int(month[5:7]), 1)


def month_end(month: str) -> dt.date:
    """'2024-04' -> 2024-04-30 (the month's last day)."""
    start = month_start(month)
    nxt = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def month_of(day: dt.date) -> str:
    """2024-04-15 -> '2024-04'."""
    return f"{day.year}-{day.month:02d}"


def fiscal_year_of_month(month: str) -> int:
    """'2024-03' -> 2023."""
    return fiscal_year_of(month_start(month))


def fy_days(fy: int) -> int:
    """Number of days in a fiscal year (365 or 366)."""
    return (fy_end(fy) - fy_start(fy)).days


def fy_complete(fy: int, as_of: dt.date) -> bool:
    """True when the whole fiscal year lies on or before the as-of date."""
    return as_of >= fy_end(fy) - dt.timedelta(days=1)


def month_complete(month: str, as_of: dt.date) -> bool:
    """True when the whole month lies on or before the as-of date."""
    return as_of >= month_end(month)


def elapsed_days(fy: int, as_of: dt.date) -> int:
    """Days of the fiscal year up to and including the as-of date (0..fy_days)."""
    return max(0, min(fy_days(fy), (as_of - fy_start(fy)).days + 1))


def fy_months_through(fy: int, as_of: dt.date) -> list[str]:
    """The FY's months that have started by the as-of date."""
    return [m for m in fy_months(fy) if month_start(m) <= as_of]


def fy_order(day: dt.date) -> tuple[int, int]:
    """Position of a day within any fiscal year: (month index from April, day)."""
    return ((day.month - 4) % 12, day.day)
