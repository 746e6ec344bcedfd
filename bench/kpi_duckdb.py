"""The KPI anchor: the same six KPIs as DuckDB SQL over the same Parquet dataset.

Bench-only (DuckDB is in the ``bench`` extra). It does the work the KPI engine does
over the event tables -- local day in the configured zone, person -> department
through the staff directory's validity intervals, the counting rules' defaults,
the per-month / per-FY / per-department reductions -- and returns the yearly value
of every KPI so the bench can check that both engines agree.

    python3 bench/kpi_duckdb.py /tmp/bench-data/s0.1/collector-data --as-of 2025-03-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

FY = "(year({d}) - CASE WHEN month({d}) < 4 THEN 1 ELSE 0 END)"
UNKNOWN = "(unknown)"

SETUP = """
SET TimeZone = '{tz}';
CREATE TEMP TABLE entries AS
  SELECT person, employee_no, email, department, valid_from, valid_to
  FROM {staff_directory} WHERE valid_from <= DATE '{as_of}'
  QUALIFY row_number() OVER (PARTITION BY person, valid_from) = 1;
CREATE TEMP TABLE iv AS
  WITH spans AS (
    SELECT person, department, valid_from AS d_from,
      least(coalesce(valid_to, DATE '9999-12-31'),
            coalesce(lead(valid_from) OVER (PARTITION BY person ORDER BY valid_from)
                     - INTERVAL 1 DAY, DATE '9999-12-31'))::DATE AS d_to
    FROM entries),
  aliases AS (
    SELECT alias, min(person) AS person FROM (
      SELECT person AS alias, person FROM entries
      UNION SELECT employee_no, person FROM entries
      UNION SELECT email, person FROM entries)
    WHERE alias IS NOT NULL GROUP BY alias)
  SELECT a.alias, s.person AS canon, s.d_from, s.d_to, s.department AS dept
  FROM aliases a JOIN spans s USING (person);
"""

# Each query resolves the department the way the engine does: the row's own
# department, else the directory's on the row's local day, else "(unknown)".
PAPER = f"""
SELECT {FY.format(d="day")} AS fy, sum(sheets) AS sheets, count(*) AS jobs,
  count(DISTINCT dept) AS departments
FROM (
  SELECT p.day, p.sheets, coalesce(p.department, iv.dept, '{UNKNOWN}') AS dept
  FROM (SELECT printed_at::DATE AS day, person, department, sheets FROM {{print_jobs}}
        WHERE printed_at < TIMESTAMPTZ '{{as_of_end}}') p
  LEFT JOIN iv ON iv.alias = p.person AND p.day BETWEEN iv.d_from AND iv.d_to)
GROUP BY ALL ORDER BY fy
"""

MEETINGS = f"""
WITH m AS (
  SELECT e.start_time::DATE AS day,
    coalesce(e.duration_seconds::DOUBLE, epoch(e.end_time - e.start_time)) AS dur,
    e.participants, coalesce(e.department, iv.dept, '{UNKNOWN}') AS dept
  FROM {{meetings}} e
  LEFT JOIN iv ON iv.alias = e.host
    AND e.start_time::DATE BETWEEN iv.d_from AND iv.d_to
  WHERE e.start_time < TIMESTAMPTZ '{{as_of_end}}')
SELECT {FY.format(d="day")} AS fy, date_trunc('month', day) AS month, dept, count(*) AS considered,
  count(*) FILTER (WHERE dur >= 60 AND (participants IS NULL OR participants >= 2)) AS counted
FROM m GROUP BY ALL
"""

PAPERLESS = f"""
SELECT {FY.format(d="day")} AS fy, date_trunc('month', day) AS month, dept,
  count(*) FILTER (WHERE NOT coalesce(paper, false)) AS counted
FROM (SELECT start_time::DATE AS day, paper_also_distributed AS paper,
        coalesce(department, '{UNKNOWN}') AS dept
      FROM {{paperless_meetings}} WHERE start_time < TIMESTAMPTZ '{{as_of_end}}')
GROUP BY ALL
"""

MOBILE = f"""
WITH s AS (
  SELECT {FY.format(d="e.start_time::DATE")} AS fy, coalesce(iv.canon, e.person) AS canon,
    coalesce(iv.dept, '{UNKNOWN}') AS dept
  FROM {{remote_sessions}} e
  LEFT JOIN iv ON iv.alias = e.person AND e.start_time::DATE BETWEEN iv.d_from AND iv.d_to
  WHERE e.start_time < TIMESTAMPTZ '{{as_of_end}}'
    AND coalesce(e.duration_seconds::DOUBLE, epoch(e.end_time - e.start_time)) >= 60)
