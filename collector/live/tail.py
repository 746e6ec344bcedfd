"""Following growing log files between polls: what each file holds beyond the last poll.

Files are tracked by device and inode, so a rotation by rename (``vpn.log`` ->
``vpn.log.1``) keeps its place and the new ``vpn.log`` is read from its start; a file
that shrank (truncated, or replaced in place) is read again from its start. A file
first seen is read from ``tail_bytes`` before its end: a live view needs the recent
past, not years of history. Only complete lines are handed out; compressed rotations
are old by definition and skipped.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

#: How much of a file first seen is read: hours of a busy gateway's VPN events.
TAIL_BYTES = 32 * 1024 * 1024
COMPRESSED = (".gz", ".bz2", ".xz", ".zip")


@dataclass
class Chunk:
    """New complete lines of one file."""

    path: Path
    key: tuple[int, int]
    data: bytes
    #: Byte offset of ``data`` in the file, and complete lines before it (when known).
    offset: int
    line: int
    #: True when the file was (re)started from its beginning.
    fresh: bool


@dataclass
class _Place:
    offset: int
    line: int


class Tail:
    """The files of some glob patterns and how far each has been read."""

    def __init__(self, patterns: list[str], base_dir: Path, tail_bytes: int = TAIL_BYTES) -> None:
        self.patterns = [
            str(p if Path(p).expanduser().is_absolute() else base_dir / p)
            for p in (os.path.expanduser(str(p)) for p in patterns)
        ]
        self.tail_bytes = tail_bytes
        self.places: dict[tuple[int, int], _Place] = {}
        #: Files the last :meth:`read` could not open (each is tried again next time).
        self.errors: list[str] = []

    def files(self, since: float | None = None) -> list[tuple[Path, os.stat_result]]:
        """Matching plain files (and their stat), optionally only those modified since."""
        out = []
        for f in sorted({Path(m) for p in self.patterns for m in glob.glob(p)}):
            if f.name.endswith(COMPRESSED):
                continue
            try:
                st = f.stat()
            except OSError:
                continue  # rotated away between glob and stat: the next poll sees it
            if f.is_file() and (since is None or st.st_mtime >= since):
                out.append((f, st))
        return out

    def read(self, whole: bool = False, since: float | None = None) -> list[Chunk]:
        """New complete lines of every file that grew.

        ``whole``: ``data`` is the file from its start (to the last complete line) and
        ``offset``/``line`` say where the new part begins, for parsers that need the
        file's head (a CSV header); otherwise ``data`` is the new lines alone. ``since``
        skips (and forgets) files not modified since that epoch second.
        """
        out: list[Chunk] = []
        seen: set[tuple[int, int]] = set()
        self.errors = []
        for path, st in self.files(since):
            key = (st.st_dev, st.st_ino)
            seen.add(key)
            place = self.places.get(key)
            fresh = place is None or st.st_size < place.offset
            if fresh:
                place = _Place(0, 0)
                if not whole and st.st_size > self.tail_bytes:
                    place = _Place(st.st_size - self.tail_bytes, -1)
            if st.st_size <= place.offset:
                self.places[key] = place
                continue
            read_from = 0 if whole else place.offset
            try:
                with path.open("rb") as fh:
                    fh.seek(read_from)
                    data = fh.read(st.st_size - read_from)
            except OSError as exc:
                # Its place is not moved: read next time, the other files now.
                self.errors.append(f"{path}: cannot read: {exc.strerror}")
                continue
            offset, line = place.offset, place.line
            if line < 0:
                # Started mid-file: drop the partial first line; line numbers are unknown.
                cut = data.find(b"\n") + 1
                if cut == 0:
                    self.places[key] = place  # not even one whole line yet
                    continue
                data, offset, line = data[cut:], offset + cut, 0
                read_from = offset
            end = data.rfind(b"\n") + 1  # complete lines only; the rest waits
            if read_from + end <= offset:
                self.places[key] = _Place(offset, line)
                continue
            data = data[:end]
            new = data[offset - read_from :]
            out.append(Chunk(path, key, data, offset, line, fresh))
            self.places[key] = _Place(read_from + end, line + new.count(b"\n"))
        for key in set(self.places) - seen:
            del self.places[key]
        return out

    def forget(self, key: tuple[int, int]) -> None:
        """Start this file afresh next time (its last read failed)."""
        self.places.pop(key, None)
