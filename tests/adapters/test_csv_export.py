"""The generic export adapter over real-shaped exports: Japanese headers, CP932, value maps,
composite keys, time formats and zones, fiscal-year labels, gzip, and every kind of bad row."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workstyle import schemas
from workstyle.collector.errors import ConfigError
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

JST = dt.timezone(dt.timedelta(hours=9))

MEETINGS = {
    "table": "meetings",
    "columns": {
        "start_time": "開始時刻",
        "end_time": "終了時刻",
        "participants": "参加者数",
        "host": "主催者",
        "topic": "件名",
    },
    "compose": {"meeting_id": ["会議ID", "開始時刻"]},
    "constants": {"platform": "teams"},
    "formats": {"start_time": "%m/%d/%Y %I:%M:%S %p", "end_time": "%m/%d/%Y %I:%M:%S %p"},
}
TELEWORK = {
    "table": "telework_days",
    "encoding": "cp932",
    "columns": {
        "person": "職員番号",
        "work_date": "勤務日",
        "location": "勤務形態",
        "portion": "勤務形態",
    },
    "values": {
        "location": {
            "在宅勤務": "home",
            "在宅勤務(午前)": "home",
            "出勤(午後)": "office",
            "サテライトオフィス勤務": "satellite",
        },
        "portion": {
            "在宅勤務": "full",
            "在宅勤務(午前)": "am",
            "出勤(午後)": "pm",
            "サテライトオフィス勤務": "full",
        },
    },
}
APPLICANTS = {
    "table": "telework_applicants",
    "columns": {"fiscal_year": "年度", "person": "職員番号", "left_on": "退職日"},
}
TERMINALS = {
    "table": "terminals",
    "columns": {"terminal_id": "端末番号", "snapshot_date": "棚卸日", "vc_capable": "Web会議対応"},
}
PURCHASES = {
    "table": "paper_purchases",
    "delimiter": ";",
    "columns": {
        "record_id": "伝票番号",
        "purchased_on": "購入日",
        "sheets": "枚数",
        "amount_yen": "金額",
    },
}


@pytest.fixture
def ingest(copy_fixture, make_config, load_config, pipeline_for):
    def run(fixture: str, mapping: dict[str, Any], **extra: Any):
        folder = copy_fixture("csv", fixture)
        source = {
            "name": "export",
            "kind": "csv",
            "path": str(folder / fixture),
            **mapping,
            **extra,
        }
        # Raw text is kept here to check it (by default only location and reason are).
        cfg = load_config(make_config([source], privacy={"quarantine_raw": True}))
        res = pipeline_for(cfg).incremental(cfg.sources)[0]
        store = Store(cfg.data_dir.resolve())
        rows = store.scan(schemas.get(mapping["table"])).collect()
        quarantine = store.scan(QUARANTINE).collect()
        return res, rows, quarantine, cfg

    return run


def _reasons(quarantine: pl.DataFrame) -> dict[int, str]:
    return {
        int(loc.rsplit(":", 1)[1]): reason
        for loc, reason in quarantine.select("location", "reason").iter_rows()
    }


def test_meeting_export_with_us_times_and_composite_keys(ingest) -> None:
    res, rows, quarantine, _ = ingest("meetings-usage.csv", MEETINGS)
    assert res.ok, res.error
    assert (res.rows_read, res.new, res.duplicates, res.quarantined) == (6, 3, 1, 2)
    got = {
        (r["meeting_id"], r["start_time"], r["participants"]) for r in rows.iter_rows(named=True)
    }
    assert got == {
        ("8801|04/01/2022 09:00:00 AM", dt.datetime(2022, 4, 1, 0, 0, tzinfo=dt.UTC), 5),
        ("8801|04/08/2022 09:00:00 AM", dt.datetime(2022, 4, 8, 0, 0, tzinfo=dt.UTC), 6),
        # 23:30 on 31 March in Tokyo is 14:30 UTC the same day.
        ("9902|03/31/2022 11:30:00 PM", dt.datetime(2022, 3, 31, 14, 30, tzinfo=dt.UTC), 2),
    }
    assert set(rows.get_column("platform")) == {"teams"}
    assert rows.get_column("topic").null_count() == 3  # topics are not kept by default
    assert _reasons(quarantine) == {
        6: "participants (header 参加者数): 三人 is not a whole number",
        7: "expected 6 fields, found 2",
    }


def test_host_pseudonym_ignores_case_and_mail_domain(ingest) -> None:
    from tests.conftest import TEST_KEY
    from workstyle.collector.pseudonyms import Pseudonymiser

    _, rows, _, _ = ingest("meetings-usage.csv", MEETINGS)
    pseudo = Pseudonymiser(TEST_KEY.encode())
    hosts = set(rows.get_column("host"))
    assert hosts == {pseudo.one("tyamada"), pseudo.one("PREF\\HSATO")}


def test_cp932_telework_records_with_value_maps_and_half_days(ingest) -> None:
    res, rows, quarantine, _ = ingest("telework-records.csv", TELEWORK)
    assert res.ok, res.error
    got = sorted(
        (r["work_date"].isoformat(), r["location"], r["portion"])
        for r in rows.iter_rows(named=True)
    )
    assert got == [
        ("2023-04-03", "home", "full"),
        ("2023-04-04", "home", "am"),
        ("2023-04-04", "office", "pm"),
        ("2023-04-05", "satellite", "full"),
    ]
    reasons = _reasons(quarantine)
    assert reasons[6] == "work_date (header 勤務日): 2023/04/31 is not a date"
    assert reasons[7].startswith("location 休暇 is not one of home, satellite")
    assert "portion 休暇 is not one of" in reasons[7]
    assert (
        quarantine.filter(pl.col("location").str.ends_with(":7")).item(0, "raw").startswith("00789")
    )


def test_fiscal_years_in_every_written_form(ingest) -> None:
    res, rows, quarantine, _ = ingest("telework-applicants.csv", APPLICANTS)
    assert res.ok
    assert sorted(rows.get_column("fiscal_year").to_list()) == [2019, 2023, 2023, 2023]
    left = rows.filter(pl.col("left_on").is_not_null()).get_column("left_on").to_list()
    assert left == [dt.date(2023, 9, 30)]
    assert set(rows.get_column("month")) == {"2019-04", "2023-04"}
    assert _reasons(quarantine) == {
        6: "fiscal_year (header 年度): R二 is not a fiscal year (R5, 2023 or 令和5年度)"
    }


def test_marks_and_words_for_yes_and_no(ingest) -> None:
    _, rows, quarantine, _ = ingest("terminals.csv", TERMINALS)
    got = dict(rows.select("terminal_id", "vc_capable").iter_rows())
    assert got == {"PC-0001": True, "PC-0002": False, "PC-0003": True}
    assert _reasons(quarantine)[5].startswith("vc_capable (header Web会議対応): 要確認 is not")


def test_gzip_semicolons_thousands_separators_and_negative_counts(ingest) -> None:
    res, rows, quarantine, _ = ingest("paper-purchases.csv.gz", PURCHASES)
    assert rows.select("record_id", "sheets").rows() == [("K-1", 12500)]
    assert list(_reasons(quarantine).values()) == ["negative sheets"]
    assert res.quarantined == 1


def test_missing_header_names_the_file_and_its_headers(ingest) -> None:
    mapping = {**TERMINALS, "columns": {**TERMINALS["columns"], "kind": "種別"}}
    res, rows, _, _ = ingest("terminals.csv", mapping)
    assert res.outcome == "failed"
    assert "terminals.csv: header '種別' (mapped to kind) not found" in res.error
    assert "端末番号, 棚卸日, Web会議対応, カメラ" in res.error
    assert rows.height == 0


def test_unchanged_files_are_skipped_and_regenerated_exports_upserted(
    tmp_path, copy_fixture, make_config, load_config, pipeline_for
) -> None:
    folder = copy_fixture("csv", "terminals.csv")
    cfg = load_config(
        make_config([{"name": "inv", "kind": "csv", "path": str(folder / "*.csv"), **TERMINALS}])
    )
    assert pipeline_for(cfg).incremental(cfg.sources)[0].new == 3
    shutil.copy2(folder / "terminals.csv", folder / "terminals-copy.csv")
    again = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert again.rows_read == 0  # a copy is the same content: not read again
    path = folder / "terminals.csv"
    path.write_text(
        path.read_text(encoding="utf-8").replace("PC-0002,2023-12-01,×", "PC-0002,2023-12-01,○"),
        encoding="utf-8",
    )
    changed = pipeline_for(cfg).incremental(cfg.sources)[0]
    assert (changed.new, changed.updated, changed.unchanged) == (0, 1, 2)
    rows = Store(cfg.data_dir.resolve()).scan(schemas.get("terminals")).collect()
    assert rows.filter(pl.col("terminal_id") == "PC-0002").item(0, "vc_capable") is True


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {**TERMINALS, "columns": {"terminal_id": "端末番号", "vc_capable": "x"}},
            "key 'columns': terminals needs column 'snapshot_date'",
        ),
        (
            {**TERMINALS, "columns": {**TERMINALS["columns"], "camera": "カメラ"}},
            "key 'columns.camera': 'camera' is not a column of terminals",
        ),
        (
            {**TERMINALS, "compose": {"terminal_id": "端末番号"}},
            "key 'compose.terminal_id': expected a list of header names",
        ),
        ({**TERMINALS, "timezone": "Asia/Sendai"}, "key 'timezone': unknown time zone"),
        ({**TERMINALS, "table": "printers"}, "key 'table': expected one of"),
        ({**TERMINALS, "encoding": "shift_jis"}, "key 'encoding': expected one of utf-8, cp932"),
    ],
)
def test_mapping_mistakes_are_config_errors(make_config, load_config, mapping, message) -> None:
    path = make_config([{"name": "inv", "kind": "csv", "path": "x/*.csv", **mapping}])
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_bundled_per_table_examples_validate(
    tmp_path: Path, key_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every snippet in config/examples/ is a valid [[sources]] block."""
    from workstyle.collector import config

    monkeypatch.setenv("EXPORTS", "/srv/collector/exports")
    examples = sorted((config.bundled_config_dir() / "examples").glob("*.toml"))
    tables = set()
    for example in examples:
        text = (
            f'[collector]\ndata_dir = "{tmp_path}"\n[privacy]\nkey = "{key_env}"\n'
            + example.read_text(encoding="utf-8")
        )
        path = tmp_path / example.name
        path.write_text(text, encoding="utf-8")
        cfg = config.load(path)
        tables |= {s.options.get("table") for s in cfg.sources}
    canonical = {
        "meetings",
        "print_jobs",
        "paper_purchases",
        "paperless_meetings",
        "remote_sessions",
        "telework_days",
        "telework_applicants",
        "terminals",
        "staff_directory",
    }
    assert tables == canonical


