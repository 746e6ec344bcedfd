"""One writer at a time: a second process fails clearly or waits, never interleaves."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workstyle.collector.errors import LockedError
from workstyle.collector.ingest.lock import WriterLock

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workstyle.collector.ingest.lock import WriterLock
    with WriterLock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold(tmp_path: Path, seconds: float) -> subprocess.Popen[str]:
    script = tmp_path / "hold.py"
    script.write_text(HOLDER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(seconds)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_fails_with_the_holders_pid(tmp_path) -> None:
    proc = _hold(tmp_path, 30)
    try:
        with pytest.raises(LockedError) as err, WriterLock(tmp_path):
            pass
        assert f"(pid {proc.pid})" in str(err.value)
        assert "--lock-wait" in str(err.value)
    finally:
        proc.kill()
        proc.wait()


def test_second_writer_can_wait_for_the_first(tmp_path) -> None:
    proc = _hold(tmp_path, 1.0)
    t0 = time.monotonic()
    with WriterLock(tmp_path, wait=20):
        waited = time.monotonic() - t0
    proc.wait()
    assert 0.3 < waited < 15


def test_a_killed_holder_releases_the_lock(tmp_path) -> None:
    proc = _hold(tmp_path, 30)
    proc.kill()
    proc.wait()
    with WriterLock(tmp_path):
        pass


def test_cli_run_exits_3_while_another_run_holds_the_lock(tmp_path, cli, make_config) -> None:
    path = make_config([])
    proc = _hold(tmp_path / "data", 30) if (tmp_path / "data").mkdir() is None else None
    try:
        result = cli("--config", str(path), "ingest")
        assert result.exit_code == 3
        assert "another collector run or backfill" in result.stderr
    finally:
        proc.kill()
        proc.wait()
