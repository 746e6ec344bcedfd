"""Live values from the logs themselves: VPN sessions open now, print jobs and sheets today."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

from tests.live.helpers import PAPERCUT_HEAD, TZ, Clock, append, asa, fgt, live_config, papercut
from workstyle.collector.live.poller import Poller
from workstyle.collector.live.snapshot import read_snapshot, snapshot_path

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=TZ)


@pytest.fixture(autouse=True)
def _key(key_env: str) -> None:
    pass


def touch(path: Path, clock: Clock) -> None:
    """Files carry the (test) clock's time: the print reader opens only today's files."""
    os.utime(path, (clock(), clock()))


def _values(poller: Poller, name: str) -> dict[str, float]:
    poller.poll_once()
    snap = read_snapshot(snapshot_path(poller.cfg.data_dir))
    reading = snap.sources[name]
    assert reading.ok, reading.error
    return reading.values


def test_fortigate_sessions_open_now_follow_a_growing_log(tmp_path: Path) -> None:
    log = tmp_path / "vpn" / "fgt.log"
    log.parent.mkdir()
    t = NOW - dt.timedelta(hours=1)
    log.write_text(
        fgt(t, "tunnel-up", 1, "Yamada")
        + '<189>date=2026-12-01 type="traffic" subtype="forward" logid="0000000013" action=accept\n'
        + "%%% line mangled by the syslog relay ###\n"
        + fgt(t, "tunnel-up", 2, "sato")
        + fgt(t, "tunnel-up", 3, "YAMADA")
        # closed before the first poll: never open now
        + fgt(t, "tunnel-up", 9, "kato")
        + fgt(t + dt.timedelta(minutes=5), "tunnel-down", 9, "kato")
    )
    clock = Clock(NOW)
    cfg = live_config(
        tmp_path,
        {"name": "vpn-fgt", "kind": "fortigate_vpn", "paths": [str(log)], "live": True},
    )
    poller = Poller(cfg, clock=clock)
    assert _values(poller, "vpn-fgt") == {"vpn_sessions": 3.0, "vpn_users": 2.0}

    # Between two polls: a session opens and closes, another closes, one opens.
    clock.advance(minutes=1)
    append(
        log,
        fgt(NOW, "tunnel-up", 4, "suzuki")
        + fgt(NOW + dt.timedelta(seconds=30), "tunnel-down", 4, "suzuki")
        + fgt(NOW + dt.timedelta(seconds=40), "tunnel-down", 1, "Yamada")
        + fgt(NOW + dt.timedelta(seconds=50), "tunnel-up", 5, "ito"),
    )
    assert _values(poller, "vpn-fgt") == {"vpn_sessions": 3.0, "vpn_users": 3.0}
    # A half-written last line is not read until it is complete.
    append(log, fgt(NOW, "tunnel-down", 5, "ito").rstrip("\n")[:60])
    assert _values(poller, "vpn-fgt") == {"vpn_sessions": 3.0, "vpn_users": 3.0}


def test_fortigate_rotation_and_stale_opens(tmp_path: Path) -> None:
    """A rotated log keeps its open sessions; a tunnel-up older than the limit is not 'now'."""
    folder = tmp_path / "vpn"
    folder.mkdir()
    log = folder / "fgt.log"
    old = NOW - dt.timedelta(hours=80)
    log.write_text(fgt(old, "tunnel-up", 7, "old") + fgt(NOW, "tunnel-up", 1, "yamada"))
    clock = Clock(NOW)
    cfg = live_config(
        tmp_path,
        {
            "name": "vpn-fgt",
            "kind": "fortigate_vpn",
            "paths": [str(folder / "fgt.log*")],
            "live": True,
        },
    )
    poller = Poller(cfg, clock=clock)
    assert _values(poller, "vpn-fgt") == {"vpn_sessions": 1.0, "vpn_users": 1.0}
    log.rename(folder / "fgt.log.1")
    log.write_text(fgt(NOW + dt.timedelta(minutes=1), "tunnel-up", 2, "sato"))
    clock.advance(minutes=2)
    assert _values(poller, "vpn-fgt") == {"vpn_sessions": 2.0, "vpn_users": 2.0}
    append(log, fgt(NOW + dt.timedelta(minutes=2), "tunnel-down", 1, "yamada"))
    assert _values(poller, "vpn-fgt") == {"vpn_sessions": 1.0, "vpn_users": 1.0}


def test_cisco_asa_sessions_open_now(tmp_path: Path) -> None:
    log = tmp_path / "asa.log"
    t = NOW - dt.timedelta(minutes=30)
    log.write_text(
        asa(t, "113039", "yamada", "198.51.100.10")
        + asa(t, "113039", "sato", "198.51.100.11")
        + asa(t, "113039", "sato", "203.0.113.5")
    )
    clock = Clock(NOW)
    cfg = live_config(
        tmp_path,
        {"name": "vpn-asa", "kind": "cisco_asa_vpn", "paths": [str(log)], "live": True},
    )
    poller = Poller(cfg, clock=clock)
    assert _values(poller, "vpn-asa") == {"vpn_sessions": 3.0, "vpn_users": 2.0}
    append(
        log,
        asa(NOW, "113039", "kato", "198.51.100.12")
        + asa(NOW + dt.timedelta(seconds=20), "113019", "kato", "198.51.100.12")
        + asa(NOW + dt.timedelta(seconds=30), "113019", "sato", "198.51.100.11"),
    )
    clock.advance(minutes=1)
    assert _values(poller, "vpn-asa") == {"vpn_sessions": 2.0, "vpn_users": 2.0}


def test_print_jobs_and_sheets_today_across_local_midnight(tmp_path: Path) -> None:
    folder = tmp_path / "print"
    folder.mkdir()
    late = dt.datetime(2026, 12, 1, 23, 50, tzinfo=TZ)
    day1 = folder / "papercut-print-log-2026-12-01.csv"
    day1.write_text(
        PAPERCUT_HEAD
        + papercut(late - dt.timedelta(hours=14), "tyamada", 4, 2, True)  # 2 sheets
        + papercut(late, "PREF\\TYAMADA", 3, 1, False)  # 3 sheets
    )
    clock = Clock(dt.datetime(2026, 12, 1, 23, 58, tzinfo=TZ))
    touch(day1, clock)
    cfg = live_config(
        tmp_path,
        {
            "name": "print",
            "kind": "papercut_print_logger",
            "path": str(folder),
            "live": True,
            "settle_seconds": 0,
        },
    )
    poller = Poller(cfg, clock=clock)
    assert _values(poller, "print") == {"print_jobs_today": 2.0, "print_sheets_today": 5.0}
    append(day1, papercut(late + dt.timedelta(minutes=9), "hsato", 1, 1, False))
    touch(day1, clock)
    assert _values(poller, "print") == {"print_jobs_today": 3.0, "print_sheets_today": 6.0}

    # Local midnight: the new day starts at zero, whatever yesterday's file still gets.
    clock.when = dt.datetime(2026, 12, 2, 0, 0, 30, tzinfo=TZ)
    append(day1, papercut(late + dt.timedelta(minutes=9, seconds=50), "hsato", 2, 1, False))
    touch(day1, clock)
    assert _values(poller, "print") == {"print_jobs_today": 0.0, "print_sheets_today": 0.0}
    day2 = folder / "papercut-print-log-2026-12-02.csv"
    day2.write_text(
        PAPERCUT_HEAD + papercut(dt.datetime(2026, 12, 2, 0, 0, 10, tzinfo=TZ), "kato", 5, 1, False)
    )
    touch(day2, clock)
    assert _values(poller, "print") == {"print_jobs_today": 1.0, "print_sheets_today": 5.0}


def test_a_failing_poll_keeps_the_last_value_and_marks_it_stale(tmp_path: Path) -> None:
    folder = tmp_path / "print"
    folder.mkdir()
    today = folder / "papercut-print-log-2026-12-01.csv"
    today.write_text(PAPERCUT_HEAD + papercut(NOW, "tyamada", 3, 1, False))
    clock = Clock(NOW + dt.timedelta(minutes=1))
    cfg = live_config(
        tmp_path,
        {"name": "print", "kind": "papercut_print_logger", "path": str(folder), "live": True},
    )
    poller = Poller(cfg, clock=clock)
    assert _values(poller, "print") == {"print_jobs_today": 1.0, "print_sheets_today": 3.0}
    first = read_snapshot(snapshot_path(cfg.data_dir)).sources["print"]

    # The file is replaced by something that is not a Print Logger export.
    today.write_text("Time,User\n1,2\n")
    clock.advance(minutes=1)
    poller.poll_once()
    failed = read_snapshot(snapshot_path(cfg.data_dir)).sources["print"]
    assert not failed.ok
    assert "print" in failed.error and "papercut-print-log-2026-12-01.csv" in failed.error
    assert failed.values == first.values
    assert failed.last_success == first.last_success
    assert failed.last_attempt > first.last_attempt

    today.write_text(PAPERCUT_HEAD + papercut(NOW, "tyamada", 3, 1, False) * 2)
    clock.advance(minutes=1)
    assert _values(poller, "print") == {"print_jobs_today": 2.0, "print_sheets_today": 6.0}


def test_snapshot_is_replaced_atomically(tmp_path: Path) -> None:
    log = tmp_path / "fgt.log"
    log.write_text(fgt(NOW, "tunnel-up", 1, "yamada"))
    cfg = live_config(
        tmp_path, {"name": "vpn", "kind": "fortigate_vpn", "paths": [str(log)], "live": True}
    )
    poller = Poller(cfg, clock=Clock(NOW))
    poller.poll_once()
    folder = snapshot_path(cfg.data_dir).parent
    assert [p.name for p in folder.iterdir()] == ["snapshot.json"]
    text = snapshot_path(cfg.data_dir).read_text()
    assert "yamada" not in text.lower() and "198.51.100" not in text and "FGT-HQ" not in text


def test_live_command_once_and_config_errors(
    tmp_path: Path,
    make_config,
    cli,
) -> None:
    log = tmp_path / "fgt.log"
    now = dt.datetime.now(dt.UTC)
    log.write_text(fgt(now, "tunnel-up", 1, "yamada") + fgt(now, "tunnel-up", 2, "sato"))
    path = make_config(
        [{"name": "vpn", "kind": "fortigate_vpn", "paths": ["fgt.log"], "live": True}]
    )
    result = cli("--config", str(path), "live", "--once")
    assert result.exit_code == 0, result.output
    assert "vpn: ok vpn_sessions=2, vpn_users=2" in result.output
    assert snapshot_path(tmp_path / "data").is_file()

    for source, message in (
        ({"live_interval": 0}, r"\(vpn\) key 'live_interval': expected seconds > 0"),
        ({"live_api": {"url": "https://fgt", "tokn": "env:X"}}, r"live_api key 'tokn': unknown"),
        (
            {"live_api": {"url": "https://fgt", "token": "abc123"}},
            r"live_api key 'token': expected 'env:",
        ),
    ):
        path = make_config(
            [{"name": "vpn", "kind": "fortigate_vpn", "paths": ["fgt.log"], "live": True, **source}]
        )
        result = cli("--config", str(path), "validate")
        assert result.exit_code == 2, result.output
        assert re.search(message, result.output), result.output
        assert "abc123" not in result.output


def test_windows_print_exports_count_today_once(tmp_path: Path) -> None:
    """Exports of the PrintService log: today's jobs, a job in two overlapping exports once."""
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "windows_print_events"
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in ("print-2024-05-13.xml", "print-2024-05-13-params.csv"):
        (folder / name).write_bytes((fixtures / name).read_bytes())
    clock = Clock(dt.datetime(2024, 5, 13, 12, 0, tzinfo=TZ))
    cfg = live_config(
        tmp_path,
        {
            "name": "winprint",
            "kind": "windows_print_events",
            "paths": [str(folder / "*")],
            "live": True,
        },
    )
    poller = Poller(cfg, clock=clock)
    # XML: 6 + 7 sheets (copies from 805); CSV: 4 + 3.
    assert _values(poller, "winprint") == {"print_jobs_today": 4.0, "print_sheets_today": 20.0}
    # The next export overlaps the last: its jobs are not counted twice.
    (folder / "print-2024-05-13-b.xml").write_bytes(
        (fixtures / "print-2024-05-13.xml").read_bytes()
    )
    clock.advance(minutes=5)
    assert _values(poller, "winprint") == {"print_jobs_today": 4.0, "print_sheets_today": 20.0}
    snap = read_snapshot(snapshot_path(cfg.data_dir))
    assert snap.sources["winprint"].platform == "windows"

    clock.when = dt.datetime(2024, 5, 14, 0, 30, tzinfo=TZ)
    assert _values(poller, "winprint") == {"print_jobs_today": 0.0, "print_sheets_today": 0.0}


