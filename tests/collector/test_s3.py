"""``data_dir = "s3://bucket/prefix"`` against a real S3-protocol server (moto, loopback).

The whole bundled example runs into a bucket and must give the same dataset and KPIs as
a local folder; a second run rewrites nothing; a writer killed mid-run leaves only whole
objects and the next run completes the work; two writers never hold the lease at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import write_config
from tests.fakes.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server, s3_server
from workstyle import schemas
from workstyle.collector import storage
from workstyle.collector.cli import main
from workstyle.collector.errors import LockedError
from workstyle.collector.ingest.lease import Lease
from workstyle.collector.ingest.store import Store
from workstyle.collector.storage import StorageSettings
from workstyle.schemas.runs_quarantine import QUARANTINE

AS_OF = "2026-11-26"
SLOW = pytest.mark.slow  # the bundled example against the S3 server: several seconds each

#: Columns that differ between two runs by design (when, which run).
RUN_COLUMNS = {"ingested_at", "run_id", "first_seen", "computed_at"}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def aws_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COLLECTOR_CONFIG", raising=False)
    return s3


def _invoke(cwd: Path, *args: str):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def _subprocess_env(s3: S3Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLLECTOR_CONFIG"}
    env.update(s3.env())
    return env


def _location(s3: S3Server, uri: str) -> storage.DataLocation:
    return storage.open_location(
        uri,
        StorageSettings(
            endpoint_url=s3.endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        ),
    )


def _table(store: Store, name: str) -> pl.DataFrame:
    spec = QUARANTINE if name == QUARANTINE.name else schemas.get(name)
    frame = store.scan(spec).collect()
    frame = frame.drop([c for c in frame.columns if c in RUN_COLUMNS])
    return frame.sort(frame.columns, nulls_last=True)


@pytest.fixture(scope="module")
def example(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The bundled example run once into a local folder and once into the bucket."""
    env = s3.env()
    saved = {k: os.environ.get(k) for k in [*env, "COLLECTOR_CONFIG"]}
    os.environ.update(env)
    os.environ.pop("COLLECTOR_CONFIG", None)
    try:
        local_cwd = tmp_path_factory.mktemp("local")
        local = _invoke(local_cwd, "run", "--as-of", AS_OF)
        assert local.exit_code == 0, local.output
        s3.create_bucket("example")
        # The same pseudonymisation key, so the two datasets must be equal row for row.
        key = (local_cwd / "collector-data" / "_secrets" / "pseudonym.key").read_bytes()
        s3.client().put_object(Bucket="example", Key="pref/_secrets/pseudonym.key", Body=key)
        cwd = tmp_path_factory.mktemp("bucket")
        (cwd / "metrics").mkdir()
        first = _invoke(
            cwd,
            *("--data-dir", "s3://example/pref", "run", "--as-of", AS_OF),
            *("--textfile-dir", str(cwd / "metrics")),
        )
        objects = _objects(s3, "example")
        second = _invoke(cwd, "--data-dir", "s3://example/pref", "run", "--as-of", AS_OF)
        return {
            "local": local_cwd / "collector-data",
            "local_out": local.output,
            "cwd": cwd,
            "first": first,
            "objects_after_first": objects,
            "second": second,
        }
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _counts(line: str) -> list[tuple[str, str]]:
    return re.findall(r"(read|new|updated|unchanged|quarantined)\s+([\d,]+)", line)


def _objects(s3: S3Server, bucket: str) -> dict[str, str]:
    """Key -> ETag of every object in the bucket."""
    client = s3.client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


@SLOW
def test_example_run_writes_into_the_bucket_not_a_local_folder(
    example: dict[str, Any], s3: S3Server
) -> None:
    result = example["first"]
    assert not (example["cwd"] / "s3:").exists(), "wrote into a local folder named 's3:'"
    assert not (example["cwd"] / "collector-data").exists()
    assert result.exit_code == 0, result.output
    keys = s3.keys("example")
    assert any(k.startswith("pref/print_jobs/") and k.endswith("part-0.parquet") for k in keys)
    for kpi in ("yearly", "monthly", "by_department"):
        assert f"pref/kpi/{kpi}.parquet" in keys
    assert any(k.startswith("pref/_state/sources/") for k in keys)
    assert any(k.startswith("pref/_state/summary/") for k in keys)
    assert any(k.startswith("pref/_runs/") for k in keys)
    assert any(k.startswith("pref/_quarantine/") for k in keys)
    # No temporary objects, and the lease is released at the end of the run.
    assert not [k for k in keys if k.rpartition("/")[2].startswith(".")]
    assert "pref/_state/writer.lease" not in keys
    # The exporter read the KPI tables and the state from the bucket.
    metrics = (example["cwd"] / "metrics" / "workstyle_collector.prom").read_text()
    assert 'workstyle_kpi_value{fiscal_year="2023",kpi="web_meetings_per_month"}' in metrics
    assert 'workstyle_source_last_success_timestamp_seconds{source="print-logger"}' in metrics


