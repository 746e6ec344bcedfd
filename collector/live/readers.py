"""Which reader polls a source of each kind, and why some kinds have none."""

from __future__ import annotations

from workstyle.collector.config import Config
from workstyle.collector.errors import ConfigError
from workstyle.collector.live.base import Clock, LiveReader
from workstyle.collector.options import Option, SourceConfig

#: What ``live = true`` gives for each kind that can (shown by ``collector kinds``).
LIVE_VIEWS = {
    "fortigate_vpn": "`vpn_sessions`, `vpn_users` open now, from tunnel-ups without a"
    " tunnel-down in the tail of the files, or from the REST monitor API with `live_api`",
    "cisco_asa_vpn": "`vpn_sessions`, `vpn_users` open now, from session starts without an"
    " end in the tail of the files",
    "papercut_print_logger": "`print_jobs_today`, `print_sheets_today` from today's files",
    "papercut_ng_print_log": "`print_jobs_today`, `print_sheets_today` from today's files",
    "windows_print_events": "`print_jobs_today`, `print_sheets_today` from the exports"
    " written today (a job in overlapping exports once)",
    "zoom": "`meetings`, `meeting_participants` in progress (Dashboard `type=live`)",
    "webex": "`meetings`, `meeting_participants` in progress of the configured `hosts`"
    " (one `state=inProgress` list per host)",
}

#: Kinds with no in-progress view, and why (docs/sources/live.md says more).
NO_LIVE_VIEW = {
    "teams": "Graph call records exist only after a call ends; no in-progress list for an"
    " organisation",
    "google_meet": "the Reports API delivers call_ended events, with a delay of minutes to hours",
}


def live_view(kind: str) -> str:
    """One line on what ``live = true`` does for a kind (``collector kinds``)."""
    if kind in LIVE_VIEWS:
        return LIVE_VIEWS[kind] + "."
    return f"none ({NO_LIVE_VIEW.get(kind, 'nothing to read now')})."


def live_api_options(kind: str) -> tuple[Option, ...]:
    """The keys of a kind's ``live_api`` table (none for most kinds)."""
    if kind == "fortigate_vpn":
        from workstyle.collector.live.fortigate import OPTIONS

        return OPTIONS
    if kind == "zoom":
        from workstyle.collector.live.zoom import OPTIONS

        return OPTIONS
    return ()


def reader_for(source: SourceConfig, cfg: Config, clock: Clock) -> LiveReader:
    """The live reader of one source with ``live = true``; a ConfigError when its kind has none."""
    from workstyle.collector.live import logs

    kind = source.kind
    if kind not in LIVE_VIEWS:
        why = NO_LIVE_VIEW.get(kind, "this kind has no live reader")
        raise ConfigError(
            f"{cfg.path}: [[sources]] ({source.name}) key 'live': {kind} sources cannot be"
            f" polled live ({why}); set live = false (see docs/sources/live.md)"
        )
    if kind == "fortigate_vpn":
        if source.live_api:
            from workstyle.collector.live.fortigate import FortiGateMonitor

            return FortiGateMonitor(source, cfg, clock)
        return logs.FortiGateLogReader(source, cfg, clock)
    if kind == "zoom":
        from workstyle.collector.live.zoom import ZoomLive

        return ZoomLive(source, cfg, clock)
    if kind == "webex":
        from workstyle.collector.live.webex import WebexLive

        return WebexLive(source, cfg, clock)
    if source.live_api:
        raise ConfigError(
            f"{cfg.path}: [[sources]] ({source.name}) key 'live_api': {kind} sources read"
            " their live values from their files; remove it"
        )
    files = {
        "cisco_asa_vpn": logs.CiscoAsaLogReader,
        "papercut_print_logger": logs.PaperCutLogReader,
        "papercut_ng_print_log": logs.PaperCutNgLogReader,
        "windows_print_events": logs.WindowsPrintReader,
    }
    return files[kind](source, cfg, clock)


def readers(cfg: Config, clock: Clock) -> list[LiveReader]:
    """A reader for every source with ``live = true`` (enabled or not for the nightly run)."""
    return [reader_for(s, cfg, clock) for s in cfg.sources if s.live]
