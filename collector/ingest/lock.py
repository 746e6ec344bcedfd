"""One writer at a time: an advisory lock on a file in the data directory.

Writers also create everything owner-only (:func:`owner_only`): the data holds
pseudonymised staff activity, the quarantine may hold raw text, and a cron job's
umask (022) would otherwise leave it readable by every local account.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from workstyle.collector.errors import ConfigError, LockedError

#: The umask of a writer: folders 0700, files 0600, whatever the caller's umask.
PRIVATE_UMASK = 0o077


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Create files and folders readable by their owner only, for the block's duration."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


class WriterLock:
    """``flock`` on ``<data_dir>/_state/writer.lock``; released when the process dies."""

    def __init__(self, data_dir: Path, wait: float = 0.0) -> None:
        self.path = data_dir / "_state" / "writer.lock"
        self.wait = wait
        self._fd: int | None = None
        self.acquired_at: float | None = None

    def acquire(self) -> None:
        try:
            with owner_only():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"{self.path.parent.parent}: cannot create the data directory's writer lock"
                f" ({exc.strerror}); check data_dir and its permissions"
            ) from None
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"{self.path}: another collector run or backfill{holder} is writing"
                        " to this data directory; wait for it to finish or give"
                        " --lock-wait SECONDS"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        #: When this process became the writer (temp files older than this are not ours).
        self.acquired_at = time.time()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        pid = os.read(fd, 32).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
