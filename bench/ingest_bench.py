"""Benchmarks (a) PaperCut ingest vs its anchors and (b) re-ingest and nightly runs.

(a) ``ingest``: ``collector backfill`` of the generated PaperCut daily CSVs into an
empty store, against the same files through polars ``scan_csv(...).sink_parquet(...)``
with no processing (the machine's limit for this work shape), through the issue's one
fused polars plan of the processing (times, checks, pseudonyms, sheets, month; bad rows
split off; one sink; no keys, line numbers, content hashes or partitions) and through
pandas ``read_csv`` + ``to_parquet`` per file (what an operator would otherwise write).

(g) ``obligations``: that fused plan, then the collector's obligations (OBLIGATIONS)
added to it one at a time, each step against the bare scan in the same invocation:
what each obligation costs polars itself, without our code.

(b) ``nightly``: at each dataset size, an initial ``collector ingest``, a re-ingest of
every file (``collector backfill`` over a populated store: the idempotent upsert
path) and nightly runs that each add one new day (of a fixed size) on top.

Every figure is the median of ``--repeat`` child processes, with the child's own peak
RSS and the 1-minute load average when it started.

    python3 bench/generate.py --out /tmp/bench-data/s0.1 --scale 0.1
    python3 bench/ingest_bench.py ingest --data /tmp/bench-data/s0.1 --repeat 3
    python3 bench/ingest_bench.py nightly --scales 0.03 0.3 --nights 3
    python3 bench/ingest_bench.py obligations --data /tmp/bench-data/s0.1 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
from collections.abc import Callable
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
    spawn,
    wait_quiet,
)

PY = sys.executable
HERE = Path(__file__).resolve()
#: The source tree whose collector is measured (--tree: e.g. an older commit's).
TREE = HERE.parent.parent
FIRST, LAST = "2021-04-01", "2025-03-31"
#: The bare anchor's name in the results.
BARE = "polars: scan_csv+sink_parquet"
#: The new days of the nightly runs: weekend days, which the generated data has no file
#: for, so each adds one new daily file to a full dataset (and rewrites the March
#: partition, as a real night does).
NIGHTS = ("2025-03-22", "2025-03-23", "2025-03-29")
_RESULT = re.compile(
    r"^(?P<src>\S+)\s+(?P<outcome>\w+)\s+read\s+(?P<read>[\d,]+)\s+new\s+(?P<new>[\d,]+)"
    r"\s+updated\s+(?P<updated>[\d,]+)\s+unchanged\s+(?P<unchanged>[\d,]+)"
    r"\s+quarantined\s+(?P<quarantined>[\d,]+)",
    re.M,
)


def collector(cfg: Path, data_dir: Path, *args: str) -> list[str]:
    """A collector command line on the generated config and a given data dir."""
    entry = ["-m", "workstyle.collector.cli"]  # this checkout, as installed
    if HERE.parent.parent != TREE:  # an older tree, from before the workstyle namespace
        old = f"import sys; sys.path.insert(0, {str(TREE)!r}); from collector.cli import main"
        entry = ["-c", old + "; main()"]
    return [
        PY,
        *entry,
        "--config",
        str(cfg),
        "--data-dir",
        str(data_dir),
        *args,
    ]


def parse_result(stdout: str) -> dict[str, int]:
    """The counts of the source line a collector command prints."""
    m = _RESULT.search(stdout)
    if not m:
        raise RuntimeError(f"no result line in: {stdout[-500:]}")
    return {
        k: int(v.replace(",", "")) for k, v in m.groupdict().items() if k not in ("src", "outcome")
    }


def print_files(data: Path) -> list[str]:
    """The daily PaperCut files of a generated dataset."""
    return sorted(str(p) for p in (data / "print").glob("papercut-print-log-*.csv"))


# -- anchors (run as children) ---------------------------------------------------------
def child_polars(data: Path, dest: Path) -> None:
    """The machine's limit: polars reads every file and writes Parquet, nothing else."""
    import polars as pl

    (
        pl.scan_csv(
            print_files(data),
            skip_rows=1,  # the logger's banner line
            truncate_ragged_lines=True,  # the trailing comma makes a 15th, empty field
            ignore_errors=True,  # the planted malformed lines
        ).sink_parquet(dest, compression="zstd")
    )


