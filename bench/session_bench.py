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
    python3 bench/session_bench.py --data /tmp/bench-data/s0.1 --obligations

``--obligations`` measures what polars itself pays for the collector's obligations:
the line scan, then each of OBLIGATIONS added to it in turn, in one invocation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Run,
    as_dict,
    ladder,
    machine,
    manifest_pass,
    median_run,
    save,
)
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


#: The collector's obligations beyond the line scan, each added to the plan of the ones
#: before it by ``--obligations`` (what each costs polars).
OBLIGATIONS = ("manifest", "lines", "events", "pairing", "pseudonyms", "months")
#: The further fields a session row and its checks need (any order, quoted or not).
MORE_FIELDS = ("subtype", "tunneltype", "devname", "sentbyte", "rcvdbyte")


def child_linescan(data: Path, dest: Path, steps: int = 0) -> None:
    """The limit: every line read once, seven fields extracted, one Parquet file written;
    with ``steps``, the first that many of OBLIGATIONS added to the plan.

    ``manifest``: each file read, hashed (SHA-256) and its lines counted first;
    ``lines``: each line's file and number (an event's location); ``events``: only
    tunnel-ups and -downs of SSL tunnels kept, the further fields, the time and numbers
    cast; ``pairing``: each tunnel-down's start from its duration or the tunnel-up
    before it (one sort by tunnel and time); ``pseudonyms``: the user from one HMAC per
    distinct user; ``months``: one Parquet file per month.
    """
    import hashlib
    import hmac

    import polars as pl

    added = OBLIGATIONS[:steps]
    files = vpn_files(data)
    counts = [n for _, n in manifest_pass(files)] if "manifest" in added else []
    lines = pl.scan_csv(
        files,
        has_header=False,
        separator="\x1f",  # a byte no syslog line holds: one column, the whole line
        quote_char=None,
        new_columns=["line"],
        schema_overrides={"line": pl.String},
        **({"row_index_name": "_i", "include_file_paths": "_file"} if "lines" in added else {}),
    )
    fields = dict(FIELDS)
    if "events" in added:
        lines = lines.filter(pl.col("line").str.contains("tunnel-", literal=True))
        fields.update({f: rf'(?:^|[\s>:]){f}=("[^"]*"|[^\s]*)' for f in MORE_FIELDS})
    out = lines.select(
        *(["_file", "_i"] if "lines" in added else []),
        *[pl.col("line").str.extract(rx, 1).alias(name) for name, rx in fields.items()],
    )
    if "lines" in added:
        firsts, at = [], 0
        for n in counts:
            firsts.append(at)
            at += n
        starts = pl.LazyFrame({"_file": files, "_first": pl.Series(firsts, dtype=pl.Int64)})
        out = (
            out.join(starts, on="_file", how="left")
            .with_columns((pl.col("_i").cast(pl.Int64) - pl.col("_first") + 1).alias("_line"))
            .drop("_i", "_first")
        )
    if "events" in added:
        out = out.filter(
            (pl.col("subtype").str.strip_chars('"') == "vpn")
            & pl.col("action").is_in(["tunnel-up", "tunnel-down"])
            & pl.col("tunneltype").str.strip_chars('"').is_in(["ssl-tunnel", "ssl-web"])
        ).with_columns(
            pl.from_epoch(pl.col("eventtime").cast(pl.Int64), "s").dt.replace_time_zone("UTC"),
            *(pl.col(c).cast(pl.Int64) for c in ("duration", "sentbyte", "rcvdbyte", "tunnelid")),
        )
    if "pairing" in added:
        key = pl.format("{}/{}/{}", "devid", "vd", "tunnelid")
        out = out.with_columns(key.alias("key")).sort("key", "eventtime", maintain_order=True)
        prev_up = (pl.col("key") == pl.col("key").shift(1)) & (
            pl.col("action").shift(1) == "tunnel-up"
        )
        out = (
            out.with_columns(
                pl.coalesce(
                    pl.col("eventtime") - pl.duration(seconds=pl.col("duration")),
                    pl.when(prev_up).then(pl.col("eventtime").shift(1)),
                ).alias("start_time")
            )
            .filter(pl.col("action") == "tunnel-down")
            .drop("action")
        )
    if "pseudonyms" in added:
        key = (data / "pseudonym.key").read_bytes().strip()
        # The distinct users from a first scan of that one field (not of the whole plan).
        users = (
            lines.select(pl.col("line").str.extract(FIELDS["user"], 1).unique().alias("user"))
            .collect()
            .get_column("user")
        )
        digests = [
            None if u is None else hmac.new(key, u.lower().encode(), hashlib.sha256).hexdigest()
            for u in users
        ]
        mapping = pl.LazyFrame({"user": users, "person": [d and d[:32] for d in digests]})
        out = out.join(mapping, on="user", how="left").drop("user")
    if "months" in added:
        out = out.with_columns(pl.col("eventtime").dt.strftime("%Y-%m").alias("month"))
        out.sink_parquet(
            pl.PartitionBy(dest.parent / "months", key="month", include_key=False),
            compression="zstd",
        )
        return
    out.sink_parquet(dest, compression="zstd")


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

    def check(name: str, run: Run) -> None:
        if name.startswith("ours"):
            got = parse_result(run.stdout)
            if got["new"] != sessions:
                raise RuntimeError(f"landed {got}, expected {sessions} sessions")

    runs = ladder(commands, work / "sessions", repeat, max_load, check)
    result = {}
    for name, r in runs.items():
        m = median_run(r)
        result[name] = {**as_dict(m), "lines_per_s": round(lines / m.wall_s)}
    ours = result["ours: collector backfill"]["lines_per_s"]
    for r in result.values():
        r["ours_vs_this"] = round(ours / r["lines_per_s"], 3)  # type: ignore[operator]
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


