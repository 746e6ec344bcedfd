"""FortiGate connected SSL-VPN users and tunnels from the REST monitor API.

``GET /api/v2/monitor/vpn/ssl`` with a REST API administrator's token (``Authorization:
Bearer``; the token from ``env:``/``file:``, never in the config), once per configured
VDOM (``?vdom=NAME``; ``["*"]`` asks every VDOM in one request and gets a list back).
Users are distinct ``user_name`` values across the VDOMs; sessions are tunnels
(``subsessions``), a clientless (web-mode) login counting as one. TLS is verified: a
FortiGate's own certificate is trusted through ``ca_bundle``. Names are counted, never
kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from workstyle.collector.config import Config
from workstyle.collector.errors import ConfigError, SourceError
from workstyle.collector.live.base import Clock, LiveReader, api_options
from workstyle.collector.options import Option, SourceConfig

PATH = "/api/v2/monitor/vpn/ssl"
OPTIONS = (
    Option("url", "str", "FortiGate base URL, e.g. 'https://fgt.pref.example.jp'.", required=True),
    Option(
        "token", "secret", "REST API administrator token: 'env:VAR' or 'file:PATH'.", required=True
    ),
    Option(
        "vdoms",
        "list",
        "VDOMs to ask ('*' for all at once); default: the admin's VDOM.",
        default=[],
    ),
    Option("ca_bundle", "path", "PEM file trusted for the FortiGate's certificate.", default=None),
    Option("timeout", "float", "Seconds to wait for the FortiGate to answer.", default=10.0),
)


class FortiGateMonitor(LiveReader):
    platform: ClassVar[str] = "fortigate"

    def __init__(self, source: SourceConfig, cfg: Config, clock: Clock) -> None:
        super().__init__(source, cfg, clock)
        self.api = api_options(source, cfg, OPTIONS)
        self.where = f"{cfg.path}: [[sources]] ({source.name}) live_api key 'token'"
        ca = self.api["ca_bundle"]
        if ca:
            path = Path(ca).expanduser()
            # Relative to the config file, like every path in it.
            ca = str(path if path.is_absolute() else source.base_dir / path)
        self.ca: str | None = ca
        self.client: Any = None

    def _client(self) -> Any:
        from workstyle.adapters.http import HttpClient, HttpSettings

        timeout = float(self.api["timeout"])
        settings = HttpSettings(
            connect_timeout=timeout,
            read_timeout=timeout,
            max_retries=1,
            retry_budget=2,
            max_wait_seconds=min(5.0, self.interval / 2),
            backoff_base_seconds=0.2,
            backoff_max_seconds=1.0,
            ca_bundle=self.ca,
        )
        return HttpClient(self.name, settings)

    def read(self) -> dict[str, float]:
        from workstyle.adapters.http import HttpStats
        from workstyle.collector.secrets import read_secret

        token = read_secret(self.api["token"], self.where)
        if self.client is None:
            self.client = self._client()
        self.client.stats = HttpStats()
        url = str(self.api["url"]).rstrip("/") + PATH
        users: set[str] = set()
        sessions = 0
        for vdom in [str(v) for v in self.api["vdoms"]] or [None]:
            label = f"GET {PATH}" + (f"?vdom={vdom}" if vdom else "")
            try:
                resp = self.client.request(
                    "GET",
                    url,
                    label,
                    params={"vdom": vdom} if vdom else None,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    ok_statuses=frozenset({401, 403}),
                )
            except ConfigError as exc:
                if "TLS" in str(exc):
                    raise ConfigError(
                        f"{self.name}: {label}: TLS certificate verification failed; set"
                        " live_api ca_bundle to the PEM file of the FortiGate's certificate"
                        " or its CA"
                    ) from None
                raise
            if resp.status_code == 401:
                raise ConfigError(
                    f"{self.name}: {label}: HTTP 401: the API token was refused (expired,"
                    " revoked or not allowed from this address); create a new token for the"
                    f" REST API administrator and update {self.api['token']}"
                )
            if resp.status_code == 403:
                raise ConfigError(
                    f"{self.name}: {label}: HTTP 403: the API administrator may not read"
                    f" VDOM {vdom or '(default)'}; grant it or fix live_api vdoms"
                )
            try:
                body = resp.json()
            except ValueError:
                raise SourceError(f"{self.name}: {label}: the answer is not JSON") from None
            for answer in body if isinstance(body, list) else [body]:
                for entry in _results(answer, self.name, label):
                    name = str(entry.get("user_name") or "")
                    users.add(hashlib.sha256(name.lower().encode()).hexdigest())
                    subs = entry.get("subsessions")
                    sessions += len(subs) if isinstance(subs, list) and subs else 1
        return {"vpn_users": float(len(users)), "vpn_sessions": float(sessions)}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def _results(answer: Any, name: str, label: str) -> list[dict[str, Any]]:
    if not isinstance(answer, dict) or answer.get("status", "success") != "success":
        status = answer.get("status") if isinstance(answer, dict) else type(answer).__name__
        raise SourceError(f"{name}: {label}: the FortiGate answered status {status!r}")
    results = answer.get("results")
    if not isinstance(results, list):
        raise SourceError(f"{name}: {label}: no 'results' list in the answer")
    return [r for r in results if isinstance(r, dict)]
