"""Benchmark: full KPI recompute over synthetic canonical tables at prefecture scale.

Scale 1 = 4 fiscal years (R3-R6) with 50M print jobs, 200k web meetings, 2M telework
days and 1M remote sessions, written through the Store. The recompute runs in a
child process so that its wall time and peak RSS are measured alone.

    python3 bench/kpi_bench.py --scale 0.1            # generate into a temp dir, time
    python3 bench/kpi_bench.py --scale 1 --data-dir /tmp/kpi-bench --keep
    python3 bench/kpi_bench.py --data-dir /tmp/kpi-bench --reuse   # time only

With ``--duckdb`` every timed recompute is paired with the same KPIs as DuckDB SQL
(``bench/kpi_duckdb.py``) over the same Parquet, in its own child process, and the
yearly values of both are compared. ``--data-dir`` may also be the data_dir of a
dataset the collector ingested from ``bench/generate.py`` files (with ``--reuse``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workstyle.collector.ingest.store import Store  # noqa: E402
from workstyle.schemas.tables import TABLES  # noqa: E402

FIRST_FY, YEARS = 2021, 4
STAFF = 20_000
DEPTS = 80
INGESTED = dt.datetime(2025, 4, 2, tzinfo=dt.UTC)
T0 = int(dt.datetime(2021, 3, 31, 15, tzinfo=dt.UTC).timestamp())  # 2021-04-01 JST
SPAN = int(dt.datetime(2025, 3, 31, 15, tzinfo=dt.UTC).timestamp()) - T0


def _people(rng: np.random.Generator) -> np.ndarray:
    return np.array([f"{x:032x}" for x in rng.integers(0, 2**62, STAFF)])


def _by_month(store: Store, source: str, table: str, frame: pl.DataFrame) -> None:
    store.upsert(TABLES[table], source, frame, INGESTED)


def _times(rng: np.random.Generator, n: int) -> pl.Series:
    micros = (np.sort(rng.integers(0, SPAN, n)) + T0).astype(np.int64) * 1_000_000
    return pl.Series(micros).cast(pl.Datetime("us", "UTC"))


def generate(root: Path, scale: float, seed: int = 7, source: str = "bench") -> dict[str, int]:
    """Write the synthetic tables (as one source= partition each); returns row counts."""
    rng = np.random.default_rng(seed)
    store = Store(root)
    people = _people(rng)
    depts = np.array([f"部署{i:02d}" for i in range(DEPTS)])
    # Directory: everyone from R3, a third transferred on 1 April 2023.
    home = rng.integers(0, DEPTS, STAFF)
    moved = rng.random(STAFF) < 0.33
    first = pl.DataFrame(
        {
            "person": people,
            "department": depts[home],
            "valid_from": dt.date(2021, 4, 1),
            "valid_to": [dt.date(2023, 3, 31) if m else None for m in moved],
        }
    )
    second = pl.DataFrame(
        {
            "person": people[moved],
            "department": depts[rng.integers(0, DEPTS, int(moved.sum()))],
            "valid_from": dt.date(2023, 4, 1),
        }
    )
    _by_month(store, source, "staff_directory", pl.concat([first, second], how="diagonal"))
    counts = {"staff_directory": STAFF + int(moved.sum())}

    n_print = int(50_000_000 * scale)
    chunk = 5_000_000
    written = 0
    while written < n_print:
        n = min(chunk, n_print - written)
        # Each chunk covers a slice of the four years, in order, like a real backfill.
        lo = T0 + SPAN * written // n_print
        hi = T0 + SPAN * (written + n) // n_print
        t = np.sort(rng.integers(lo, max(hi, lo + 1), n)) * 1_000_000
        pages = rng.integers(1, 20, n)
        frame = pl.DataFrame(
            {
                "job_id": pl.Series(np.arange(written, written + n)).cast(pl.String),
                "printed_at": pl.Series(t).cast(pl.Datetime("us", "UTC")),
                "person": people[rng.integers(0, STAFF, n)],
                "pages": pages,
                "copies": 1,
                "duplex": False,
                "sheets": pages,
                "sheets_upper_bound": False,
            }
        )
        _by_month(store, source, "print_jobs", frame)
        written += n
    counts["print_jobs"] = n_print

    n = int(200_000 * scale)
    _by_month(
        store,
        source,
        "meetings",
        pl.DataFrame(
            {
                "meeting_id": pl.Series(np.arange(n)).cast(pl.String),
                "platform": "teams",
                "start_time": _times(rng, n),
                "duration_seconds": rng.integers(0, 7200, n),
                "participants": rng.integers(1, 30, n).astype(np.int32),
                "host": people[rng.integers(0, STAFF, n)],
            }
        ),
    )
    counts["meetings"] = n

    n = int(1_000_000 * scale)
    _by_month(
        store,
        source,
        "remote_sessions",
        pl.DataFrame(
            {
                "session_id": pl.Series(np.arange(n)).cast(pl.String),
                "person": people[rng.integers(0, STAFF, n)],
                "start_time": _times(rng, n),
                "duration_seconds": rng.integers(0, 20_000, n),
            }
        ),
    )
    counts["remote_sessions"] = n

    n = int(2_000_000 * scale)
    days = pl.DataFrame(
        {
            "person": people[rng.integers(0, STAFF, n)],
            "offset": rng.integers(0, SPAN // 86400, n),
            "location": np.array(["home", "office", "satellite"])[rng.integers(0, 3, n)],
            "portion": np.array(["full", "am", "pm"])[rng.integers(0, 3, n)],
        }
    ).select(
        "person",
        (pl.lit(dt.date(2021, 4, 1)) + pl.duration(days=pl.col("offset")))
        .cast(pl.Date)
        .alias("work_date"),
        "location",
        "portion",
    )
    days = days.unique(["person", "work_date", "portion"])
    _by_month(store, source, "telework_days", days)
    counts["telework_days"] = days.height

    apps = []
    for fy in range(FIRST_FY, FIRST_FY + YEARS):
        chosen = people[rng.random(STAFF) < 0.4]
        apps.append(pl.DataFrame({"person": chosen, "fiscal_year": fy}))
    apps_df = pl.concat(apps).with_columns(pl.col("fiscal_year").cast(pl.Int16))
    _by_month(store, source, "telework_applicants", apps_df)
    counts["telework_applicants"] = apps_df.height

    terms = []
    for fy in range(FIRST_FY, FIRST_FY + YEARS):
        share = 0.4 + 0.2 * (fy - FIRST_FY)
        terms.append(
            pl.DataFrame(
                {
                    "terminal_id": [f"t{i}" for i in range(STAFF)],
                    "snapshot_date": dt.date(fy, 12, 1),
                    "vc_capable": rng.random(STAFF) < share,
                    "department": depts[home],
                }
            )
        )
    _by_month(store, source, "terminals", pl.concat(terms))
    counts["terminals"] = STAFF * YEARS

    n = int(2_000 * scale) + 48
    _by_month(
        store,
        source,
        "paperless_meetings",
        pl.DataFrame(
            {
                "meeting_id": pl.Series(np.arange(n * 10)).cast(pl.String),
                "start_time": _times(rng, n * 10),
                "department": depts[rng.integers(0, DEPTS, n * 10)],
                "paper_also_distributed": rng.random(n * 10) < 0.05,
            }
        ),
    )
    counts["paperless_meetings"] = n * 10
    return counts


def _child(root: str, as_of: str) -> None:
    """Runs in the child: the full recompute, as `collector run` does it."""
    from workstyle.aggregates import engine
    from workstyle.aggregates.kpis import Ctx
    from workstyle.aggregates.settings import Rules
    from workstyle.aggregates.targets import load_plan

    t = time.perf_counter()
    ctx = Ctx(
        Store(root),
        Rules(),
        load_plan(ROOT / "config" / "targets.toml"),
        dt.date.fromisoformat(as_of),
    )
    result = engine.compute(ctx)
    engine.write(Store(ctx.store.root), result)
    table = engine.render_table(result.yearly(), result.as_of, result.plan)
    wall = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "peak_rss_mb": round(rss_mb),
                "rows": result.frame.height,
                "table": table,
            }
        )
    )


def _duckdb(root: Path, as_of: str) -> dict:
    """One DuckDB anchor run in its own child: wall time (in-process), peak RSS, values."""
    sys.path.insert(0, str(ROOT / "bench"))
    from harness import spawn

    run = spawn(
        [sys.executable, str(ROOT / "bench" / "kpi_duckdb.py"), str(root), "--as-of", as_of]
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return {**result, "peak_rss_mb": run.peak_rss_mb, "load1": run.load1}


def _compare(root: Path, duck: dict[str, dict[str, float]]) -> None:
    """Print where our yearly KPI values and DuckDB's differ (they should not)."""
    yearly = pl.read_parquet(root / "kpi" / "yearly.parquet")
    worst = 0.0
    for kpi, per_fy in duck.items():
        for fy, value in per_fy.items():
            ours = yearly.filter((pl.col("kpi") == kpi) & (pl.col("fiscal_year") == int(fy)))
            mine = ours["value"][0] if ours.height else None
            if mine is None or abs(mine - value) > 1e-6 * max(1.0, abs(value)):
                print(f"  differs: {kpi} FY{fy}: ours {mine}, duckdb {value}")
                worst = max(worst, 1.0)
    if not worst:
        print(
            f"  yearly values agree with DuckDB for {sum(len(v) for v in duck.values())} KPI-years"
        )


