"""Benchmark: the KPI recompute over many organisations, polars (one machine) vs local Spark.

Builds a dataset of N organisations in one store: organisation 1 is
``bench/kpi_bench.py``'s synthetic prefecture at ``--scale`` (20,000 staff, 80
departments, four fiscal years); the others are copies of it (hard links: no extra
disk, no generation time), each under its own ``<table>/organisation=<code>/`` level
as collectors with ``[collector] organisation`` write them into one bucket. With
``--distinct`` every organisation is generated with its own seed instead (own staff,
so distinct-people KPIs grow with N; slower to build).

Then, per size, times the full recompute (all six KPIs, yearly, monthly and
by-department rows) in a child process each: the collector's polars engine, and
``deploy/spark/workstyle_kpis.py`` on a local Spark session (``local[*]``, the same
cores), both over every organisation together, and checks that the KPI tables agree.

    python3 bench/spark_bench.py --scale 0.1 --orgs 1 5 20 --data-dir /tmp/spark-bench
    python3 bench/spark_bench.py --data-dir /tmp/spark-bench --orgs 20 --reuse
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
JOB = ROOT / "deploy" / "spark" / "workstyle_kpis.py"
TARGETS = ROOT / "config" / "targets.toml"
AS_OF = "2025-03-31"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def org_code(i: int) -> str:
    """The i-th organisation's 地方公共団体コード (prefecture 04, a valid check digit)."""
    head = f"04{i:03d}"
    check = (11 - sum(int(d) * w for d, w in zip(head, (6, 5, 4, 3, 2), strict=True)) % 11) % 10
    return f"{head}{check}"


def build(root: Path, orgs: int, scale: float, distinct: bool = False) -> list[str]:
    """Organisations 1..orgs under ``root`` (those already there are kept); their codes.

    Each is ``<table>/organisation=<code>/source=bench/...``, the layout of collectors
    with ``[collector] organisation`` writing into one bucket.
    """
    kpi_bench = _load(ROOT / "bench" / "kpi_bench.py", "kpi_bench")
    codes = [org_code(i) for i in range(1, orgs + 1)]
    for i, code in enumerate(codes, start=1):
        if (root / "print_jobs" / f"organisation={code}").exists():
            continue
        if i == 1 or distinct:
            gen = root / "_generating"
            shutil.rmtree(gen, ignore_errors=True)
            kpi_bench.generate(gen, scale, seed=7 + i, source="bench")
            for table_dir in gen.iterdir():
                if (table_dir / "source=bench").is_dir():
                    dest = root / table_dir.name / f"organisation={code}"
                    dest.mkdir(parents=True, exist_ok=True)
                    (table_dir / "source=bench").rename(dest / "source=bench")
            shutil.rmtree(gen)
            continue
        # A copy of organisation 1 by hard links: no disk, no generation time.
        for table_dir in root.iterdir():
            src = table_dir / f"organisation={codes[0]}"
            if src.is_dir():
                shutil.copytree(src, table_dir / f"organisation={code}", copy_function=os.link)
    return codes


def rows_in(root: Path, table: str = "print_jobs") -> int:
    import pyarrow.parquet as pq

    files = root.glob(f"{table}/**/month=*/*.parquet")
    return sum(pq.read_metadata(f).num_rows for f in files)


# -- the two engines, each in a child process -----------------------------------------------
def polars_child(root: str, as_of: str, out: str) -> dict:
    """The collector's recompute over ``root``: wall time and the KPI rows."""
    from workstyle.aggregates import engine
    from workstyle.aggregates.kpis import Ctx
    from workstyle.aggregates.settings import Rules
    from workstyle.aggregates.targets import load_plan
    from workstyle.collector.ingest.reader import DatasetReader

    t = time.perf_counter()
    ctx = Ctx(DatasetReader(root), Rules(), load_plan(TARGETS), dt.date.fromisoformat(as_of))
    result = engine.compute(ctx)
    wall = time.perf_counter() - t
    result.frame.drop("computed_at").write_parquet(out)
    return {"wall_s": round(wall, 2), "rows": result.frame.height}


