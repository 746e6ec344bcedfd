"""Hand-computed expectations for each of the six KPIs on small fixtures."""

from __future__ import annotations

import polars as pl
import pytest
from kpi_fixtures import Fixture, d, staff, ts

from workstyle.aggregates import engine


def meeting(
    mid: str,
    start: str,
    minutes: float | None = 30,
    participants: int | None = 5,
    host: str | None = None,
    department: str | None = None,
) -> dict:
    return {
        "meeting_id": mid,
        "platform": "zoom",
        "start_time": ts(start),
        "duration_seconds": None if minutes is None else int(minutes * 60),
        "participants": participants,
        "host": host,
        "department": department,
    }


# -- web meetings per month --------------------------------------------------------------
def _web_fixture(fx: Fixture) -> None:
    fx.put(
        "meetings",
        [
            meeting("a1", "2023-04-03T01:00Z", department="総務部"),
            meeting("a2", "2023-04-04T01:00Z", department="総務部"),
            meeting("a3", "2023-04-05T01:00Z", participants=None, department="企画部"),
            meeting("a4", "2023-04-06T01:00Z", minutes=0.5),  # too short
            meeting("a5", "2023-04-07T01:00Z", participants=1),  # alone
            meeting("b1", "2023-05-08T01:00Z", department="企画部"),
            meeting("b2", "2023-05-09T01:00Z", minutes=None, department="企画部"),
        ],
    )


def test_web_meetings_mean_over_months_with_data(fx: Fixture) -> None:
    _web_fixture(fx)
    row = fx.yearly("2024-03-31", "web_meetings_per_month", 2023, meeting_months="with_data")
    # April: a1 a2 a3 (a4 short, a5 one participant); May: b1 b2 -> (3 + 2) / 2 months.
    assert row["value"] == pytest.approx(2.5)
    assert (row["numerator"], row["denominator"]) == (5, 2)
    assert row["status"] == "behind"  # target 3, FY complete


def test_web_meetings_since_first_data_counts_empty_months_as_zero(fx: Fixture) -> None:
    _web_fixture(fx)
    row = fx.yearly("2024-03-31", "web_meetings_per_month", 2023)
    assert row["value"] == pytest.approx(5 / 12)


def test_web_meetings_rules_are_switches(fx: Fixture) -> None:
    _web_fixture(fx)
    row = fx.yearly(
        "2024-03-31",
        "web_meetings_per_month",
        2023,
        meeting_months="with_data",
        min_participants=1,
        min_meeting_minutes=0.1,
        count_meetings_without_duration=False,
    )
    # a4 and a5 now count; b2 (no duration) does not: (5 + 1) / 2.
    assert row["value"] == pytest.approx(3.0)
    assert row["status"] == "achieved"


def test_jst_month_and_fy_boundary(fx: Fixture) -> None:
    # 2024-03-31T15:30Z is 2024-04-01 00:30 in Tokyo: April 2024, FY R6.
    fx.put("meetings", [meeting("x", "2024-03-31T15:30Z"), meeting("y", "2024-03-31T14:30Z")])
    result = fx.result("2024-04-30")
    monthly = result.monthly().filter(pl.col("kpi") == "web_meetings_per_month")
    by_month = dict(zip(monthly["month"], monthly["value"], strict=True))
    assert by_month["2024-04"] == 1
    assert by_month["2024-03"] == 1
    assert set(monthly.filter(pl.col("month") == "2024-04")["fiscal_year"]) == {2024}


def test_web_meetings_in_progress_projection(fx: Fixture) -> None:
    # Complete months April (2) and May (4): trend +2/month -> Jun..Mar = 6..24.
    rows = [meeting(f"a{i}", f"2023-04-{i + 10:02d}T01:00Z") for i in range(2)]
    rows += [meeting(f"b{i}", f"2023-05-{i + 10:02d}T01:00Z") for i in range(4)]
    rows += [meeting("c0", "2023-06-02T01:00Z")]  # June is in progress: not in the mean
    fx.put("meetings", rows)
    row = fx.yearly("2023-06-10", "web_meetings_per_month", 2023)
    assert row["value"] == pytest.approx(3.0)
    assert not row["complete"]
    projected = (2 + 4 + sum(range(6, 25, 2))) / 12
    assert row["projected"] == pytest.approx(projected)
    assert row["status"] == "on_track"


