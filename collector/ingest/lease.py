"""One writer at a time in object storage: a lease object with conditional writes.

A local data directory keeps its ``flock`` (:mod:`.lock`). In a bucket, collectors on
different machines share no lock, so the writer takes a lease:
``<prefix>/_state/writer.lease``, a small JSON object naming its holder and when it
expires. It is created with ``If-None-Match: *`` (exactly one of two racing writers
succeeds), renewed with ``If-Match: <etag>`` every third of its lifetime, and deleted
with ``If-Match`` on release. A lease past its expiry, or one whose holder is a dead
process on this same machine, is taken over with ``If-Match`` on the etag that was
read, so two writers breaking one stale lease cannot both win. A writer whose renewal
fails has lost the lease: its next write raises instead of interleaving with the new
holder's.

pyarrow's S3 filesystem sends no conditional headers, so the lease uses botocore, which
signs requests (SigV4) and resolves credentials exactly like the AWS CLI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from workstyle.collector.errors import ConfigError, LockedError
from workstyle.collector.ingest.lock import WriterLock
from workstyle.collector.storage import DataLocation

log = logging.getLogger("collector")

LEASE_FILE = "writer.lease"
#: S3 answers a failed condition with 412; some stores say 409 when two writes race.
_LOST = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_CREDENTIALS = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "NoSuchBucket",
    "403",
}


def writer_lock(location: DataLocation, wait: float) -> WriterLock | Lease:
    """The single-writer lock of a data directory: ``flock`` locally, a lease in a bucket."""
    if location.is_local:
        return WriterLock(Path(location.root), wait)
    return Lease(location, wait, location.settings.lease_seconds)


class Lease:
    """A writer lease on ``<data_dir>/_state/writer.lease`` in object storage."""

    def __init__(self, location: DataLocation, wait: float = 0.0, seconds: float = 300.0) -> None:
        self.location = location
        self.wait = wait
        self.seconds = seconds
        # One lease per organisation: collectors of different organisations write
        # disjoint partitions and never wait for each other.
        self.key = location.org_path("_state", LEASE_FILE).partition("/")[2]
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.etag: str | None = None
        self.lost: str | None = None
        self._renewed = 0.0
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"s3://{self.location.bucket}/{self.key}"

    # -- the protocol --------------------------------------------------------------------
    def acquire(self) -> None:
        self._client = self.location.s3_client()
        self._check_conditional_writes()
        deadline = time.monotonic() + self.wait
        while True:
            if self._put(if_none_match=True):
                break
            current = self._get()
            if current is None:
                continue  # released between our two requests: try again at once
            etag, body = current
            if self._stale(body) and self._put(if_match=etag):
                log.warning(
                    "%s: took over the lease of %s (%s)",
                    self.where,
                    body.get("holder", "an unknown writer"),
                    "expired" if _expired(body) else "its process is gone",
                )
                break
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"{self.where}: another collector run or backfill"
                    f" ({body.get('holder', 'unknown')}, lease until {body.get('expires_at')})"
                    " is writing to this data directory; wait for it to finish or give"
                    " --lock-wait SECONDS"
                )
            time.sleep(min(1.0, max(0.05, self.seconds / 20)))
        self._renewed = time.monotonic()
        self.location.write_guard = self.check
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
        self._thread.start()

    def _check_conditional_writes(self) -> None:
        """Refuse a store that ignores If-None-Match: its lease would not exclude anyone."""
        probe = f"{self.key}.probe-{self.holder.replace(':', '-')}"
        args = {"Bucket": self.location.bucket, "Key": probe, "Body": b"", "IfNoneMatch": "*"}
        try:
            self._call("put_object", **args)
            try:
                self._call("put_object", **args)
            except _Conditional:
                return
            raise ConfigError(
                f"data_dir {self.location.uri}: the store ignores conditional writes"
                " (If-None-Match), so two collectors could write at once; use a store that"
                " supports them (AWS S3 does) or a local data_dir"
            )
        finally:
            with contextlib.suppress(Exception):
                self._client.delete_object(Bucket=self.location.bucket, Key=probe)

    def check(self) -> None:
        """Raise if the lease was lost: no write may follow another writer's."""
        if self.lost:
            raise LockedError(f"{self.where}: {self.lost}; stopped writing")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.location.write_guard = None
        if self.etag is not None and not self.lost:
            try:
                self._client.delete_object(
                    Bucket=self.location.bucket, Key=self.key, IfMatch=self.etag
                )
            except Exception as exc:  # noqa: BLE001 - an unreleased lease simply expires
                log.warning(
                    "%s: could not release the lease (it expires by itself): %s", self.where, exc
                )
        self.etag = None

    # -- requests ------------------------------------------------------------------------
    def _body(self) -> bytes:
        now = dt.datetime.now(dt.UTC)
        return json.dumps(
            {
                "holder": self.holder,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": now.isoformat(),
                "expires_at": (now + dt.timedelta(seconds=self.seconds)).isoformat(),
            }
        ).encode()

    def _put(self, *, if_none_match: bool = False, if_match: str | None = None) -> bool:
        """One conditional PUT; False when the condition failed (someone else holds it)."""
        args: dict[str, Any] = {
            "Bucket": self.location.bucket,
            "Key": self.key,
            "Body": self._body(),
        }
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match:
            args["IfMatch"] = if_match
        try:
            answer = self._call("put_object", **args)
        except _Conditional:
            return False
        self.etag = answer["ETag"]
        return True

    def _get(self) -> tuple[str, dict[str, Any]] | None:
        try:
            answer = self._call("get_object", Bucket=self.location.bucket, Key=self.key)
        except _Missing:
            return None
        try:
            body = json.loads(answer["Body"].read())
        except ValueError:
            body = {}  # an unreadable lease is treated as expired
        return answer["ETag"], body if isinstance(body, dict) else {}

    def _call(self, op: str, **args: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, op)(**args)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _LOST or status in _LOST:
                raise _Conditional from None
            if code in _CREDENTIALS or status == "403":
                raise ConfigError(
                    f"data_dir {self.location.uri}: the store refused the writer lease"
                    f" ({code}); check [storage] or the AWS_* credentials and that the"
                    " bucket exists"
                ) from None
            if op == "get_object" and (code in {"NoSuchKey", "404"} or status == "404"):
                raise _Missing from None
            raise LockedError(f"{self.where}: lease request failed: {code} {exc}") from None
        except BotoCoreError as exc:
            raise ConfigError(
                f"data_dir {self.location.uri}: cannot take the writer lease: {exc};"
                " check [storage] endpoint_url / AWS_ENDPOINT_URL and the credentials"
            ) from None

    def _stale(self, body: dict[str, Any]) -> bool:
        """Expired, or held by a process of this machine that no longer exists."""
        if _expired(body):
            return True
        if body.get("host") == socket.gethostname() and isinstance(body.get("pid"), int):
            return not _alive(body["pid"])
        return False

    def renew_once(self) -> bool | None:
        """Extend the lease; False once it is lost, None when the store could not be asked."""
        try:
            renewed = self._put(if_match=self.etag)
        except Exception as exc:  # noqa: BLE001 - retried at the next beat
            log.warning("%s: could not renew the lease: %s", self.where, exc)
            if time.monotonic() - self._renewed >= self.seconds:
                # Past its expiry another collector may hold it: stop writing.
                self.lost = "the writer lease expired while the store could not be reached"
                log.error("%s: %s", self.where, self.lost)
                return False
            return None
        if renewed:
            self._renewed = time.monotonic()
        else:
            self.lost = "the writer lease was taken over by another collector"
            log.error("%s: %s", self.where, self.lost)
        return renewed

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            if self.renew_once() is False:
                return

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class _Conditional(Exception):
    """The store refused a conditional write."""


class _Missing(Exception):
    """No lease object."""


def _expired(body: dict[str, Any]) -> bool:
    try:
        expires = dt.datetime.fromisoformat(body["expires_at"])
    except (KeyError, TypeError, ValueError):
        return True
    return expires <= dt.datetime.now(dt.UTC)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
