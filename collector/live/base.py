"""The live reader template: the base owns timing, failures and keeping the last values;
a kind supplies :meth:`LiveReader.read` (the values now) and its platform name."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from workstyle.collector.config import Config, validate_options
from workstyle.collector.errors import CollectorError, ConfigError
from workstyle.collector.live.snapshot import Reading
from workstyle.collector.options import COMMON_OPTIONS, Option, SourceConfig

log = logging.getLogger("collector.live")

Clock = Callable[[], float]


class LiveReader(ABC):
    """Reads one source's live values; :meth:`poll` never raises."""

    #: The ``platform`` label: the product the values come from.
    platform: ClassVar[str]

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock = time.time) -> None:
        self.source = source
        self.cfg = cfg
        self.clock = clock
        self._last_error: str | None = None

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def interval(self) -> float:
        return self.source.live_interval

    @abstractmethod
    def read(self) -> dict[str, float]:
        """The source's values now; raise a :class:`CollectorError` naming what failed."""

    def close(self) -> None:  # noqa: B027 - optional hook: log readers hold no connection
        """Release connections (API readers)."""

    def poll(self, previous: Reading | None) -> Reading:
        """One poll: fresh values, or on failure the previous values marked not ok."""
        started_wall = self.clock()
        started = time.perf_counter()
        reading = Reading(self.source.kind, self.platform, self.interval)
        if previous is not None:
            reading.values = dict(previous.values)
            reading.last_success = previous.last_success
        try:
            values = self.read()
        except CollectorError as exc:
            error = self._named(str(exc))
        except Exception as exc:
            log.debug("%s: live poll failed", self.name, exc_info=True)
            error = self._named(f"internal error: {type(exc).__name__}: {exc}")
        else:
            error = None
            reading.values = values
            reading.last_success = started_wall
        reading.ok = error is None
        reading.error = error
        reading.last_attempt = started_wall
        reading.duration = time.perf_counter() - started
        self._log_transition(error)
        return reading

    def _named(self, message: str) -> str:
        message = message.strip().splitlines()[0][:500] if message.strip() else "failed"
        return message if message.startswith(self.name) else f"{self.name}: {message}"

    def _log_transition(self, error: str | None) -> None:
        # A poll every few seconds must not repeat the same line: log changes only.
        if error != self._last_error:
            if error:
                log.warning("live %s (last values kept, marked stale)", error)
            elif self._last_error:
                log.info("live %s: polling again", self.name)
        self._last_error = error


def full_options(source: SourceConfig, cfg: Config) -> SourceConfig:
    """The source with its kind's defaults filled in (the exporter lists sources shallowly)."""
    from workstyle.adapters import adapter_class

    cls = adapter_class(source.kind)
    common = {o.name for o in COMMON_OPTIONS}
    given = {k: v for k, v in source.options.items() if k not in common and v is not None}
    where = f"{cfg.path}: [[sources]] ({source.name})"
    options = validate_options(where, given, cls.options)
    for key, message in cls.validate(options):
        raise ConfigError(f"{where} key '{key}': {message}")
    return SourceConfig(
        name=source.name,
        kind=source.kind,
        enabled=source.enabled,
        options=options,
        keep_titles=source.keep_titles,
        lookback=source.lookback,
        base_dir=source.base_dir,
        live=source.live,
        live_interval=source.live_interval,
        live_api=source.live_api,
    )


def secret_reader(source: SourceConfig, cfg: Config) -> Callable[[str], str]:
    """Reads the secret an option points at, with errors naming the source and key."""
    from workstyle.collector.secrets import read_secret

    def read(key: str) -> str:
        ref = source.options.get(key)
        if not ref:
            raise ConfigError(f"{cfg.path}: [[sources]] ({source.name}) key '{key}': not set")
        return read_secret(ref, f"{cfg.path}: [[sources]] ({source.name}) key '{key}'")

    return read


def api_options(source: SourceConfig, cfg: Config, options: tuple[Option, ...]) -> dict[str, Any]:
    """The validated ``live_api`` table of a source."""
    where = f"{cfg.path}: [[sources]] ({source.name}) live_api"
    return validate_options(where, dict(source.live_api or {}), options)