# -- paperless meetings ------------------------------------------------------------------
def _paperless(mid: str, start: str, paper: bool | None, dept: str | None) -> dict:
    return {
        "meeting_id": mid,
        "start_time": ts(start),
        "paper_also_distributed": paper,
        "department": dept,
    }


def test_paperless_meetings_count_and_department_sum(fx: Fixture) -> None:
    fx.put(
        "paperless_meetings",
        [
            _paperless("p1", "2023-04-10T01:00Z", False, "総務部"),
            _paperless("p2", "2023-04-11T01:00Z", None, "総務部"),
            _paperless("p3", "2023-05-10T01:00Z", True, "企画部"),  # paper handed out
            _paperless("p4", "2023-06-10T01:00Z", False, "企画部"),
            _paperless("p5", "2023-07-10T01:00Z", False, None),
        ],
    )
    result = fx.result("2024-03-31")
    year = (
        result.yearly()
        .filter(pl.col("kpi") == "paperless_meetings", pl.col("fiscal_year") == 2023)
        .row(0, named=True)
    )
    assert year["value"] == 4
    assert year["status"] == "achieved"  # target 4
    dept = result.by_department().filter(pl.col("kpi") == "paperless_meetings")
    assert dict(zip(dept["department"], dept["value"], strict=True)) == {
        "総務部": 2,
        "企画部": 1,
        "(unknown)": 1,
    }
    assert dept["value"].sum() == year["value"]
    monthly = result.monthly().filter(
        pl.col("kpi") == "paperless_meetings", pl.col("fiscal_year") == 2023
    )
    assert monthly["value"].sum() == year["value"]
    assert monthly["target"][0] == pytest.approx(4 / 12)


def test_paperless_in_progress_projection_and_early_achievement(fx: Fixture) -> None:
    fx.put(
        "paperless_meetings",
        [_paperless(f"p{i}", f"2024-04-{i + 1:02d}T01:00Z", False, "総務部") for i in range(10)],
    )
    row = fx.yearly("2024-04-30", "paperless_meetings", 2024)
    assert row["value"] == 10
    assert row["projected"] == pytest.approx(10 * 365 / 30)
    assert row["status"] == "on_track"  # 121.7 >= 100
    row = fx.yearly("2024-04-05", "paperless_meetings", 2024)
    assert row["value"] == 5  # as-of ignores later meetings
    fx.put(
        "paperless_meetings",
        [_paperless(f"q{i}", f"2024-04-{i + 1:02d}T02:00Z", False, "総務部") for i in range(25)],
        source="s2",
    )
    row = fx.yearly("2024-04-05", "paperless_meetings", 2024)
    assert row["value"] == 10
    row = fx.yearly("2024-04-30", "paperless_meetings", 2024)
    assert row["value"] == 35
    assert row["status"] == "on_track"
    row = fx.yearly("2025-03-31", "paperless_meetings", 2024)
    assert row["status"] == "behind"  # final: 35 < 100


# -- mobile work users -------------------------------------------------------------------
def _session(sid: str, person: str, start: str, seconds: int | None) -> dict:
    return {
        "session_id": sid,
        "person": person,
        "start_time": ts(start),
        "duration_seconds": seconds,
    }


