"""Zoom meetings in progress and their participants (Dashboard ``type=live``).

The list is paged (``next_page_token``) and counts against the account's Dashboard
("Resource-intensive") rate limit and daily quota, which the nightly run shares: a 429
is retried within the poll (Retry-After honoured, at most half the interval waited), and
the poll stops while the daily quota is down to the source's ``quota_reserve`` plus
``live_api.quota_reserve`` (default 1000 requests kept for the nightly run). Once the
quota is spent, polling pauses until Zoom resets it at 00:00 UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from workstyle.collector.config import Config
from workstyle.collector.errors import QuotaExhausted, SourceError
from workstyle.collector.live.base import (
    Clock,
    LiveReader,
    api_options,
    full_options,
    secret_reader,
)
from workstyle.collector.options import Option, SourceConfig

OPTIONS = (
    Option(
        "quota_reserve",
        "int",
        "Daily requests the live poll leaves for the nightly run (on top of quota_reserve).",
        default=1000,
    ),
)


class ZoomLive(LiveReader):
    platform: ClassVar[str] = "zoom"

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock) -> None:
        super().__init__(source, cfg, clock)
        from workstyle.adapters.zoom import Zoom

        api = api_options(source, cfg, OPTIONS)
        full = full_options(source, cfg)
        opts = dict(full.options)
        opts["quota_reserve"] = int(opts.get("quota_reserve") or 0) + api["quota_reserve"]
        # A live poll must not wait out a long backoff: half an interval at most.
        opts["max_wait_seconds"] = min(float(opts["max_wait_seconds"]), self.interval / 2)
        full.options = opts
        self.adapter = Zoom(full, secret_reader(full, cfg))
        self.client: Any = None
        self.paused_until: float | None = None

    def read(self) -> dict[str, float]:
        from workstyle.adapters.http import HttpStats
        from workstyle.adapters.zoom import live_meetings

        now = self.clock()
        if self.paused_until is not None and now < self.paused_until:
            raise QuotaExhausted(
                f"{self.name}: Zoom's daily API quota is spent; live polling resumes at 00:00 UTC"
            )
        if self.client is None:
            self.client = self.adapter.open_client()
        self.client.stats = HttpStats()  # retry budget per poll, not per process
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        try:
            meetings = list(live_meetings(self.adapter, self.client, today))
        except QuotaExhausted:
            tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
            self.paused_until = tomorrow.timestamp()
            self.close()
            raise
        self.paused_until = None
        participants = 0.0
        for m in meetings:
            n = m.get("participants")
            if isinstance(n, int | float) and not isinstance(n, bool) and n >= 0:
                participants += n
            elif n is not None:
                raise SourceError(f"{self.name}: a live meeting's participants is {n!r}")
        return {"meetings": float(len(meetings)), "meeting_participants": participants}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
