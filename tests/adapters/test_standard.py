"""The standard adapter suite: every file kind, the same promises, real-format files.

Nothing silently dropped, nothing counted twice: each test writes real-format
files (tests/adapters/standard.py) into a folder, runs the real pipeline and looks
at what the store and the quarantine hold.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.adapters import standard
from tests.adapters.standard import BAD_BYTES, HUGE, Case
from workstyle import schemas
from workstyle.adapters import REGISTRY
from workstyle.collector.ingest.store import Store
from workstyle.schemas.runs_quarantine import QUARANTINE

UTC = dt.UTC
WINDOW = (dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC))


def test_every_file_kind_has_a_standard_case() -> None:
    missing = sorted(set(REGISTRY) - set(standard.CASES) - set(standard.EXEMPT))
    assert not missing, f"kinds without a standard case in tests/adapters/standard.py: {missing}"
    assert not set(standard.CASES) & set(standard.EXEMPT)


class Harness:
    """One source of the case's kind over tmp_path/in, run through the real pipeline."""

    def __init__(self, case: Case, tmp_path: Path, make_config, load_config, pipeline_for):
        self.case = case
        self.tmp = tmp_path
        self.folder = tmp_path / "in"
        self.folder.mkdir()
        self._make, self._load, self._pipeline = make_config, load_config, pipeline_for
        self.configure(str(self.folder))

    def configure(self, folder: str) -> None:
        src = {"name": "src", "kind": self.case.kind, **self.case.options(folder)}
        self.cfg = self._load(self._make([src]))

    def write(self, n: int, records: list, note: dict | None = None, *, append: bool = False):
        """Write (or append records to) the n-th file; returns the records' first lines."""
        path = self.folder / self.case.filename(n)
        if append:
            # Appending to an append-only file: only the new records, no second header.
            data, _ = self.case.file(records, note)
            data = data[len(self.case.head) :]
            before = path.read_bytes()
            path.write_bytes(before + data)
            first = before.count(b"\n") - self.case.head.count(b"\n")
            return [first + ln for ln in self.case.file(records, note)[1]]
        data, lines = self.case.file(records, note)
        path.write_bytes(data)
        return lines

    def run(self, mode: str = "incremental"):
        pipe = self._pipeline(self.cfg)
        if mode == "backfill":
            return pipe.backfill(self.cfg.sources[0], *WINDOW)
        return pipe.incremental(self.cfg.sources)[0]

    def rows(self) -> pl.DataFrame:
        spec = schemas.get(self.case.table)
        return Store(self.cfg.data_dir.resolve()).scan(spec).collect()

    def markers(self) -> list[Any]:
        return sorted(self.rows().get_column(self.case.marker).to_list())

    def keys(self) -> list[tuple]:
        spec = schemas.get(self.case.table)
        return sorted(self.rows().select(spec.key).rows())

    def quarantine(self) -> list[tuple[str, str]]:
        q = Store(self.cfg.data_dir.resolve()).scan(QUARANTINE).collect()
        return sorted(q.select("location", "reason").rows())


@pytest.fixture(params=sorted(standard.CASES))
def h(request, tmp_path, make_config, load_config, pipeline_for) -> Harness:
    return Harness(standard.CASES[request.param], tmp_path, make_config, load_config, pipeline_for)


def m(h: Harness, *indexes: int) -> list[Any]:
    return sorted(h.case.marker_of(i) for i in indexes)


def assert_ok(res) -> None:
    assert res.ok, res.error
    assert res.error_kind is None


def assert_quarantined_at(h: Harness, res, line: int, word: str) -> None:
    """Exactly the run's quarantined rows are in _quarantine, one of them at ``line``."""
    q = h.quarantine()
    assert res.quarantined == len(q), (res.quarantined, q)
    name = h.case.filename(0)
    at = [r for loc, r in q if loc.endswith(f"{name}:{line}")]
    assert at, f"nothing quarantined at {name}:{line}: {q}"
    assert any(word.lower() in r.lower() for r in at), (word, at)


# -- 1. relative paths ------------------------------------------------------------------
def test_relative_paths_resolve_against_the_config_folder(h: Harness, monkeypatch) -> None:
    h.configure("in")  # relative: the config file is in tmp_path
    h.write(0, [0, 1, 2])
    elsewhere = h.tmp / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = h.run()
    assert_ok(res)
    assert h.markers() == m(h, 0, 1, 2)


def test_missing_folder_is_a_one_line_source_error(h: Harness) -> None:
    h.configure(str(h.tmp / "no-such-folder"))
    res = h.run()
    assert not res.ok
    assert res.error_kind == "source", res.error
    assert "\n" not in res.error
    assert "no-such-folder" in res.error