def test_mobile_work_users_rules_aliases_and_departments(fx: Fixture) -> None:
    fx.put(
        "staff_directory",
        [
            staff("pa", "総務部", "2020-04-01", "2023-03-31", employee_no="e-a", email="m-a"),
            staff("pa", "企画部", "2023-04-01", employee_no="e-a", email="m-a"),
            staff("pb", "企画部", "2020-04-01"),
        ],
    )
    fx.put(
        "remote_sessions",
        [
            _session("1", "pa", "2023-03-10T01:00Z", 120),  # FY2022, 総務部
            _session("2", "e-a", "2023-04-10T01:00Z", 120),  # employee-no alias of pa, 企画部
            _session("3", "m-a", "2023-04-11T01:00Z", 30),  # too short
            _session("4", "pb", "2023-05-10T01:00Z", 61),
            _session("5", "pc", "2023-05-10T01:00Z", 59),  # too short: pc never qualifies
            _session("6", "pd", "2023-05-10T01:00Z", None),  # unknown length
            _session("7", "svc", "2023-05-10T01:00Z", 3600),  # excluded account
        ],
    )
    result = fx.result("2024-03-31", excluded=frozenset({"svc"}))
    year = result.yearly().filter(pl.col("kpi") == "mobile_work_users")
    values = dict(zip(year["fiscal_year"], year["value"], strict=True))
    assert values[2022] == 1 and values[2023] == 2
    dept = result.by_department().filter(pl.col("kpi") == "mobile_work_users")
    got = {(r["fiscal_year"], r["department"]): r["value"] for r in dept.iter_rows(named=True)}
    assert got == {(2022, "総務部"): 1, (2023, "企画部"): 2}
    row = fx.yearly("2024-03-31", "mobile_work_users", 2023, count_sessions_without_duration=True)
    assert row["value"] == 4  # pa, pb, pd and svc (no exclusion list)
    monthly = result.monthly().filter(
        pl.col("kpi") == "mobile_work_users", pl.col("fiscal_year") == 2023
    )
    # Fiscal year to date: April pa, May +pb.
    assert monthly["value"].to_list()[:3] == [1, 2, 2]


# -- telework ratio ----------------------------------------------------------------------
def _applicant(person: str, fy: int, left_on: str | None = None) -> dict:
    return {
        "person": person,
        "fiscal_year": fy,
        "department": "総務部",
        "left_on": d(left_on) if left_on else None,
    }


def _day(person: str, day: str, location: str = "home", portion: str = "full") -> dict:
    return {"person": person, "work_date": d(day), "location": location, "portion": portion}


def _telework_fixture(fx: Fixture) -> None:
    fx.put(
        "telework_applicants",
        [
            _applicant("A", 2023),
            _applicant("B", 2023),
            _applicant("C", 2023),
            _applicant("D", 2023, left_on="2023-03-31"),  # left before the FY began
            _applicant("E", 2023, left_on="2023-09-30"),  # left mid-year, no telework
        ],
    )
    fx.put(
        "telework_days",
        [
            _day("A", "2023-04-10"),
            _day("A", "2023-04-11"),
            _day("B", "2023-06-01", portion="am"),
            _day("C", "2023-06-01", location="satellite"),
            _day("F", "2023-06-01"),  # not an applicant: never counts
            _day("E", "2023-06-01", location="office"),
        ],
    )


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({}, 50.0),  # A, B of A, B, C, E (D never present)
        ({"leavers": "keep"}, 40.0),  # A, B of all five
        ({"leavers": "exclude"}, 200 / 3),  # A, B of A, B, C
        ({"count_half_days": False}, 25.0),  # A of A, B, C, E
        ({"count_satellite_days": True}, 75.0),  # A, B, C
    ],
)
def test_telework_ratio_rules(fx: Fixture, rules: dict, expected: float) -> None:
    _telework_fixture(fx)
    row = fx.yearly("2024-03-31", "telework_ratio", 2023, **rules)
    assert row["value"] == pytest.approx(expected)