# -- row filters, units, derived values, ${VAR} paths (issue 15) ------------------------

APPLICANT_LIST = {
    "table": "telework_applicants",
    "encoding": "cp932",
    "skip_rows": 1,  # the list's title line
    "columns": {
        "person": "職員番号",
        "department": "所属",
        "registered_on": "登録日",
        "left_on": "退職日",
    },
    "constants": {"fiscal_year": "R5"},
    "where": {"在宅勤務希望": "希望する"},
}


def _telework_kpi(cfg: Any) -> tuple[Any, str]:
    from workstyle.aggregates import engine

    ctx = engine.context_from_config(cfg, as_of=dt.date(2024, 3, 31))
    result = engine.compute(ctx, only=("telework_ratio",))
    row = result.yearly().filter(pl.col("fiscal_year") == 2023).row(0, named=True)
    return row, engine.render_explain(result, "telework_ratio", 2023)


def test_filtered_applicant_list_feeds_the_telework_ratio(
    copy_fixture, make_config, load_config, pipeline_for
) -> None:
    """Only 希望する rows are applicants: 4 of the 6 worked from home (66.7 %), not 6 of 10."""
    folder = copy_fixture("csv", "telework-applicant-list-R5.csv", "telework-days-R5.csv")
    cfg = load_config(
        make_config(
            [
                {
                    "name": "applicants",
                    "kind": "csv",
                    "path": str(folder / "telework-applicant-list-R5.csv"),
                    **APPLICANT_LIST,
                },
                {
                    "name": "attendance",
                    "kind": "csv",
                    "path": str(folder / "telework-days-R5.csv"),
                    **TELEWORK,
                },
            ]
        )
    )
    res, days_res = pipeline_for(cfg).incremental(cfg.sources)
    assert res.ok and days_res.ok, (res.error, days_res.error)
    # Ten staff on the list; four do not wish to telework (three 希望しない, one blank).
    assert (res.rows_read, res.new, res.quarantined, res.filtered) == (10, 6, 0, 4)
    assert res.filtered_by == {"where 在宅勤務希望 = 希望する": 4}
    row, explain = _telework_kpi(cfg)
    assert (row["numerator"], row["denominator"]) == (4.0, 6.0)
    assert row["value"] == pytest.approx(400 / 6)
    assert "filtered at ingest: applicants: where 在宅勤務希望 = 希望する" in explain
    assert explain.split("where 在宅勤務希望 = 希望する", 1)[1].split("\n", 1)[0].strip() == "4"


