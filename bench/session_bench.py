"""Benchmark: the session kinds (FortiGate SSL-VPN syslog) against the line-scan limit.

``collector backfill --source vpn`` of the generated FortiGate daily logs into an empty
store, side by side with the limit for this work shape: polars reading the same files
as lines and extracting the seven fields a session needs with ``str.extract`` (time,
device, vdom, tunnel id, user, action, duration), sunk to one Parquet file, with no
pairing, checks or pseudonyms. Median of ``--repeat`` child processes, each with its
own peak RSS and the load average when it started; landed sessions are checked against
the generator's manifest.

    python3 bench/generate.py --out /tmp/bench-data/s0.1 --scale 0.1
    python3 bench/session_bench.py --data /tmp/bench-data/s0.1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Run, as_dict, machine, median_run, save, spawn, wait_quiet
from ingest_bench import FIRST, LAST, PY, collector, parse_result

HERE = Path(__file__).resolve()

#: The fields a FortiGate tunnel event carries that a session row needs.
FIELDS = {
    "eventtime": r"eventtime=(\d+)",
    "devid": r"devid=(\S+)",
    "vd": r'vd="?([^"\s]+)',
    "tunnelid": r"tunnelid=(\d+)",
    "user": r'user="([^"]*)"',
    "action": r'action="([^"]*)"',
    "duration": r"duration=(\d+)",
}


def vpn_files(data: Path) -> list[str]:
    return sorted(str(p) for p in (data / "vpn").glob("fgt-*.log"))


def child_linescan(data: Path, dest: Path) -> None:
    """The limit: every line read once, seven fields extracted, one Parquet file written."""
    import polars as pl

    lines = pl.scan_csv(
        vpn_files(data),
        has_header=False,
        separator="\x1f",  # a byte no syslog line holds: one column, the whole line
        quote_char=None,
        new_columns=["line"],
        schema_overrides={"line": pl.String},
    )
    lines.select(
        [pl.col("line").str.extract(rx, 1).alias(name) for name, rx in FIELDS.items()]
    ).sink_parquet(dest, compression="zstd")


def bench(data: Path, work: Path, repeat: int, max_load: float) -> dict[str, object]:
    manifest = json.loads((data / "manifest.json").read_text())
    cfg = data / "collector.toml"
    files = vpn_files(data)
    lines = sum(1 for f in files for _ in open(f, "rb"))  # noqa: SIM115 - counted once
    mb = sum(Path(f).stat().st_size for f in files) / 1e6
    sessions = manifest["rows"]["remote_sessions"]
    commands = {
        "ours: collector backfill": lambda d: collector(
            cfg, d, "backfill", "--source", "vpn", "--from", FIRST, "--to", LAST
        ),
        "polars: lines + str.extract": lambda d: [
            PY,
            str(HERE),
            "child-linescan",
            "--data",
            str(data),
            "--dest",
            str(d / "lines.parquet"),
        ],
    }
    runs: dict[str, list[Run]] = {k: [] for k in commands}
    for i in range(repeat):
        for name, cmd in commands.items():
            dest = work / "sessions" / re.sub(r"\W+", "-", name)
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            load = wait_quiet(max_load)
            run = spawn(cmd(dest))
            if name.startswith("ours"):
                got = parse_result(run.stdout)
                if got["new"] != sessions:
                    raise RuntimeError(f"landed {got}, expected {sessions} sessions")
            runs[name].append(run)
            print(
                f"run {i + 1} {name}: {run.wall_s:.2f}s (cpu {run.cpu_s:.1f}s),"
                f" {run.peak_rss_mb:.0f} MB, load {load:.2f}"
            )
    result = {}
    for name, r in runs.items():
        m = median_run(r)
        result[name] = {**as_dict(m), "lines_per_s": round(lines / m.wall_s)}
    ours = result["ours: collector backfill"]["lines_per_s"]
    for r in result.values():
        r["ours_vs_this"] = round(ours / r["lines_per_s"], 3)  # type: ignore[operator]
    shutil.rmtree(work / "sessions", ignore_errors=True)
    return {
        "benchmark": "sessions",
        "data": str(data),
        "scale": manifest["scale"],
        "lines": lines,
        "sessions": sessions,
        "mb": round(mb, 1),
        "files": len(files),
        "repeat": repeat,
        "machine": machine(),
        "results": result,
        "all_runs": {k: [as_dict(x) for x in v] for k, v in runs.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("child-linescan")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--dest", type=Path, required=True)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-data/work"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-load", type=float, default=0.5, help="Wait for a quiet machine.")
    args = ap.parse_args()
    if args.cmd == "child-linescan":
        child_linescan(args.data, args.dest)
        return
    if args.data is None:
        ap.error("--data is required")
    payload = bench(args.data, args.work, args.repeat, args.max_load)
    print(json.dumps(payload["results"], indent=1))
    print("saved", save(f"sessions-s{payload['scale']}", payload))


if __name__ == "__main__":
    main()
