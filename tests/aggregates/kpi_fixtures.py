"""Fixtures for the KPI engine tests: a temp store filled through Store.upsert."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workstyle.aggregates import engine
from workstyle.aggregates.kpis import Ctx
from workstyle.aggregates.settings import Rules
from workstyle.aggregates.targets import load_plan
from workstyle.collector.ingest.store import Store
from workstyle.schemas.tables import TABLES
from workstyle.schemas.tables import empty as empty_table

UTC = dt.UTC
INGESTED = dt.datetime(2025, 1, 1, tzinfo=UTC)

SMALL_TARGETS = """
[plan]
name_ja = "テスト計画"
first_fy = "R3"
last_fy = "R6"

[kpi.web_meetings_per_month]
name_ja = "Web会議実施件数"
unit = "meetings/month"
targets = { R5 = 3, R6 = 3 }

[kpi.paperless_meetings]
name_ja = "ペーパーレス会議実施回数"
unit = "meetings"
targets = { R5 = 4, R6 = 100 }

[kpi.mobile_work_users]
name_ja = "モバイルワーク実施人数"
unit = "people"
targets = { R4 = 1, R5 = 2 }

[kpi.telework_ratio]
name_ja = "在宅勤務実施割合"
unit = "%"
targets = { R5 = 50 }

[kpi.paper_vs_r3]
name_ja = "紙削減率:R3比"
unit = "%"
direction = "lower"
baseline_fy = "R3"
targets = { R4 = 99, R5 = 90 }

[kpi.vc_capable_terminals]
name_ja = "テレビ会議対応端末数"
unit = "%"
targets = { R5 = 60 }
"""


def ts(text: str) -> dt.datetime:
    """An ISO time with an offset (or Z) as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


class Fixture:
    """A temp store plus helpers to add canonical rows and compute KPIs."""

    def __init__(self, root: Path, targets: Path) -> None:
        self.root = root
        self.store = Store(root.resolve())
        self.targets = targets

    def put(
        self,
        table: str,
        rows: list[dict[str, Any]],
        source: str = "s1",
        ingested_at: dt.datetime = INGESTED,
    ) -> None:
        spec = TABLES[table]
        frame = pl.DataFrame(rows, schema_overrides=_overrides(spec, rows))
        self.store.upsert(spec, source, frame, ingested_at)

    def ctx(
        self,
        as_of: str,
        fys: set[int] | None = None,
        basis: str | None = None,
        excluded: frozenset[str] = frozenset(),
        **rules: Any,
    ) -> Ctx:
        return Ctx(
            self.store,
            Rules(**rules),
            load_plan(self.targets),
            d(as_of),
            fiscal_years=frozenset(fys) if fys else None,
            basis=basis,
            excluded=excluded,
        )

    def result(self, as_of: str, **kw: Any) -> engine.Result:
        return engine.compute(self.ctx(as_of, **kw))

    def yearly(self, as_of: str, kpi: str, fy: int, **kw: Any) -> dict[str, Any]:
        frame = self.result(as_of, **kw).yearly()
        rows = frame.filter((pl.col("kpi") == kpi) & (pl.col("fiscal_year") == fy))
        assert rows.height == 1, rows
        return rows.row(0, named=True)


def _overrides(spec: Any, rows: list[dict[str, Any]]) -> dict[str, pl.DataType]:
    schema = pl.from_arrow(empty_table(spec.schema)).schema
    present = {k for r in rows for k in r}
    return {k: v for k, v in schema.items() if k in present}


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    targets = tmp_path / "targets.toml"
    targets.write_text(SMALL_TARGETS, encoding="utf-8")
    return Fixture(tmp_path / "data", targets)


def staff(
    person: str,
    dept: str,
    valid_from: str,
    valid_to: str | None = None,
    employee_no: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    return {
        "person": person,
        "employee_no": employee_no,
        "email": email,
        "department": dept,
        "valid_from": d(valid_from),
        "valid_to": d(valid_to) if valid_to else None,
    }
