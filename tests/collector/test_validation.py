"""`validate` runs the checks `run` would: every problem, one line each, exit 2, never a trace.

Each case here was found by fuzzing configs as an operator would write them; the
property test at the end throws arbitrary TOML values at every declared option.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TEST_KEY, toml_value, write_config

PRINT = {"name": "print", "kind": "papercut_print_logger", "path": "logs"}
CSV = {
    "name": "meetings",
    "kind": "csv",
    "table": "meetings",
    "path": "m.csv",
    "columns": {"meeting_id": "id", "start_time": "start"},
    "constants": {"platform": "export"},
}


def _config(tmp_path: Path, key_env: str, sources: list[dict[str, Any]], **sections: Any) -> Path:
    base: dict[str, dict[str, Any]] = {
        "collector": {"data_dir": str(tmp_path / "data")},
        "privacy": {"key": key_env},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return write_config(tmp_path / "collector.toml", base, sources)


def _problems(result: Any, path: Path) -> list[str]:
    """The error lines of a failed command: each one line naming the config file."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines, result.output
    for line in lines:
        assert line.startswith(f"error: {path}"), line
    return lines


# -- inputs that produced a traceback --------------------------------------------------
def test_a_binary_config_file_is_one_line(tmp_path, cli) -> None:
    path = tmp_path / "collector.toml"
    path.write_bytes(b"\xff\xfe[collector]\x00\x81\x82 = 1\n")
    lines = _problems(cli("--config", str(path), "validate"), path)
    assert len(lines) == 1
    assert "UTF-8" in lines[0]


def test_a_binary_key_file_is_one_line(tmp_path, cli) -> None:
    key = tmp_path / "pseudonym.key"
    key.write_bytes(b"\xff\xfe\x00\x81" * 16)
    path = _config(tmp_path, f"file:{key}", [PRINT])
    for command in ("validate", "ingest"):
        lines = _problems(cli("--config", str(path), command), path)
        assert len(lines) == 1
        assert str(key) in lines[0] and "[privacy] key" in lines[0]


def test_data_dir_pointing_at_a_file_is_one_line(tmp_path, cli, key_env) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    path = _config(tmp_path, key_env, [PRINT], collector={"data_dir": str(afile)})
    for command in ("validate", "run"):
        lines = _problems(cli("--config", str(path), command), path)
        assert len(lines) == 1
        assert "data_dir" in lines[0] and "not a folder" in lines[0]


# -- values validate accepted and run then failed on -------------------------------------
@pytest.mark.parametrize(
    ("source", "key"),
    [
        ({**PRINT, "timezone": "Mars/Olympus"}, "timezone"),
        (
            {"name": "ng", "kind": "papercut_ng_print_log", "paths": ["x/*.log"],
             "timezone": "Mars/Olympus"},
            "timezone",
        ),
        ({**CSV, "values": {"platform": 3}}, "values.platform"),
        ({**CSV, "formats": {"start_time": 5}}, "formats.start_time"),
        ({**CSV, "skip_rows": -3}, "skip_rows"),
        ({**CSV, "skip_rows": 99999999999999999999}, "skip_rows"),
    ],
)  # fmt: skip
def test_validate_rejects_what_run_would_fail_on(tmp_path, cli, key_env, source, key) -> None:
    path = _config(tmp_path, key_env, [source])
    t0 = time.monotonic()
    lines = _problems(cli("--config", str(path), "validate"), path)
    assert time.monotonic() - t0 < 1.0
    assert any(f"key '{key}'" in ln for ln in lines), lines


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_lock_wait_must_be_a_finite_non_negative_number(tmp_path, cli, key_env, value) -> None:
    path = _config(tmp_path, key_env, [PRINT], collector={"lock_wait": value})
    lines = _problems(cli("--config", str(path), "validate"), path)
    assert any("[collector] key 'lock_wait'" in ln for ln in lines), lines


def test_validate_fails_when_a_sources_secret_variable_is_unset(
    tmp_path, cli, key_env, monkeypatch
) -> None:
    monkeypatch.delenv("COLLECTOR_UNSET_ZOOM_SECRET", raising=False)
    zoom = {
        "name": "zoom",
        "kind": "zoom",
        "account_id": "a",
        "client_id": "c",
        "client_secret": "env:COLLECTOR_UNSET_ZOOM_SECRET",
    }
    path = _config(tmp_path, key_env, [zoom])
    lines = _problems(cli("--config", str(path), "validate"), path)
    assert any(
        "(zoom) key 'client_secret'" in ln and "COLLECTOR_UNSET_ZOOM_SECRET" in ln for ln in lines
    ), lines


