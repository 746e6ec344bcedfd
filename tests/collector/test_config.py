"""Every config error is one line naming the file and the key, and exits 2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import write_config
from workstyle.collector import config
from workstyle.collector.errors import ConfigError

PRINT = {"name": "print", "kind": "papercut_print_logger", "path": "logs"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = '[collector]\ndata_dir = "data"\n[privacy]\nkey = "env:K"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE + "[colector]\n", "table [colector] is unknown; expected one of:"),
        (
            BASE.replace('data_dir = "data"', 'data_dir = "data"\ntimezone = "Tokyo"'),
            "[collector] key 'timezone': unknown time zone 'Tokyo'",
        ),
        (
            BASE.replace('data_dir = "data"', 'data_dir = "data"\nlookback = "3 days"'),
            "[collector] key 'lookback': expected a duration like '3d', '12h' or '30m'",
        ),
        (
            BASE.replace('data_dir = "data"', 'data_dir = "data"\nlock_wait = true'),
            "[collector] key 'lock_wait': expected float, got bool True",
        ),
        (
            BASE.replace('data_dir = "data"', 'data_dir = "data"\ndatadir = "x"'),
            "[collector] key 'datadir': unknown key; expected one of: data_dir, lock_wait",
        ),
        (
            '[collector]\ndata_dir = "data"\n',
            "[privacy] key 'key': required; expected 'env:VARIABLE'",
        ),
        (
            BASE.replace('key = "env:K"', 'key = "s3cr3t-value"'),
            "[privacy] key 'key': expected 'env:VARIABLE' or 'file:PATH' (secrets are never",
        ),
        (BASE + '[targets]\nfile = "nope.toml"\n', "[targets] key 'file':"),
        (
            BASE + '[[sources]]\nname = "print"\nkind = "papercut_print_logger"\npath = "x"\n'
            'encodng = "cp932"\n',
            "[[sources]] #1 (print) key 'encodng': unknown key",
        ),
        (
            BASE + '[[sources]]\nname = "print"\nkind = "papercut"\npath = "x"\n',
            "[[sources]] #1 (print) key 'kind': unknown kind 'papercut'; expected one of:",
        ),
        (
            BASE + '[[sources]]\nname = "print"\npath = "x"\n',
            "[[sources]] #1 (print) key 'kind': required",
        ),
        (
            BASE + '[[sources]]\nname = "print"\nkind = "papercut_print_logger"\n',
            "[[sources]] #1 (print) key 'path': required",
        ),
        (
            BASE + '[[sources]]\nname = "print"\nkind = "papercut_print_logger"\npath = "x"\n'
            'enabled = "yes"\n',
            "[[sources]] #1 (print) key 'enabled': expected bool, got str 'yes'",
        ),
        (
            BASE + '[[sources]]\nname = "a b"\nkind = "papercut_print_logger"\npath = "x"\n',
            "key 'name': expected letters, digits",
        ),
        (
            BASE + 2 * '[[sources]]\nname = "p"\nkind = "papercut_print_logger"\npath = "x"\n',
            "[[sources]] #2 (p) key 'name': 'p' is used by another source",
        ),
        (
            BASE + '[[sources]]\nname = "p"\nkind = "papercut_print_logger"\npath = "x"\n'
            'lookback = "a week"\n',
            "[[sources]] #1 (p) key 'lookback': expected a duration",
        ),
        (
            BASE + '[[sources]]\nname = "p"\nkind = "papercut_print_logger"\npath = "x"\n'
            'encoding = "latin-1"\n',
            "key 'encoding': expected one of utf-8, cp932, auto",
        ),
        ("[collector\n", "not valid TOML"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_key(tmp_path, text, expected) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message
    assert err.value.exit_code == 2


def test_a_literal_secret_is_never_echoed(tmp_path) -> None:
    path = _write(tmp_path, BASE.replace('key = "env:K"', 'key = "hunter2-super-secret"'))
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert "hunter2" not in str(err.value)


def test_validate_command_exits_2_with_the_message(tmp_path, cli, monkeypatch) -> None:
    monkeypatch.setenv("K", "a-pseudonymisation-key-long-enough")
    path = _write(tmp_path, BASE + "[colector]\n")
    result = cli("--config", str(path), "validate")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"error: {path}: table [colector] is unknown")
    assert len(result.stderr.strip().splitlines()) == 1


def test_validate_reports_sources_and_touches_no_data(tmp_path, cli, key_env) -> None:
    path = write_config(
        tmp_path / "c.toml",
        {"collector": {"data_dir": str(tmp_path / "d")}, "privacy": {"key": key_env}},
        [PRINT],
    )
    result = cli("--config", str(path), "validate")
    assert result.exit_code == 0, result.output
    assert "1 source(s): print" in result.stdout
    assert not (tmp_path / "d").exists()


def test_defaults_and_relative_paths(tmp_path, key_env) -> None:
    path = write_config(tmp_path / "c.toml", {"privacy": {"key": key_env}}, [PRINT])
    cfg = config.load(path)
    assert cfg.timezone == "Asia/Tokyo"
    assert cfg.lookback == dt.timedelta(days=3)
    assert cfg.data_dir == tmp_path / "collector-data"  # relative to the config file
    assert cfg.sources[0].path("path") == tmp_path / "logs"
    assert cfg.sources[0].enabled is True
    assert cfg.sources[0].keep_titles is False


def test_config_env_var_is_used_when_no_option(tmp_path, key_env, monkeypatch) -> None:
    path = write_config(tmp_path / "c.toml", {"privacy": {"key": key_env}}, [PRINT])
    monkeypatch.setenv("COLLECTOR_CONFIG", str(path))
    assert config.load(None).path == path
    monkeypatch.delenv("COLLECTOR_CONFIG")
    cfg = config.load(None)
    assert cfg.is_example and cfg.path.name == "example.toml"


def test_missing_secret_env_var_names_the_variable_not_a_value(tmp_path, monkeypatch) -> None:
    from workstyle.collector.pseudonyms import load_key

    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match="environment variable NOT_SET_ANYWHERE is not set"):
        load_key("env:NOT_SET_ANYWHERE", tmp_path, allow_create=False)


def test_state_is_keyed_by_what_a_source_reads(tmp_path, key_env) -> None:
    from workstyle.collector.ingest.state import identity_hash

    a = write_config(tmp_path / "a.toml", {"privacy": {"key": key_env}}, [PRINT])
    b = write_config(
        tmp_path / "b.toml", {"privacy": {"key": key_env}}, [{**PRINT, "path": "other-logs"}]
    )
    c = write_config(
        tmp_path / "c.toml", {"privacy": {"key": key_env}}, [{**PRINT, "encoding": "cp932"}]
    )
    ident = [identity_hash(config.identity_of(config.load(p).sources[0])) for p in (a, b, c)]
    assert ident[0] != ident[1]  # another folder: a fresh watermark
    assert ident[0] == ident[2]  # an encoding fix keeps the watermark
