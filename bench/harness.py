"""Shared benchmark plumbing: timed child processes, peak RSS, medians, result files.

Every measured command runs as a child process so that its wall time and peak
resident memory are its own: ``os.wait4`` returns the rusage of exactly that child
(``RUSAGE_CHILDREN`` would mix all of them).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


@dataclass
class Run:
    """One timed child process."""

    wall_s: float
    peak_rss_mb: float
    load1: float
    returncode: int
    stdout: str = ""
    #: User + system CPU seconds of the child: less moved by other jobs than wall time
    #: on a shared machine (they take cores away, not instructions).
    cpu_s: float = 0.0


def spawn(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run ``cmd`` and reap it with ``os.wait4``: wall time and the child's own peak RSS."""
    load1 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        err_path = OUT / f".stderr-{os.getpid()}"
        OUT.mkdir(parents=True, exist_ok=True)
        with open(err_path, "wb") as err, open(f"{err_path}.out", "wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=err,
                stdin=null,
                env={**os.environ, **(env or {})},
                cwd=cwd,
            )
            _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = Path(f"{err_path}.out").read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    err_path.unlink(missing_ok=True)
    Path(f"{err_path}.out").unlink(missing_ok=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-3000:]}")
    # ru_maxrss is in KiB on Linux.
    cpu = round(usage.ru_utime + usage.ru_stime, 2)
    return Run(round(wall, 3), round(usage.ru_maxrss / 1024, 1), round(load1, 2), 0, stdout, cpu)


def median_run(runs: list[Run]) -> Run:
    """The run with the median wall time (peak RSS is the maximum over runs)."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    mid = ordered[(len(ordered) - 1) // 2]
    return Run(
        mid.wall_s,
        max(r.peak_rss_mb for r in runs),
        max(r.load1 for r in runs),
        0,
        mid.stdout,
        mid.cpu_s,
    )


def machine() -> dict[str, object]:
    """Cores, memory and versions, for the record."""
    import polars as pl
    import pyarrow as pa

    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "pyarrow": pa.__version__,
    }


#: Longest wait for a quiet machine before measuring anyway (the load is recorded).
MAX_WAIT_S = float(os.environ.get("BENCH_MAX_WAIT", "900"))


def wait_quiet(max_load: float, poll_s: float = 30.0, timeout_s: float = MAX_WAIT_S) -> float:
    """Wait until the 1-minute load average is below ``max_load``; return it."""
    t0 = time.monotonic()
    while True:
        load1 = os.getloadavg()[0]
        if load1 < max_load or time.monotonic() - t0 > timeout_s:
            return load1
        print(f"load average {load1:.2f} >= {max_load}: waiting", file=sys.stderr, flush=True)
        time.sleep(poll_s)


def save(name: str, payload: dict[str, object]) -> Path:
    """Write a result file under bench/out (git-ignored)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def as_dict(run: Run) -> dict[str, object]:
    """A run without its captured output."""
    d = asdict(run)
    d.pop("stdout")
    return d


def ladder(
    commands: dict[str, Callable[[Path], list[str]]],
    work: Path,
    repeat: int,
    max_load: float,
    check: Callable[[str, Run], None] | None = None,
) -> dict[str, list[Run]]:
    """Each command ``repeat`` times, interleaved, each run given a fresh folder under
    ``work`` (removed afterwards): the runs of each, by name. ``check`` sees every run
    (and raises when what it landed is wrong)."""
    runs: dict[str, list[Run]] = {k: [] for k in commands}
    for i in range(repeat):
        for name, cmd in commands.items():
            dest = work / re.sub(r"\W+", "-", name)
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            load = wait_quiet(max_load)
            run = spawn(cmd(dest))
            if check is not None:
                check(name, run)
            runs[name].append(run)
            print(
                f"run {i + 1} {name}: {run.wall_s:.2f}s (cpu {run.cpu_s:.1f}s),"
                f" {run.peak_rss_mb:.0f} MB, load {load:.2f}"
            )
    shutil.rmtree(work, ignore_errors=True)
    return runs


def manifest_pass(files: list[str]) -> list[tuple[str, int]]:
    """Each file read, hashed (SHA-256) and its line ends counted, on two threads: what
    the collector's manifest needs before a file's rows are read."""

    def load(path: str) -> tuple[str, int]:
        body = Path(path).read_bytes()
        return hashlib.sha256(body).hexdigest(), body.count(b"\n")

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(load, files))
