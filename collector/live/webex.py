"""Webex meetings in progress of the configured hosts, and their participants.

Webex lists in-progress instances (``GET /meetings?meetingType=meeting&state=inProgress``)
per host only, so the live reader asks each host of the source's ``hosts`` list (never
the whole organisation: that would be one request per person per poll), then counts
each meeting's participants (``/meetingParticipants``, people who joined). A poll costs
one request per host plus one per meeting in progress; keep ``hosts`` to the rooms and
accounts that matter and ``live_interval`` in proportion. Tokens come from the same
refresh token as the nightly run (renewed about every 14 days).
"""

from __future__ import annotations

from typing import Any, ClassVar

from workstyle.collector.config import Config
from workstyle.collector.errors import ConfigError
from workstyle.collector.live.base import (
    Clock,
    LiveReader,
    api_options,
    full_options,
    secret_reader,
)
from workstyle.collector.options import SourceConfig


class WebexLive(LiveReader):
    platform: ClassVar[str] = "webex"

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock) -> None:
        super().__init__(source, cfg, clock)
        from workstyle.adapters.webex import Webex

        api_options(source, cfg, ())  # no live_api keys: anything there is a typo
        full = full_options(source, cfg)
        if not full.options.get("hosts"):
            raise ConfigError(
                f"{cfg.path}: [[sources]] ({source.name}) key 'hosts': live = true needs the"
                " hosts to poll (Webex lists meetings in progress per host only; asking every"
                " person of the organisation each poll would exceed its rate limits)"
            )
        opts = dict(full.options)
        opts["max_wait_seconds"] = min(float(opts["max_wait_seconds"]), self.interval / 2)
        full.options = opts
        self.adapter = Webex(full, secret_reader(full, cfg))
        self.client: Any = None

    def read(self) -> dict[str, float]:
        from workstyle.adapters.http import HttpStats
        from workstyle.adapters.webex import live_meetings

        if self.client is None:
            self.client = self.adapter.open_client()
        self.client.stats = HttpStats()  # retry budget per poll, not per process
        meetings, participants = 0, 0
        for _, count in live_meetings(self.adapter, self.client):
            meetings += 1
            participants += count or 0
        return {"meetings": float(meetings), "meeting_participants": float(participants)}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
