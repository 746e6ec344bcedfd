"""Finding, decoding and recognising the files of a source, shared by every file kind.

- :func:`discover` resolves patterns against the config file's folder, and says
  so when a folder is missing (a source that reads nothing must say so).
- :func:`decode` decodes per line: an undecodable line is quarantined with the
  encoding named and left empty (line numbers stay physical); a line over
  :data:`MAX_LINE_BYTES` likewise. The rest of the file is read.
- :class:`Identities` recognises append-only files by content: a head
  fingerprint finds candidates, a hash of the bytes read so far tells a grown
  file, a copy, a rename or a ``.gz`` rotation (same bytes) from a *different*
  file that merely starts with the same lines.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import hashlib
import os
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from workstyle.adapters.base import Quarantined
from workstyle.collector.errors import SourceError

ENCODINGS = ("utf-8", "cp932", "auto")
BOM = codecs.BOM_UTF8
#: The documented limit of one physical line; a longer line is quarantined, not read.
MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass
class Discovery:
    """The files a source's patterns match, and how many each pattern matched."""

    files: list[Path]
    matched: dict[str, int]

    def unmatched(self) -> list[str]:
        return [p for p, n in self.matched.items() if n == 0]


def resolve(pattern: str | Path, base_dir: Path) -> Path:
    """A path or glob from the config, relative to the config file's folder."""
    p = Path(pattern).expanduser()
    return p if p.is_absolute() else base_dir / p


def folder_of(pattern: Path) -> Path:
    """The deepest folder of a glob that has no wildcard in it."""
    parts = pattern.parts
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return Path(*parts[:i]) if i else Path(".")
    return pattern.parent


def discover(patterns: Iterable[Path]) -> Discovery:
    """Files matching any pattern, sorted by name, each once; a missing folder is an error."""
    seen: dict[str, Path] = {}
    matched: dict[str, int] = {}
    for pattern in patterns:
        folder = folder_of(pattern) if glob.has_magic(str(pattern)) else pattern.parent
        if not folder.is_dir():
            raise SourceError(
                f"{folder}: folder not found (pattern {pattern}); check the source's path"
                " (relative paths are relative to the config file)"
            )
        if not os.access(folder, os.R_OK | os.X_OK):
            raise SourceError(f"{folder}: folder not readable by this user; check its permissions")
        n = 0
        for match in glob.glob(str(pattern), recursive=True):
            p = Path(match)
            if p.is_file():
                n += 1
                seen.setdefault(str(p.resolve()), p)
        matched[str(pattern)] = n
    files = sorted(seen.values(), key=lambda p: (p.name, str(p)))
    return Discovery(files, matched)


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
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{path}: cannot read file: {exc}") from None


def strip_bom(data: bytes) -> bytes:
    return data[len(BOM) :] if data.startswith(BOM) else data


