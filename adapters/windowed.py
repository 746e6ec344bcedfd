"""Template base of the API sources that read time windows (the web-conferencing kinds).

:class:`WindowedApiSource` owns the loop every such source shares: the range to read
(first-run history, resume after a partial nightly run), windows on a fixed grid of
whole UTC days starting at the range's first day, so every rerun of the same backfill
names the same units and skips the ones already committed; the API's history limit as
the API states it, computed at the moment each window is read, every request clipped
to it and the days before it reported as not fetchable; progress, checkpoints and the
HTTP client's life; and paging: :meth:`WindowedApiSource.pages` follows a list to its
end, asking the subclass only where the next page is (:meth:`next_page`: a token
parameter or a link). A subclass supplies the client, the request for one window and
the mapping of its pages to canonical rows (:meth:`read_window`), the API's cursor, and
the history limit (:meth:`oldest`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import polars as pl

from workstyle.adapters.base import Adapter, Batch, Quarantined, ReadRequest
from workstyle.adapters.http import HttpClient, HttpError, HttpSettings, TokenCache
from workstyle.collector.errors import SourceError

log = logging.getLogger("collector.windowed")

DAY = dt.timedelta(days=1)

MEETING_SCHEMA: dict[str, pl.DataType] = {
    "meeting_id": pl.String(),
    "platform": pl.String(),
    "start_time": pl.Datetime("us", "UTC"),
    "end_time": pl.Datetime("us", "UTC"),
    "duration_seconds": pl.Int64(),
    "participants": pl.Int32(),
    "host": pl.String(),
    "department": pl.String(),
    "series_id": pl.String(),
    "topic": pl.String(),
    "_location": pl.String(),
}

#: What one window yields: canonical rows (dicts), quarantined rows, rows the API held.
WindowRows = tuple[list[dict[str, Any]], Quarantined, int]


def parse_iso(value: Any) -> dt.datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None when absent or malformed."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    """Whole seconds from start to end; None when either is unknown or end is before start."""
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds())


def meetings_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Canonical ``meetings`` rows (plus ``_location``) from dicts, with fixed dtypes."""
    return (
        pl.DataFrame(rows, schema=MEETING_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=MEETING_SCHEMA)
    )


def utc_midnight(when: dt.datetime) -> dt.datetime:
    """The start of ``when``'s UTC day."""
    return when.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_second(when: dt.datetime) -> dt.datetime:
    """``when`` rounded up to a whole second (APIs taking seconds must not get less)."""
    return when if not when.microsecond else when.replace(microsecond=0) + dt.timedelta(seconds=1)


def months_before(day: dt.date, months: int) -> dt.date:
    """The calendar date ``months`` months before ``day``, clamped to the month's end."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return dt.date(year, month, min(day.day, (nxt - DAY).day))


@dataclass(frozen=True)
class Window:
    """One unit of work: the span ``[start, end)`` it reads, inside its cell of the grid."""

    start: dt.datetime
    end: dt.datetime
    #: The grid cell (whole UTC days) the window belongs to; it names the unit.
    cell_start: dt.datetime
    cell_end: dt.datetime
    #: The oldest instant the API answers for when the window is read (None: no limit).
    floor: dt.datetime | None = None
    #: The run's clock when the window is read.
    now: dt.datetime | None = None

    def unit(self, kind: str) -> str:
        return f"{kind}:{self.cell_start:%Y-%m-%d}/{self.cell_end:%Y-%m-%d}"


def grid(start: dt.datetime, end: dt.datetime, days: int) -> list[Window]:
    """Windows of ``days`` whole UTC days from ``start``'s day, clipped to ``[start, end)``."""
    step = dt.timedelta(days=days)
    anchor = utc_midnight(start)
    out = []
    for k in range(max(0, math.ceil((end - anchor) / step))):
        lo, hi = anchor + k * step, anchor + (k + 1) * step
        out.append(Window(max(lo, start), min(hi, end), lo, hi))
    return [w for w in out if w.start < w.end]


@dataclass(frozen=True)
class PageRequest:
    """One GET of a paged list: where, the endpoint's label, the query and headers."""

    url: str
    label: str
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None

    def with_params(self, **extra: Any) -> PageRequest:
        """The same request with query parameters added (a page token)."""
        return replace(self, params={**(self.params or {}), **extra})

    def at(self, url: str) -> PageRequest:
        """The request of a next link used verbatim: it carries the whole query."""
        return replace(self, url=url, params=None)


@dataclass(frozen=True)
class Page:
    """One answered page: the request, the decoded body, the ``Link`` header's links."""

    request: PageRequest
    body: Any
    links: Mapping[str, Any]


def skipped(q: Quarantined, err: HttpError, what: str) -> None:
    """Record an API error on a sub-resource that the run skips (counted, never silent)."""
    log.warning("%s", err)
    q.add(err.endpoint, f"skipped {what}: HTTP {err.status} ({err.api_message})", "")


