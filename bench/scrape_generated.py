"""Benchmark (d) on the generated prefectures: ``bench/scrape_bench.py``'s measurement
against datasets the collector really ingested from ``bench/generate.py`` files.

For each generated folder: ingest every source (unless already done), recompute the
KPI tables, then start ``collector serve`` on its config and scrape it the way
Prometheus does (the scrape bench's own ``measure``).

    python3 bench/scrape_generated.py /tmp/bench-data/s0.001 /tmp/bench-data/s0.3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _scrape_bench():
    spec = importlib.util.spec_from_file_location(
        "scrape_bench", ROOT / "bench" / "scrape_bench.py"
    )
    if spec is None or spec.loader is None:
        raise SystemExit("bench/scrape_bench.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ready(data: Path) -> int:
    """Ingest the generated sources and compute the KPI tables; return print jobs stored."""
    cfg = data / "collector.toml"
    store = data / "collector-data"
    base = [sys.executable, "-m", "workstyle.collector.cli", "--config", str(cfg)]
    if not (store / "kpi" / "yearly.parquet").exists():
        subprocess.run([*base, "run", "--as-of", "2025-03-31"], cwd=ROOT, check=True)
    manifest = json.loads((data / "manifest.json").read_text())
    return int(manifest["rows"]["print_jobs"])


def main() -> None:
    """Prepare each generated dataset, measure its scrapes, print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, nargs="+", help="bench/generate.py output folders")
    ap.add_argument("--scrapes", type=int, default=2000)
    args = ap.parse_args()
    bench = _scrape_bench()
    results = []
    for data in args.data:
        rows = ready(data.resolve())
        results.append((rows, bench.measure(data.resolve() / "collector.toml", args.scrapes)))
        print(f"{rows:,} print jobs: {results[-1][1]}", flush=True)
    print()
    print("| print jobs | median | p99 | max | collect() | series | RSS (peak) |")
    print("|---|---|---|---|---|---|---|")
    for rows, r in results:
        print(
            f"| {rows:,} | {r['median_ms']:.2f} ms | {r['p99_ms']:.2f} ms"
            f" | {r['max_ms']:.1f} ms | {r['collect_ms']:.2f} ms | {r['series']:.0f}"
            f" | {r['rss_mb']:.0f} MB ({r['peak_rss_mb']:.0f} MB) |"
        )


if __name__ == "__main__":
    main()