def test_filtered_rows_are_in_the_run_line_and_status(
    copy_fixture, make_config, cli, tmp_path
) -> None:
    folder = copy_fixture("csv", "telework-applicant-list-R5.csv")
    config = make_config(
        [{"name": "applicants", "kind": "csv", "path": str(folder / "*.csv"), **APPLICANT_LIST}]
    )
    out = cli("--config", str(config), "ingest").stdout
    assert "filtered 4 (where 在宅勤務希望 = 希望する 4)" in out
    status = cli("--config", str(config), "status").stdout
    assert "filtered         4 (where 在宅勤務希望 = 希望する 4)" in status
    from workstyle.schemas.runs_quarantine import RUNS

    ledger = Store((tmp_path / "data").resolve()).scan(RUNS).collect()
    assert ledger.get_column("rows_filtered").to_list() == [4]
    explain = cli(
        "--config", str(config), "kpi", "--explain", "telework_ratio", "--fy", "R5"
    ).stdout
    assert "filtered at ingest: applicants: where 在宅勤務希望 = 希望する" in explain


def test_minutes_duration_column_is_converted_not_read_as_seconds(ingest) -> None:
    mapping = {
        "table": "meetings",
        "columns": {
            "start_time": "Start Time",
            "duration_seconds": "Duration (Minutes)",
            "participants": "Participants",
            "host": "User Email",
        },
        "compose": {"meeting_id": ["Meeting ID", "Start Time"]},
        "constants": {"platform": "zoom"},
        "formats": {"start_time": "%m/%d/%Y %I:%M:%S %p"},
        "units": {"duration_seconds": "minutes"},
    }
    res, rows, quarantine, cfg = ingest("zoom-usage-minutes.csv", mapping)
    assert res.ok, res.error
    got = dict(rows.select("meeting_id", "duration_seconds").iter_rows())
    assert got == {
        "812 3456 7890|04/03/2023 09:00:00 AM": 45 * 60,
        "812 3456 7890|04/10/2023 09:00:00 AM": 60,
        "845 1111 2222|04/04/2023 01:30:00 PM": 90 * 60,
        "845 1111 3333|04/05/2023 10:00:00 AM": 1830,
        "845 1111 5555|04/07/2023 10:00:00 AM": 20 * 60,  # '20分' states the same unit
    }
    # ended_at is derived from the start and the duration.
    ends = dict(rows.select("meeting_id", "end_time").iter_rows())
    assert ends["845 1111 2222|04/04/2023 01:30:00 PM"] == dt.datetime(
        2023, 4, 4, 6, 0, tzinfo=dt.UTC
    )
    assert _reasons(quarantine) == {
        6: "duration_seconds (header Duration (Minutes)): 1:05:00 is not a number of minutes"
    }
    # All five took place (at least 1 minute, 2 participants); read as seconds, four
    # would fall under the 1-minute rule.
    from workstyle.aggregates import engine

    ctx = engine.context_from_config(cfg, as_of=dt.date(2023, 4, 30))
    monthly = engine.compute(ctx, only=("web_meetings_per_month",)).monthly()
    assert monthly.filter(pl.col("month") == "2023-04").item(0, "value") == 5


