"""The adapter contract: declared options, a read request, and batches of canonical rows.

An adapter turns one configured source into batches of one canonical table. It
knows nothing of KPIs, the store or other sources. The pipeline gives it a
:class:`ReadRequest` (the window and the state it left last time) and takes
:class:`Batch` objects: rows in the table's columns (person identifiers still raw:
the pipeline pseudonymises them before anything is written), quarantined rows, and
a checkpoint of the adapter's own state that the pipeline saves only after every
row yielded before it is committed.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from workstyle.collector.options import Option, SourceConfig


@dataclass
class ReadRequest:
    """What the pipeline asks an adapter to read."""

    #: ``incremental`` (nightly) or ``backfill`` (bounded, stateless).
    mode: str
    #: The run's start (UTC); nothing newer is asked for.
    run_start: dt.datetime
    #: The window, UTC, half-open ``[start, end)``; ``None`` means unbounded.
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    #: The adapter's checkpoint from the last committed run (incremental only).
    state: dict[str, Any] = field(default_factory=dict)
    #: Units (files, windows) a previous attempt of this backfill already committed.
    done_units: frozenset[str] = frozenset()
    #: The configured zone for sources that write local time without an offset.
    timezone: str = "Asia/Tokyo"


@dataclass
class Quarantined:
    """Rows that could not be turned into canonical rows, with where and why."""

    location: list[str]
    reason: list[str]
    raw: list[str]

    @classmethod
    def empty(cls) -> Quarantined:
        return cls([], [], [])

    def add(self, location: str, reason: str, raw: str) -> None:
        self.location.append(location)
        self.reason.append(reason)
        self.raw.append(raw)

    def extend(self, other: Quarantined) -> None:
        self.location += other.location
        self.reason += other.reason
        self.raw += other.raw

    def __len__(self) -> int:
        return len(self.location)


@dataclass
class Batch:
    """Rows of one canonical table, plus what could not be read, from one unit of work."""

    table: str
    rows: pl.DataFrame
    quarantined: Quarantined = field(default_factory=Quarantined.empty)
    #: Rows the source held for this unit (good + quarantined + skipped on purpose).
    rows_read: int = 0
    #: The adapter's state after this batch; saved once everything up to here is committed.
    checkpoint: dict[str, Any] | None = None
    #: A name for the unit of work (a file fingerprint, an API window) for resumable backfills.
    unit: str | None = None
    #: Progress hint: units done so far and in total, when the adapter knows.
    progress: tuple[int, int] | None = None
    #: Spans ``[start, end)`` (UTC) of this unit the source can no longer supply
    #: (older than its API keeps); reported, never silently skipped.
    unavailable: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    #: Rows left out on purpose by a configured rule (counted in ``rows_read``): one row
    #: per location x rule x month with columns location, rule, period (YYYY-MM), rows.
    filtered: pl.DataFrame | None = None


class Adapter(ABC):
    """Base class of every source kind. Subclasses declare, then implement :meth:`read`."""

    kind: ClassVar[str]
    #: The canonical tables this kind writes.
    tables: ClassVar[tuple[str, ...]]
    options: ClassVar[tuple[Option, ...]] = ()
    summary: ClassVar[str] = ""
    #: Whether backfill windows are meaningful (file adapters filter rows by time).
    windowed: ClassVar[bool] = True
    #: Commit after every batch: for sources whose batches are slow to fetch (API
    #: windows), so a killed run resumes from the last window instead of re-reading.
    commit_each_batch: ClassVar[bool] = False
    #: No two rows of one read share a natural key (the key is the file's identity and
    #: the line, say): the store then skips looking for repeats among a run's rows.
    unique_keys: ClassVar[bool] = False

    def __init__(self, source: SourceConfig, secrets: Callable[[str], str] | None = None):
        self.source = source
        self._secrets = secrets
        #: File kinds: files each pattern matched in the last read (None: not a file kind).
        self.files_matched: dict[str, int] | None = None

    @property
    def name(self) -> str:
        return self.source.name

    def opt(self, key: str) -> Any:
        return self.source.options.get(key)

    def secret(self, key: str) -> str:
        """Read the secret the option ``key`` points at (an env var or a file)."""
        if self._secrets is None:
            raise RuntimeError("adapter built without a secret reader")
        return self._secrets(key)

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Kind-specific checks beyond types; return problems as ``(key, message)`` pairs."""
        return []

    @classmethod
    def output_tables(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The tables a source of this kind, so configured, writes."""
        return cls.tables

    def check(self) -> str:
        """Probe the source without reading data (``validate --check-sources``)."""
        return "ok (no probe for this kind)"

    @abstractmethod
    def read(self, request: ReadRequest) -> Iterator[Batch]:
        """Yield batches of canonical rows for the request."""
