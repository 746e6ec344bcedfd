"""The poller: every live reader on its own thread and interval, one atomic snapshot.

A reader that hangs or fails delays only itself: the others keep their intervals, and
the exporter keeps serving the last snapshot. The snapshot is rewritten after every
poll of any source (a few hundred bytes), under a lock so writes never interleave.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

from workstyle.collector.config import Config
from workstyle.collector.live.base import Clock, LiveReader
from workstyle.collector.live.readers import readers
from workstyle.collector.live.snapshot import (
    Reading,
    Snapshot,
    read_snapshot,
    snapshot_path,
    write_snapshot,
)

log = logging.getLogger("collector.live")


class Poller:
    """Polls the config's live sources and keeps the snapshot file up to date."""

    def __init__(self, cfg: Config, *, clock: Clock = time.time, path: Path | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.path = path or snapshot_path(cfg.location.machine_dir())
        self.readers: list[LiveReader] = readers(cfg, clock)
        self.readings: dict[str, Reading] = {}
        # A process killed mid-write leaves its temporary file: never read, removed here.
        for stale in self.path.parent.glob(".snapshot.*.tmp"):
            stale.unlink(missing_ok=True)
        # Values survive a restart: the last snapshot's, stale until the first poll.
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            old = read_snapshot(self.path).sources
            for r in self.readers:
                if r.name in old and old[r.name].kind == r.source.kind:
                    self.readings[r.name] = old[r.name]
                    self.readings[r.name].ok = False
        self._lock = threading.Lock()
        self._write_error: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def poll_once(self) -> None:
        """Poll every reader once, in turn (tests and ``collector live --once``)."""
        for reader in self.readers:
            self._poll(reader)

    def _poll(self, reader: LiveReader) -> None:
        reading = reader.poll(self.readings.get(reader.name))
        with self._lock:
            self.readings[reader.name] = reading
            try:
                write_snapshot(self.path, Snapshot(self.clock(), dict(self.readings)))
            except OSError as exc:
                # Once per change, not once per poll: the exporter shows live_up 0 meanwhile.
                error = f"live: cannot write {self.path}: {exc.strerror}; give the poller's user"
                error += f" write access to {self.path.parent}"
                if error != self._write_error:
                    log.error("%s", error)
                self._write_error = error
            else:
                if self._write_error:
                    log.info("live: writing %s again", self.path)
                self._write_error = None

    def start(self) -> None:
        """Start one daemon thread per reader."""
        for reader in self.readers:
            t = threading.Thread(
                target=self._loop, args=(reader,), name=f"live-{reader.name}", daemon=True
            )
            t.start()
            self._threads.append(t)
        if self.readers:
            log.info(
                "live: polling %s; snapshot %s",
                ", ".join(f"{r.name} every {r.interval:g} s" for r in self.readers),
                self.path,
            )

    def _loop(self, reader: LiveReader) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._poll(reader)
            self._stop.wait(max(0.0, reader.interval - (time.monotonic() - started)))

    def stop(self, timeout: float = 2.0) -> None:
        """Ask every thread to stop; a reader stuck in a request is left to die with the
        process (its thread is a daemon)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for reader in self.readers:
            with contextlib.suppress(Exception):
                reader.close()