SELECT fy, count(DISTINCT canon) AS users, count(DISTINCT (canon, dept)) AS user_depts
FROM s GROUP BY fy ORDER BY fy
"""

TELEWORK = f"""
WITH apps AS (
  SELECT DISTINCT coalesce(iv.canon, a.person) AS canon, a.fiscal_year::INT AS fy,
    coalesce(a.department, iv.dept, '{UNKNOWN}') AS dept
  FROM {{telework_applicants}} a
  LEFT JOIN iv ON iv.alias = a.person
    AND greatest(make_date(a.fiscal_year::INT, 4, 1), a.registered_on) BETWEEN iv.d_from AND iv.d_to
  WHERE a.fiscal_year <= {{as_of_fy}}
    AND (a.registered_on IS NULL OR a.registered_on <= DATE '{{as_of}}')),
days AS (
  SELECT DISTINCT coalesce(iv.canon, d.person) AS canon, {FY.format(d="d.work_date")} AS fy
  FROM {{telework_days}} d
  LEFT JOIN iv ON iv.alias = d.person AND d.work_date BETWEEN iv.d_from AND iv.d_to
  WHERE d.work_date <= DATE '{{as_of}}' AND d.location = 'home'
    AND d.portion IN ('full', 'am', 'pm'))
SELECT a.fy, count(DISTINCT a.canon) AS applicants,
  count(DISTINCT a.canon) FILTER (WHERE d.canon IS NOT NULL) AS did,
  count(DISTINCT a.dept) AS departments
FROM apps a LEFT JOIN days d USING (canon, fy) GROUP BY a.fy ORDER BY a.fy
"""

TERMINALS = f"""
WITH t AS (SELECT *, {FY.format(d="snapshot_date")} AS fy FROM {{terminals}}
           WHERE snapshot_date <= DATE '{{as_of}}'),
latest AS (SELECT fy, max(snapshot_date) AS snap FROM t GROUP BY fy)
SELECT t.fy, avg(vc_capable::INT) * 100 AS share, count(*) AS terminals
FROM t JOIN latest l ON t.fy = l.fy AND t.snapshot_date = l.snap GROUP BY t.fy ORDER BY t.fy
"""

TABLES = (
    "staff_directory",
    "print_jobs",
    "meetings",
    "paperless_meetings",
    "remote_sessions",
    "telework_days",
    "telework_applicants",
    "terminals",
)


def compute(root: str, as_of: dt.date, tz: str = "Asia/Tokyo") -> dict[str, dict[int, float]]:
    """Every KPI's yearly value, by DuckDB over the dataset at ``root``."""
    import duckdb

    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), ZoneInfo(tz))
    as_of_fy = as_of.year - (as_of.month < 4)
    names = {
        t: f"read_parquet('{root}/{t}/*/*/*.parquet', hive_partitioning = true)" for t in TABLES
    }
    params = {
        **names,
        "tz": tz,
        "as_of": as_of.isoformat(),
        "as_of_end": end.isoformat(),
        "as_of_fy": as_of_fy,
    }
    con = duckdb.connect()
    con.execute(SETUP.format(**params))
    out: dict[str, dict[int, float]] = {}
    paper = con.sql(PAPER.format(**params)).fetchall()
    base = next((s for fy, s, *_ in paper if fy == 2021), None)
    out["paper_vs_r3"] = {fy: s / base * 100 for fy, s, *_ in paper if base}
    months = con.sql(
        f"SELECT fy, sum(counted) FROM ({MEETINGS.format(**params)}) GROUP BY fy ORDER BY fy"
    ).fetchall()
    # The FY value is the mean over the FY's complete months so far (12 once it ended).
    out["web_meetings_per_month"] = {
        fy: total / _complete_months(fy, as_of) for fy, total in months if fy <= as_of_fy
    }
    held = con.sql(
        f"SELECT fy, sum(counted) FROM ({PAPERLESS.format(**params)}) GROUP BY fy ORDER BY fy"
    ).fetchall()
    out["paperless_meetings"] = {fy: v for fy, v in held if fy <= as_of_fy}
    mobile = con.sql(MOBILE.format(**params)).fetchall()
    out["mobile_work_users"] = {fy: users for fy, users, _ in mobile}
    tele = con.sql(TELEWORK.format(**params)).fetchall()
    out["telework_ratio"] = {fy: did / apps * 100 for fy, apps, did, _ in tele if apps}
    terms = con.sql(TERMINALS.format(**params)).fetchall()
    out["vc_capable_terminals"] = {fy: share for fy, share, _ in terms}
    return out


def _complete_months(fy: int, as_of: dt.date) -> int:
    """Months of the FY that ended on or before the as-of day (at least 1)."""
    n = 0
    for i in range(12):
        year, month = fy + (i + 3) // 12, (i + 3) % 12 + 1
        last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
        n += last <= as_of
    return max(n, 1)


def main() -> None:
    """Run as a child of the KPI bench: compute, print wall time and values as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="The store root (the collector's data_dir).")
    ap.add_argument("--as-of", default="2025-03-31")
    ap.add_argument("--timezone", default="Asia/Tokyo")
    args = ap.parse_args()
    t = time.perf_counter()
    values = compute(args.root, dt.date.fromisoformat(args.as_of), args.timezone)
    wall = time.perf_counter() - t
    print(json.dumps({"wall_s": round(wall, 3), "values": values}))


if __name__ == "__main__":
    main()
