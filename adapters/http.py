"""The one HTTP layer the web-conferencing adapters share.

Every call goes through :class:`HttpClient`: one ``requests.Session`` per source
(connection reuse), connect and read timeouts on every request, retries with
exponential backoff and full jitter on 429, 5xx and connection errors, ``Retry-After``
honoured whether it holds seconds, an HTTP-date or an ISO timestamp, and a per-run
budget of retries and of seconds spent waiting. A 401 triggers one token refresh and
then a :class:`ConfigError`. Errors name the source and the endpoint *label* (never
the URL, which may carry a pre-authenticated download token) and never a secret.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from workstyle.collector.errors import ConfigError, QuotaExhausted, RetryableError, SourceError
from workstyle.collector.options import Option
from workstyle.collector.secrets import redact, register_secret

log = logging.getLogger("collector.http")


class _RedactQuery(logging.Filter):
    """Drop query strings from urllib3's debug lines: pre-signed URLs carry credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.split("?", 1)[0] + "?<redacted>" if isinstance(a, str) and "?" in a else a
                for a in record.args
            )
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactQuery())

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Google and Zoom sometimes signal rate limits as 403 with one of these in the body.
RATE_LIMIT_WORDS = (
    "ratelimitexceeded",
    "userratelimitexceeded",
    "quotaexceeded",
    "maximum number of api requests",
)
USER_AGENT = "workstyle-collector/0.1 (+requests)"
#: Form fields that carry credentials: redacted wherever a server echoes them back.
SECRET_FORM_FIELDS = frozenset(
    {"client_secret", "refresh_token", "assertion", "password", "code", "client_assertion"}
)

#: Options every HTTP-based source accepts, in addition to its own.
HTTP_OPTIONS: tuple[Option, ...] = (
    Option(
        "proxy",
        "str",
        "HTTPS proxy URL (e.g. 'http://proxy.pref.example.jp:8080');"
        " default: the HTTPS_PROXY environment variable.",
    ),
    Option(
        "ca_bundle",
        "path",
        "PEM file of CA certificates to trust (for TLS-inspecting"
        " government gateways); default: the system/certifi bundle.",
    ),
    Option("connect_timeout", "float", "Seconds to wait for a connection.", default=10.0),
    Option("read_timeout", "float", "Seconds to wait for response data.", default=60.0),
    Option("max_retries", "int", "Retries of one request on 429/5xx/connection errors.", default=5),
    Option(
        "retry_budget", "int", "Retries allowed in one run, all requests together.", default=100
    ),
    Option(
        "max_wait_seconds",
        "float",
        "Seconds one run may spend waiting on retries;"
        " a longer Retry-After stops the source cleanly (resumed next run).",
        default=900.0,
    ),
    Option(
        "backoff_max_seconds",
        "float",
        "Longest backoff between retries when the API gives no Retry-After.",
        default=60.0,
    ),
)


@dataclass(frozen=True)
class HttpSettings:
    """Transport and retry settings of one source."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 5
    retry_budget: int = 100
    max_wait_seconds: float = 900.0
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    proxy: str | None = None
    ca_bundle: str | None = None

    @classmethod
    def from_options(cls, opt: Callable[[str], Any], ca_bundle: str | None) -> HttpSettings:
        """Build from a source's options (``opt`` is ``Adapter.opt``)."""

        def get(key: str, default: Any) -> Any:
            value = opt(key)
            return default if value is None else value

        return cls(
            connect_timeout=float(get("connect_timeout", 10.0)),
            read_timeout=float(get("read_timeout", 60.0)),
            max_retries=int(get("max_retries", 5)),
            retry_budget=int(get("retry_budget", 100)),
            max_wait_seconds=float(get("max_wait_seconds", 900.0)),
            backoff_max_seconds=float(get("backoff_max_seconds", 60.0)),
            # The base never exceeds the cap, so a tiny cap (tests) keeps every sleep tiny.
            backoff_base_seconds=min(0.5, float(get("backoff_max_seconds", 60.0))),
            proxy=opt("proxy"),
            ca_bundle=ca_bundle,
        )


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds, HTTP-date or ISO time."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    now = now or dt.datetime.now(dt.UTC)
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    when: dt.datetime | None = None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        # Both RFC 9110 dates and Zoom's example are UTC.
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


