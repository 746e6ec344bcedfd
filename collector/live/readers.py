"""Which reader polls a source of each kind, and why some kinds have none."""

from __future__ import annotations

from workstyle.collector.config import Config
from workstyle.collector.errors import ConfigError
from workstyle.collector.live.base import Clock, LiveReader
from workstyle.collector.options import SourceConfig

#: Kinds with no in-progress view, and why (docs/sources/live.md says more).
NO_LIVE_VIEW = {
    "teams": "Graph call records exist only after a call ends; no in-progress list for an"
    " organisation",
    "webex": "the admin meeting list needs one query per host and shows ended instances only"
    " after 15 minutes",
    "google_meet": "the Reports API delivers call_ended events, with a delay of minutes to hours",
}


def reader_for(source: SourceConfig, cfg: Config, clock: Clock) -> LiveReader:
    """The live reader of one source with ``live = true``; a ConfigError when its kind has none."""
    from workstyle.collector.live import logs

    kind = source.kind
    where = f"{cfg.path}: [[sources]] ({source.name}) key 'live'"
    if kind == "fortigate_vpn":
        if source.live_api:
            from workstyle.collector.live.fortigate import FortiGateMonitor

            return FortiGateMonitor(source, cfg, clock)
        return logs.FortiGateLogReader(source, cfg, clock)
    if source.live_api:
        raise ConfigError(
            f"{cfg.path}: [[sources]] ({source.name}) key 'live_api': only fortigate_vpn"
            " sources read live values from an API table; remove it"
        )
    if kind == "cisco_asa_vpn":
        return logs.CiscoAsaLogReader(source, cfg, clock)
    if kind == "papercut_print_logger":
        return logs.PaperCutLogReader(source, cfg, clock)
    if kind == "papercut_ng_print_log":
        return logs.PaperCutNgLogReader(source, cfg, clock)
    if kind == "windows_print_events":
        return logs.WindowsPrintReader(source, cfg, clock)
    if kind == "zoom":
        from workstyle.collector.live.zoom import ZoomLive

        return ZoomLive(source, cfg, clock)
    why = NO_LIVE_VIEW.get(kind, "this kind has no live reader")
    raise ConfigError(
        f"{where}: {kind} sources cannot be polled live ({why}); set live = false"
        " (see docs/sources/live.md)"
    )


def readers(cfg: Config, clock: Clock) -> list[LiveReader]:
    """A reader for every source with ``live = true`` (enabled or not for the nightly run)."""
    return [reader_for(s, cfg, clock) for s in cfg.sources if s.live]