@SLOW
def test_bucket_dataset_and_kpis_equal_the_local_ones(
    example: dict[str, Any], s3: S3Server
) -> None:
    local = Store.at(storage.local(example["local"]))
    bucket = Store.at(_location(s3, "s3://example/pref"))
    for name in [*schemas.TABLES, QUARANTINE.name]:
        a, b = _table(local, name), _table(bucket, name)
        assert a.height > 0 or name not in {"print_jobs", "meetings"}, name
        assert a.equals(b), name
    for kpi in ("yearly", "monthly", "by_department"):
        a = pl.read_parquet(example["local"] / "kpi" / f"{kpi}.parquet").drop("computed_at")
        data = s3.client().get_object(Bucket="example", Key=f"pref/kpi/{kpi}.parquet")
        b = pl.read_parquet(data["Body"].read()).drop("computed_at")
        assert a.equals(b), kpi
    # The printed per-source lines say the same, source by source.
    first = example["first"].output
    for line in example["local_out"].splitlines():
        if " ok " in line:
            name = line.split()[0]
            other = next(x for x in first.splitlines() if x.startswith(name + " "))
            assert _counts(other) == _counts(line), name


@SLOW
def test_second_run_is_idempotent_and_rewrites_no_partition(
    example: dict[str, Any], s3: S3Server
) -> None:
    second = example["second"]
    assert second.exit_code == 0, second.output
    for line in second.output.splitlines():
        if " ok " in line:
            assert " new         0 " in line and " updated       0 " in line, line
    before = example["objects_after_first"]
    after = _objects(s3, "example")
    data = [k for k in before if "/source=" in k and not k.startswith("pref/_runs/")]
    assert data
    changed = [k for k in data if after.get(k) != before[k]]
    assert changed == []


@SLOW
def test_polars_and_duckdb_read_the_dataset_from_the_bucket(
    example: dict[str, Any], s3: S3Server
) -> None:
    expected = (
        pl.scan_parquet(
            str(example["local"] / "print_jobs" / "**" / "*.parquet"), hive_partitioning=True
        )
        .select(pl.len(), pl.col("pages").sum())
        .collect()
    )
    options = {
        "aws_endpoint_url": s3.endpoint,
        "aws_region": REGION,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_allow_http": "true",
    }
    got = (
        pl.scan_parquet(
            "s3://example/pref/print_jobs/**/*.parquet",
            hive_partitioning=True,
            storage_options=options,
        )
        .select(pl.len(), pl.col("pages").sum())
        .collect()
    )
    assert got.rows() == expected.rows()
    # DuckDB through pyarrow's S3 filesystem (DuckDB's own httpfs extension is a
    # download, which this closed network cannot fetch; the README shows both ways).
    location = _location(s3, "s3://example/pref")
    dataset = pads.dataset(
        location.path("print_jobs"), filesystem=location.fs, format="parquet", partitioning="hive"
    )
    con = duckdb.connect()
    con.register("print_jobs", dataset)
    rows = con.sql("SELECT count(*), sum(pages) FROM print_jobs").fetchall()
    assert [tuple(r) for r in rows] == expected.rows()


@SLOW
def test_status_kpi_and_report_read_the_bucket(
    example: dict[str, Any], aws_env: S3Server, tmp_path: Path
) -> None:
    uri = "s3://example/pref"
    status = _invoke(tmp_path, "--data-dir", uri, "status", "--format", "json")
    assert status.exit_code == 0, status.output
    rows = {r["source"]: r for r in json.loads(status.output)}
    assert rows["print-logger"]["rows"]["print_jobs"] > 0
    assert rows["print-logger"]["last_run"]["outcome"] == "success"
    kpi = _invoke(tmp_path, "--data-dir", uri, "kpi", "--format", "json", "--as-of", AS_OF)
    assert kpi.exit_code == 0, kpi.output
    assert json.loads(kpi.output)
    report = _invoke(tmp_path, "--data-dir", uri, "report", "--out", str(tmp_path / "r.html"))
    assert report.exit_code == 0, report.output
    assert (tmp_path / "r.html").stat().st_size > 10_000
    assert not (tmp_path / "s3:").exists()