def test_hms_duration_column(ingest) -> None:
    mapping = {
        "table": "meetings",
        "encoding": "cp932",
        "columns": {
            "meeting_id": "会議ID",
            "start_time": "開始日時",
            "duration_seconds": "所要時間",
            "participants": "参加者数",
        },
        "constants": {"platform": "webex"},
        "units": {"duration_seconds": "h:mm:ss"},
    }
    res, rows, quarantine, _ = ingest("meetings-hms.csv", mapping)
    assert res.ok, res.error
    got = dict(rows.select("meeting_id", "duration_seconds").iter_rows())
    assert got == {"W-001": 2700, "W-002": 3723, "W-003": 43200, "W-004": 40}
    assert _reasons(quarantine) == {
        6: "duration_seconds (header 所要時間): 45 is not H:MM:SS",
        7: "duration_seconds (header 所要時間): 1:75:00 is not H:MM:SS",
    }


def test_duration_is_derived_from_start_and_end(ingest) -> None:
    _, rows, _, _ = ingest("meetings-usage.csv", MEETINGS)
    got = dict(rows.select("meeting_id", "duration_seconds").iter_rows())
    assert got["8801|04/01/2022 09:00:00 AM"] == 3600
    assert got["9902|03/31/2022 11:30:00 PM"] == 40 * 60