def test_validate_fails_when_the_key_variable_is_unset(tmp_path, cli, monkeypatch) -> None:
    monkeypatch.delenv("COLLECTOR_UNSET_KEY", raising=False)
    path = _config(tmp_path, "env:COLLECTOR_UNSET_KEY", [PRINT])
    lines = _problems(cli("--config", str(path), "validate"), path)
    assert any("[privacy] key" in ln and "COLLECTOR_UNSET_KEY" in ln for ln in lines), lines


def test_a_short_key_fails_validate_like_run(tmp_path, cli, monkeypatch) -> None:
    monkeypatch.setenv("COLLECTOR_SHORT_KEY", "too-short")
    path = _config(tmp_path, "env:COLLECTOR_SHORT_KEY", [PRINT])
    for command in ("validate", "run"):
        lines = _problems(cli("--config", str(path), command), path)
        assert len(lines) == 1
        assert "[privacy] key" in lines[0] and "at least 16 bytes" in lines[0]
        assert "too-short" not in lines[0]


def test_every_problem_is_reported_one_line_each(tmp_path, cli, monkeypatch) -> None:
    monkeypatch.delenv("COLLECTOR_UNSET_KEY", raising=False)
    path = _config(
        tmp_path,
        "env:COLLECTOR_UNSET_KEY",
        [
            {**PRINT, "encodng": "cp932", "timezone": "Mars/Olympus"},
            {**CSV, "skip_rows": -1, "values": {"platform": 3}},
        ],
        collector={"lock_wait": math.nan, "lookback": "a week"},
    )
    lines = _problems(cli("--config", str(path), "validate"), path)
    for expected in (
        "[collector] key 'lock_wait'",
        "[collector] key 'lookback'",
        "[privacy] key",
        "(print) key 'encodng'",
        "(print) key 'timezone'",
        "(meetings) key 'skip_rows'",
        "(meetings) key 'values.platform'",
    ):
        assert sum(expected in ln for ln in lines) == 1, (expected, lines)


def test_the_minimum_key_length_and_how_to_make_one_are_documented() -> None:
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "at least 16 bytes" in readme
    assert "openssl rand -hex 32" in readme


# -- the property: any value for any declared option ------------------------------------
#: A valid source of every kind: the property test changes one option at a time.
VALID_SOURCES: dict[str, dict[str, Any]] = {
    "papercut_print_logger": PRINT,
    "csv": CSV,
    "zoom": {"account_id": "a", "client_id": "c", "client_secret": "env:FUZZ_SECRET"},
    "teams": {"tenant_id": "t", "client_id": "c", "client_secret": "env:FUZZ_SECRET"},
    "webex": {"client_id": "c", "client_secret": "env:FUZZ_SECRET",
              "refresh_token": "env:FUZZ_SECRET"},
    "google_meet": {"service_account_key": "env:FUZZ_SECRET", "admin_email": "a@example.jp"},
    "windows_print_events": {"paths": ["x/*.xml"]},
    "papercut_ng_print_log": {"paths": ["x/*.log"]},
    "snmp_printer_counters": {"hosts": ["192.0.2.1"]},
    "fortigate_vpn": {"paths": ["x/*.log"]},
    "cisco_asa_vpn": {"paths": ["x/*.log"]},
    "rd_gateway": {"paths": ["x/*.xml"]},
}  # fmt: skip


def _declared() -> list[tuple[str, str]]:
    """(section or kind, option) for every option of every table and every kind."""
    from workstyle.adapters import REGISTRY, adapter_class
    from workstyle.collector.config import declared_sections
    from workstyle.collector.options import COMMON_OPTIONS

    assert set(VALID_SOURCES) == set(REGISTRY), "add the new kind to VALID_SOURCES"
    out = [(section, o.name) for section, opts in declared_sections().items() for o in opts]
    for kind in sorted(REGISTRY):
        for o in COMMON_OPTIONS + adapter_class(kind).options:
            out.append((f"kind:{kind}", o.name))
    return out