def test_telework_ratio_status_and_alias(fx: Fixture) -> None:
    _telework_fixture(fx)
    # B's days are recorded under B's employee number.
    fx.put("staff_directory", [staff("B", "企画部", "2020-04-01", employee_no="emp-B")])
    fx.put("telework_days", [_day("emp-B", "2023-07-03")], source="s2")
    row = fx.yearly("2024-03-31", "telework_ratio", 2023)
    assert row["value"] == pytest.approx(50.0)
    assert row["status"] == "achieved"  # target 50
    result = fx.result("2024-03-31", count_half_days=False)
    row = (
        result.yearly()
        .filter(pl.col("kpi") == "telework_ratio", pl.col("fiscal_year") == 2023)
        .row(0, named=True)
    )
    assert row["value"] == pytest.approx(50.0)  # A and (via emp-B) B
    dept = result.by_department().filter(pl.col("kpi") == "telework_ratio")
    assert dict(zip(dept["department"], dept["numerator"], strict=True)) == {"総務部": 2}


def test_telework_without_day_records_is_no_data(fx: Fixture) -> None:
    fx.put("telework_applicants", [_applicant("A", 2023)])
    row = fx.yearly("2024-03-31", "telework_ratio", 2023)
    assert row["status"] == "no_data" and row["value"] is None
    assert "no telework-day records" in row["reason"]


# -- paper vs R3 -------------------------------------------------------------------------
def _job(
    jid: str, at: str, sheets: int, dept: str | None = "総務部", person: str | None = None
) -> dict:
    return {
        "job_id": jid,
        "printed_at": ts(at),
        "pages": sheets,
        "sheets": sheets,
        "sheets_upper_bound": False,
        "department": dept,
        "person": person,
    }


def _paper_fixture(fx: Fixture) -> None:
    fx.put(
        "print_jobs",
        [
            _job("r3a", "2021-04-05T01:00Z", 100),
            _job("r3b", "2021-05-05T01:00Z", 100),
            _job("r3c", "2021-05-25T01:00Z", 100),
            _job("r3d", "2022-01-10T01:00Z", 200),
            _job("r4a", "2022-04-05T01:00Z", 490),
            _job("r5a", "2023-04-05T01:00Z", 80),
            _job("r5b", "2023-05-05T01:00Z", 50),
            _job("r5c", "2023-05-25T01:00Z", 50),
        ],
    )


def test_paper_full_year_and_same_months_in_progress(fx: Fixture) -> None:
    _paper_fixture(fx)
    r4 = fx.yearly("2023-05-20", "paper_vs_r3", 2022)
    assert r4["value"] == pytest.approx(98.0)  # 490 / 500
    assert r4["status"] == "achieved" and r4["basis"] == "print_jobs"
    r5 = fx.yearly("2023-05-20", "paper_vs_r3", 2023)
    assert r5["value"] == pytest.approx(80.0)  # April only: 80 / 100
    assert not r5["complete"] and r5["status"] == "on_track"  # 80 <= 90
    r5 = fx.yearly("2023-05-20", "paper_vs_r3", 2023, paper_same_period="days")
    assert r5["value"] == pytest.approx(130 / 200 * 100)  # through 05-20
    r3 = fx.yearly("2023-05-20", "paper_vs_r3", 2021)
    assert r3["value"] == pytest.approx(100.0) and "baseline" in r3["reason"]


def test_paper_baseline_missing_is_null_with_reason(fx: Fixture) -> None:
    fx.put("print_jobs", [_job("r5a", "2023-04-05T01:00Z", 80)])
    row = fx.yearly("2024-03-31", "paper_vs_r3", 2023)
    assert row["value"] is None and row["status"] == "no_data"
    assert "cannot compare" in row["reason"]


def test_paper_bases_never_mix(fx: Fixture) -> None:
    _paper_fixture(fx)
    fx.put(
        "paper_purchases",
        [
            {"record_id": "1", "purchased_on": d("2021-06-01"), "sheets": 1000},
            {"record_id": "2", "purchased_on": d("2022-06-01"), "sheets": 900},
        ],
    )
    row = fx.yearly("2023-03-31", "paper_vs_r3", 2022, basis="paper_purchases")
    assert row["value"] == pytest.approx(90.0) and row["basis"] == "paper_purchases"
    row = fx.yearly("2023-03-31", "paper_vs_r3", 2022, paper_basis="paper_purchases")
    assert row["value"] == pytest.approx(90.0)


