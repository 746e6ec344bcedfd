"""The writer lock covers the whole nightly run, and temp files are cleaned by its holder."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PRINT = {"name": "print", "kind": "papercut_print_logger"}


def _lock_is_free(data_dir: Path) -> bool:
    """Whether another process could take the writer lock now (a fresh open file)."""
    fd = os.open(data_dir / "_state" / "writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_run_holds_the_lock_through_kpis_and_textfile(
    make_config, copy_fixture, cli, tmp_path, monkeypatch
) -> None:
    from workstyle.aggregates import engine
    from workstyle.collector.exporter import textfile

    folder = copy_fixture("papercut_print_logger")
    path = make_config([{**PRINT, "path": str(folder)}])
    data = tmp_path / "data"
    seen: dict[str, bool] = {}
    real_write, real_textfile = engine.write, textfile.write

    def kpi_write(*args, **kwargs):
        seen["kpi tables"] = _lock_is_free(data)
        return real_write(*args, **kwargs)

    def textfile_write(*args, **kwargs):
        seen["textfile"] = _lock_is_free(data)
        return real_textfile(*args, **kwargs)

    monkeypatch.setattr(engine, "write", kpi_write)
    monkeypatch.setattr(textfile, "write", textfile_write)
    prom = tmp_path / "prom"
    prom.mkdir()
    result = cli("--config", str(path), "run", "--textfile-dir", str(prom))
    assert result.exit_code == 0, result.output
    assert seen == {"kpi tables": False, "textfile": False}
    assert _lock_is_free(data)  # and released at the end


def _stale_temp(data: Path) -> Path:
    folder = data / "print_jobs" / "source=print" / "month=2024-03"
    folder.mkdir(parents=True)
    tmp = folder / ".part-0.parquet.0123456789abcdef.tmp"
    tmp.write_bytes(b"half a parquet file")
    old = time.time() - 2 * 3600
    os.utime(tmp, (old, old))
    return tmp


def test_backfill_cleans_up_temp_files_a_killed_writer_left(
    make_config, copy_fixture, cli, tmp_path
) -> None:
    folder = copy_fixture("papercut_print_logger")
    path = make_config([{**PRINT, "path": str(folder)}])
    stale = _stale_temp(tmp_path / "data")
    result = cli(
        "--config", str(path), "backfill", "--source", "print", "--from", "2024-04-01",
        "--to", "2024-04-02",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not stale.exists()


@pytest.fixture
def live_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_cleanup_keeps_a_temp_file_of_a_live_writer(
    make_config, copy_fixture, cli, tmp_path, live_process
) -> None:
    """A temp file newer than the lock holder, of a process still alive, is not ours to delete."""
    from workstyle.collector.ingest.store import temp_name

    folder = copy_fixture("papercut_print_logger")
    path = make_config([{**PRINT, "path": str(folder)}])
    kpi = tmp_path / "data" / "kpi"
    kpi.mkdir(parents=True)
    live = kpi / temp_name("yearly.parquet", pid=live_process.pid)
    live.write_bytes(b"being written")
    stale = _stale_temp(tmp_path / "data")
    dead = kpi / temp_name("monthly.parquet", pid=_dead_pid())
    dead.write_bytes(b"left by a killed run")
    result = cli("--config", str(path), "ingest")
    assert result.exit_code == 0, result.output
    assert live.exists()
    assert not stale.exists() and not dead.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleanup_keeps_a_fresh_temp_file_of_a_writer_outside_the_lock(
    make_config, copy_fixture, cli, tmp_path
) -> None:
    """The live poller of `serve` writes its snapshot without the lock (mkstemp names)."""
    path = make_config([{**PRINT, "path": str(copy_fixture("papercut_print_logger"))}])
    live = tmp_path / "data" / "_live"
    live.mkdir(parents=True)
    fresh = live / ".snapshot.k2j3x_9q.tmp"
    fresh.write_bytes(b"being written")
    old = live / ".snapshot.a8b7c6d5.tmp"
    old.write_bytes(b"left by a killed poller")
    then = time.time() - 2 * 3600
    os.utime(old, (then, then))
    result = cli("--config", str(path), "ingest")
    assert result.exit_code == 0, result.output
    assert fresh.exists() and not old.exists()
