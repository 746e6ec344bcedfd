"""The ``[kpi]`` config table: every counting rule of the KPI engine is a switch here.

Listed by :mod:`collector.config`, which validates ``[kpi]`` against these options;
:func:`rules_from` turns the validated values into a :class:`Rules` object that the
KPI jobs and ``--explain`` read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from workstyle.collector.options import Option

BASES = ("print_jobs", "paper_purchases", "printer_counters")
LEAVERS_RULES = ("keep", "present", "exclude")
MEETING_MONTHS = ("since_first_data", "all", "with_data")
PAPER_PERIODS = ("complete_months", "days")

OPTIONS: tuple[Option, ...] = (
    Option(
        "min_meeting_minutes",
        "float",
        "A web meeting counts only if it lasted at least this many minutes.",
        default=1.0,
    ),
    Option(
        "min_participants",
        "int",
        "A web meeting counts only if it had at least this many participants"
        " (when the source knows the count).",
        default=2,
    ),
    Option(
        "count_meetings_without_duration",
        "bool",
        "Count web meetings whose source gives neither a duration nor an end time.",
        default=True,
    ),
    Option(
        "meeting_months",
        "str",
        "Which complete months the FY mean of web meetings divides by: since_first_data"
        " (months from the first month with any meeting), all, or with_data.",
        default="since_first_data",
        choices=MEETING_MONTHS,
    ),
    Option(
        "exclude_paper_distributed",
        "bool",
        "A paperless meeting that also handed out paper does not count.",
        default=True,
    ),
    Option(
        "min_session_seconds",
        "int",
        "A mobile-work session qualifies if it lasted at least this many seconds.",
        default=60,
    ),
    Option(
        "count_sessions_without_duration",
        "bool",
        "Count mobile-work sessions whose length is unknown (no duration, no end).",
        default=False,
    ),
    Option(
        "excluded_accounts",
        "list",
        "Service/admin accounts never counted as mobile-work users (account names;"
        " pseudonymised with the configured key, or 32-hex pseudonyms as stored).",
        default=[],
    ),
    Option(
        "count_half_days",
        "bool",
        "Half days (午前/午後) of home work count as telework days.",
        default=True,
    ),
    Option(
        "count_hour_portions",
        "bool",
        "Hour-unit (時間単位) home work counts as a telework day.",
        default=False,
    ),
    Option(
        "count_satellite_days",
        "bool",
        "Satellite-office days count as telework (在宅勤務 means home: off by default).",
        default=False,
    ),
    Option(
        "count_mobile_days",
        "bool",
        "Mobile-work days count as telework (off by default).",
        default=False,
    ),
    Option(
        "leavers",
        "str",
        "Applicants who left during the FY: keep (stay in the denominator), present"
        " (stay only if on staff at least one day of the FY), exclude (dropped).",
        default="present",
        choices=LEAVERS_RULES,
    ),
    Option(
        "paper_basis",
        "str",
        "Basis of paper_vs_r3: print_jobs (sheets printed), paper_purchases (sheets"
        " bought) or printer_counters (pages from printer SNMP counters: sheets where the"
        " counter counts sheets, else impressions, and then reported as impressions);"
        " the bases are never mixed.",
        default="print_jobs",
        choices=BASES,
    ),
    Option(
        "paper_same_period",
        "str",
        "A FY in progress is compared with the same complete_months of the baseline FY,"
        " or with the same days (through the as-of day).",
        default="complete_months",
        choices=PAPER_PERIODS,
    ),
    Option(
        "unknown_department",
        "str",
        "Department label of rows whose department cannot be resolved.",
        default="(unknown)",
    ),
)


@dataclass(frozen=True)
class Rules:
    """The validated counting rules, one attribute per ``[kpi]`` key."""

    min_meeting_minutes: float = 1.0
    min_participants: int = 2
    count_meetings_without_duration: bool = True
    meeting_months: str = "since_first_data"
    exclude_paper_distributed: bool = True
    min_session_seconds: int = 60
    count_sessions_without_duration: bool = False
    excluded_accounts: tuple[str, ...] = ()
    count_half_days: bool = True
    count_hour_portions: bool = False
    count_satellite_days: bool = False
    count_mobile_days: bool = False
    leavers: str = "present"
    paper_basis: str = "print_jobs"
    paper_same_period: str = "complete_months"
    unknown_department: str = "(unknown)"

    def show(self, *names: str) -> list[str]:
        """'[kpi] name = value' lines for ``--explain``."""
        return [f"[kpi] {n} = {_toml(getattr(self, n))}" for n in names]


def rules_from(section: dict[str, Any] | None) -> Rules:
    """Build :class:`Rules` from ``cfg.sections['kpi']`` (defaults for missing keys)."""
    section = section or {}
    known = {f.name for f in fields(Rules)}
    values = {k: v for k, v in section.items() if k in known}
    if "excluded_accounts" in values:
        values["excluded_accounts"] = tuple(str(a) for a in values["excluded_accounts"] or ())
    if "min_meeting_minutes" in values:
        values["min_meeting_minutes"] = float(values["min_meeting_minutes"])
    return Rules(**values)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)