def spark_child(root: str, as_of: str, out: str, cores: str) -> dict:
    """The Spark job over ``root`` on a local session: session start-up and wall time."""
    import polars as pl
    from pyspark.sql import SparkSession

    t0 = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("BENCH_SPARK_MEMORY", "8g"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - t0
    job_mod = _load(JOB, "workstyle_kpis")
    t = time.perf_counter()
    job, _ = job_mod.job_from_args(spark, [root, "--as-of", as_of, "--targets", str(TARGETS)])
    result = job_mod.compute(job)
    wall = time.perf_counter() - t
    frame = pl.DataFrame(result, infer_schema_length=None).drop("computed_at")
    frame.write_parquet(out)
    spark.stop()
    return {"wall_s": round(wall, 2), "startup_s": round(startup, 2), "rows": len(result)}


def _spawn(*args: str) -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from harness import spawn

    run = spawn([sys.executable, __file__, *args])
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return {**result, "peak_rss_mb": run.peak_rss_mb, "load1": run.load1}


def agree(a: str, b: str) -> str:
    """'equal' when both KPI tables hold the same rows, else what differs."""
    import polars as pl
    from polars.testing import assert_frame_equal

    keys = ["kpi", "fiscal_year", "month", "department"]
    left = pl.read_parquet(a).sort(keys, nulls_last=True)
    right = pl.read_parquet(b).select(left.columns).cast(left.schema).sort(keys, nulls_last=True)
    try:
        assert_frame_equal(left, right, rel_tol=1e-9)
    except AssertionError as exc:
        return "DIFFER: " + str(exc).splitlines()[0]
    return "equal"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.1, help="kpi_bench scale of one org.")
    ap.add_argument("--orgs", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/spark-bench"))
    ap.add_argument("--distinct", action="store_true", help="A seed per org, not copies.")
    ap.add_argument("--reuse", action="store_true", help="Do not generate; time only.")
    ap.add_argument("--as-of", default=AS_OF)
    ap.add_argument("--cores", default="*", help="local[N] for Spark (default: all).")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--spark-up-to", type=int, default=None, help="Run Spark only up to this many orgs."
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        engine, root, out = args.child
        if engine == "polars":
            print(json.dumps(polars_child(root, args.as_of, out)))
        else:
            print(json.dumps(spark_child(root, args.as_of, out, args.cores)))
        return
    root = args.data_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    for orgs in sorted(args.orgs):
        data = root / f"orgs-{orgs}"
        if not args.reuse:
            prev = [root / f"orgs-{n}" for n in sorted(args.orgs) if n < orgs]
            if prev and prev[-1].exists() and not data.exists():
                # Grow the previous size by hard links instead of regenerating it.
                shutil.copytree(prev[-1], data, copy_function=os.link)
            t = time.perf_counter()
            build(data, orgs, args.scale, args.distinct)
            print(f"built {orgs} org(s) in {time.perf_counter() - t:.1f}s", flush=True)
        jobs = rows_in(data)
        size = sum(f.stat().st_size for f in data.rglob("*.parquet")) / 1e9
        for _ in range(args.repeat):
            pol = _spawn("--as-of", args.as_of, "--child", "polars", str(data), str(root / "p.pq"))
            if args.spark_up_to is not None and orgs > args.spark_up_to:
                print(json.dumps({"orgs": orgs, "print_jobs": jobs, "polars": pol}), flush=True)
                continue
            spk = _spawn(
                "--as-of",
                args.as_of,
                "--cores",
                args.cores,
                "--child",
                "spark",
                str(data),
                str(root / "s.pq"),
            )
            print(
                json.dumps(
                    {
                        "orgs": orgs,
                        "print_jobs": jobs,
                        "dataset_gb": round(size, 2),
                        "polars": pol,
                        "spark": spk,
                        "tables": agree(str(root / "p.pq"), str(root / "s.pq")),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