#: The collector's obligations beyond the issue's plan, each added to the plan of the
#: ones before it by ``obligations`` (benchmark (g)).
OBLIGATIONS = ("manifest", "lines", "devices", "bad-rows", "months")


def child_fused(data: Path, dest: Path, steps: int = 0) -> None:
    """The issue's one lazy plan of the processing, sunk to one file; with ``steps``, the
    first that many of OBLIGATIONS added to it (what each costs polars).

    The plan: every column a string, the time from Asia/Tokyo to UTC, pages and copies
    cast and checked, the bad rows split off, one HMAC per distinct user (found by a
    first scan) joined in, sheets and the month. The obligations: ``manifest`` each
    file read, hashed (SHA-256) and its lines counted first (what identities, copies
    and resume need); ``lines`` each row's file and line (the job key, a quarantined
    row's location), from each file's first row number joined in; ``devices`` the
    client pseudonymised too; ``bad-rows`` the bad rows sunk with their file and line;
    ``months`` one Parquet file per month.
    """
    import hashlib
    import hmac

    import polars as pl

    added = OBLIGATIONS[:steps]
    files = print_files(data)
    names = ["Time", "User", "Pages", "Copies", "Printer", "Document Name", "Client"]
    names += ["Paper Size", "Language", "Height", "Width", "Duplex", "Grayscale", "Size"]
    names += ["_trailing"]
    info = manifest_pass(files) if "manifest" in added else []
    lf = pl.scan_csv(
        files,
        skip_rows=2,  # banner and header
        has_header=False,
        new_columns=names,
        infer_schema=False,  # every column a string
        truncate_ragged_lines=True,
        ignore_errors=True,
        **({"row_index_name": "_i", "include_file_paths": "_file"} if "lines" in added else {}),
    )
    if "lines" in added:
        firsts, at = [], 0
        for _, lines in info:
            firsts.append(at)
            at += lines - 2
        starts = pl.LazyFrame(
            {
                "_file": files,
                "_first": pl.Series(firsts, dtype=pl.Int64),
                "_fp": [digest[:16] for digest, _ in info],
            }
        )
        lf = lf.join(starts, on="_file", how="left").with_columns(
            (pl.col("_i").cast(pl.Int64) - pl.col("_first") + 3).alias("_line")
        )
    key = (data / "pseudonym.key").read_bytes().strip()
    pseudonymised = ["User", "Client"] if "devices" in added else ["User"]
    distinct = lf.select(pl.col(c).unique().implode() for c in pseudonymised).collect()

    def mapping(column: str) -> pl.LazyFrame:
        values = distinct.get_column(column).explode()
        digests = [
            None if v is None else hmac.new(key, v.lower().encode(), hashlib.sha256).hexdigest()
            for v in values
        ]
        return pl.LazyFrame({column: values, f"_{column}": [d and d[:32] for d in digests]})

    time = (
        pl.col("Time")
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
        .dt.replace_time_zone("Asia/Tokyo", ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    typed = lf.with_columns(
        time.alias("printed_at"),
        pl.col("Pages").cast(pl.Int64, strict=False).alias("pages"),
        pl.col("Copies").cast(pl.Int64, strict=False).alias("copies"),
    )
    ok = pl.col("printed_at").is_not_null() & (pl.col("pages") >= 0) & (pl.col("copies") >= 1)
    good = typed.filter(ok)
    for column in pseudonymised:
        good = good.join(mapping(column), on=column, how="left")
    duplex = pl.col("Duplex") == "DUPLEX"
    per_copy = (pl.col("pages") + pl.col("copies") - 1) // pl.col("copies")
    good = good.select(
        *(
            [pl.format("{}:{}", "_fp", "_line").alias("job_id"), "_file"]
            if "lines" in added
            else []
        ),
        "printed_at",
        pl.col("_User").alias("person"),
        pl.col("Printer").alias("printer"),
        pl.col("_Client" if "devices" in added else "Client").alias("client"),
        "pages",
        "copies",
        duplex.alias("duplex"),
        (pl.col("Grayscale") == "NOT GRAYSCALE").alias("color"),
        pl.col("Paper Size").alias("paper_size"),
        pl.when(duplex)
        .then(pl.col("copies") * ((per_copy + 1) // 2))
        .otherwise(pl.col("pages"))
        .alias("sheets"),
        pl.col("printed_at").dt.strftime("%Y-%m").alias("month"),
    )
    target = (
        pl.PartitionBy(dest / "months", key="month", include_key=False)
        if "months" in added
        else dest / "rows.parquet"
    )
    sinks = [good.sink_parquet(target, compression="zstd", lazy=True)]
    if "bad-rows" in added:
        bad = typed.filter(~ok.fill_null(False)).select("_file", "_line", "Time", "Pages")
        sinks.append(bad.sink_parquet(dest / "bad.parquet", compression="zstd", lazy=True))
    pl.collect_all(sinks)


def child_pandas(data: Path, dest: Path) -> None:
    """The operator's script: pandas read_csv + to_parquet, file by file."""
    import pandas as pd

    dest.mkdir(parents=True, exist_ok=True)
    for f in print_files(data):
        # index_col=False: the trailing comma must not turn Time into the index.
        df = pd.read_csv(f, skiprows=1, index_col=False, encoding="utf-8")
        df.to_parquet(dest / (Path(f).stem + ".parquet"), compression="zstd", index=False)


def _rate(run: Run, rows: int, mb: float) -> dict[str, object]:
    return {
        **as_dict(run),
        "rows": rows,
        "rows_per_s": round(rows / run.wall_s),
        "mb_per_s": round(mb / run.wall_s, 1),
    }


def bench_ingest(
    data: Path, work: Path, repeat: int, max_load: float, only: list[str] | None = None
) -> dict[str, object]:
    """Benchmark (a): ours vs polars vs pandas, interleaved, median of ``repeat``."""
    manifest = json.loads((data / "manifest.json").read_text())
    cfg = data / "collector.toml"
    rows = manifest["rows"]["print_jobs"] + manifest["malformed"]["print_jobs"]
    mb = manifest["print_bytes"] / 1e6
    commands = {
        "ours: collector backfill": lambda d: collector(
            cfg, d, "backfill", "--source", "print", "--from", FIRST, "--to", LAST
        ),
        "polars: scan_csv+sink_parquet": lambda d: [
            PY,
            str(HERE),
            "child-polars",
            "--data",
            str(data),
            "--dest",
            str(d / "all.parquet"),
        ],
        "fused: one polars plan of the processing": lambda d: [
            PY,
            str(HERE),
            "child-fused",
            "--data",
            str(data),
            "--dest",
            str(d),
        ],
        "pandas: read_csv+to_parquet": lambda d: [
            PY,
            str(HERE),
            "child-pandas",
            "--data",
            str(data),
            "--dest",
            str(d),
        ],
    }
    if only:
        commands = {k: v for k, v in commands.items() if k.split(":")[0] in only}

    def check(name: str, run: Run) -> None:
        if name == "ours: collector backfill":
            got = parse_result(run.stdout)
            if got["new"] != manifest["rows"]["print_jobs"]:
                raise RuntimeError(f"landed {got}, expected {manifest['rows']['print_jobs']}")

    runs = ladder(commands, work / "ingest", repeat, max_load, check)
    result = {name: _rate(median_run(r), rows, mb) for name, r in runs.items()}
    if "ours: collector backfill" in result:
        ours = result["ours: collector backfill"]["rows_per_s"]
        for r in result.values():
            r["ours_vs_this"] = round(ours / r["rows_per_s"], 3)  # type: ignore[operator]
    return {
        "benchmark": "ingest",
        "data": str(data),
        "scale": manifest["scale"],
        "rows": rows,
        "mb": round(mb, 1),
        "files": manifest["print_files"],
        "repeat": repeat,
        "machine": machine(),
        "results": result,
        "all_runs": {k: [as_dict(x) for x in v] for k, v in runs.items()},
    }


def bench_obligations(data: Path, work: Path, repeat: int, max_load: float) -> dict[str, object]:
    """Benchmark (g): the issue's plan, then each obligation of OBLIGATIONS added in turn,
    against the bare scan in the same invocation (median of ``repeat``, interleaved)."""
    manifest = json.loads((data / "manifest.json").read_text())
    base = [PY, str(HERE)]
    commands: dict[str, Callable[[Path], list[str]]] = {
        BARE: lambda d: [*base, "child-polars", "--data", str(data), "--dest", str(d / "a.pq")],
    }
    for n in range(len(OBLIGATIONS) + 1):
        name = "plan" if n == 0 else f"+{OBLIGATIONS[n - 1]}"
        commands[name] = lambda d, n=n: [
            *base, "child-fused", "--data", str(data), "--steps", str(n), "--dest", str(d)
        ]  # fmt: skip
    runs = ladder(commands, work / "obligations", repeat, max_load)
    result = {name: as_dict(median_run(r)) for name, r in runs.items()}
    bare = result[BARE]["wall_s"]
    before = None
    for name, r in result.items():
        r["polars_vs_this"] = round(bare / r["wall_s"], 3)  # type: ignore[operator]
        if before is not None:
            r["added_s"] = round(r["wall_s"] - before, 2)  # type: ignore[operator]
        before = r["wall_s"] if name != BARE else None
    return {
        "benchmark": "obligations",
        "data": str(data),
        "scale": manifest["scale"],
        "repeat": repeat,
        "machine": machine(),
        "results": result,
        "all_runs": {k: [as_dict(x) for x in v] for k, v in runs.items()},
    }


def bench_nightly(
    root: Path, scales: list[float], nights: int, night_scale: float, repeat: int, max_load: float
) -> dict[str, object]:
    """Benchmark (b): initial ingest, full re-ingest and one-new-day nights at each size."""
    sys.path.insert(0, str(HERE.parent))
    from generate import generate

    out: dict[str, object] = {"benchmark": "nightly", "machine": machine(), "sizes": {}}
    for scale in scales:
        base = root / f"s{scale}"
        if not (base / "manifest.json").exists():
            generate(base, scale, jobs=2)
        manifest = json.loads((base / "manifest.json").read_text())
        cfg = base / "collector.toml"
        data_dir = root / f"nightly-s{scale}-store"
        shutil.rmtree(data_dir, ignore_errors=True)
        rows = manifest["rows"]["print_jobs"] + manifest["malformed"]["print_jobs"]
        mb = manifest["print_bytes"] / 1e6
        size: dict[str, object] = {"scale": scale, "rows": rows, "mb": round(mb, 1)}
        wait_quiet(max_load)
        first = spawn(collector(cfg, data_dir, "ingest", "--source", "print"))
        size["initial_ingest"] = {**_rate(first, rows, mb), **parse_result(first.stdout)}
        print(f"s{scale} initial ingest {first.wall_s:.2f}s")
        again = []
        for _ in range(repeat):
            wait_quiet(max_load)
            run = spawn(
                collector(
                    cfg, data_dir, "backfill", "--source", "print", "--from", FIRST, "--to", LAST
                )
            )
            counts = parse_result(run.stdout)
            if counts["new"] or counts["updated"]:
                raise RuntimeError(f"re-ingest changed rows: {counts}")
            again.append(run)
            print(f"s{scale} re-ingest {run.wall_s:.2f}s")
        size["reingest"] = {**_rate(median_run(again), rows, mb), **counts}
        night_runs = []
        added: list[Path] = []
        try:
            for day in NIGHTS[:nights]:
                staging = root / f"night-{day}-s{night_scale}"
                if not (staging / "print").exists() or not any((staging / "print").iterdir()):
                    generate(staging, night_scale, only_day=dt.date.fromisoformat(day), jobs=1)
                new = next((staging / "print").glob("*.csv"))
                target = base / "print" / new.name
                shutil.copyfile(new, target)
                added.append(target)
                wait_quiet(max_load)
                run = spawn(collector(cfg, data_dir, "ingest", "--source", "print"))
                counts = parse_result(run.stdout)
                night_runs.append((run, counts, new.stat().st_size))
                print(f"s{scale} night {day}: {run.wall_s:.2f}s, {counts}")
        finally:
            for p in added:  # leave the base dataset as generated
                p.unlink(missing_ok=True)
        mid = median_run([r for r, _, _ in night_runs])
        new_rows = [c["read"] for _, c, _ in night_runs]
        size["nightly"] = {
            **as_dict(mid),
            "new_rows_per_night": new_rows,
            "new_mb_per_night": [round(b / 1e6, 2) for _, _, b in night_runs],
            "all_runs": [as_dict(r) for r, _, _ in night_runs],
        }
        size["reingest_all_runs"] = [as_dict(r) for r in again]
        out["sizes"][str(scale)] = size  # type: ignore[index]
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def main() -> None:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ingest", help="(a) ours vs polars vs pandas")
    a.add_argument("--data", type=Path, required=True, help="A bench/generate.py output folder.")
    a.add_argument("--work", type=Path, default=Path("/tmp/bench-data/work"))
    a.add_argument("--repeat", type=int, default=3)
    a.add_argument("--max-load", type=float, default=0.5, help="Wait for a quiet machine.")
    a.add_argument("--tree", type=Path, help="Measure the collector of this source tree.")
    a.add_argument("--only", nargs="+", help="Measure only these (ours, polars, fused, pandas).")
    g = sub.add_parser("obligations", help="(g) the issue's plan, obligation by obligation")
    g.add_argument("--data", type=Path, required=True, help="A bench/generate.py output folder.")
    g.add_argument("--work", type=Path, default=Path("/tmp/bench-data/work"))
    g.add_argument("--repeat", type=int, default=3)
    g.add_argument("--max-load", type=float, default=0.5, help="Wait for a quiet machine.")
    b = sub.add_parser("nightly", help="(b) re-ingest and nightly at two sizes")
    b.add_argument("--root", type=Path, default=Path("/tmp/bench-data"))
    b.add_argument("--scales", type=float, nargs="+", default=[0.03, 0.3])
    b.add_argument("--nights", type=int, default=3)
    b.add_argument("--night-scale", type=float, default=1.0, help="Size of each new day.")
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--max-load", type=float, default=0.5)
    b.add_argument("--tree", type=Path, help="Measure the collector of this source tree.")
    for name in ("child-polars", "child-fused", "child-pandas"):
        c = sub.add_parser(name)
        c.add_argument("--data", type=Path, required=True)
        c.add_argument("--dest", type=Path, required=True)
        if name == "child-fused":
            c.add_argument("--steps", type=int, default=0, help="Obligations added to the plan.")
    args = ap.parse_args()
    global TREE
    TREE = args.tree.resolve() if getattr(args, "tree", None) else TREE
    if args.cmd == "child-polars":
        child_polars(args.data, args.dest)
        return
    if args.cmd == "child-fused":
        child_fused(args.data, args.dest, args.steps)
        return
    if args.cmd == "child-pandas":
        child_pandas(args.data, args.dest)
        return
    if args.cmd == "ingest":
        result = bench_ingest(args.data, args.work, args.repeat, args.max_load, args.only)
    elif args.cmd == "obligations":
        result = bench_obligations(args.data, args.work, args.repeat, args.max_load)
    else:
        result = bench_nightly(
            args.root, args.scales, args.nights, args.night_scale, args.repeat, args.max_load
        )
    print(json.dumps(result, indent=2, default=str))
    print(f"saved {save(args.cmd, result)}")


if __name__ == "__main__":
    main()