_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
_scalar = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    st.sampled_from(
        [
            "env:FUZZ_SECRET",
            "file:/nonexistent/k",
            "Asia/Tokyo",
            "3d",
            "x/*.csv",
            "a\x00b",
            "~no-such-user/x",
            "file:~no-such-user/k",
            "99999999999999d",
            "../../etc",
        ]
    ),
)
_value = st.one_of(
    _scalar,
    st.lists(_scalar, max_size=3),
    st.dictionaries(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10), _scalar,
                    max_size=3),
)  # fmt: skip


def _toml(value: Any) -> str:
    # NUL is legal in a TOML string only escaped.
    return toml_value(value).replace("\x00", "\\u0000")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    from click.testing import CliRunner

    from workstyle.collector.cli import main

    folder = tmp_path_factory.mktemp("fuzz")
    # One untimed run first: the modules validate imports once per process (targets,
    # [kpi] rules, exporter settings) are not what the one-second bound is about.
    (folder / "warm.toml").write_text('[privacy]\nkey = "env:FUZZ_KEY"\n', encoding="utf-8")
    CliRunner().invoke(main, ["--config", str(folder / "warm.toml"), "validate"])
    return folder


@settings(
    max_examples=200,
    deadline=None,  # timed below, per call, without hypothesis' first-call jitter
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.sampled_from(_declared()), value=_value)
def test_any_value_of_any_option_is_ok_or_one_line_per_problem(fuzz_dir, target, value) -> None:
    from click.testing import CliRunner

    from workstyle.collector.cli import main

    section, key = target
    sections: dict[str, dict[str, Any]] = {
        "collector": {"data_dir": str(fuzz_dir / "data")},
        "privacy": {"key": "env:FUZZ_KEY"},
    }
    sources: list[dict[str, Any]] = []
    if section.startswith("kind:"):
        kind = section[5:]
        base = {"name": "s", **VALID_SOURCES[kind], "kind": kind}
        sources.append({**base, key: value})
    else:
        sections.setdefault(section, {})[key] = value
    path = fuzz_dir / "fuzz.toml"
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
    for src in sources:
        lines.append("[[sources]]")
        lines += [f"{k} = {_toml(v)}" for k, v in src.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    t0 = time.monotonic()
    result = CliRunner().invoke(
        main,
        ["--config", str(path), "validate"],
        catch_exceptions=False,
        env={"FUZZ_KEY": TEST_KEY, "FUZZ_SECRET": "fuzz-secret-value", "COLLECTOR_CONFIG": None},
    )
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, (target, value, elapsed)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert lines
        for line in lines:
            assert line.startswith(f"error: {path}"), line


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_the_lock_wait_option_is_checked_too(tmp_path, cli, key_env, value) -> None:
    path = _config(tmp_path, key_env, [PRINT])
    result = cli("--config", str(path), "--lock-wait", value, "validate")
    assert result.exit_code == 2
    assert "--lock-wait" in result.stderr and "Traceback" not in result.output


def test_a_binary_targets_file_is_one_line_for_validate_and_run(tmp_path, cli, key_env) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_bytes(b"\xff\xfe[kpi]\x00")
    path = _config(tmp_path, key_env, [], targets={"file": str(targets)})
    for command in ("validate", "run"):
        result = cli("--config", str(path), command)
        assert result.exit_code == 2, result.output
        assert (
            result.stderr.strip()
            == f"error: {targets}: not UTF-8 text; save the targets file as UTF-8"
        )


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("collector", "data_dir", "data\x00dir"),
        ("targets", "file", "~no-such-user/targets.toml"),
        ("privacy", "key", "file:~no-such-user/pseudonym.key"),
    ],
)
def test_nul_characters_and_unknown_home_folders_are_one_line(
    tmp_path, cli, key_env, section, key, value
) -> None:
    path = tmp_path / "collector.toml"
    sections = {"collector": {"data_dir": "data"}, "privacy": {"key": key_env}}
    sections.setdefault(section, {})[key] = value
    path.write_text(
        "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in kv.items())
                  for s, kv in sections.items()) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    lines = _problems(cli("--config", str(path), "validate"), path)
    assert any(f"key '{key}'" in ln for ln in lines), lines