def test_a_second_run_reads_nothing(h: Harness) -> None:
    h.write(0, [0, 1, 2])
    assert_ok(h.run())
    again = h.run()
    assert_ok(again)
    assert (again.rows_read, again.new, again.updated) == (0, 0, 0)
    assert h.markers() == m(h, 0, 1, 2)


# -- copies, renames, rotations ---------------------------------------------------------
def test_copy_rename_and_gz_are_counted_once(h: Harness) -> None:
    h.write(0, [0, 1, 2])
    first = h.run()
    assert_ok(first)
    src = h.folder / h.case.filename(0)
    shutil.copy(src, h.folder / h.case.filename(1))
    (h.folder / (h.case.filename(2) + ".gz")).write_bytes(gzip.compress(src.read_bytes()))
    src.rename(h.folder / h.case.filename(3))
    again = h.run()
    assert_ok(again)
    assert (again.rows_read, again.new, again.updated) == (0, 0, 0)
    assert h.markers() == m(h, 0, 1, 2)


def test_copies_present_in_one_run_are_read_once(h: Harness) -> None:
    h.write(0, [0, 1, 2])
    src = h.folder / h.case.filename(0)
    shutil.copy(src, h.folder / h.case.filename(1))
    (h.folder / (h.case.filename(2) + ".gz")).write_bytes(gzip.compress(src.read_bytes()))
    res = h.run()
    assert_ok(res)
    assert res.rows_read == 3
    assert h.markers() == m(h, 0, 1, 2)


# -- 2. different files with the same first line -------------------------------------------
def test_different_files_with_the_same_first_line_are_both_read(h: Harness) -> None:
    h.write(0, [0, 1, 2, 5])
    h.write(1, [0, 3, 4])
    res = h.run()
    assert_ok(res)
    assert set(h.markers()) == set(m(h, 0, 1, 2, 3, 4, 5))
    # And on a later run too, when one of them is already known.
    h.write(2, [0, 6])
    later = h.run()
    assert_ok(later)
    assert h.case.marker_of(6) in h.markers()


# -- append, then backfill ----------------------------------------------------------------
def test_an_append_is_read_once_and_a_backfill_gives_identical_keys(h: Harness) -> None:
    h.write(0, [0, 1, 2])
    assert_ok(h.run())
    h.write(0, [3, 4], append=True)
    res = h.run()
    assert_ok(res)
    assert (res.new, res.updated) == (2, 0)
    keys = h.keys()
    assert h.markers() == m(h, 0, 1, 2, 3, 4)
    back = h.run("backfill")
    assert_ok(back)
    assert (back.new, back.updated) == (0, 0)
    assert h.keys() == keys


# -- 3. a record over two physical lines ----------------------------------------------------
def test_a_quoted_line_break_numbers_lines_alike_in_full_and_tail_reads(h: Harness) -> None:
    if not h.case.multiline:
        pytest.skip(h.case.not_applicable["multiline"])
    two_lines = "一行目\n二行目".encode()
    h.write(0, [0, 1, 2], note={1: two_lines})
    assert_ok(h.run())
    lines = h.write(0, [3, ("bad_int", 4)], append=True)
    res = h.run()
    assert_ok(res)
    assert res.new == 1
    keys = h.keys()
    assert h.markers() == m(h, 0, 1, 2, 3)
    assert_quarantined_at(h, res, lines[1], h.case.variants["bad_int"][1])
    back = h.run("backfill")
    assert_ok(back)
    assert (back.new, back.updated) == (0, 0)
    assert h.keys() == keys
    assert h.markers() == m(h, 0, 1, 2, 3)


def test_a_bare_cr_inside_a_line_makes_no_phantom_row(h: Harness) -> None:
    lines = h.write(0, [0, 1, 2, ("bad_int", 3)], note={1: b"a\rb"})
    res = h.run()
    assert_ok(res)
    assert set(m(h, 0, 2)) <= set(h.markers())
    assert_quarantined_at(h, res, lines[3], h.case.variants["bad_int"][1])
    for loc, _ in h.quarantine():
        assert int(loc.rsplit(":", 1)[1]) in lines, loc


# -- 4-6. one bad row never takes down more than itself ---------------------------------
def test_an_undecodable_line_is_quarantined_alone_naming_the_encoding(h: Harness) -> None:
    lines = h.write(0, [0, 1, 2, 3], note={2: BAD_BYTES})
    res = h.run()
    assert_ok(res)
    assert set(m(h, 0, 1, 3)) <= set(h.markers())
    assert_quarantined_at(h, res, lines[2], "utf-8")
    # Not retried night after night: the file is done.
    again = h.run()
    assert_ok(again)
    assert again.rows_read == 0


