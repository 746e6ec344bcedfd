"""The live snapshot: one JSON file of every live source's last poll, replaced atomically.

``<data_dir>/_live/snapshot.json`` by default. The poller writes it (temporary file in
the same folder, fsync, rename); the exporter reads it by stat signature like its other
inputs. It holds counts and times only: no person, host or meeting.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
#: The live value families a reader may report (metric ``workstyle_live_<name>``).
VALUES = (
    "meetings",
    "meeting_participants",
    "vpn_users",
    "vpn_sessions",
    "print_jobs_today",
    "print_sheets_today",
)

#: The ``platform`` label of each kind with a live reader.
PLATFORMS = {
    "zoom": "zoom",
    "webex": "webex",
    "fortigate_vpn": "fortigate",
    "cisco_asa_vpn": "cisco_asa",
    "papercut_print_logger": "papercut",
    "papercut_ng_print_log": "papercut",
    "windows_print_events": "windows",
}


@dataclass
class Reading:
    """One source's last poll: its values (kept from the last success when a poll fails)."""

    kind: str
    platform: str
    interval: float
    ok: bool = False
    error: str | None = None
    #: Epoch seconds of the last poll's start, and of the last successful one.
    last_attempt: float | None = None
    last_success: float | None = None
    duration: float | None = None
    values: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reading:
        values = {k: float(v) for k, v in dict(doc.get("values") or {}).items() if k in VALUES}
        return cls(
            kind=str(doc["kind"]),
            platform=str(doc["platform"]),
            interval=float(doc["interval"]),
            ok=bool(doc.get("ok")),
            error=doc.get("error"),
            last_attempt=_number(doc.get("last_attempt")),
            last_success=_number(doc.get("last_success")),
            duration=_number(doc.get("duration")),
            values=values,
        )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class Snapshot:
    written_at: float
    sources: dict[str, Reading]


def snapshot_path(data_dir: Path) -> Path:
    """Where the poller writes and the exporter reads the snapshot of a data directory."""
    return Path(data_dir) / "_live" / "snapshot.json"


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    """Replace ``path`` with the snapshot; a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {
        "version": VERSION,
        "written_at": snapshot.written_at,
        "sources": {name: asdict(r) for name, r in sorted(snapshot.sources.items())},
    }
    fd, tmp = tempfile.mkstemp(prefix=".snapshot.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_snapshot(path: Path) -> Snapshot:
    """Parse a snapshot file; any bad value raises (the exporter turns it into input_up 0)."""
    with path.open(encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("version") != VERSION:
        raise ValueError(f"snapshot version {doc.get('version')!r}, expected {VERSION}")
    return Snapshot(
        written_at=float(doc["written_at"]),
        sources={str(k): Reading.from_json(v) for k, v in dict(doc["sources"]).items()},
    )