def test_paper_department_numerators_sum_to_whole(fx: Fixture) -> None:
    _paper_fixture(fx)
    fx.put("staff_directory", [staff("u1", "企画部", "2020-04-01")])
    fx.put(
        "print_jobs",
        [
            _job("r4b", "2022-05-01T01:00Z", 10, dept=None, person="u1"),
            _job("r3e", "2021-05-01T01:00Z", 20, dept=None, person="u1"),
        ],
        source="s2",
    )
    result = fx.result("2023-03-31")
    year = result.yearly().filter(pl.col("kpi") == "paper_vs_r3", pl.col("fiscal_year") == 2022)
    dept = result.by_department().filter(
        pl.col("kpi") == "paper_vs_r3", pl.col("fiscal_year") == 2022
    )
    assert dept["numerator"].sum() == year["numerator"].item() == 500
    assert dict(zip(dept["department"], dept["value"], strict=True)) == {
        "企画部": pytest.approx(50.0),
        "総務部": pytest.approx(98.0),
    }


# -- video-conference-capable terminals ---------------------------------------------------
def test_vc_capable_uses_latest_snapshot(fx: Fixture) -> None:
    rows = []
    for snap, capable in (("2023-06-01", 4), ("2023-12-01", 7), ("2024-06-01", 9)):
        rows += [
            {
                "terminal_id": f"t{i}",
                "snapshot_date": d(snap),
                "vc_capable": i < capable,
                "department": "総務部" if i < 5 else "企画部",
            }
            for i in range(10)
        ]
    fx.put("terminals", rows)
    row = fx.yearly("2024-03-31", "vc_capable_terminals", 2023)
    assert row["value"] == pytest.approx(70.0) and row["status"] == "achieved"
    row = fx.yearly("2023-12-31", "vc_capable_terminals", 2023)
    # In progress: +30 points over 183 days, 121 days to go -> capped at 100.
    assert row["projected"] == pytest.approx(min(100.0, 70 + 30 * 121 / 183))
    assert row["status"] == "on_track"
    row = fx.yearly("2023-09-30", "vc_capable_terminals", 2023)
    assert row["value"] == pytest.approx(40.0)  # the December snapshot is after the as-of
    result = fx.result("2024-03-31")
    dept = result.by_department().filter(
        pl.col("kpi") == "vc_capable_terminals", pl.col("fiscal_year") == 2023
    )
    assert dict(zip(dept["department"], dept["value"], strict=True)) == {
        "総務部": pytest.approx(100.0),
        "企画部": pytest.approx(40.0),
    }


# -- across KPIs -------------------------------------------------------------------------
def test_empty_store_is_no_data_everywhere(fx: Fixture) -> None:
    result = fx.result("2024-03-31")
    yearly = result.yearly()
    assert set(yearly["status"]) == {"no_data"}
    assert yearly["reason"].is_not_null().all()
    assert set(yearly["fiscal_year"]) == {2021, 2022, 2023}  # the plan's years so far
    assert "no_data" in engine.render_table(yearly, result.as_of)


def test_repeated_ingest_counts_once(fx: Fixture) -> None:
    _web_fixture(fx)
    _paper_fixture(fx)
    _telework_fixture(fx)
    before = fx.result("2024-03-31").frame.drop("computed_at")
    _web_fixture(fx)
    _paper_fixture(fx)
    _telework_fixture(fx)
    after = fx.result("2024-03-31").frame.drop("computed_at")
    assert before.equals(after)


def test_write_kpi_files(fx: Fixture) -> None:
    _web_fixture(fx)
    result = fx.result("2024-03-31")
    paths = engine.write(fx.store, result)
    yearly = pl.read_parquet(paths["yearly"])
    assert yearly.height == result.yearly().height
    assert {"kpi", "fiscal_year", "status", "as_of", "projected"} <= set(yearly.columns)
    assert pl.read_parquet(paths["monthly"])["month"].is_not_null().all()
    assert pl.read_parquet(paths["by_department"])["department"].is_not_null().all()
