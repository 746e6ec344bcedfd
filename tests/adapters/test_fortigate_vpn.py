"""FortiGate SSL-VPN syslog: sessions, quarantine, rotation, growth, sessions across files."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import polars as pl
import pytest

from workstyle import schemas
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

FX = Path(__file__).resolve().parent.parent / "fixtures" / "fortigate_vpn"
UTC = dt.UTC


def _sessions(cfg) -> pl.DataFrame:
    store = Store(cfg.data_dir.resolve())
    return store.scan(schemas.get("remote_sessions")).collect().sort("start_time")


def _quarantine(cfg) -> list[tuple[str, str]]:
    q = Store(cfg.data_dir.resolve()).scan(QUARANTINE).collect()
    return sorted((Path(loc).name, r) for loc, r in q.select("location", "reason").iter_rows())


@pytest.fixture
def run(tmp_path, make_config, load_config, pipeline_for):
    """Run the source over tmp_path/logs/fgt.log* once; returns (cfg, result)."""

    def go(**extra: object):
        src = {
            "name": "vpn",
            "kind": "fortigate_vpn",
            "paths": [str(tmp_path / "logs" / "fgt.log*")],
        }
        cfg = load_config(make_config([{**src, **extra}]))
        return cfg, pipeline_for(cfg).incremental(cfg.sources)[0]

    (tmp_path / "logs").mkdir()
    return go


def test_tunnel_down_lines_become_sessions_and_bad_lines_are_quarantined(tmp_path, run) -> None:
    shutil.copy(FX / "fgt-2024-05-13.log", tmp_path / "logs" / "fgt.log")
    cfg, res = run()
    assert res.ok, res.error
    s = _sessions(cfg)
    assert s.select(
        "session_id",
        "start_time",
        "end_time",
        "duration_seconds",
        "gateway",
        "tunnel_type",
        "bytes_in",
        "bytes_out",
    ).rows() == [
        (
            "FG100FTK19000001/root/1001/1715558405",
            dt.datetime(2024, 5, 13, 0, 0, 5, 123456, tzinfo=UTC),
            dt.datetime(2024, 5, 13, 1, 30, 5, 123456, tzinfo=UTC),
            5400,
            "FGT-HQ",
            "ssl-tunnel",
            1048576,
            204800,
        ),
        (
            "FG100FTK19000001/root/1003/1715569200",
            dt.datetime(2024, 5, 13, 3, 0, 0, 123456, tzinfo=UTC),
            dt.datetime(2024, 5, 13, 3, 0, 30, 123456, tzinfo=UTC),
            30,
            "FGT-HQ",
            "ssl-web",
            2048,
            1024,
        ),
    ]
    # Person ids are pseudonyms, never the raw name.
    assert not any("yamada" in p.lower() for p in s.get_column("person"))
    assert _quarantine(cfg) == [
        ("fgt.log:5", "not a FortiGate log line (no logid=/type= fields)"),
        ("fgt.log:8", "duration 12m is not a number of seconds"),
    ]
    assert res.rows_read == 9


def test_rotated_gzip_copy_is_not_read_again_and_open_sessions_span_files(tmp_path, run) -> None:
    logs = tmp_path / "logs"
    shutil.copy(FX / "fgt-2024-05-13.log", logs / "fgt.log")
    run()
    # logrotate: yesterday's log becomes fgt.log.1.gz, today's starts empty and grows.
    with gzip.open(logs / "fgt.log.1.gz", "wb") as gz:
        gz.write((logs / "fgt.log").read_bytes())
    shutil.copy(FX / "fgt-2024-05-14.log", logs / "fgt.log")
    cfg, res = run()
    assert res.ok, res.error
    assert res.rows_read == 4  # only the new file; the .gz copy was recognised
    assert res.new == 1 and res.quarantined == 0
    sato = _sessions(cfg).filter(pl.col("tunnel_type") == "ssl-tunnel").row(-1, named=True)
    # Its tunnel-down has no duration: the start comes from the tunnel-up in the old file.
    assert sato["start_time"] == dt.datetime(2024, 5, 13, 8, 45, tzinfo=UTC)
    assert sato["duration_seconds"] == 14 * 3600 + 30 * 60
    assert sato["bytes_in"] == 73400320


def test_growing_file_is_read_from_where_it_stopped(tmp_path, run) -> None:
    logs = tmp_path / "logs"
    shutil.copy(FX / "fgt-2024-05-14.log", logs / "fgt.log")
    run()
    with (logs / "fgt.log").open("ab") as fh:
        fh.write((FX / "fgt-2024-05-14.append.log").read_bytes())
    cfg, res = run()
    assert res.rows_read == 1 and res.new == 1
    ito = _sessions(cfg).filter(pl.col("gateway") == "FGT-BR").row(0, named=True)
    # No tz field and no eventtime: the device clock's zone (default Asia/Tokyo) applies.
    assert ito["start_time"] == dt.datetime(2024, 5, 14, 0, 10, tzinfo=UTC)
    assert ito["session_id"] == "FG60FTK20000002/branch/7/1715645400"
    # The IPsec tunnel-up is not mobile work and was skipped, not quarantined; sato's
    # tunnel-down (no duration, its tunnel-up never read) is.
    assert _quarantine(cfg) == [
        (
            "fgt.log:1",
            "tunnel-down without duration and no tunnel-up seen; the session's start is unknown",
        )
    ]


def test_device_time_zone_is_explicit(tmp_path, run) -> None:
    logs = tmp_path / "logs"
    shutil.copy(FX / "fgt-2024-05-14.log", logs / "fgt.log")
    with (logs / "fgt.log").open("ab") as fh:
        fh.write((FX / "fgt-2024-05-14.append.log").read_bytes())
    cfg, _ = run(timezone="UTC")
    ito = _sessions(cfg).filter(pl.col("gateway") == "FGT-BR").row(0, named=True)
    assert ito["start_time"] == dt.datetime(2024, 5, 14, 9, 10, tzinfo=UTC)


def test_session_open_at_the_end_of_a_run_closes_in_a_later_run(tmp_path, run) -> None:
    logs = tmp_path / "logs"
    shutil.copy(FX / "fgt-2024-05-14.log", logs / "fgt.log")
    cfg, _ = run()
    assert _sessions(cfg).filter(pl.col("start_time").dt.hour() == 14).height == 0
    shutil.copy(FX / "fgt-2024-05-15.log", logs / "fgt.log.new")
    (logs / "fgt.log.new").rename(logs / "fgt.log.2")
    cfg, res = run()
    assert res.new == 1
    suzuki = _sessions(cfg).filter(pl.col("end_time").dt.day() == 14).row(0, named=True)
    assert suzuki["start_time"] == dt.datetime(2024, 5, 14, 14, 50, tzinfo=UTC)


def test_unknown_time_zone_is_a_config_error(tmp_path, make_config, load_config) -> None:
    from workstyle.collector.errors import ConfigError

    src = {"name": "vpn", "kind": "fortigate_vpn", "paths": ["x"], "timezone": "Mars/Olympus"}
    with pytest.raises(ConfigError, match="timezone"):
        load_config(make_config([src]))


#: Tunnel-downs whose numbers and times come in every form the kind accepts, among
#: plain ones: each must read as the careful parse reads it, wherever it is in a file.
_DOWN = (
    '<189>date=2024-05-13 time=10:30:05 devname="FGT-HQ" devid="FG100FTK19000001" {time}'
    ' logid="0101039948" type="event" subtype="vpn" level="information" vd="root"'
    ' logdesc="SSL VPN tunnel down" action="tunnel-down" tunneltype="ssl-tunnel"'
    ' tunnelid={tid} remip=198.51.100.10 user="u{tid}" group="VPN-Users" reason="user logout"'
    " duration={duration} sentbyte={sent} rcvdbyte=204800"
)
_END = dt.datetime(2024, 5, 13, 1, 30, 5, tzinfo=UTC)
_FORMS = [
    # (time fields, duration, sentbyte, expected end, duration s, bytes_in)
    ('eventtime=1715563805 tz="+0900"', "5400", "1048576", _END, 5400, 1048576),
    (
        'eventtime=1715563805123 tz="+0900"',
        "5400",
        "1048576",
        _END.replace(microsecond=123000),
        5400,
        1048576,
    ),
    ('eventtime=1715563805123456 tz="+0900"', "60", "7", _END.replace(microsecond=123456), 60, 7),
    ('eventtime="1715563805" tz="+0900"', "5400", "1,048,576", _END, 5400, 1048576),
    ('eventtime=１７１５５６３８０５ tz="+0900"', "５４００", "１２", _END, 5400, 12),
    ('eventtime=soon tz="+0900"', "5400", "1048576", _END, 5400, 1048576),
    ('tz="+0000"', "5400", "1048576", _END + dt.timedelta(hours=9), 5400, 1048576),
    ("", "5400", "1048576", _END, 5400, 1048576),
    ('eventtime= tz="+0900"', '"5400"', "0", _END, 5400, 0),
]


def test_every_number_and_time_form_reads_as_the_careful_parse_does(tmp_path, run) -> None:
    plain = [
        _DOWN.format(time="eventtime=1715563805", tid=9000 + i, duration=60, sent=1)
        for i in range(50)
    ]
    odd = [
        _DOWN.format(time=t, tid=i + 1, duration=d, sent=s)
        for i, (t, d, s, *_) in enumerate(_FORMS)
    ]
    # The odd lines are spread among plain ones, so both kinds of row share a parse.
    lines = plain[:20] + odd[:4] + plain[20:40] + odd[4:] + plain[40:]
    (tmp_path / "logs" / "fgt.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg, res = run()
    assert res.ok, res.error
    assert _quarantine(cfg) == [] and res.new == len(lines)
    got = {int(r["session_id"].split("/")[2]): r for r in _sessions(cfg).iter_rows(named=True)}
    for i, (_, _, _, end, duration, sent) in enumerate(_FORMS):
        row = got[i + 1]
        assert (row["end_time"], row["duration_seconds"], row["bytes_in"]) == (
            end,
            duration,
            sent,
        ), _FORMS[i]
        assert row["start_time"] == end - dt.timedelta(seconds=duration)
    assert {got[9000 + i]["end_time"] for i in range(50)} == {_END}


def test_an_empty_duration_is_missing_and_the_tunnel_up_gives_the_start(tmp_path, run) -> None:
    """``duration=`` with no value is no duration, not a bad number: the session starts
    at its tunnel-up, as when the field is absent; an empty byte count is no count."""
    up = (
        _DOWN.format(time="eventtime=1715560205", tid=7, duration=0, sent=0)
        .replace("tunnel-down", "tunnel-up")
        .replace("tunnel down", "tunnel up")
        .split(" reason=")[0]
    )
    down = _DOWN.format(time="eventtime=1715563805", tid=7, duration="", sent="")
    (tmp_path / "logs" / "fgt.log").write_text(up + "\n" + down + "\n", encoding="utf-8")
    cfg, res = run()
    assert res.ok, res.error
    assert _quarantine(cfg) == []
    [row] = _sessions(cfg).iter_rows(named=True)
    assert row["start_time"] == _END - dt.timedelta(hours=1)
    assert (row["end_time"], row["duration_seconds"], row["bytes_in"]) == (_END, 3600, None)