@SLOW
def test_backfill_in_the_bucket_is_idempotent_and_leaves_no_progress_file(
    example: dict[str, Any], aws_env: S3Server, tmp_path: Path
) -> None:
    result = _invoke(
        tmp_path,
        *("--data-dir", "s3://example/pref", "backfill", "--source", "print-logger"),
        *("--from", "2023-04-01", "--to", "2023-06-30"),
    )
    assert result.exit_code == 0, result.output
    counts = dict(_counts(result.output))
    assert int(counts["read"].replace(",", "")) > 0
    assert counts["new"] == "0" and counts["updated"] == "0"
    assert not [k for k in aws_env.keys("example") if k.startswith("pref/_state/backfill/")]


@SLOW
def test_writer_killed_mid_run_leaves_whole_objects_and_the_next_run_completes(
    example: dict[str, Any], s3: S3Server, tmp_path: Path
) -> None:
    s3.create_bucket("killed")
    key = (example["local"] / "_secrets" / "pseudonym.key").read_bytes()
    s3.client().put_object(Bucket="killed", Key="pref/_secrets/pseudonym.key", Body=key)
    cmd = [sys.executable, "-m", "workstyle.collector.cli", "--data-dir", "s3://killed/pref"]
    env = _subprocess_env(s3)
    proc = subprocess.Popen(
        [*cmd, "run", "--as-of", AS_OF], cwd=tmp_path, env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    # Kill it while it writes partitions: some data is in, most is not.
    while not any("/source=" in k and "/_" not in k for k in s3.keys("killed", "pref/")):
        assert proc.poll() is None and time.monotonic() < deadline, "finished before the kill"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    keys = s3.keys("killed")
    assert "pref/_state/writer.lease" in keys  # the dead writer's lease stays behind
    location = _location(s3, "s3://killed/pref")
    for k in keys:
        if k.endswith(".parquet"):
            pq.read_table(f"killed/{k}", filesystem=location.fs)  # whole, or not there
    # The next run sees the lease's process is gone (same machine), takes it over and
    # finishes the work: the dataset equals the uninterrupted run's.
    again = subprocess.run(
        [*cmd, "run", "--as-of", AS_OF],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "took over the lease" in again.stderr
    bucket = Store.at(location)
    local = Store.at(storage.local(example["local"]))
    for name in schemas.TABLES:
        assert _table(local, name).equals(_table(bucket, name)), name


@SLOW
def test_two_collectors_racing_for_the_lease_one_writes_one_exits_3(
    s3: S3Server, tmp_path: Path
) -> None:
    s3.create_bucket("race")
    cmd = [sys.executable, "-m", "workstyle.collector.cli", "--data-dir", "s3://race/pref"]
    env = _subprocess_env(s3)
    procs = [
        subprocess.Popen([*cmd, "ingest"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = sorted((p.wait(120), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 3], outcomes
    loser = outcomes[1][1]
    assert "s3://race/pref/_state/writer.lease: another collector run" in loser
    assert "--lock-wait" in loser


# -- the lease itself: fast, no collector run ---------------------------------------------
def test_of_many_writers_racing_for_one_lease_exactly_one_wins(s3: S3Server) -> None:
    s3.create_bucket("lease-race")
    location = _location(s3, "s3://lease-race/p")
    leases = [Lease(location, wait=0, seconds=30) for _ in range(6)]
    start = threading.Barrier(len(leases))
    won: list[Lease] = []
    lost: list[str] = []

    def contend(lease: Lease) -> None:
        start.wait()
        try:
            lease.acquire()
            won.append(lease)
        except LockedError as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=contend, args=(le,)) for le in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1 and len(lost) == 5
    assert all(won[0].holder in msg for msg in lost)
    won[0].release()
    assert "p/_state/writer.lease" not in s3.keys("lease-race")


def test_an_expired_lease_is_taken_over_and_its_holder_stops_writing(s3: S3Server) -> None:
    s3.create_bucket("lease-expiry")
    location_a = _location(s3, "s3://lease-expiry/p")
    location_b = _location(s3, "s3://lease-expiry/p")
    a = Lease(location_a, wait=0, seconds=3)
    a.acquire()
    expires = time.monotonic() + 3
    # A stalls (no renewals, as a paused VM or a hung process would).
    a._stop.set()
    a._thread.join(5)
    b = Lease(location_b, wait=0, seconds=30)
    with pytest.raises(LockedError, match="another collector run"):
        b.acquire()  # still valid: not taken
    time.sleep(max(0.0, expires - time.monotonic()) + 0.2)
    b.acquire()  # expired: taken over
    # A wakes up: its renewal fails, and it may not write any more.
    assert a.renew_once() is False
    with pytest.raises(LockedError, match="taken over"):
        location_a.write_bytes(location_a.path("_state", "x.json"), b"{}")
    b.release()


def test_a_writer_that_cannot_renew_past_its_expiry_stops_writing(s3: S3Server) -> None:
    s3.create_bucket("lease-unreachable")
    location = _location(s3, "s3://lease-unreachable/p")
    lease = Lease(location, wait=0, seconds=2)
    lease.acquire()
    lease._stop.set()
    lease._thread.join(5)
    # The store becomes unreachable (a closed port on loopback; no retries, to be quick).
    import botocore.config
    import botocore.session

    lease._client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    assert lease.renew_once() is None  # within its lifetime: keep trying
    location.write_bytes(location.path("x"), b"still allowed")
    time.sleep(max(0.0, lease._renewed + 2.1 - time.monotonic()))
    assert lease.renew_once() is False
    with pytest.raises(LockedError, match="expired while the store could not be reached"):
        location.write_bytes(location.path("x"), b"not any more")


def test_a_store_that_ignores_conditional_writes_is_refused(
    aws_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_server(ignore_conditions=True) as plain:
        plain.create_bucket("no-conditions")
        monkeypatch.setenv("AWS_ENDPOINT_URL", plain.endpoint)
        result = _invoke(tmp_path, "--data-dir", "s3://no-conditions/p", "ingest")
        written = plain.keys("no-conditions")
    assert result.exit_code == 2, result.output
    assert "the store ignores conditional writes (If-None-Match)" in result.output
    assert written == []  # refused before anything was written


def test_an_unreachable_store_is_one_line_naming_the_object() -> None:
    from workstyle.collector.storage import StorageError

    with s3_server() as gone:
        gone.create_bucket("gone")
        location = _location(gone, "s3://gone/p")
    # The server has stopped: the write fails as one line naming the object.
    with pytest.raises(StorageError) as err:
        location.write_bytes(location.path("_state", "x.json"), b"{}")
    message = str(err.value)
    assert message.startswith("s3://gone/p/_state/x.json: cannot write: ")
    assert "\n" not in message


def test_a_write_that_fails_half_way_leaves_the_old_object(s3: S3Server) -> None:
    s3.create_bucket("atomic")
    location = _location(s3, "s3://atomic/p")
    path = location.path("t", "part-0.parquet")
    location.write_bytes(path, b"old content")

    def write_then_fail(out: Any) -> None:
        out.write(b"new content, the first half")
        raise OSError("disk full, connection lost, killed")

    with pytest.raises(OSError, match="disk full"):
        location.put_whole(path, write_then_fail)
    assert location.read_bytes(path) == b"old content"
    assert s3.keys("atomic") == ["p/t/part-0.parquet"]


# -- configuration errors: one line, exit 2 ------------------------------------------------
def test_unknown_scheme_is_a_config_error(aws_env: S3Server, tmp_path: Path) -> None:
    result = _invoke(tmp_path, "--data-dir", "gs://bucket/prefix", "status")
    assert result.exit_code == 2
    assert "--data-dir: unsupported scheme gs://" in result.output


def test_missing_bucket_is_one_line_and_exit_2(aws_env: S3Server, tmp_path: Path) -> None:
    result = _invoke(tmp_path, "--data-dir", "s3://no-such-bucket/p", "ingest")
    assert result.exit_code == 2, result.output
    assert "bucket 'no-such-bucket' does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_storage_keys_with_secret_references(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_env: str
) -> None:
    """[storage] names the endpoint and the credentials (env:/file:), no AWS_* needed."""
    for name in s3.env():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("S3_KEY_ID", ACCESS_KEY)
    (tmp_path / "s3.secret").write_text(SECRET_KEY + "\n")
    s3.create_bucket("configured")
    csv = tmp_path / "in.csv"
    csv.write_text("端末番号,棚卸日,Web会議対応\nT-1,2024-04-01,○\n", encoding="utf-8")
    cfg = write_config(
        tmp_path / "c.toml",
        {
            "collector": {"data_dir": "s3://configured/pref/"},
            "privacy": {"key": key_env},
            "storage": {
                "endpoint_url": s3.endpoint,
                "region": REGION,
                "access_key_id": "env:S3_KEY_ID",
                "secret_access_key": f"file:{tmp_path / 's3.secret'}",
                "lease_seconds": 30,
            },
        },
        [
            {
                "name": "terminals",
                "kind": "csv",
                "table": "terminals",
                "path": str(csv),
                "columns": {
                    "terminal_id": "端末番号",
                    "snapshot_date": "棚卸日",
                    "vc_capable": "Web会議対応",
                },
            }
        ],
    )
    result = _invoke(tmp_path, "--config", str(cfg), "ingest")
    assert result.exit_code == 0, result.output
    assert any(k.startswith("pref/terminals/source=terminals/") for k in s3.keys("configured"))
    # A secret that cannot be read: one line naming the key, exit 2.
    monkeypatch.delenv("S3_KEY_ID")
    result = _invoke(tmp_path, "--config", str(cfg), "ingest")
    assert result.exit_code == 2, result.output
    assert "[storage] key 'access_key_id': environment variable S3_KEY_ID is not set" in (
        result.output
    )


def test_local_data_dir_is_unchanged(tmp_path: Path) -> None:
    location = storage.local(tmp_path / "d")
    assert location.is_local and location.local_dir == (tmp_path / "d").resolve()
    assert isinstance(location.file("kpi", "yearly.parquet"), Path)


# -- many organisations in one bucket -------------------------------------------------------
def test_organisations_take_their_own_leases_in_one_bucket(s3: S3Server) -> None:
    s3.create_bucket("orgs-lease")
    location = _location(s3, "s3://orgs-lease/p")
    miyagi = Lease(location.with_organisation("040002"), wait=0, seconds=30)
    sendai = Lease(location.with_organisation("041009"), wait=0, seconds=30)
    miyagi.acquire()
    sendai.acquire()  # no waiting for the other organisation
    keys = s3.keys("orgs-lease")
    assert "p/_state/organisation=040002/writer.lease" in keys
    assert "p/_state/organisation=041009/writer.lease" in keys
    with pytest.raises(LockedError):
        Lease(location.with_organisation("040002"), wait=0, seconds=30).acquire()
    miyagi.release()
    sendai.release()


def test_a_bucket_dataset_is_adopted_and_shared_by_two_organisations(
    aws_env: S3Server, tmp_path: Path, key_env: str
) -> None:
    aws_env.create_bucket("orgs")

    def config(name: str, vc: int, data: str | None = None, **collector: Any) -> Path:
        csv = tmp_path / f"{data or name}.csv"
        rows = [f"T-{i},2024-10-01,○" for i in range(vc)] + [f"X-{name},2024-10-01,×"]
        csv.write_text("端末番号,棚卸日,Web会議対応\n" + "\n".join(rows) + "\n", encoding="utf-8")
        return write_config(
            tmp_path / f"{name}-{len(collector)}.toml",
            {"collector": {"data_dir": "s3://orgs/pref", **collector}, "privacy": {"key": key_env}},
            [
                {
                    "name": "terminals",
                    "kind": "csv",
                    "table": "terminals",
                    "path": str(csv),
                    "columns": {
                        "terminal_id": "端末番号",
                        "snapshot_date": "棚卸日",
                        "vc_capable": "Web会議対応",
                    },
                }
            ],
        )

    plain = config("plain", 3)
    assert _invoke(tmp_path, "--config", str(plain), "ingest").exit_code == 0
    assert any(k.startswith("pref/terminals/source=terminals/") for k in aws_env.keys("orgs"))
    miyagi = config("plain", 3, organisation="040002")  # the same collector, now with its code
    adopted = _invoke(tmp_path, "--config", str(miyagi), "adopt-organisation")
    assert adopted.exit_code == 0, adopted.output
    keys = aws_env.keys("orgs")
    assert not [k for k in keys if k.startswith("pref/terminals/source=")]
    assert any(k.startswith("pref/terminals/organisation=040002/source=terminals/") for k in keys)
    assert any(k.startswith("pref/_state/organisation=040002/sources/") for k in keys)
    sendai = config("sendai", 5, organisation="041009")
    for cfg in (miyagi, sendai):
        result = _invoke(tmp_path, "--config", str(cfg), "run", "--as-of", "2025-03-31")
        assert result.exit_code == 0, result.output
    out = _invoke(
        tmp_path,
        *("--config", str(miyagi), "kpi", "--format", "json", "--as-of", "2025-03-31"),
        *("--organisation", "all"),
    )
    rows = [r for r in json.loads(out.output) if r["kpi"] == "vc_capable_terminals"]
    r6 = next(r for r in rows if r["fiscal_year"] == 2024)
    assert (r6["numerator"], r6["denominator"]) == (8, 10)
