"""Benchmark: scrape latency and resident memory of `collector serve` by dataset size.

For each size, generates the synthetic canonical tables of ``bench/kpi_bench.py``
(print jobs at the given count, the other tables scaled alike), computes the real KPI
tables, writes state for nine sources, starts ``collector serve`` and scrapes
``/metrics`` the way Prometheus does (new connection, gzip accepted). The point: a
scrape reads only the KPI tables and the state, so its cost must not grow with the
dataset.

    python3 bench/scrape_bench.py                                  # 10k and 50M print jobs
    python3 bench/scrape_bench.py --rows 10000 --rows 5000000 --scrapes 2000
    python3 bench/scrape_bench.py --rows 10000 --live              # live readers polling

``--live`` adds live sources polled every second by serve's own poller while the scrapes
run: a FortiGate syslog with 2,000 sessions open that a writer keeps appending to, a
Cisco ASA syslog alike, and today's PaperCut Print Logger file with 5,000 jobs that
grows too. The scrape still reads only files (the snapshot among them); the pollers
compete with it for the one Python process.

Goal: median < 5 ms, p99 < 20 ms, serve RSS < 150 MB, with or without live readers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "bench-pseudonymisation-key-0123456789"
SOURCES = 9
AS_OF = "2025-03-31"


def _kpi_bench():
    spec = importlib.util.spec_from_file_location("kpi_bench", ROOT / "bench" / "kpi_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def live_sources(root: Path) -> tuple[list[str], threading.Event]:
    """Config lines for three live sources over growing logs, and a writer keeping them growing
    (set the returned event to stop it)."""
    sys.path.insert(0, str(ROOT))
    from tests.live.helpers import PAPERCUT_HEAD, asa, fgt, papercut

    now = dt.datetime.now(dt.UTC)
    logs = root / "live"
    logs.mkdir()
    fgt_log, asa_log = logs / "fgt.log", logs / "asa.log"
    fgt_log.write_text("".join(fgt(now, "tunnel-up", i, f"user{i % 1500}") for i in range(2000)))
    asa_log.write_text(
        "".join(asa(now, "113039", f"user{i}", f"198.51.{i // 250}.{i % 250}") for i in range(2000))
    )
    local = now.astimezone(dt.timezone(dt.timedelta(hours=9)))
    today = logs / f"papercut-print-log-{local:%Y-%m-%d}.csv"
    today.write_text(
        PAPERCUT_HEAD + "".join(papercut(now, f"user{i}", 3, 1, i % 2 == 0) for i in range(5000))
    )
    stop = threading.Event()

    def grow() -> None:
        n = 10_000
        while not stop.wait(0.1):
            t = dt.datetime.now(dt.UTC)
            n += 1
            with fgt_log.open("a") as fh:
                fh.write(fgt(t, "tunnel-up", n, f"user{n % 1500}"))
                fh.write(fgt(t, "tunnel-down", n - 5, f"user{(n - 5) % 1500}"))
            with today.open("a") as fh:
                fh.write(papercut(t, f"user{n}", 2, 1, False))

    threading.Thread(target=grow, daemon=True).start()
    common = ["live = true", "live_interval = 1.0", ""]
    lines = [
        "[[sources]]",
        'name = "live-fgt"',
        'kind = "fortigate_vpn"',
        f'paths = ["{fgt_log}"]',
        "enabled = false",
        *common,
        "[[sources]]",
        'name = "live-asa"',
        'kind = "cisco_asa_vpn"',
        f'paths = ["{asa_log}"]',
        "enabled = false",
        *common,
        "[[sources]]",
        'name = "live-print"',
        'kind = "papercut_print_logger"',
        f'path = "{logs}"',
        "settle_seconds = 0",
        "enabled = false",
        *common,
    ]
    return lines, stop


def prepare(root: Path, rows: int, live: list[str] | None = None) -> Path:
    """Dataset, KPI tables and source state under ``root``; returns the config path."""
    from workstyle.aggregates import engine
    from workstyle.aggregates.kpis import Ctx
    from workstyle.aggregates.settings import Rules
    from workstyle.aggregates.targets import load_plan
    from workstyle.collector import config
    from workstyle.collector.ingest.state import SourceState, StateStore
    from workstyle.collector.ingest.store import Store

    data = root / "data"
    t = time.perf_counter()
    counts = _kpi_bench().generate(data.resolve(), rows / 50_000_000)
    print(f"  generated {counts['print_jobs']:,} print jobs in {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    ctx = Ctx(
        Store(data.resolve()),
        Rules(),
        load_plan(ROOT / "config" / "targets.toml"),
        dt.date.fromisoformat(AS_OF),
    )
    engine.write(Store(ctx.store.root), engine.compute(ctx))
    print(f"  KPI tables computed in {time.perf_counter() - t:.1f}s")

    lines = ["[collector]", f'data_dir = "{data}"', "", "[privacy]", 'key = "env:BENCH_KEY"', ""]
    for i in range(SOURCES):
        folder = root / f"in{i}"
        folder.mkdir()
        lines += [
            "[[sources]]",
            f'name = "print-{i}"',
            'kind = "papercut_print_logger"',
            f'path = "{folder}"',
            "",
        ]
    lines += live or []
    cfg_path = root / "collector.toml"
    cfg_path.write_text("\n".join(lines))
    os.environ["BENCH_KEY"] = KEY
    cfg = config.load(cfg_path)
    states = StateStore(data)
    now = dt.datetime.now(dt.UTC)
    for source in cfg.sources:
        if not source.enabled:
            continue
        states.save(
            SourceState(
                source=source.name,
                identity=config.identity_of(source),
                watermark=now,
                newest_event=now - dt.timedelta(hours=3),
                last_success_at=now,
                last_run={
                    "outcome": "success",
                    "started_at": now.isoformat(),
                    "duration_seconds": 12.5,
                    "rows_read": rows // SOURCES,
                    "rows_new": rows // SOURCES,
                    "rows_quarantined": 3,
                },
            )
        )
    return cfg_path


def _rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    return rss, hwm


def measure(cfg_path: Path, scrapes: int) -> dict[str, float]:
    """Start serve, scrape it ``scrapes`` times; latency percentiles and RSS."""
    log = cfg_path.parent / "serve.log"
    env = {**os.environ, "BENCH_KEY": KEY, "PYTHONPATH": str(ROOT)}
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workstyle.collector.cli",
                "--config",
                str(cfg_path),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        port = None
        for _ in range(300):
            m = re.search(r"127\.0\.0\.1:(\d+)/metrics", log.read_text())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.1)
        if port is None:
            raise SystemExit(f"serve did not start: {log.read_text()}")
        headers = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "gzip"}

        def scrape() -> tuple[float, bytes]:
            t = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/metrics", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert resp.status == 200
            return time.perf_counter() - t, body

        for _ in range(50):
            scrape()
        if "live = true" in cfg_path.read_text():
            # Wait for the pollers' first snapshot: scrapes then serve live values.
            for _ in range(100):
                if (
                    b"workstyle_live_up{" in gzip.decompress(scrape()[1])
                    and (cfg_path.parent / "data" / "_live" / "snapshot.json").exists()
                ):
                    break
                time.sleep(0.1)
        times = []
        for _ in range(scrapes):
            elapsed, body = scrape()
            times.append(elapsed * 1000)
        text = gzip.decompress(body).decode()
        duration = re.search(r"^workstyle_exporter_scrape_duration_seconds (\S+)$", text, re.M)
        collect = float(duration.group(1)) * 1000
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        rss, hwm = _rss_mb(proc.pid)
        times.sort()
        return {
            "median_ms": statistics.median(times),
            "p99_ms": times[int(len(times) * 0.99) - 1],
            "max_ms": times[-1],
            "collect_ms": collect,
            "series": series,
            "bytes": len(text),
            "rss_mb": rss,
            "peak_rss_mb": hwm,
        }
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    """Prepare each size, measure, print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows",
        type=int,
        action="append",
        help="print jobs in the dataset (repeatable; default 10k and 50M)",
    )
    ap.add_argument("--scrapes", type=int, default=2000)
    ap.add_argument("--keep", type=Path, help="keep the generated data under this folder")
    ap.add_argument(
        "--live", action="store_true", help="also poll three live sources over growing logs"
    )
    args = ap.parse_args()
    results = []
    for rows in args.rows or [10_000, 50_000_000]:
        root = Path(tempfile.mkdtemp(prefix=f"scrape-bench-{rows}-", dir=args.keep))
        try:
            print(f"{rows:,} print jobs:")
            live, stop = live_sources(root) if args.live else (None, None)
            try:
                cfg_path = prepare(root, rows, live)
                results.append((rows, measure(cfg_path, args.scrapes)))
            finally:
                if stop is not None:
                    stop.set()
            print("  " + ", ".join(f"{k} {v:.1f}" for k, v in results[-1][1].items()))
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
    print()
    print("| print jobs | live readers | median | p99 | max | collect() | series | RSS (peak) |")
    print("|---|---|---|---|---|---|---|---|")
    for rows, r in results:
        print(
            f"| {rows:,} | {'3, every 1 s' if args.live else 'none'}"
            f" | {r['median_ms']:.2f} ms | {r['p99_ms']:.2f} ms"
            f" | {r['max_ms']:.1f} ms | {r['collect_ms']:.2f} ms | {r['series']:.0f}"
            f" | {r['rss_mb']:.0f} MB ({r['peak_rss_mb']:.0f} MB) |"
        )


if __name__ == "__main__":
    main()
