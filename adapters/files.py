"""Finding, decoding and recognising export files, shared by the file-based adapters.

Files are recognised by content, not by name. Two kinds of fingerprint:

- :func:`content_fingerprint` hashes the whole file: for exports that are written
  once (or regenerated whole). A copy or a rename has the same fingerprint and is
  not read again; a regenerated export is a new file and is read whole (the
  upsert keeps one row per natural key).
- :func:`head_fingerprint` hashes the first lines up to and including the first
  data line: for append-only logs. A log that grows keeps its fingerprint, so it
  is read from the byte where the last run stopped; a copy is recognised.

Rotated and compressed copies (``.1``, ``.gz``) are read decompressed, so
``x.log`` and a later ``x.log.1.gz`` have the same fingerprint.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import gzip
import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from workstyle.collector.errors import SourceError

ENCODINGS = ("utf-8", "cp932", "auto")
BOM = codecs.BOM_UTF8


def discover(patterns: Iterable[str | Path]) -> list[Path]:
    """Files matching any of the glob patterns, sorted by name, each once."""
    seen: dict[str, Path] = {}
    for pattern in patterns:
        for match in glob.glob(str(pattern), recursive=True):
            p = Path(match)
            if p.is_file():
                seen.setdefault(str(p.resolve()), p)
    return sorted(seen.values(), key=lambda p: (p.name, str(p)))


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzip (by magic number, not by name)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=fh) as gz:
                    return gz.read()
            return fh.read()
    except (OSError, EOFError) as exc:
        raise SourceError(f"{path}: cannot read file: {exc}") from None


def strip_bom(data: bytes) -> bytes:
    return data[len(BOM) :] if data.startswith(BOM) else data


def to_utf8(data: bytes, encoding: str, path: Path) -> bytes:
    """Transcode to UTF-8 (BOM removed); one clear error naming the file when it is wrong."""
    data = strip_bom(data)
    if encoding == "auto":
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            encoding = "cp932"
    if encoding == "utf-8":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{path}: not valid UTF-8 at byte {exc.start}; if the file was written by"
                ' Japanese Windows set encoding = "cp932" for this source'
            ) from None
        return data
    try:
        return data.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path}: not valid {encoding} at byte {exc.start}; check the"
            " source's encoding setting (utf-8, cp932 or auto)"
        ) from None


def content_fingerprint(data: bytes) -> str:
    return hashlib.sha256(strip_bom(data)).hexdigest()


def head_fingerprint(data: bytes, lines: int) -> str | None:
    """Hash of the first ``lines`` complete lines, or None while the file is shorter."""
    data = strip_bom(data)
    pos = 0
    for _ in range(lines):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        pos = nl + 1
    return hashlib.sha256(data[:pos]).hexdigest()


def complete_length(data: bytes, path: Path, settle_seconds: float) -> int:
    """Bytes up to the last newline; the whole file once it has not changed for a while.

    A line still being written has no newline yet: it is left for the next run,
    unless the file has been quiet for ``settle_seconds`` (a finished file whose
    writer omitted the final newline).
    """
    if data.endswith(b"\n"):
        return len(data)
    try:
        quiet = time.time() - os.stat(path).st_mtime >= settle_seconds
    except OSError:
        quiet = False
    if quiet:
        return len(data)
    return data.rfind(b"\n") + 1


def locate_lines(text: str, first_line: int, wanted: list[str]) -> list[int]:
    """Line numbers of ``wanted`` texts in ``text`` (in order; each match used once)."""
    lines = text.split("\n")
    out: list[int] = []
    start = 0
    for w in wanted:
        w = w.rstrip("\r")
        for i in range(start, len(lines)):
            if lines[i].rstrip("\r") == w:
                out.append(first_line + i)
                start = i + 1
                break
        else:
            out.append(-1)
    return out


class FileErrors:
    """Collects per-file errors so one unreadable file does not stop the others."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except SourceError as exc:
            self.errors.append(str(exc))

    def raise_if_any(self) -> None:
        """One SourceError for the run, after every readable file was read."""
        if self.errors:
            raise SourceError(
                f"{len(self.errors)} file(s) could not be read; first: {self.errors[0]}"
            )