def test_a_big_log_is_read_from_its_tail_and_a_truncated_one_again(tmp_path: Path) -> None:
    """A file first seen is read from its last bytes only (not years of history); a file
    truncated in place (copytruncate rotation) is read again from its start."""
    from workstyle.collector.live.tail import Tail

    log = tmp_path / "fgt.log"
    old = "".join(fgt(NOW, "tunnel-up", i, f"u{i}") for i in range(100))
    recent = fgt(NOW, "tunnel-up", 500, "yamada") + fgt(NOW, "tunnel-up", 501, "sato")
    log.write_text(old + recent)
    tail = Tail([str(log)], tmp_path, tail_bytes=len(recent.encode()) + 10)
    (chunk,) = tail.read()
    assert chunk.data.decode() == recent  # the partial line before it was dropped
    assert tail.read() == []
    log.write_text(fgt(NOW, "tunnel-up", 7, "kato"))  # truncated and rewritten
    (chunk,) = tail.read()
    assert chunk.fresh and chunk.offset == 0 and b"tunnelid=7 " in chunk.data


def test_papercut_ng_print_log_today_grows(tmp_path: Path) -> None:
    """The NG/MF tab-separated log (CP932 document names, a bad line and a bad time in it):
    3 jobs with 6 + 4 + 10 sheets, then the appended job (2 sheets)."""
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "papercut_ng_print_log"
    folder = tmp_path / "logs"
    folder.mkdir()
    log = folder / "printlog_2024_05_13.log"
    log.write_bytes((fixtures / "printlog_2024_05_13.log").read_bytes())
    clock = Clock(dt.datetime(2024, 5, 13, 20, 0, tzinfo=TZ))
    cfg = live_config(
        tmp_path,
        {
            "name": "ng",
            "kind": "papercut_ng_print_log",
            "paths": [str(folder / "*.log")],
            "live": True,
        },
    )
    poller = Poller(cfg, clock=clock)
    assert _values(poller, "ng") == {"print_jobs_today": 3.0, "print_sheets_today": 20.0}
    with log.open("ab") as fh:
        fh.write((fixtures / "printlog_2024_05_13.append.log").read_bytes())
    assert _values(poller, "ng") == {"print_jobs_today": 4.0, "print_sheets_today": 22.0}