def bench_obligations(data: Path, work: Path, repeat: int, max_load: float) -> dict[str, object]:
    """The line scan, then each obligation of OBLIGATIONS added in turn (median of
    ``repeat``, interleaved, in one invocation)."""
    manifest = json.loads((data / "manifest.json").read_text())
    commands = {
        name: lambda d, n=n: [
            PY,
            str(HERE),
            "child-linescan",
            "--data",
            str(data),
            "--steps",
            str(n),
            "--dest",
            str(d / "lines.parquet"),
        ]  # fmt: skip
        for n, name in enumerate(["line scan", *(f"+{o}" for o in OBLIGATIONS)])
    }
    runs = ladder(commands, work / "session-obligations", repeat, max_load)
    result = {name: as_dict(median_run(r)) for name, r in runs.items()}
    scan = result["line scan"]["wall_s"]
    for r in result.values():
        r["scan_vs_this"] = round(scan / r["wall_s"], 3)  # type: ignore[operator]
    return {
        "benchmark": "session-obligations",
        "data": str(data),
        "scale": manifest["scale"],
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
    c.add_argument("--steps", type=int, default=0, help="Obligations added to the scan.")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-data/work"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-load", type=float, default=0.5, help="Wait for a quiet machine.")
    ap.add_argument(
        "--obligations", action="store_true", help="The line scan, obligation by obligation."
    )
    args = ap.parse_args()
    if args.cmd == "child-linescan":
        child_linescan(args.data, args.dest, args.steps)
        return
    if args.data is None:
        ap.error("--data is required")
    if args.obligations:
        payload = bench_obligations(args.data, args.work, args.repeat, args.max_load)
        print(json.dumps(payload["results"], indent=1))
        print("saved", save(f"session-obligations-s{payload['scale']}", payload))
        return
    payload = bench(args.data, args.work, args.repeat, args.max_load)
    print(json.dumps(payload["results"], indent=1))
    print("saved", save(f"sessions-s{payload['scale']}", payload))


if __name__ == "__main__":
    main()
