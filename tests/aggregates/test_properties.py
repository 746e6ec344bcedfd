"""Property tests: KPI values do not depend on row order or on re-ingesting the same data."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kpi_fixtures import SMALL_TARGETS, Fixture

START = dt.datetime(2023, 3, 25, tzinfo=dt.UTC)

meetings = st.lists(
    st.tuples(
        st.integers(0, 60 * 24 * 80),
        st.sampled_from([None, 0, 30, 90, 3600]),
        st.sampled_from([None, 1, 2, 7]),
        st.sampled_from(["p1", "p2", "p3", None]),
    ),
    min_size=0,
    max_size=40,
)


def _rows(spec: list[tuple]) -> tuple[list[dict], list[dict], list[dict]]:
    web, sessions, days = [], [], []
    for i, (minute, seconds, participants, person) in enumerate(spec):
        start = START + dt.timedelta(minutes=minute)
        web.append(
            {
                "meeting_id": f"m{i}",
                "platform": "teams",
                "start_time": start,
                "duration_seconds": seconds,
                "participants": participants,
                "host": person,
            }
        )
        if person:
            sessions.append(
                {
                    "session_id": f"s{i}",
                    "person": person,
                    "start_time": start,
                    "duration_seconds": seconds,
                }
            )
            days.append(
                {
                    "person": person,
                    "work_date": start.date(),
                    "location": "home",
                    "portion": "am" if i % 2 else "full",
                }
            )
    return web, sessions, days


def _compute(rows: tuple[list[dict], list[dict], list[dict]], repeat: int) -> pl.DataFrame:
    web, sessions, days = rows
    with tempfile.TemporaryDirectory() as tmp:
        targets = Path(tmp) / "t.toml"
        targets.write_text(SMALL_TARGETS, encoding="utf-8")
        fx = Fixture(Path(tmp) / "data", targets)
        fx.put(
            "telework_applicants",
            [{"person": p, "fiscal_year": fy} for p in ("p1", "p2", "p3") for fy in (2022, 2023)],
        )
        for _ in range(repeat):
            for table, data in (
                ("meetings", web),
                ("remote_sessions", sessions),
                ("telework_days", days),
            ):
                if data:
                    # Natural key (person, work_date, portion): the last one of a key wins.
                    fx.put(table, data)
        frame = fx.result("2023-07-15").frame
        return frame.drop("computed_at").sort(
            "kpi", "fiscal_year", "month", "department", nulls_last=True
        )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=meetings, seed=st.randoms(use_true_random=False))
def test_invariant_to_row_order_and_reingest(spec: list[tuple], seed) -> None:
    rows = _rows(spec)
    # Drop duplicate telework keys so that "last one wins" cannot depend on order.
    seen: set = set()
    days = []
    for r in rows[2]:
        key = (r["person"], r["work_date"], r["portion"])
        if key not in seen:
            seen.add(key)
            days.append(r)
    rows = (rows[0], rows[1], days)
    shuffled = tuple(seed.sample(part, len(part)) for part in rows)
    base = _compute(rows, 1)
    assert base.equals(_compute(shuffled, 1))
    assert base.equals(_compute(rows, 3))
