"""The one place that classifies failures, and the exit codes they map to.

- :class:`ConfigError` - a bad config, missing secret, 401/403: the operator must
  act; exit code 2.
- :class:`SourceError` - a source could not be read this run (unreadable file,
  API down after retries): that source fails, the others still run; exit code 1.
- :class:`RetryableError` - 429, 5xx, timeouts: retried by the HTTP layer, and a
  :class:`SourceError` once the retry budget is spent.
- :class:`QuotaExhausted` - the source's daily quota is spent: stop cleanly with
  state saved, resume next run.
- Bad rows are not exceptions: they are quarantined and counted.
- Anything else is a bug and keeps its stack trace.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_SOURCE_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3


class CollectorError(Exception):
    """Base for errors a user can hit; the message is one clear line."""

    exit_code = EXIT_SOURCE_FAILED


class ConfigError(CollectorError):
    """Configuration (or credentials/permissions) are wrong; the operator must fix them."""

    exit_code = EXIT_CONFIG


class SourceError(CollectorError):
    """A source could not be read this run; other sources are unaffected."""


class RetryableError(SourceError):
    """A transient failure (429, 5xx, timeout) worth retrying."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExhausted(SourceError):
    """The source's quota is spent; committed progress is kept and the run resumes later."""


class LockedError(CollectorError):
    """Another collector process holds the data directory's writer lock."""

    exit_code = EXIT_LOCKED


def exit_code_of(kinds: list[str | None]) -> int:
    """The exit code of a run whose sources ended with these error kinds (None = ok)."""
    if "config" in kinds:
        return EXIT_CONFIG
    if any(k is not None for k in kinds):
        return EXIT_SOURCE_FAILED
    return EXIT_OK