def test_print_export_without_sheets_derives_them_by_the_canonical_rule(ingest) -> None:
    mapping = {
        "table": "print_jobs",
        "encoding": "cp932",
        "columns": {
            "job_id": "ジョブID",
            "printed_at": "日時",
            "person": "ユーザー名",
            "printer": "機器名",
            "pages": "ページ数",
            "copies": "部数",
            "duplex": "両面",
        },
        "values": {"duplex": {"両面": "true", "片面": "false"}},
    }
    res, rows, quarantine, _ = ingest("mfp-job-history.csv", mapping)
    assert res.ok, res.error
    assert quarantine.height == 0
    got = {r[0]: (r[1], r[2]) for r in rows.select("job_id", "sheets", "sheets_upper_bound").rows()}
    assert got == {
        "J-0001": (6, False),  # 10 pages over 2 copies, duplex: 2 x ceil(5 / 2)
        "J-0002": (7, False),  # simplex: total pages
        "J-0003": (2, False),  # ceil(3 / 2)
        "J-0004": (4, True),  # duplex unknown: pages, an upper bound
        "J-0005": (6, False),  # 9 pages over 3 copies, duplex: 3 x ceil(3 / 2)
        "J-0006": (5, False),  # simplex, copies unknown: pages is the total anyway
    }


def test_readme_states_the_true_composite_key_separator() -> None:
    from workstyle.adapters.csv_export import COMPOSE_SEPARATOR

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    compose = next(line for line in readme.splitlines() if line.startswith("| `compose` |"))
    shown = COMPOSE_SEPARATOR.replace("|", "\\|")  # a pipe in a Markdown table cell
    assert f"joined with '{shown}'" in compose


def test_path_option_expands_environment_variables(
    ingest, monkeypatch: pytest.MonkeyPatch, copy_fixture
) -> None:
    folder = copy_fixture("csv", "terminals.csv", into="site-a")
    monkeypatch.setenv("SITE_DATA", str(folder))
    res, rows, _, _ = ingest("terminals.csv", TERMINALS, path="${SITE_DATA}/terminals.csv")
    assert res.ok, res.error
    assert res.rows_read == 4 and rows.height == 3


