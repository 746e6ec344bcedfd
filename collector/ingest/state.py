"""Per-source state: watermark, adapter checkpoint and last run, written atomically.

State is keyed by the source's name *and* a hash of the settings that define what
it reads (:func:`collector.config.identity_of`), so pointing a source at another
folder or account starts afresh instead of silently reusing an old watermark. The
state moves only after the data it describes is committed, and the watermark never
moves past the start of the run that wrote it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstyle.collector import storage
from workstyle.collector.storage import DataLocation


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def describe_spans(spans: list[Any]) -> str:
    """Spans ``[start, end)`` for people: whole UTC days as inclusive dates, else times."""
    parts = []
    for lo, hi in spans:
        lo, hi = (
            (v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v)).astimezone(dt.UTC)
            for v in (lo, hi)
        )
        if lo.time() == dt.time() and hi.time() == dt.time():
            days = (hi - lo).days
            last = (hi - dt.timedelta(days=1)).date()
            span = f"{lo.date()}" if days == 1 else f"{lo.date()}..{last}"
            parts.append(f"{span} ({days} day{'' if days == 1 else 's'})")
        else:
            parts.append(f"{lo:%Y-%m-%d %H:%M:%S}Z until {hi:%Y-%m-%d %H:%M:%S}Z")
    return ", ".join(parts)


def identity_hash(identity: dict[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def parse_ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@dataclass
class SourceState:
    """What the collector remembers about one source (for one identity)."""

    source: str
    identity: dict[str, Any]
    #: Everything before this instant (UTC) is committed.
    watermark: dt.datetime | None = None
    #: The newest event time seen in committed data (freshness).
    newest_event: dt.datetime | None = None
    #: The adapter's own checkpoint (e.g. the manifest of files read).
    checkpoint: dict[str, Any] = field(default_factory=dict)
    last_run: dict[str, Any] = field(default_factory=dict)
    last_success_at: dt.datetime | None = None
    #: Consecutive failed incremental runs (for alerting).
    consecutive_failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "identity": self.identity,
            "watermark": self.watermark,
            "newest_event": self.newest_event,
            "checkpoint": self.checkpoint,
            "last_run": self.last_run,
            "last_success_at": self.last_success_at,
            "consecutive_failures": self.consecutive_failures,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SourceState:
        return cls(
            source=obj["source"],
            identity=obj.get("identity", {}),
            watermark=parse_ts(obj.get("watermark")),
            newest_event=parse_ts(obj.get("newest_event")),
            checkpoint=obj.get("checkpoint") or {},
            last_run=obj.get("last_run") or {},
            last_success_at=parse_ts(obj.get("last_success_at")),
            consecutive_failures=int(obj.get("consecutive_failures", 0)),
        )


class StateStore:
    """State files under ``<data_dir>/_state``, in a local folder or object storage."""

    def __init__(self, data_dir: Path | DataLocation) -> None:
        self.location = data_dir if isinstance(data_dir, DataLocation) else storage.local(data_dir)
        # Each organisation keeps its own state (its sources may share names with others').
        self.dir = self.location.org_path("_state")

    def path(self, source: str, identity: dict[str, Any]) -> str:
        """The state file of a source with these identity settings."""
        return f"{self.dir}/sources/{source}.{identity_hash(identity)}.json"

    def _read(self, path: str) -> Any | None:
        try:
            return json.loads(self.location.read_bytes(path).decode("utf-8"))
        except FileNotFoundError:
            return None

    def _write(self, path: str, obj: Any) -> None:
        blob = json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True, default=_default)
        self.location.write_bytes(path, blob.encode("utf-8"))

    def load(self, source: str, identity: dict[str, Any]) -> SourceState:
        obj = self._read(self.path(source, identity))
        if obj is None:
            return SourceState(source=source, identity=identity)
        return SourceState.from_json(obj)

    def save(self, state: SourceState) -> None:
        full = state.to_json()
        self._write(self.path(state.source, state.identity), full)
        # Readers that need only a source's health (the exporter) find it by name alone,
        # so they never compute identities, which would mean importing every adapter.
        summary = {k: v for k, v in full.items() if k != "checkpoint"}
        self._write(self.summary_path(state.source), summary)

    def summary_path(self, source: str) -> str:
        """The current identity's state of a source, without its checkpoint."""
        return f"{self.dir}/summary/{source}.json"

    def summary_file(self, source: str) -> Path | storage.StoredFile:
        """The summary of a source as a file handle (a Path when local)."""
        return self.location.file(*self.location.org_parts("_state", "summary", f"{source}.json"))

    def all(self) -> list[SourceState]:
        """Every state file, newest first per source (older identities included)."""
        files = self.location.files(f"{self.dir}/sources", ".json")
        out = []
        for path, _ in sorted(files, key=lambda f: f[1], reverse=True):
            obj = self._read(path)
            if obj is not None:
                out.append(SourceState.from_json(obj))
        return out

    # -- backfills: stateless for the nightly cursor, but resumable ----------------------
    def _backfill_path(
        self, source: str, identity: dict[str, Any], start: dt.datetime, end: dt.datetime
    ) -> str:
        tag = f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
        return f"{self.dir}/backfill/{source}.{identity_hash(identity)}.{tag}.json"

    def backfill_done(
        self, source: str, identity: dict[str, Any], start: dt.datetime, end: dt.datetime
    ) -> set[str]:
        obj = self._read(self._backfill_path(source, identity, start, end))
        return set(obj.get("done_units", [])) if obj else set()

    def backfill_unavailable(
        self, source: str, identity: dict[str, Any], start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Spans earlier attempts of this backfill found the source no longer keeps."""
        obj = self._read(self._backfill_path(source, identity, start, end))
        spans = obj.get("unavailable", []) if obj else []
        return [(dt.datetime.fromisoformat(lo), dt.datetime.fromisoformat(hi)) for lo, hi in spans]

    def save_backfill(
        self,
        source: str,
        identity: dict[str, Any],
        start: dt.datetime,
        end: dt.datetime,
        done: set[str],
        unavailable: list[tuple[dt.datetime, dt.datetime]] | None = None,
    ) -> None:
        self._write(
            self._backfill_path(source, identity, start, end),
            {
                "source": source,
                "start": start,
                "end": end,
                "done_units": sorted(done),
                "unavailable": [list(span) for span in unavailable or []],
            },
        )

    def clear_backfill(
        self, source: str, identity: dict[str, Any], start: dt.datetime, end: dt.datetime
    ) -> None:
        self.location.delete(self._backfill_path(source, identity, start, end))