def main() -> None:
    """Generate (unless --reuse), then time the recompute in a child process."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="Time only; data already there.")
    ap.add_argument("--keep", action="store_true", help="Keep the generated data.")
    ap.add_argument("--as-of", default="2025-03-31")
    ap.add_argument("--repeat", type=int, default=2, help="Timed recomputes (best shown).")
    ap.add_argument("--duckdb", action="store_true", help="Also time the DuckDB SQL anchor.")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.as_of)
        return
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="kpi-bench-"))
    try:
        if not args.reuse:
            if root.exists() and any(root.iterdir()):
                shutil.rmtree(root)
            t = time.perf_counter()
            counts = generate(root.resolve(), args.scale)
            print(
                f"generated scale {args.scale} in {time.perf_counter() - t:.1f}s: "
                + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            )
        runs, anchor = [], []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(root.resolve()), "--as-of", args.as_of],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            if args.duckdb:
                anchor.append(_duckdb(root.resolve(), args.as_of))
        best = min(runs, key=lambda r: r["wall_s"])
        median = sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]
        print(best["table"])
        print(
            f"recompute: wall {', '.join(str(r['wall_s']) for r in runs)} s"
            f" (median {median['wall_s']} s, best {best['wall_s']} s),"
            f" peak RSS {max(r['peak_rss_mb'] for r in runs)} MB,"
            f" {best['rows']:,} KPI rows"
        )
        if anchor:
            duck = sorted(anchor, key=lambda r: r["wall_s"])[(len(anchor) - 1) // 2]
            print(
                f"duckdb:    wall {', '.join(str(r['wall_s']) for r in anchor)} s"
                f" (median {duck['wall_s']} s), peak RSS"
                f" {max(r['peak_rss_mb'] for r in anchor):.0f} MB;"
                f" ours / duckdb = {median['wall_s'] / duck['wall_s']:.2f}x"
                f" (goal <= 1.0x)"
            )
            _compare(root.resolve(), duck["values"])
    finally:
        if not args.keep and args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