def test_unset_variable_in_a_path_is_a_config_error(
    make_config, load_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SITE_DATA", raising=False)
    path = make_config(
        [{"name": "inv", "kind": "csv", "path": "${SITE_DATA}/terminals.csv", **TERMINALS}]
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "key 'path'" in message and "SITE_DATA" in message and "not set" in message
    assert "\n" not in message


def test_every_bundled_example_reads_its_sample_export(
    tmp_path: Path, key_env: str, monkeypatch: pytest.MonkeyPatch, pipeline_for
) -> None:
    """The worked examples: each reads its sample under ${EXPORTS} with nothing quarantined."""
    from workstyle.collector import config

    examples_dir = config.bundled_config_dir() / "examples"
    monkeypatch.setenv("EXPORTS", str(examples_dir / "exports"))
    text = f'[collector]\ndata_dir = "{tmp_path / "data"}"\n[privacy]\nkey = "{key_env}"\n'
    text += "\n".join(p.read_text(encoding="utf-8") for p in sorted(examples_dir.glob("*.toml")))
    path = tmp_path / "examples.toml"
    path.write_text(text, encoding="utf-8")
    cfg = config.load(path)
    results = {r.source: r for r in pipeline_for(cfg).incremental(cfg.sources)}
    for name, r in results.items():
        assert r.ok, (name, r.error)
        assert r.new > 0 and r.quarantined == 0, (name, r)
    assert results["telework-applicants"].filtered_by == {"where 在宅勤務希望 = 希望する": 2}
    assert results["attendance"].filtered_by == {"exclude 勤務形態 is empty": 1}
    assert results["terminal-inventory"].filtered_by == {"exclude 状態 in {廃棄済, 返却済}": 1}
    store = Store(cfg.data_dir.resolve())
    zoom = store.scan(schemas.get("meetings"), "zoom-usage-report").collect()
    assert sorted(zoom.get_column("duration_seconds")) == [45 * 60, 50 * 60, 90 * 60]
    vpn = store.scan(schemas.get("remote_sessions"), "vpn-report").collect().sort("session_id")
    assert vpn.get_column("duration_seconds").to_list() == [3 * 3600 + 12 * 60 + 40, 48 * 60 + 5]
    assert vpn.get_column("bytes_in").to_list() == [120_500_000, 35_000_000]
    assert vpn.get_column("end_time").to_list()[1] == dt.datetime(
        2023, 4, 3, 10, 50, 16, tzinfo=dt.UTC
    )
    jobs = store.scan(schemas.get("print_jobs"), "mfp-job-log").collect().sort("job_id")
    assert jobs.select("sheets", "sheets_upper_bound").rows() == [(6, False), (7, False), (4, True)]


PAPERLESS = {
    "table": "paperless_meetings",
    "columns": {
        "meeting_id": "会議ID",
        "start_time": "開催日時",
        "end_time": "終了日時",
        "participants": "参加者数",
        "paper_also_distributed": "紙資料配布",
    },
    "where": {
        "開催日時": {"from": "2023-04-01", "to": "2024-03-31"},
        "状態": ["開催済"],
    },
    "exclude": {"中止理由": {"empty": False}},
}


def test_every_filter_form_counts_its_rows_under_its_rule(ingest) -> None:
    res, rows, quarantine, _ = ingest("paperless-meetings.csv", PAPERLESS)
    assert res.ok, res.error
    assert sorted(rows.get_column("meeting_id")) == ["PM-02", "PM-05", "PM-09"]
    assert res.filtered_by == {
        "where 開催日時 from 2023-04-01 to 2024-03-31": 2,  # PM-01 (R4), PM-07 (R6)
        "where 状態 in {開催済}": 2,  # PM-03 テスト, PM-08 練習
        "exclude 中止理由 is not empty": 1,  # PM-04
    }
    # A date the range cannot judge is quarantined, not filtered and not kept.
    assert _reasons(quarantine) == {
        7: "where 開催日時 from 2023-04-01 to 2024-03-31: 2023/13/01 14:00 is not a date"
    }
    assert res.rows_read == 9 == rows.height + res.filtered + res.quarantined


def test_filtered_rows_are_counted_by_month_and_a_reread_replaces_them(
    copy_fixture, make_config, load_config, pipeline_for
) -> None:
    from workstyle.schemas.runs_quarantine import FILTERED

    folder = copy_fixture("csv", "paperless-meetings.csv")
    source = {"name": "pl", "kind": "csv", "path": str(folder / "*.csv"), **PAPERLESS}
    cfg = load_config(make_config([source]))
    pipeline_for(cfg).incremental(cfg.sources)
    end = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    pipeline_for(cfg).backfill(cfg.sources[0], dt.datetime(2020, 1, 1, tzinfo=dt.UTC), end)
    counts = Store(cfg.data_dir.resolve()).scan(FILTERED).collect()
    got = sorted(counts.select("rule", "period", "rows").rows())
    assert got == [
        ("exclude 中止理由 is not empty", "2023-04", 1),
        ("where 状態 in {開催済}", "2023-04", 1),
        ("where 状態 in {開催済}", "2023-05", 1),
        ("where 開催日時 from 2023-04-01 to 2024-03-31", "2023-03", 1),
        ("where 開催日時 from 2023-04-01 to 2024-03-31", "2024-04", 1),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"units": {"participants": "minutes"}}, "key 'units.participants': column"),
        ({"units": {"duration_seconds": "MB"}}, "duration_seconds holds a duration"),
        ({"units": {"duration_seconds": "fortnights"}}, "unknown unit 'fortnights'"),
        ({"where": {"状態": {"after": "x"}}}, "key 'where.状態': unknown condition 'after'"),
        ({"where": {"日": {"from": "April"}}}, "key 'where.日.from': expected a date"),
        ({"exclude": {"状態": []}}, "key 'exclude.状態': expected a non-empty list"),
        ({"exclude": {"状態": {"empty": "yes"}}}, "expected { empty = true }"),
    ],
)
def test_filter_and_unit_mistakes_are_config_errors(
    make_config, load_config, extra, message
) -> None:
    mapping = {**MEETINGS, **extra}
    path = make_config([{"name": "m", "kind": "csv", "path": "x/*.csv", **mapping}])
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_filter_on_a_missing_header_names_it(ingest) -> None:
    res, _, _, _ = ingest("terminals.csv", {**TERMINALS, "where": {"状態": "使用中"}})
    assert res.outcome == "failed"
    assert "header '状態' (mapped to where.状態) not found" in res.error