def test_a_field_over_one_mib_does_not_fail_the_file(h: Harness) -> None:
    # Placed where it straddles pyarrow's default 1 MiB block boundary.
    h.write(0, [0, 1, 2, 3], note={1: b"y" * 950_000, 2: HUGE})
    res = h.run()
    assert_ok(res)
    stored = h.markers()
    assert set(m(h, 0, 1, 3)) <= set(stored)
    assert h.case.marker_of(2) in stored or res.quarantined == 1


@pytest.mark.parametrize("variant", ["bad_int", "wrong_fields"])
def test_a_bad_record_is_quarantined_alone_and_the_rest_lands(h: Harness, variant: str) -> None:
    if variant not in h.case.variants:
        pytest.skip(h.case.not_applicable[variant])
    lines = h.write(0, [0, 1, (variant, 2), 3])
    # A later file of the same source is still read.
    h.write(1, [4, 5])
    res = h.run()
    assert_ok(res)
    assert set(m(h, 0, 1, 3, 4, 5)) <= set(h.markers())
    assert_quarantined_at(h, res, lines[2], h.case.variants[variant][1])


# -- 7. empty files -------------------------------------------------------------------------
def test_an_empty_file_is_fine(h: Harness) -> None:
    (h.folder / h.case.filename(0)).write_bytes(b"")
    h.write(1, [0])
    res = h.run()
    assert_ok(res)
    assert h.markers() == m(h, 0)


# -- 8. year-less syslog timestamps (Cisco ASA's BSD form) --------------------------------
ASA_LINE = (
    "<166>{when} asa01 : %ASA-4-113019: Group = GP, Username = u{i}, IP = 198.51.100.{i},"
    " Session disconnected. Session Type: SSL, Duration: 0h:10m:00s, Bytes xmt: 1,"
    " Bytes rcv: 2, Reason: User Requested\n"
)


@pytest.fixture
def asa(tmp_path, make_config, load_config, pipeline_for) -> Harness:
    return Harness(
        standard.CASES["cisco_asa_vpn"], tmp_path, make_config, load_config, pipeline_for
    )


def _asa_file(path: Path, whens: list[str]) -> None:
    path.write_text("".join(ASA_LINE.format(when=w, i=i) for i, w in enumerate(whens)))
    now = dt.datetime.now().timestamp()
    os.utime(path, (now, now))  # a plain scp or a restore: the modification time is today


def test_a_year_less_timestamp_takes_its_year_from_the_file_name(asa: Harness) -> None:
    _asa_file(asa.folder / "asa-2023-05-13.log", ["May 13 09:00:00", "May 13 10:00:00"])
    res = asa.run()
    assert_ok(res)
    years = {t.year for t in asa.rows().get_column("end_time")}
    assert years == {2023}


def test_a_year_less_timestamp_takes_its_year_from_a_dated_line(asa: Harness) -> None:
    _asa_file(asa.folder / "asa.log", ["May 13 2022 08:00:00", "May 13 09:00:00"])
    res = asa.run()
    assert_ok(res)
    years = sorted(t.year for t in asa.rows().get_column("end_time"))
    assert years == [2022, 2022]


def test_a_year_less_timestamp_in_the_future_is_quarantined_not_shifted(asa: Harness) -> None:
    now = dt.datetime.now(UTC)
    past, future = now - dt.timedelta(days=2), now + dt.timedelta(days=40)
    whens = [f"{past:%b %d %H:%M:%S}", f"{future:%b %d %H:%M:%S}"]
    _asa_file(asa.folder / "asa.log", whens)
    res = asa.run()
    assert_ok(res)
    stored = asa.rows().get_column("end_time").to_list()
    assert [t.year for t in stored] == [past.year]
    q = asa.quarantine()
    assert len(q) == 1 and q[0][0].endswith("asa.log:2"), q
    assert re.search("future", q[0][1]), q


# -- a source that reads nothing says so ----------------------------------------------------
def test_patterns_matching_no_file_say_so_in_the_run_status_and_metrics(h: Harness, cli) -> None:
    from workstyle.collector.exporter.families import registry

    res = h.run()
    assert res.ok, res.error
    assert res.warning and res.warning.startswith("no files matched "), res.warning
    assert str(h.folder) in res.warning
    status = cli("--config", str(h.cfg.path), "status")
    assert "no files matched" in status.stdout, status.stdout
    reg, _ = registry(h.cfg, live=False)
    assert reg.get_sample_value("workstyle_source_files_matched", {"source": "src"}) == 0
    h.write(0, [0])
    assert h.run().warning is None
    reg, _ = registry(h.cfg, live=False)
    assert reg.get_sample_value("workstyle_source_files_matched", {"source": "src"}) == 1