class WindowedApiSource(Adapter):
    """An API source read window by window; subclasses supply one window's request."""

    # API windows are slow to fetch: commit each one, so a killed run loses one at most.
    commit_each_batch = True
    tables: ClassVar[tuple[str, ...]] = ("meetings",)
    #: Days per window when the source has no ``window_days`` option.
    window_days_default: ClassVar[int] = 7
    #: How the API states its history limit, for the log line (e.g. "30 days").
    history_text: ClassVar[str] = ""

    # -- hooks ------------------------------------------------------------------------
    @abstractmethod
    def open_client(self) -> HttpClient:
        """The authenticated HTTP client of one read."""

    @abstractmethod
    def read_window(self, client: HttpClient, w: Window) -> WindowRows:
        """Rows of one window: every row whose start lies in ``[w.start, w.end)``."""

    @abstractmethod
    def next_page(self, page: Page) -> PageRequest | None:
        """The request of the page after ``page``; None when it was the last."""

    def oldest(self, now: dt.datetime) -> dt.datetime | None:
        """The oldest instant the API answers for at ``now``, as the API states it."""
        return None

    def window_days(self) -> int:
        return int(self.opt("window_days") or self.window_days_default)

    def prepare(self, client: HttpClient) -> None:
        """Work done once before the windows (e.g. listing the hosts to read)."""

    def extra_units(self, request: ReadRequest, start: dt.datetime) -> int:
        """Units :meth:`extra_batches` will yield (for progress)."""
        return 0

    def extra_batches(
        self,
        client: HttpClient,
        request: ReadRequest,
        start: dt.datetime,
        done: int,
        total: int,
    ) -> Iterator[Batch]:
        """Batches read after the windows (e.g. a daily report); none by default."""
        return iter(())

    # -- the loop ---------------------------------------------------------------------
    def read(self, request: ReadRequest) -> Iterator[Batch]:
        """One batch per window, committed one by one; done backfill windows skipped."""
        start, end = self.read_range(request)
        windows = grid(start, end, self.window_days())
        total = len(windows) + self.extra_units(request, start)
        began = time.monotonic()

        def now() -> dt.datetime:
            # The run's clock (injectable through run_start) moved on by the time spent.
            return request.run_start + dt.timedelta(seconds=time.monotonic() - began)

        client = self.open_client()
        lost: list[tuple[dt.datetime, dt.datetime]] = []
        try:
            self.prepare(client)
            for i, w in enumerate(windows, start=1):
                if request.mode == "backfill" and w.unit(self.kind) in request.done_units:
                    continue
                clock = now()
                floor = self.oldest(clock)
                w = replace(w, floor=floor, now=clock)
                gap: list[tuple[dt.datetime, dt.datetime]] = []
                if floor is not None and w.start < floor:
                    gap = [(w.start, min(w.end, floor))]
                    lost += gap
                if floor is not None and w.end <= floor:
                    rows, q, read = [], Quarantined.empty(), 0  # nothing left to ask for
                else:
                    rows, q, read = self.read_window(
                        client, replace(w, start=max(w.start, floor or w.start))
                    )
                yield Batch(
                    table=self.tables[0],
                    rows=meetings_frame(rows),
                    quarantined=q,
                    rows_read=read,
                    unit=w.unit(self.kind),
                    progress=(i, total),
                    checkpoint={"done_until": w.end.isoformat()}
                    if request.mode == "incremental"
                    else None,
                    unavailable=gap,
                )
            yield from self.extra_batches(client, request, start, len(windows), total)
        finally:
            if lost:
                log.warning(
                    "%s: the %s API keeps %s; %s .. %s cannot be fetched any more",
                    self.name,
                    self.kind,
                    self.history_text,
                    f"{lost[0][0]:%Y-%m-%d %H:%M}Z",
                    f"{lost[-1][1]:%Y-%m-%d %H:%M}Z",
                )
            finish(self, client)

    def read_range(self, request: ReadRequest) -> tuple[dt.datetime, dt.datetime]:
        """The range to read: the request's, a first run's history, or a resume point."""
        end = min(request.end or request.run_start, request.run_start)
        if request.start is not None:
            start = request.start
        else:
            # First incremental run: a bounded, documented history instead of "everything".
            start = request.run_start - dt.timedelta(days=int(self.opt("initial_days") or 30))
        if request.mode == "incremental":
            done = parse_iso(request.state.get("done_until"))
            # A run stopped by a quota committed windows up to done_until: resume there
            # (minus the lookback, so late data is still re-read) rather than from scratch.
            if done is not None and done - self.source.lookback > start:
                start = min(done - self.source.lookback, end)
        return start, max(start, end)

    def pages(self, client: HttpClient, first: PageRequest) -> Iterator[Page]:
        """Every page of a list, from ``first`` to the one :meth:`next_page` ends."""
        request: PageRequest | None = first
        while request is not None:
            resp = client.request(
                "GET", request.url, request.label, params=request.params, headers=request.headers
            )
            try:
                body = resp.json()
            except ValueError:
                raise SourceError(
                    f"{self.name}: {request.label}: the API answered"
                    f" {resp.status_code} with a body that is not JSON"
                ) from None
            page = Page(request, body, resp.links)
            yield page
            request = self.next_page(page)

    # -- plumbing the subclasses share ------------------------------------------------------
    def make_client(self, token: TokenCache | None = None, **kwargs: Any) -> HttpClient:
        """An :class:`HttpClient` configured from the source's HTTP options."""
        ca = self.source.path("ca_bundle")
        settings = HttpSettings.from_options(self.opt, str(ca) if ca else None)
        return HttpClient(self.name, settings, token, **kwargs)

    def base_url(self, key: str, default: str) -> str:
        """A configured base URL without its trailing slash."""
        return str(self.opt(key) or default).rstrip("/")


def finish(adapter: Adapter, client: HttpClient) -> None:
    """Log what the run cost and every API error per endpoint, then release the session."""
    st = client.stats
    log.info(
        "%s: %d HTTP requests, %d retries, %.1f s waited",
        adapter.name,
        st.requests,
        st.retries,
        st.waited,
    )
    for (endpoint, status), message in sorted(st.errors.items()):
        count = st.by_status[(endpoint, status)]
        log.warning(
            "%s: %s answered HTTP %d %d time(s): %s", adapter.name, endpoint, status, count, message
        )
    client.close()