def test_an_unset_variable_in_a_list_of_paths_names_it(
    make_config, load_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VPN_LOGS", "/var/log/remote")
    monkeypatch.delenv("MORE_LOGS", raising=False)
    ok = make_config([{"name": "fg", "kind": "fortigate_vpn", "paths": ["${VPN_LOGS}/*.log"]}])
    assert load_config(ok).sources[0].options["paths"] == ["/var/log/remote/*.log"]
    bad = make_config(
        [{"name": "fg", "kind": "fortigate_vpn", "paths": ["${VPN_LOGS}/a", "${MORE_LOGS}/b"]}]
    )
    with pytest.raises(ConfigError, match=r"key 'paths': environment variable MORE_LOGS"):
        load_config(bad)


@pytest.mark.parametrize(
    ("column", "unit", "written", "value"),
    [
        ("duration_seconds", "seconds", "90", 90),
        ("duration_seconds", "seconds", "90秒", 90),
        ("duration_seconds", "minutes", "1,200", 72_000),
        ("duration_seconds", "minutes", "２０分", 1200),  # full-width digits
        ("duration_seconds", "minutes", "45 s", None),  # another unit's suffix
        ("duration_seconds", "hours", "1.5", 5400),
        ("duration_seconds", "hours", "1.5時間", 5400),
        ("duration_seconds", "h:mm:ss", "100:00:00", 360_000),
        ("duration_seconds", "h:mm:ss", "1:02", None),
        ("duration_seconds", "h:mm", "1:02", 3720),
        ("duration_seconds", "h:mm", "-1:02", None),
        ("hours", "h:mm", "7:45", 7.75),
        ("hours", "minutes", "90", 1.5),
        ("bytes_in", "MB", "12 MB", 12_000_000),
        ("bytes_in", "MB", "12", 12_000_000),
        ("bytes_in", "MB", "12 KB", None),
        ("bytes_in", "MiB", "1.5", 1_572_864),
        ("bytes_in", "kB", "3kb", 3000),
        ("bytes_in", "bytes", "1,024", 1024),
        ("ratio", "percent", "62.5%", 0.625),
        ("ratio", "percent", "62.5", 0.625),
        ("ratio", "percent", "62.5 pt", None),
    ],
)
def test_declared_units_convert_or_refuse(column, unit, written, value) -> None:
    from workstyle.adapters import units

    expr, _ = units.convert(pl.col("v"), column, unit)
    got = pl.DataFrame({"v": [written]}).select(expr).item()
    assert got == (pytest.approx(value) if isinstance(value, float) else value)


def test_sheets_rule_and_upper_bound() -> None:
    from workstyle.schemas import derivations

    jobs = pl.DataFrame(
        {
            "pages": [10, 7, 3, 4, 9, 5, 7],
            "copies": [2, 1, 1, 2, 3, None, 2],
            "duplex": [True, False, True, None, True, True, True],
        },
        schema={"pages": pl.Int64, "copies": pl.Int64, "duplex": pl.Boolean},
    )
    sheets, upper = derivations.sheets(pl.col("pages"), pl.col("copies"), pl.col("duplex"))
    got = jobs.select(sheets.alias("s"), upper.alias("u")).rows()
    # 7 pages over 2 copies does not divide: 4 pages per copy (rounded up), 2 sheets each.
    assert got == [(6, False), (7, False), (2, False), (4, True), (6, False), (5, True), (4, False)]


def test_core_path_options_expand_variables_too(
    tmp_path: Path, make_config, load_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITE", "site-a")
    cfg = load_config(make_config([], collector={"data_dir": str(tmp_path / "${SITE}" / "data")}))
    assert cfg.data_dir == tmp_path / "site-a" / "data"


def _paperless_export(rows: int) -> str:
    """A paperless-meeting export with every row form, repeated: plain and quoted rows,
    a reason over two lines, rows filtered by each rule, an unjudgeable date, a row with
    a field too many, a count that is not a number, and blank lines."""
    out = ["会議ID,開催日時,終了日時,参加者数,紙資料配布,状態,中止理由"]
    for i in range(rows):
        m, k = f"PM-{i:05d}", i % 7
        out.append(
            [
                f"{m},2023/05/01 10:00,2023/05/01 11:00,12,無,開催済,",
                f'"{m}","2023/06/01 10:00","2023/06/01 11:00","8","有","開催済",""',
                f'{m},2023/07/01 10:00,2023/07/01 11:00,5,無,中止,"議題の""再検討""\r\nのため"',
                f"{m},2022/07/01 10:00,2022/07/01 11:00,5,無,開催済,",
                f"{m},2023/13/01 10:00,2023/07/01 11:00,5,無,開催済,",
                f"{m},2023/08/01 10:00,2023/08/01 11:00,5,無,開催済,,余分",
                f'"{m}","2023/09/01 10:00","2023/09/01 11:00","x","無","開催済",""',
            ][k]
        )
        if i % 50 == 49:
            out.append("")
    return "\r\n".join(out) + "\r\n"


def _ingest_export(tmp_path: Path, name: str, text: str, make_config, load_config, pipeline_for):
    from workstyle.schemas.runs_quarantine import FILTERED

    folder = tmp_path / name
    folder.mkdir()
    (folder / "paperless.csv").write_text(text, encoding="utf-8", newline="")
    source = {"name": "pl", "kind": "csv", "path": str(folder / "*.csv"), **PAPERLESS}
    cfg = load_config(
        make_config(
            [source], collector={"data_dir": str(folder / "data")}, privacy={"quarantine_raw": True}
        )
    )
    res = pipeline_for(cfg).incremental(cfg.sources)[0]
    store = Store(cfg.data_dir.resolve())
    rows = store.scan(schemas.get("paperless_meetings")).collect().drop("ingested_at")
    q = store.scan(QUARANTINE).collect()
    filtered = store.scan(FILTERED).collect()
    return (
        res.rows_read,
        res.filtered_by,
        sorted(rows.rows()),
        sorted(
            (Path(loc).name, reason, raw)
            for loc, reason, raw in q.select("location", "reason", "raw").iter_rows()
        ),
        sorted(filtered.select("rule", "period", "rows").rows()),
    )


@pytest.mark.parametrize("slice_chars", [80, 4096])
def test_a_big_export_read_a_slice_at_a_time_lands_as_if_read_whole(
    tmp_path, monkeypatch, make_config, load_config, pipeline_for, slice_chars
) -> None:
    import workstyle.adapters.csv_export as csv_export

    text = _paperless_export(700)
    whole = _ingest_export(tmp_path, "whole", text, make_config, load_config, pipeline_for)
    read, by_rule, rows, quarantined, filtered = whole
    assert read == 700 and len(rows) == 200 and len(quarantined) == 300
    assert sum(by_rule.values()) == 200 and sum(n for *_, n in filtered) == 200
    monkeypatch.setattr(csv_export, "SLICE_CHARS", slice_chars)
    sliced = _ingest_export(tmp_path, "sliced", text, make_config, load_config, pipeline_for)
    assert sliced == whole


def test_no_parse_step_holds_more_than_a_slice_of_a_big_export(
    tmp_path, monkeypatch, make_config, load_config, pipeline_for
) -> None:
    import workstyle.adapters.csv_export as csv_export

    seen: list[int] = []
    real = csv_export.read_csv_lines

    def spy(text: str, *args: Any, **kwargs: Any):
        seen.append(len(text))
        return real(text, *args, **kwargs)

    monkeypatch.setattr(csv_export, "read_csv_lines", spy)
    monkeypatch.setattr(csv_export, "SLICE_CHARS", 2000, raising=False)
    text = _paperless_export(2000)
    _ingest_export(tmp_path, "big", text, make_config, load_config, pipeline_for)
    # A slice ends at the first record end past SLICE_CHARS, and repeats the header.
    longest = max(len(line) for line in text.split("\r\n"))
    assert len(text) > 20 * csv_export.SLICE_CHARS
    assert max(seen) <= csv_export.SLICE_CHARS + 3 * longest
