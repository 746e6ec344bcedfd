"""The plan's KPI targets, read from the targets TOML (``[targets] file``).

Nothing about one municipality's plan lives in code: names, units, direction and
the yearly targets all come from this file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstyle.collector.errors import ConfigError
from workstyle.collector.fiscal_year import parse_fiscal_year

#: The KPIs the engine computes, in the order a report lists them.
KPI_IDS = (
    "web_meetings_per_month",
    "paperless_meetings",
    "mobile_work_users",
    "telework_ratio",
    "paper_vs_r3",
    "vc_capable_terminals",
)

_DEFAULT_UNITS = {
    "web_meetings_per_month": "meetings/month",
    "paperless_meetings": "meetings",
    "mobile_work_users": "people",
    "telework_ratio": "%",
    "paper_vs_r3": "%",
    "vc_capable_terminals": "%",
}


@dataclass(frozen=True)
class KpiPlan:
    """One KPI's plan entry: names, unit, direction and targets by fiscal year."""

    kpi: str
    name_ja: str
    name_en: str
    unit: str
    direction: str = "higher"
    targets: dict[int, float] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    baseline_fy: int | None = None

    def target(self, fy: int) -> float | None:
        """The plan's target for a fiscal year, or None."""
        return self.targets.get(fy)


@dataclass(frozen=True)
class Plan:
    """The whole targets file."""

    name_ja: str
    name_en: str
    kpis: dict[str, KpiPlan]
    first_fy: int | None = None
    last_fy: int | None = None

    def get(self, kpi: str) -> KpiPlan:
        """The plan entry of a KPI (a target-less default when the file omits it)."""
        return self.kpis.get(kpi) or KpiPlan(kpi, kpi, kpi, _DEFAULT_UNITS[kpi])

    def fiscal_years(self) -> set[int]:
        """Every fiscal year the plan names, by its period or by a target."""
        years = {fy for k in self.kpis.values() for fy in k.targets}
        if self.first_fy is not None and self.last_fy is not None:
            years |= set(range(self.first_fy, self.last_fy + 1))
        return years


def load_plan(path: Path) -> Plan:
    """Read and validate a targets file; every problem is one ConfigError line."""
    try:
        with Path(path).open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: targets file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the targets file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the targets file: {exc.strerror}") from None
    plan = raw.get("plan", {})
    kpis: dict[str, KpiPlan] = {}
    for kpi, entry in (raw.get("kpi") or {}).items():
        where = f"{path}: [kpi.{kpi}]"
        if kpi not in KPI_IDS:
            raise ConfigError(f"{where}: unknown KPI; expected one of {', '.join(KPI_IDS)}")
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table")
        direction = entry.get("direction", "higher")
        if direction not in ("higher", "lower"):
            raise ConfigError(
                f"{where} key 'direction': expected 'higher' or 'lower', got {direction!r}"
            )
        targets: dict[int, float] = {}
        for fy_text, value in (entry.get("targets") or {}).items():
            fy = _fy(where, "targets", fy_text)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"{where} key 'targets.{fy_text}': expected a number, got {value!r}"
                )
            targets[fy] = float(value)
        baseline_fy = entry.get("baseline_fy")
        kpis[kpi] = KpiPlan(
            kpi=kpi,
            name_ja=str(entry.get("name_ja", kpi)),
            name_en=str(entry.get("name_en", kpi)),
            unit=str(entry.get("unit", _DEFAULT_UNITS[kpi])),
            direction=direction,
            targets=targets,
            baseline=entry.get("baseline"),
            baseline_fy=_fy(where, "baseline_fy", baseline_fy) if baseline_fy else None,
        )
    first, last = plan.get("first_fy"), plan.get("last_fy")
    return Plan(
        name_ja=str(plan.get("name_ja", "")),
        name_en=str(plan.get("name_en", "")),
        kpis=kpis,
        first_fy=_fy(f"{path}: [plan]", "first_fy", first) if first else None,
        last_fy=_fy(f"{path}: [plan]", "last_fy", last) if last else None,
    )


def _fy(where: str, key: str, text: Any) -> int:
    try:
        return parse_fiscal_year(text)
    except ValueError as exc:
        raise ConfigError(f"{where} key '{key}': {exc}") from None