def test_one_bad_file_fails_the_poll_but_the_others_keep_their_place(tmp_path: Path) -> None:
    folder = tmp_path / "vpn"
    folder.mkdir()
    good, bad = folder / "a.log", folder / "b.log"
    good.write_text(fgt(NOW, "tunnel-up", 1, "yamada") + fgt(NOW, "tunnel-up", 2, "sato"))
    clock = Clock(NOW + dt.timedelta(minutes=1))
    cfg = live_config(
        tmp_path,
        {
            "name": "vpn",
            "kind": "fortigate_vpn",
            "paths": [str(folder / "*.log")],
            "encoding": "utf-8",
            "live": True,
        },
    )
    poller = Poller(cfg, clock=clock)
    assert _values(poller, "vpn") == {"vpn_sessions": 2.0, "vpn_users": 2.0}
    bad.write_bytes(b"\xff\xfe not UTF-8 at all\n")
    append(good, fgt(NOW + dt.timedelta(seconds=30), "tunnel-down", 1, "yamada"))
    poller.poll_once()
    failed = read_snapshot(snapshot_path(cfg.data_dir)).sources["vpn"]
    assert not failed.ok and "b.log" in failed.error and "UTF-8" in failed.error
    assert failed.values == {"vpn_sessions": 2.0, "vpn_users": 2.0}  # the last good values
    bad.unlink()
    # The tunnel-down read during the failed poll was not lost.
    assert _values(poller, "vpn") == {"vpn_sessions": 1.0, "vpn_users": 1.0}


def test_a_restarted_poller_starts_from_the_last_snapshot_marked_stale(tmp_path: Path) -> None:
    log = tmp_path / "fgt.log"
    log.write_text(fgt(NOW, "tunnel-up", 1, "yamada"))
    cfg = live_config(
        tmp_path, {"name": "vpn", "kind": "fortigate_vpn", "paths": [str(log)], "live": True}
    )
    Poller(cfg, clock=Clock(NOW)).poll_once()
    leftover = snapshot_path(cfg.data_dir).parent / ".snapshot.abc.tmp"
    leftover.write_text("{half")  # a process killed mid-write
    restarted = Poller(cfg, clock=Clock(NOW))
    assert not leftover.exists()
    reading = restarted.readings["vpn"]
    assert not reading.ok and reading.values == {"vpn_sessions": 1.0, "vpn_users": 1.0}
