"""CI smoke run of the benchmark pipeline: generate a tiny prefecture, ingest it, KPIs.

The generator reports how many rows of each table it wrote and how many malformed
lines it planted; the real `collector ingest` must land exactly those rows and
quarantine exactly those lines, and the KPI recompute must agree with the DuckDB
anchor the benchmark uses.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCALE = 0.001


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _collector(cfg: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "workstyle.collector.cli", "--config", str(cfg), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _rows(data_dir: Path, table: str) -> int:
    files = sorted(data_dir.glob(f"{table}/source=*/month=*/part-0.parquet"))
    return sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)


@pytest.mark.slow
def test_generate_ingest_kpi_smoke(tmp_path: Path) -> None:
    t0 = time.monotonic()
    generate = _load("generate")
    manifest = generate.generate(tmp_path / "src", SCALE, seed=11, jobs=1)
    assert manifest["rows"]["print_jobs"] > 10_000
    assert manifest["malformed"]["print_jobs"] >= 2
    cfg = Path(manifest["config"])
    data_dir = tmp_path / "src" / "collector-data"

    _collector(cfg, "ingest")
    for table, expected in manifest["rows"].items():
        assert _rows(data_dir, table) == expected, table
    quarantine = pl.read_parquet(
        data_dir / "_quarantine" / "**" / "*.parquet", hive_partitioning=True
    )
    for table, planted in manifest["malformed"].items():
        got = quarantine.filter(pl.col("table") == table).height
        assert got == planted, table

    # A second run adds nothing (the files are recognised by content).
    again = _collector(cfg, "ingest")
    news = re.findall(r"\bnew\s+([\d,]+)", again)
    assert len(news) == 9 and set(news) == {"0"}, again

    table = _collector(cfg, "kpi", "--as-of", "2025-03-31", "--format", "json")
    yearly = [r for r in json.loads(table) if r.get("month") is None and not r.get("department")]
    assert {r["kpi"] for r in yearly} >= {"paper_vs_r3", "mobile_work_users", "telework_ratio"}

    pytest.importorskip("duckdb")
    duck = _load("kpi_duckdb")
    import datetime as dt

    values = duck.compute(str(data_dir), dt.date(2025, 3, 31))
    ours = {(r["kpi"], r["fiscal_year"]): r["value"] for r in yearly}
    for kpi, per_fy in values.items():
        for fy, value in per_fy.items():
            assert ours[(kpi, fy)] == pytest.approx(value, rel=1e-9), (kpi, fy)
    assert time.monotonic() - t0 < 60  # the CI budget is 30 s on a quiet machine


@pytest.mark.slow
def test_the_ingest_anchors_read_every_job(tmp_path: Path) -> None:
    """The anchors benchmarks (a) and (g) compare with run on the generator's files and
    keep its jobs: the bare scan all of them, the fused plan all but bad rows it splits
    off, with or without the collector's obligations."""
    generate = _load("generate")
    manifest = generate.generate(tmp_path / "src", SCALE, seed=11, jobs=1)
    bench = _load("ingest_bench")
    data = tmp_path / "src"
    jobs, planted = manifest["rows"]["print_jobs"], manifest["malformed"]["print_jobs"]
    bench.child_polars(data, tmp_path / "all.parquet")
    assert jobs <= pl.read_parquet(tmp_path / "all.parquet").height <= jobs + planted
    (tmp_path / "fused").mkdir()
    bench.child_fused(data, tmp_path / "fused")
    good = pl.read_parquet(tmp_path / "fused" / "rows.parquet")
    assert jobs <= good.height <= jobs + planted
    assert good.get_column("person").null_count() == 0
    assert good.get_column("person").str.len_chars().unique().to_list() == [32]
    # With every obligation of benchmark (g): month files, job keys whose line is the
    # job's line in its file, clients pseudonymised, the bad rows beside.
    (tmp_path / "all").mkdir()
    bench.child_fused(data, tmp_path / "all", len(bench.OBLIGATIONS))
    months = pl.read_parquet(tmp_path / "all" / "months" / "**" / "*.parquet")
    assert jobs <= months.height <= jobs + planted
    assert months.get_column("job_id").n_unique() == months.height
    assert months.get_column("client").drop_nulls().str.len_chars().unique().to_list() == [32]
    for path, job_id, at in (
        months.sample(20, seed=1).select("_file", "job_id", "printed_at").rows()
    ):
        line = Path(path).read_text(encoding="utf-8").split("\n")[int(job_id.split(":")[1]) - 1]
        local = at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S")
        assert line.startswith(local), (job_id, line)
    assert pl.read_parquet(tmp_path / "all" / "bad.parquet").columns[:2] == ["_file", "_line"]


@pytest.mark.slow
def test_the_session_anchor_with_every_obligation_pairs_every_session(tmp_path: Path) -> None:
    """The session ladder's last step (every obligation in one polars plan) lands the
    generator's sessions, each with a start and a pseudonymised user, by month."""
    generate = _load("generate")
    manifest = generate.generate(tmp_path / "src", SCALE, seed=11, jobs=1)
    bench = _load("session_bench")
    (tmp_path / "out").mkdir()
    (tmp_path / "all").mkdir()
    bench.child_linescan(tmp_path / "src", tmp_path / "out" / "lines.parquet")
    assert pl.read_parquet(tmp_path / "out" / "lines.parquet").columns == list(bench.FIELDS)
    bench.child_linescan(tmp_path / "src", tmp_path / "all" / "x", len(bench.OBLIGATIONS))
    sessions = pl.read_parquet(tmp_path / "all" / "months" / "**" / "*.parquet")
    assert sessions.height == manifest["rows"]["remote_sessions"]
    assert sessions.get_column("start_time").null_count() == 0
    assert (sessions.get_column("start_time") <= sessions.get_column("eventtime")).all()
    assert sessions.get_column("person").str.len_chars().unique().to_list() == [32]