def sha(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def content_fingerprint(data: bytes) -> str:
    return sha(strip_bom(data))


def head_length(data: bytes, lines: int) -> int | None:
    """Bytes of the first ``lines`` complete lines, or None while the file is shorter."""
    pos = 0
    for _ in range(lines):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        pos = nl + 1
    return pos


def complete_length(data: bytes, path: Path, settle_seconds: float, quoted: bool = False) -> int:
    """Bytes up to the last complete record; the whole file once it has been quiet a while.

    A line still being written has no newline yet: it is left for the next run,
    unless the file has not changed for ``settle_seconds``. With ``quoted`` (CSV),
    a record whose quoted field is still open at the end is left too, while the
    file may still grow; in a quiet file it is read (and quarantined), not waited
    for. The quote byte never occurs inside a UTF-8 or CP932 multi-byte character,
    so bytes serve.
    """
    if data.endswith(b"\n") and not quoted:
        return len(data)
    try:
        quiet = time.time() - os.stat(path).st_mtime >= settle_seconds
    except OSError:
        quiet = False
    if quiet:
        return len(data)
    end = data.rfind(b"\n") + 1  # the whole file when it ends with a line end
    if quoted:
        # An odd number of quotes in what is left means a record is still open.
        odd = data.count(b'"', 0, end) % 2
        while odd and end > 0:
            start = data.rfind(b"\n", 0, end - 1) + 1
            odd ^= data.count(b'"', start, end) % 2
            end = start
    return end


def decode(data: bytes, encoding: str, path: Path, first_line: int) -> tuple[str, str, Quarantined]:
    """Decode to text line by line: returns the text, the encoding used and bad lines.

    ``auto`` is UTF-8 when the chunk has more valid than invalid UTF-8 characters
    (CP932 text is almost never valid UTF-8), else CP932. An undecodable or
    over-long line becomes an empty line (numbering stays physical) and is
    quarantined with the encoding named; the other lines are read.
    """
    data = strip_bom(data)
    if encoding == "auto":
        encoding = "utf-8" if _mostly_utf8(data) else "cp932"
    long = len(data) > MAX_LINE_BYTES and max(map(len, data.split(b"\n"))) > MAX_LINE_BYTES
    if not long:
        try:
            return data.decode(encoding), encoding, Quarantined.empty()
        except UnicodeDecodeError:
            pass
    q = Quarantined.empty()
    out: list[str] = []
    # Only a file with bad lines gets here: a loop over its lines is affordable.
    for i, raw in enumerate(data.split(b"\n")):
        where = f"{path}:{first_line + i}"
        if len(raw) > MAX_LINE_BYTES:
            q.add(where, f"line of {len(raw)} bytes exceeds the {MAX_LINE_BYTES} byte limit", "")
            out.append("")
            continue
        try:
            out.append(raw.decode(encoding))
        except UnicodeDecodeError as exc:
            other = " (nor CP932)" if encoding == "utf-8" and _fails(raw, "cp932") else ""
            q.add(
                where,
                f"not valid {encoding.upper()}{other} at byte {exc.start} of the line; the line was"
                " not read (check the source's encoding setting: utf-8, cp932 or auto)",
                raw.decode(encoding, errors="backslashreplace"),
            )
            out.append("")
    _wrong_setting(data, encoding, path, q)
    return "\n".join(out), encoding, q


def _wrong_setting(data: bytes, encoding: str, path: Path, q: Quarantined) -> None:
    """A file mostly in the other encoding is a setting to fix, not lines to quarantine."""
    other = "cp932" if encoding == "utf-8" else "utf-8"
    good = sum(1 for ln in data.split(b"\n") if not ln.isascii()) - len(q)
    if len(q) < 2 or good >= len(q) or _fails(data, other):
        return
    raise SourceError(
        f"{path}: {len(q)} lines are not valid {encoding} but the whole file is valid {other};"
        f' set encoding = "{other}" (or "auto") for this source'
    )


def _mostly_utf8(data: bytes) -> bool:
    """More non-ASCII lines are valid UTF-8 than are not (counted in columns, not a loop)."""
    text = data.decode("utf-8", errors="replace")
    if "\ufffd" not in text:
        return True
    lines = pl.Series(text.split("\n"), dtype=pl.String)
    bad = lines.str.contains("\ufffd", literal=True)
    good = ~bad & lines.str.contains(r"[^\x00-\x7f]")
    return int(good.sum()) > int(bad.sum())


def _fails(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return True
    return False


@dataclass
class Known:
    """How one file of a source was recognised: its identity and the bytes already read."""

    identity: str
    offset: int = 0
    lines: int = 0
    entry: dict[str, Any] = field(default_factory=dict)


@dataclass
class Identities:
    """Recognises append-only files against a manifest ``{identity: entry}``.

    An entry holds ``head`` (hash of the first ``head_lines`` lines), ``offset`` and
    ``lines`` read, and ``checks``: ``{length: hash of the first length bytes}`` at
    every length a run stopped at. A file matches an entry when its head matches
    and its bytes up to the entry's offset hash alike (it is that file, maybe
    grown) or, when it is shorter, up to the longest check it covers (an older
    copy). A file matching none is new; its identity is the head hash, or, when
    another file already has that, the hash of its first bytes read.
    """

    manifest: dict[str, dict[str, Any]]
    head_lines: int = 1

    def __post_init__(self) -> None:
        self.by_head: dict[str, list[str]] = {}
        for ident, entry in self.manifest.items():
            self.by_head.setdefault(entry.get("head", ident), []).append(ident)

    def head(self, data: bytes) -> str | None:
        n = head_length(data, self.head_lines)
        return None if n is None else sha(data[:n])

    def recognise(self, data: bytes, end: int, taken: set[str]) -> Known | None:
        """The identity and read position of ``data``; None before its head lines are complete.

        ``taken``: identities given to other files of this run (a different file with
        the same head lines gets its own identity).
        """
        head = self.head(data)
        if head is None:
            return None
        for ident in self.by_head.get(head, []):
            entry = self.manifest[ident]
            if self._same(data, entry):
                return Known(ident, int(entry.get("offset", 0)), int(entry.get("lines", 0)), entry)
        ident = head if head not in self.manifest and head not in taken else sha(data[:end])
        return Known(ident, entry={"head": head})

    @staticmethod
    def _same(data: bytes, entry: dict[str, Any]) -> bool:
        checks = entry.get("checks")
        if not checks:
            return True  # written before checks existed: the head decided then too
        offset = int(entry.get("offset", 0))
        if len(data) >= offset:
            return sha(data[:offset]) == checks.get(str(offset))
        covered = [int(n) for n in checks if int(n) <= len(data)]
        return bool(covered) and sha(data[: max(covered)]) == checks[str(max(covered))]

    def record(
        self,
        ident: str,
        entry: dict[str, Any],
        data: bytes,
        end: int,
        lines: int,
        path: Path,
        digest: str | None = None,
    ) -> dict[str, Any]:
        """The manifest entry once ``data[:end]`` (whose sha is ``digest``) is read."""
        entry = dict(entry)
        checks = dict(entry.get("checks") or {})
        checks[str(end)] = digest or sha(memoryview(data)[:end])
        # The few most recent stops are enough to recognise older copies.
        keep = sorted(checks, key=int)[-8:]
        entry.update(offset=end, lines=lines, path=str(path), checks={k: checks[k] for k in keep})
        entry.setdefault("head", self.head(data))
        self.manifest[ident] = entry
        ids = self.by_head.setdefault(entry["head"], [])
        if ident not in ids:
            ids.append(ident)
        return entry