def test_validate_check_sources_probes_every_file_kind(h: Harness, cli) -> None:
    h.write(0, [0, 1])
    ok = cli("--config", str(h.cfg.path), "validate", "--check-sources")
    assert ok.exit_code == 0, ok.output
    line = next(ln for ln in ok.stdout.splitlines() if ln.strip().startswith("src:"))
    assert "1 file(s) match" in line and "no probe" not in line, line
    (h.folder / h.case.filename(0)).unlink()
    (h.folder / h.case.filename(1)).write_bytes(b"\x00\x01 not this format at all\n" * 3)
    bad = cli("--config", str(h.cfg.path), "validate", "--check-sources")
    assert bad.exit_code == 2, bad.output
    assert h.case.filename(1) in bad.output
    h.configure(str(h.tmp / "no-such-folder"))
    gone = cli("--config", str(h.cfg.path), "validate", "--check-sources")
    assert gone.exit_code == 2 and "no-such-folder" in gone.output, gone.output


def test_status_shows_the_rule_that_gave_year_less_timestamps_their_year(asa: Harness, cli) -> None:
    _asa_file(asa.folder / "asa-2023-05-13.log", ["May 13 09:00:00"])
    _asa_file(asa.folder / "asa.log", ["May 13 10:00:00"])
    assert_ok(asa.run())
    out = cli("--config", str(asa.cfg.path), "status").stdout
    assert "date in the file name (1 file)" in out, out
    assert "file's modification time (1 file)" in out, out


def test_a_windows_file_with_crlf_and_no_final_newline_reads_and_probes_alike(
    h: Harness, cli
) -> None:
    data, _ = h.case.file([0, 1, 2])
    path = h.folder / h.case.filename(0)
    path.write_bytes(data.replace(b"\n", b"\r\n")[:-1])  # the last CR kept, its LF not
    os.utime(path, (0, 0))  # settled long ago: the last line is complete
    probe = cli("--config", str(h.cfg.path), "validate", "--check-sources")
    assert probe.exit_code == 0, probe.output
    res = h.run()
    assert_ok(res)
    assert h.markers() == m(h, 0, 1, 2)
    assert h.quarantine() == []


def test_a_file_that_fails_fails_alone_and_is_retried(h: Harness) -> None:
    bad = h.folder / h.case.filename(0)
    bad.write_bytes(b"\x00\x01 not this format at all\n" * 3)
    h.write(1, [0, 1])
    res = h.run()
    assert set(m(h, 0, 1)) <= set(h.markers())
    if res.ok:  # line formats: each foreign line is quarantined, never dropped
        assert res.quarantined == 3, h.quarantine()
        return
    assert res.error_kind == "source" and bad.name in res.error and "\n" not in res.error
    again = h.run()
    assert not again.ok and bad.name in again.error  # retried, still reported
    assert h.markers() == m(h, 0, 1)  # and the good file is not read twice


def test_a_backfill_stopped_by_a_bad_file_resumes_without_duplicates(h: Harness) -> None:
    h.write(0, [0, 1])
    broken = h.folder / (h.case.filename(1) + ".gz")
    broken.write_bytes(b"\x1f\x8b\x08\x00 truncated gzip")
    first = h.run("backfill")
    assert not first.ok and broken.name in first.error
    assert h.markers() == m(h, 0, 1)  # the good file's rows are committed
    broken.unlink()
    h.write(1, [2, 3])
    again = h.run("backfill")  # resumes: the done file is not read again
    assert_ok(again)
    assert again.rows_read == 2
    assert h.markers() == m(h, 0, 1, 2, 3)
    assert len(h.keys()) == 4


# -- memory: a large file reaches the pipeline in parts ---------------------------------
def test_a_large_file_reaches_the_pipeline_in_parts_counted_once(h: Harness, monkeypatch) -> None:
    import workstyle.adapters.filebase as filebase

    parts: list[tuple[int, int, bool]] = []
    read = filebase.FileAdapter.read

    def spy(self, request):
        for batch in read(self, request):
            parts.append((batch.rows.height, batch.rows_read, batch.checkpoint is not None))
            yield batch

    monkeypatch.setattr(filebase.FileAdapter, "read", spy)
    monkeypatch.setattr(filebase, "BATCH_ROWS", 3, raising=False)
    variant = "bad_int" if "bad_int" in h.case.variants else None
    records: list[Any] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    if variant:
        records[5] = (variant, 5)
    h.write(0, records)
    res = h.run()
    assert_ok(res)
    kept = [i for i in range(13) if not (variant and i == 5)]
    assert h.markers() == m(h, *kept)
    assert max(n for n, _, _ in parts) <= 3 < sum(n for n, _, _ in parts)
    # The file is committed once, with its last part; every record counted once.
    assert [c for *_, c in parts][-1] and res.rows_read >= 13
    again = h.run()
    assert (again.rows_read, again.new) == (0, 0)