class HttpError(SourceError):
    """A non-retryable HTTP error (400, 404, ...), with status and the API's message."""

    def __init__(self, message: str, status: int, api_message: str, endpoint: str) -> None:
        super().__init__(message)
        self.status = status
        self.api_message = api_message
        self.endpoint = endpoint


def api_message(resp: requests.Response, limit: int = 200) -> str:
    """The API's own error text, short, from the common JSON error shapes or the body.

    Secrets are redacted before the text is cut short, so no fragment of one survives.
    """
    text = _api_message(resp, 100_000)
    return redact(text)[:limit]


def _api_message(resp: requests.Response, limit: int) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:limit]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            text = err.get("message") or err.get("code")
            if text:
                return str(text)[:limit]
        for key in ("message", "error_description", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key][:limit]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("description") or errors[0])[:limit]
    return str(body)[:limit]


class TokenCache:
    """An access token fetched by ``fetch`` and renewed ``margin`` seconds before expiry."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], margin: float = 60.0) -> None:
        self._fetch = fetch
        self._margin = margin
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, force: bool = False) -> str:
        """A valid token; ``force`` fetches a new one (after a 401)."""
        with self._lock:
            if force or self._token is None or time.monotonic() >= self._expires:
                token, expires_in = self._fetch()
                register_secret(token)  # a bearer token is as good as the secret for an hour
                self.fetches += 1
                self._token = token
                self._expires = time.monotonic() + max(0.0, expires_in - self._margin)
            return self._token


@dataclass
class HttpStats:
    """What the client did in one run: counts per endpoint, retries, waiting."""

    requests: int = 0
    retries: int = 0
    waited: float = 0.0
    by_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: dict[tuple[str, int], str] = field(default_factory=dict)


#: Called with every response; returns a message when the source's quota is spent.
QuotaCheck = Callable[[requests.Response], str | None]


class HttpClient:
    """A session with timeouts, bounded retries, token refresh and per-endpoint counts."""

    def __init__(
        self,
        source: str,
        settings: HttpSettings,
        token: TokenCache | None = None,
        quota_check: QuotaCheck | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.settings = settings
        self.token = token
        self.quota_check = quota_check
        self.stats = HttpStats()
        self._sleep = sleep
        self._quota_spent: str | None = None
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Passed on every request, not set on the session: requests lets the environment
        # (REQUESTS_CA_BUNDLE, HTTPS_PROXY) override session settings, and a configured
        # gateway CA or proxy must win.
        self._proxies = (
            {"https": settings.proxy, "http": settings.proxy} if settings.proxy else None
        )
        self._verify: str | bool | None = settings.ca_bundle or None

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    # -- public -----------------------------------------------------------------------
    def get_json(
        self,
        url: str,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET and decode JSON; a body that is not JSON is a :class:`SourceError`."""
        resp = self.request("GET", url, endpoint, params=params, headers=headers)
        try:
            return resp.json()
        except ValueError:
            raise SourceError(
                f"{self.source}: {endpoint}: the API answered"
                f" {resp.status_code} with a body that is not JSON"
            ) from None

    def request(
        self,
        method: str,
        url: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        auth: bool = True,
        allow_redirects: bool = True,
        basic_auth: tuple[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """Send one request with retries; raise a classified error on failure.

        ``endpoint`` is a label such as ``GET /metrics/meetings`` used in messages and
        counts. ``auth=False`` sends no bearer token (token endpoints, pre-signed URLs).
        ``ok_statuses`` are non-2xx statuses returned to the caller (e.g. 302).
        """
        if self._quota_spent:
            raise QuotaExhausted(
                f"{self.source}: {self._quota_spent}; progress so far is"
                " kept and the next run resumes"
            )
        attempt = 0
        refreshed = False
        # A gateway may echo the request in its error: make sure no credential survives.
        if basic_auth is not None:
            register_secret(basic_auth[1])
        if isinstance(data, Mapping):
            for key, value in data.items():
                if key in SECRET_FORM_FIELDS and isinstance(value, str):
                    register_secret(value)
        while True:
            hdrs = dict(headers or {})
            if auth and self.token is not None:
                hdrs["Authorization"] = f"Bearer {self.token.get()}"
            try:
                self.stats.requests += 1
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    headers=hdrs,
                    data=data,
                    auth=basic_auth,
                    allow_redirects=allow_redirects,
                    proxies=self._proxies,
                    verify=self._verify,
                    timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                )
            except requests.exceptions.SSLError:
                # Retrying cannot fix trust: a TLS-inspecting gateway needs its CA configured.
                raise ConfigError(
                    f"{self.source}: {endpoint}: TLS certificate verification failed; set"
                    " ca_bundle to the PEM file of your network's CA (or fix the proxy)"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = type(exc).__name__
                self.stats.by_status[(endpoint, 0)] += 1
                attempt = self._before_retry(endpoint, attempt, reason, None)
                continue
            self.stats.by_status[(endpoint, resp.status_code)] += 1
            quota = self.quota_check(resp) if self.quota_check else None
            status = resp.status_code
            if 200 <= status < 300 or status in ok_statuses:
                if quota:
                    # This response is good; the next request would be refused.
                    self._quota_spent = quota
                return resp
            if quota:
                self._quota_spent = quota
                raise QuotaExhausted(
                    f"{self.source}: {endpoint}: {quota}; progress so far is"
                    " kept and the next run resumes"
                )
            if status == 401 and auth and self.token is not None and not refreshed:
                refreshed = True
                log.info("%s: %s: 401, renewing the access token once", self.source, endpoint)
                self.token.get(force=True)
                continue
            if self._retryable(resp):
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                attempt = self._before_retry(endpoint, attempt, f"HTTP {status}", wait)
                continue
            raise self._error(resp, endpoint, auth)

    # -- internals --------------------------------------------------------------------
    def _retryable(self, resp: requests.Response) -> bool:
        if resp.status_code in RETRY_STATUSES:
            return True
        if resp.status_code == 403:
            text = resp.text[:2000].lower()
            return any(word in text for word in RATE_LIMIT_WORDS)
        return False

    def _before_retry(
        self, endpoint: str, attempt: int, reason: str, retry_after: float | None
    ) -> int:
        """Wait before the next attempt, or raise when a retry cap is reached."""
        s = self.settings
        if attempt >= s.max_retries:
            raise RetryableError(
                f"{self.source}: {endpoint}: {reason}, still failing after"
                f" {s.max_retries} retries; try again later"
            )
        if self.stats.retries >= s.retry_budget:
            raise RetryableError(
                f"{self.source}: {endpoint}: {reason}; the run's retry"
                f" budget ({s.retry_budget}) is spent; try again later"
            )
        if retry_after is not None:
            wait = retry_after
            remaining = s.max_wait_seconds - self.stats.waited
            if wait > remaining:
                # A long Retry-After is a quota, not a hiccup: stop cleanly and resume.
                raise QuotaExhausted(
                    f"{self.source}: {endpoint}: rate limited for"
                    f" {wait:.0f} s (more than the {remaining:.0f} s left of"
                    " max_wait_seconds); the next run resumes"
                )
        else:
            cap = min(s.backoff_max_seconds, s.backoff_base_seconds * (2**attempt))
            wait = random.uniform(0, cap)  # full jitter: clients do not retry in step
            wait = min(wait, max(0.0, s.max_wait_seconds - self.stats.waited))
        log.warning(
            "%s: %s: %s, retry %d in %.1f s", self.source, endpoint, reason, attempt + 1, wait
        )
        self.stats.retries += 1
        self.stats.waited += wait
        if wait > 0:
            self._sleep(wait)
        return attempt + 1

    def _error(self, resp: requests.Response, endpoint: str, auth: bool) -> CollectorErrorT:
        status = resp.status_code
        msg = api_message(resp)
        self.stats.errors[(endpoint, status)] = msg
        if not auth and status in (400, 401):
            # Token endpoints answer 400/401 to wrong client ids, secrets or grants.
            return ConfigError(
                f"{self.source}: {endpoint}: HTTP {status} ({msg}): the"
                " credentials were refused; check the client id/secret"
            )
        if status in (401, 403):
            what = (
                "the credentials were refused even after a token refresh"
                if status == 401
                else "the app lacks a permission or scope"
            )
            return ConfigError(
                f"{self.source}: {endpoint}: HTTP {status} ({msg}): {what};"
                " see docs/sources/web-conferencing.md"
            )
        return HttpError(f"{self.source}: {endpoint}: HTTP {status} ({msg})", status, msg, endpoint)


CollectorErrorT = ConfigError | HttpError
