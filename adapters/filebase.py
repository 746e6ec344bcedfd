"""The template of every file kind: the read loop is here, a subclass only parses chunks.

:class:`FileAdapter` owns, once for all file kinds: discovery (patterns resolved
against the config file's folder; a missing folder is the source's error), which
files are new (append-only files by :class:`~workstyle.adapters.files.Identities`,
exports by a hash of their whole content), the manifest with offsets, backfill
units and resume, per-line decoding with quarantine, per-file error collection (a
file that cannot be read or parsed fails alone, is reported and retried next run)
and progress. A subclass supplies :meth:`FileAdapter.parse`: one decoded
:class:`Chunk` -> canonical rows, quarantined rows, records read. Kinds that join
events across files (session pairing) set ``combined`` and implement
:meth:`FileAdapter.combine` (see :mod:`workstyle.adapters.sessions`).

Checkpoint shape: ``{"files": {identity: entry}, ...what combine keeps}``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.adapters.files import (
    BOM,
    ENCODINGS,
    Discovery,
    Identities,
    complete_length,
    content_fingerprint,
    decode,
    discover,
    head_length,
    read_bytes,
    resolve,
    sha,
    strip_bom,
)
from workstyle.collector.errors import SourceError
from workstyle.collector.options import Option

log = logging.getLogger("collector")

#: Seconds a file must be unchanged before a last line without a newline is read.
SETTLE_SECONDS = 300.0
#: Bytes read to find a file's head lines before deciding whether to read it all.
HEAD_BYTES = 64 * 1024
#: Parse threads, and how many bytes of files may be read ahead of the pipeline.
PARSE_THREADS = max(2, os.cpu_count() or 1)
PARSE_AHEAD_BYTES = 64 * 1024 * 1024
#: Bytes of files read ahead of the planning (they wait in memory until parsed).
READ_AHEAD_BYTES = 4 * 1024 * 1024
#: Rows of one file handed to the pipeline at once (its flush size): a 380 k-row
#: export validated, pseudonymised and written whole held ~100 MB more.
BATCH_ROWS = 50_000
#: Bytes of chunks a ``grouped`` kind parses in one plan (:meth:`FileAdapter.parse_many`),
#: and of a window a ``combined`` kind pairs at once. It bounds memory: four years of
#: print logs at scale 0.1 (two groups in flight) peaked at 545 MB with 8 MB groups,
#: 405-415 MB with 4 MB and 363 MB with 2 MB, which was 15 % slower.
GROUP_BYTES = 4 * 1024 * 1024
#: Groups parsed at once: one plan does not keep both cores busy (parts of it run on
#: one thread), two do.
GROUP_THREADS = 2

#: The options every kind reading files by glob patterns has.
PATHS_OPTIONS: tuple[Option, ...] = (
    Option(
        "paths",
        "list",
        "Glob patterns of the files, relative to the config file; rotated and .gz copies"
        " are recognised (e.g. ['/var/log/remote/vpn/*.log*']).",
        required=True,
        identity=True,
    ),
    Option(
        "encoding",
        "str",
        "Text encoding (auto: UTF-8 with or without BOM, else CP932); a line that does"
        " not decode is quarantined alone.",
        default="auto",
        choices=ENCODINGS,
    ),
)

#: The zone of timestamps a device writes without an offset.
TIMEZONE_OPTION = Option(
    "timezone",
    "str",
    "IANA zone of the device clock, for timestamps written without an offset;"
    " default: [collector] timezone.",
    default=None,
)


@dataclass
class Chunk:
    """The not-yet-read part of one file, decoded (undecodable lines left empty)."""

    path: Path
    #: The file's identity: part of the natural key of rows keyed by position.
    identity: str
    #: 1-based physical line number of the first line of ``text``.
    first_line: int
    text: str
    #: The raw (decompressed) bytes of the chunk, for binary formats.
    data: bytes = b""
    #: Notes a kind keeps per file between reads (e.g. the year of the last line).
    memo: dict[str, Any] = field(default_factory=dict)
    #: Rows a kind left out on purpose (row filters), counted in the batch.
    filtered: pl.DataFrame | None = None
    #: Line ends in ``data`` (counted once, when the read was planned).
    newlines: int | None = None

    @property
    def location(self) -> str:
        return str(self.path)


@dataclass
class _Work:
    """One chunk planned for parsing, and the manifest entry to write once it is read."""

    n: int
    chunk: Chunk
    #: Lines that did not decode; None until decoded (``grouped`` kinds decode lazily).
    decoded: Quarantined | None
    unit: str
    commit: _Commit
    size: int


Parsed = tuple[pl.DataFrame, Quarantined, int]
#: Works parsed together and their shared result (or the one file's failure).
_Parsed = tuple[list["_Work"], "Parsed | BaseException"]


class FileAdapter(Adapter):
    """Base of every file kind: discovery, recognition, manifest, decoding, errors."""

    windowed = True
    #: ``append``: files only grow, read from where the last run stopped (keys may
    #: use identity + line); ``whole``: exports, read again whole when they change.
    growth: ClassVar[str] = "append"
    #: Lines hashed to find candidate matches of an append-only file.
    head_lines: ClassVar[int] = 1
    #: CSV: a record may span lines inside quotes (a read never stops mid-record).
    quoted: ClassVar[bool] = False
    #: Join the parsed frames of every file before yielding (session pairing).
    combined: ClassVar[bool] = False
    #: Parse files on threads (pyarrow and polars release the GIL).
    threaded: ClassVar[bool] = False
    #: Call :meth:`recognise` on every file read, not only in ``check``.
    recognise_on_read: ClassVar[bool] = False
    #: Many chunks are parsed at once by :meth:`parse_many` (the fast path); a chunk
    #: it declines is decoded and parsed alone by :meth:`parse`.
    grouped: ClassVar[bool] = False

    # -- hooks ----------------------------------------------------------------------
    def patterns(self) -> list[Path]:
        """The source's glob patterns, resolved against the config file's folder."""
        paths = self.opt("paths")
        if paths is None:
            paths = [self.opt("path")]
        return [resolve(str(p), self.source.base_dir) for p in paths]

    def may_hold(self, path: Path, request: ReadRequest) -> bool:
        """Whether a file may hold rows of the request's window (by its name, say)."""
        return True

    def binary(self, data: bytes) -> bool:
        """Whether ``data`` is a binary format (not decoded; parsed from ``Chunk.data``)."""
        return False

    def recognise(self, path: Path, data: bytes) -> str:
        """Raise SourceError when the file is not this kind's format; else describe it."""
        return "readable"

    def parse(self, chunk: Chunk, request: ReadRequest) -> Parsed:
        """Canonical rows (or events, when ``combined``), quarantined rows, records read."""
        raise NotImplementedError

    def parse_many(self, chunks: list[Chunk], request: ReadRequest) -> Parsed | None:
        """Rows of many chunks in one plan; None declines (each is then parsed alone).

        ``grouped`` kinds get the chunks undecoded (``data``) and may return ``_chunk``
        (index); ``combined`` kinds get them decoded, as :meth:`parse` does.
        """
        return None

    def combine(
        self,
        frames: list[pl.DataFrame],
        request: ReadRequest,
        state: dict[str, Any],
        q: Quarantined,
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        """Rows from the parsed frames of every file, and state to keep (``combined`` kinds)."""
        raise NotImplementedError

    def settle_seconds(self) -> float:
        value = self.opt("settle_seconds")
        return SETTLE_SECONDS if value is None else float(value)

    # -- the loop ---------------------------------------------------------------------
    def discover(self) -> Discovery:
        found = discover(self.patterns())
        self.files_matched = found.matched
        return found

    def check(self) -> str:
        """Folder exists, files match, the first file is recognised."""
        found = self.discover()
        if not found.files:
            return f"warning: no files matched {', '.join(found.unmatched())}"
        first = found.files[0]
        what = self.recognise(first, read_bytes(first))
        return f"ok, {len(found.files)} file(s) match; first ({first.name}): {what}"

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        found = self.discover()
        manifest: dict[str, Any] = dict(request.state.get("files", {}))
        errors: list[str] = []
        work = self._plan(found.files, request, manifest, errors)
        if self.combined:
            batches = self._read_combined(work, request, manifest, errors)
        elif self.grouped:
            batches = self._read_grouped(work, request, manifest, errors, len(found.files))
        else:
            batches = self._read_each(work, request, manifest, errors, len(found.files))
        for batch in batches:
            yield from in_parts(batch)
        if errors:
            raise SourceError(f"{len(errors)} file(s) could not be read; first: {errors[0]}")

    def _plan(
        self, files: list[Path], request: ReadRequest, manifest: dict[str, Any], errors: list[str]
    ) -> Iterator[_Work]:
        """The chunks to read, in file order: only what is new, each file's content once."""
        incremental = request.mode == "incremental"
        by_path = {e.get("path"): e for e in manifest.values() if e.get("stat")}
        todo: list[tuple[int, Path, list[int]]] = []
        for n, path in enumerate(files, start=1):
            if not self.may_hold(path, request):
                continue
            try:
                stat = _stat(path)
            except SourceError as exc:
                errors.append(str(exc))
                continue
            known_entry = by_path.get(str(path))
            if incremental and known_entry is not None and known_entry["stat"] == stat:
                continue  # known and unchanged: not even read
            todo.append((n, path, stat))
        identities = Identities(manifest, self.head_lines)
        taken: set[str] = set()
        copies = _Copies(self.head_lines, [p for _, p, _ in todo])
        loads = self._prefetch([(path, stat[0]) for _, path, stat in todo])
        for (n, path, stat), loaded in zip(todo, loads, strict=True):
            try:
                if isinstance(loaded, BaseException):
                    raise loaded
                data, complete, counted, digest = loaded
                if self.growth == "append" and copies.is_copy(path):
                    continue
                if not data or data == BOM:
                    continue  # empty: nothing yet
                if self.recognise_on_read:
                    self.recognise(path, data)
                if self.growth == "whole":
                    ident = content_fingerprint(data)
                    if ident in taken or (incremental and ident in manifest):
                        continue
                    start, end, lines, entry = 0, len(data), 0, {}
                else:
                    end = complete
                    known = identities.recognise(data, end, taken)
                    if known is None:
                        continue  # not even its head lines yet
                    ident, entry = known.identity, known.entry
                    start, lines = (known.offset, known.lines) if incremental else (0, 0)
                    if end <= start:
                        continue
                # The read ahead counted the whole file's (complete) lines.
                newlines = counted if start == 0 else data.count(b"\n", start, end)
                lines_after = lines + newlines
                if end == len(data) and not data.endswith(b"\n"):
                    lines_after += 1  # a settled last line without a newline
                unit = f"{ident}:{end}" if self.growth == "append" else ident
                if not incremental and unit in request.done_units:
                    continue
                taken.add(ident)
                # Decoded where it is parsed (on a thread), not here.
                chunk, decoded = self._chunk(path, ident, data, start, end, lines, entry)
                chunk.newlines = newlines
                commit = _Commit(
                    manifest,
                    identities,
                    ident,
                    entry,
                    data,
                    end,
                    lines_after,
                    chunk,
                    stat,
                    self,
                    digest,
                )
            except Exception as exc:  # noqa: BLE001 - one file's failure is that file's
                errors.append(_failure(path, exc))
                continue
            yield _Work(n, chunk, decoded, unit, commit, end - start)

    def _prefetch(
        self, files: list[tuple[Path, int]]
    ) -> Iterator[tuple[bytes, int, int, str | None] | BaseException]:
        """Each file's bytes, complete length, line ends and digest, read ahead on threads.

        Reading, counting and hashing a file's bytes took most of the planning and
        parsing threads' time; the threads do it for the next files (up to
        READ_AHEAD_BYTES) while those plan and parse.
        """
        settle = self.settle_seconds()

        def load(path: Path) -> tuple[bytes, int, int, str | None]:
            data = read_bytes(path)
            end, digest = len(data), None
            if self.growth == "append":
                end = complete_length(data, path, settle, self.quoted)
                digest = sha(memoryview(data)[:end])
            return data, end, data.count(b"\n", 0, end), digest

        pool = ThreadPoolExecutor(2, "file-read")
        pending: deque[tuple[Future[tuple[bytes, int, int, str | None]], int]] = deque()
        ahead = 0
        todo = iter(files)
        try:
            while True:
                while ahead < READ_AHEAD_BYTES or not pending:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    pending.append((pool.submit(load, nxt[0]), nxt[1]))
                    ahead += nxt[1]
                if not pending:
                    return
                future, size = pending.popleft()
                ahead -= size
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - one file's failure is that file's
                    yield exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _chunk(
        self,
        path: Path,
        ident: str,
        data: bytes,
        start: int,
        end: int,
        lines: int,
        entry: dict[str, Any],
    ) -> tuple[Chunk, Quarantined | None]:
        """The undecoded chunk; for a binary file, its (empty) decoding quarantine too."""
        raw = data[start:end]
        memo = dict(entry.get("memo") or {})
        if self.binary(raw):
            return Chunk(path, ident, 1, "", raw, memo), Quarantined.empty()
        memo["encoding"] = entry.get("encoding") if start else None
        return Chunk(path, ident, lines + 1, "", raw, memo), None

    def _decode(self, chunk: Chunk) -> Quarantined:
        """Decode the chunk's bytes into ``chunk.text``; the lines that did not decode."""
        encoding = chunk.memo.get("encoding") or self.opt("encoding") or "auto"
        chunk.text, used, q = decode(chunk.data, encoding, chunk.path, chunk.first_line)
        chunk.memo["encoding"] = used
        return q

    def _run_parse(self, work: _Work, request: ReadRequest) -> Parsed:
        if work.decoded is None:
            work.decoded = self._decode(work.chunk)
        rows, q, read = self.parse(work.chunk, request)
        work.decoded.extend(q)
        return rows, work.decoded, read + len(work.decoded) - len(q)

    def _run_group(self, group: list[_Work], request: ReadRequest) -> list[_Parsed]:
        """The group in one plan when the kind can; else, or for what it declines, alone.

        ``grouped`` kinds get undecoded chunks, the others decoded ones; the lines
        that did not decode join the group's quarantine.
        """
        failed: list[_Parsed] = []
        if not self.grouped:
            for w in group:
                try:
                    if w.decoded is None:
                        w.decoded = self._decode(w.chunk)
                except Exception as exc:  # noqa: BLE001 - one file's failure is that file's
                    failed.append(([w], exc))
            if failed:
                ok = [w for w in group if w.decoded is not None]
                return failed + (self._run_group(ok, request) if ok else [])
        many = None
        # A group of one file too: a daily log larger than a group is most of a
        # year's input at scale (the careful path took twice the CPU for it).
        if type(self).parse_many is not FileAdapter.parse_many:
            try:
                many = self.parse_many([w.chunk for w in group], request)
            except Exception:  # noqa: BLE001 - one file's error: found by parsing each alone
                many = None
            if many is None and len(group) > 1:
                # Halves: one odd file (a record over two lines, say) costs only its half.
                half = len(group) // 2
                return self._run_group(group[:half], request) + self._run_group(
                    group[half:], request
                )
        if many is not None:
            rows, bad, read = many
            q = Quarantined.empty()
            for w in group:
                q.extend(w.decoded or Quarantined.empty())
            q.extend(bad)
            return [(group, (rows, q, read + len(q) - len(bad)))]
        out: list[_Parsed] = []
        for w in group:
            try:
                out.append(([w], self._run_parse(w, request)))
            except Exception as exc:  # noqa: BLE001 - one file's failure is that file's
                out.append(([w], exc))
        return out

    def _read_each(
        self,
        work: Iterator[_Work],
        request: ReadRequest,
        manifest: dict[str, Any],
        errors: list[str],
        total: int,
    ) -> Iterator[Batch]:
        """A batch per chunk, in file order; parsed ahead on threads when ``threaded``."""
        pending: deque[tuple[_Work, Future[Parsed]]] = deque()
        ahead = 0
        pool = ThreadPoolExecutor(PARSE_THREADS if self.threaded else 1, "file-parse")

        def finish() -> list[Batch]:
            nonlocal ahead
            w, future = pending.popleft()
            ahead -= w.size
            try:
                rows, q, read = future.result()
            except Exception as exc:  # noqa: BLE001 - one file's failure is that file's
                errors.append(_failure(w.chunk.path, exc))
                return []
            w.commit()
            return [
                Batch(
                    table=self.batch_table(),
                    rows=rows,
                    quarantined=q,
                    rows_read=read,
                    filtered=w.chunk.filtered,
                    checkpoint={**request.state, "files": dict(manifest)},
                    unit=w.unit,
                    progress=(w.n, total),
                )
            ]

        try:
            for w in work:
                pending.append((w, pool.submit(self._run_parse, w, request)))
                ahead += w.size
                while pending and (ahead > PARSE_AHEAD_BYTES or pending[0][1].done()):
                    yield from finish()
            while pending:
                yield from finish()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _read_grouped(
        self,
        work: Iterator[_Work],
        request: ReadRequest,
        manifest: dict[str, Any],
        errors: list[str],
        total: int,
    ) -> Iterator[Batch]:
        """A batch per group of chunks (up to GROUP_BYTES), groups parsed ahead.

        Up to GROUP_THREADS groups parse on threads (one plan leaves a core idle
        part of the time) while the pipeline validates and writes the group before;
        the bytes in flight, not the count, bound memory, so a file larger than a
        group parses alone.
        """
        pool = ThreadPoolExecutor(GROUP_THREADS, "file-parse")
        #: Groups being parsed, in file order, with their bytes.
        pending: deque[tuple[Future[list[_Parsed]], int]] = deque()

        def finish() -> Iterator[Batch]:
            for works, result in pending.popleft()[0].result():
                if isinstance(result, BaseException):
                    errors.append(_failure(works[0].chunk.path, result))
                    continue
                for w in works:
                    w.commit()
                rows, q, read = result
                yield Batch(
                    table=self.batch_table(),
                    rows=rows.drop("_chunk", strict=False),
                    quarantined=q,
                    rows_read=read,
                    checkpoint={**request.state, "files": dict(manifest)},
                    unit=works[0].unit,
                    progress=(works[-1].n, total),
                )
                # The group's other files are committed with the same flush.
                for w in works[1:]:
                    yield Batch(table=self.batch_table(), rows=rows.clear(), unit=w.unit)

        try:
            group: list[_Work] = []
            size = 0
            for w in work:
                group.append(w)
                size += w.size
                if size >= GROUP_BYTES:
                    pending.append((pool.submit(self._run_group, group, request), size))
                    group, size = [], 0
                    # Two groups of a few MB parse at once; a file larger than a group
                    # parses alone (the bytes in flight bound memory, not the count).
                    while len(pending) > GROUP_THREADS or (
                        len(pending) > 1
                        and sum(n for _, n in pending) > GROUP_THREADS * GROUP_BYTES
                    ):
                        yield from finish()
            if group:
                pending.append((pool.submit(self._run_group, group, request), size))
            while pending:
                yield from finish()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _read_combined(
        self,
        work: Iterator[_Work],
        request: ReadRequest,
        manifest: dict[str, Any],
        errors: list[str],
    ) -> Iterator[Batch]:
        """Chunks parsed and joined by :meth:`combine` a window (GROUP_BYTES) at a time.

        A window's files are parsed together (:meth:`parse_many`, when the kind has
        one), the next window on a thread while this one is combined. What
        :meth:`combine` keeps (the sessions still open) is carried from one window to
        the next as it is from one run to the next, so memory is two windows' events,
        however many files a read covers.
        """
        state = request.state if request.mode == "incremental" else {}
        frames: list[pl.DataFrame] = []
        q = Quarantined.empty()
        units: list[str] = []
        read = size = 0

        def window() -> Iterator[Batch]:
            nonlocal state, q, read
            rows, extra = self.combine(frames, request, state, q)
            state = {"files": dict(manifest), **extra}
            yield Batch(
                table=self.batch_table(),
                rows=rows,
                quarantined=q,
                rows_read=read,
                checkpoint=state,
                unit=units[0] if units else None,
                progress=(len(units), len(units)),
            )
            # The window's other files are committed with the same flush.
            for unit in units[1:]:
                yield Batch(table=self.batch_table(), rows=rows.clear(), unit=unit)
            frames.clear()
            units.clear()
            q, read = Quarantined.empty(), 0

        def take(parsed: list[_Parsed]) -> None:
            """A parsed window's files: committed, their events kept for combine."""
            nonlocal read
            for ws, result in parsed:
                if isinstance(result, BaseException):
                    errors.append(_failure(ws[0].chunk.path, result))
                    continue
                for w in ws:
                    w.commit()
                    units.append(w.unit)
                events, bad, n = result
                frames.append(events)
                q.extend(bad)
                read += n

        # The next window is parsed on a thread while this one is paired and written.
        pool = ThreadPoolExecutor(1, "file-parse")
        pending: deque[Future[list[_Parsed]]] = deque()
        emitted = False
        todo: list[_Work] = []
        try:
            for w in work:
                todo.append(w)
                size += w.size
                if size >= GROUP_BYTES:
                    pending.append(pool.submit(self._run_group, todo, request))
                    todo, size = [], 0
                    if len(pending) > 1:
                        take(pending.popleft().result())
                        yield from window()
                        emitted = True
            if todo:
                pending.append(pool.submit(self._run_group, todo, request))
            while pending:
                take(pending.popleft().result())
                if pending:
                    yield from window()
                    emitted = True
            if units or not emitted:
                yield from window()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def batch_table(self) -> str:
        return self.tables[0]


class _Copies:
    """Files of this run that are byte-prefixes of a longer file with the same head lines.

    Only files sharing their head lines are compared, and only those are held in
    memory together; the longest of each set of copies is read.
    """

    def __init__(self, head_lines: int, files: list[Path]) -> None:
        self.head_lines = head_lines
        self.files = files
        self.heads: dict[str, list[Path]] | None = None
        self.head_of: dict[Path, str] = {}
        self.copies: set[Path] = set()
        self.done: set[str] = set()

    def is_copy(self, path: Path) -> bool:
        if len(self.files) < 2:
            return False
        if self.heads is None:
            self.heads = {}
            for p in self.files:
                head = _head(p, self.head_lines)
                if head is not None:
                    self.heads.setdefault(head, []).append(p)
                    self.head_of[p] = head
        head = self.head_of.get(path)
        group = self.heads.get(head or "", [])
        if len(group) > 1 and head not in self.done:
            self.done.add(head or "")
            datas = sorted(((read_bytes(p), p) for p in group), key=lambda d: -len(d[0]))
            kept: list[bytes] = []
            for data, p in datas:
                if any(k.startswith(data) for k in kept):
                    self.copies.add(p)
                else:
                    kept.append(data)
        return path in self.copies


def _head(path: Path, lines: int) -> str | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(HEAD_BYTES)
        if data[:2] == b"\x1f\x8b" or head_length(strip_bom(data), lines) is None:
            data = read_bytes(path)
    except (OSError, SourceError):
        return None  # the read of this file itself reports it
    data = strip_bom(data)
    n = head_length(data, lines)
    return None if n is None else sha(data[:n])


def _stat(path: Path) -> list[int]:
    try:
        st = path.stat()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read file: {exc}") from None
    return [st.st_size, st.st_mtime_ns]


@dataclass
class _Commit:
    """What to write into the manifest once the chunk's rows are yielded."""

    manifest: dict[str, Any]
    identities: Identities
    ident: str
    entry: dict[str, Any]
    data: bytes
    end: int
    lines: int
    chunk: Chunk
    stat: list[int]
    adapter: FileAdapter
    #: SHA-256 of ``data[:end]``, taken on a read thread (hashing releases the GIL).
    digest: str | None = None

    def __call__(self) -> None:
        if self.adapter.growth == "whole":
            self.manifest[self.ident] = {"path": str(self.chunk.path), "stat": self.stat}
            return
        new = self.identities.record(
            self.ident, self.entry, self.data, self.end, self.lines, self.chunk.path, self.digest
        )
        new["memo"] = self.chunk.memo
        new["encoding"] = self.chunk.memo.get("encoding")
        # The stat says "read whole" only when nothing was left for the next run.
        new["stat"] = self.stat if self.end == len(self.data) else None
        self.manifest[self.ident] = new


def in_parts(batch: Batch) -> Iterator[Batch]:
    """The batch's rows BATCH_ROWS at a time; the last part carries its counts and commit.

    A large file (or group) is validated, pseudonymised and written a flush's worth of
    rows at a time, so that memory follows BATCH_ROWS, not the file's size.
    """
    rows = batch.rows
    cut = max(0, (rows.height - 1) // BATCH_ROWS * BATCH_ROWS)
    for at in range(0, cut, BATCH_ROWS):
        yield Batch(batch.table, rows.slice(at, BATCH_ROWS), rows_read=BATCH_ROWS)
    if cut:
        # rows_read 0 means "count the rows": then each part counts its own.
        read = batch.rows_read - cut if batch.rows_read else 0
        batch = replace(batch, rows=rows.slice(cut), rows_read=read)
    yield batch


def _failure(path: Path, exc: BaseException) -> str:
    if isinstance(exc, SourceError):
        return str(exc)
    log.error("%s: internal error while parsing", path, exc_info=exc)
    return f"{path}: internal error while parsing ({exc!r}); the file is retried next run"


def lines_frame(chunk: Chunk) -> pl.DataFrame:
    """The chunk's lines: ``line`` (text, CR removed), ``_n`` (physical line), ``_location``."""
    return lines_frame_many([chunk])


def lines_frame_many(chunks: list[Chunk]) -> pl.DataFrame:
    """The lines of many chunks as one :func:`lines_frame` (one frame, not one per chunk)."""
    # Split by the engine, not into Python strings (a window holds ~100 k lines), and
    # the texts passed whole: slicing off a final line end would copy each of them.
    parts = pl.Series("line", [c.text for c in chunks]).str.split("\n")
    counts = parts.list.len()
    which = pl.int_range(len(chunks), dtype=pl.UInt32, eager=True).repeat_by(counts).explode()
    starts = counts.cum_sum() - counts
    shift = pl.Series([c.first_line for c in chunks], dtype=pl.Int64) - starts.cast(pl.Int64)
    paths = pl.Series([str(c.path) for c in chunks], dtype=pl.String)
    n = pl.int_range(len(which), dtype=pl.Int64, eager=True) + shift.gather(which)
    frame = pl.DataFrame([pl.Series("_n", n), parts.explode(), pl.Series("_c", which)])
    ends = [i for i, c in enumerate(chunks) if c.text.endswith("\n")]
    if ends:
        # The empty "line" after a text's final line end is not a line.
        last = (starts + counts - 1).gather(ends)
        frame = frame.filter(pl.repeat(True, len(which), eager=True).scatter(last, False))
    if any("\r" in c.text for c in chunks):
        frame = frame.with_columns(pl.col("line").str.strip_suffix("\r"))
    return frame.select(
        "_n",
        "line",
        pl.format("{}:{}", pl.lit(paths).gather(pl.col("_c")), pl.col("_n")).alias("_location"),
    )


def quarantine_rows(df: pl.DataFrame, reason: str | pl.Expr, raw: str = "line") -> Quarantined:
    """Quarantine every row of ``df`` with its location and raw text."""
    if df.height == 0:
        return Quarantined.empty()
    reasons = (
        df.select(reason.alias("r")).get_column("r").to_list()
        if isinstance(reason, pl.Expr)
        else [reason] * df.height
    )
    return Quarantined(
        location=df.get_column("_location").to_list(),
        reason=reasons,
        raw=df.get_column(raw).cast(pl.String).to_list(),
    )


def live_chunk(path: Path, data: bytes, first_line: int, encoding: str) -> Chunk:
    """A chunk of bytes the live readers tail, decoded as a read would.

    Live views have no quarantine: a line that does not decode fails the poll of
    that file (the nightly read quarantines that line alone).
    """
    text, _, bad = decode(data, encoding or "auto", path, first_line)
    if len(bad):
        raise SourceError(f"{bad.location[0]}: {bad.reason[0]}")
    return Chunk(path, "live", first_line, text, data)


def live_request(tz: str) -> ReadRequest:
    """The request a live reader parses with: now, in the source's zone."""
    return ReadRequest(mode="incremental", run_start=dt.datetime.now(dt.UTC), timezone=tz)
