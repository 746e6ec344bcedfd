"""A fake FortiGate REST API: ``GET /api/v2/monitor/vpn/ssl`` per VDOM, with API tokens.

Shape as FortiOS 7.x answers it: one object per VDOM (``?vdom=NAME``) whose ``results``
list one entry per connected user (``user_name``, ``remote_host``, ``login_time``) with
its ``subsessions`` (one per tunnel); ``?vdom=*`` answers a list of such objects. An
unknown or revoked token gets 401, as FortiOS does for an expired REST API key.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeServer, Faults, Reply, Request

TOKEN = "fgt-api-token-0123456789abcdef"


class FakeFortiGate:
    """Connected SSL-VPN users per VDOM; ``token`` is the one key the fake accepts."""

    def __init__(self, server: FakeServer, users: dict[str, list[dict[str, Any]]]) -> None:
        self.server = server
        self.users = users
        self.token = TOKEN
        self.faults = Faults()
        server.route("GET", "/api/v2/monitor/vpn/ssl", self.ssl)

    def ssl(self, req: Request) -> Reply:
        if (r := self.faults.take("ssl")) is not None:
            return r
        if req.header("Authorization") != f"Bearer {self.token}":
            return Reply(401, {"http_method": "GET", "status": "error", "http_status": 401})
        vdom = req.query.get("vdom", "root")
        if vdom == "*":
            return Reply(200, [self._answer(v) for v in self.users])
        if vdom not in self.users:
            return Reply(
                403, {"http_method": "GET", "status": "error", "http_status": 403, "vdom": vdom}
            )
        return Reply(200, self._answer(vdom))

    def _answer(self, vdom: str) -> dict[str, Any]:
        return {
            "http_method": "GET",
            "results": self.users[vdom],
            "vdom": vdom,
            "path": "vpn",
            "name": "ssl",
            "action": "",
            "status": "success",
            "serial": "FG100FTK19000001",
            "version": "v7.2.8",
            "build": 1639,
        }


def user(name: str, host: str, tunnels: int = 1) -> dict[str, Any]:
    """One connected user as the monitor lists it, with ``tunnels`` subsessions."""
    return {
        "index": 0,
        "user_name": name,
        "remote_host": host,
        "last_login_time": "Mon Dec  1 09:00:00 2026",
        "login_time": 1796083200,
        "subsessions": [
            {
                "index": i,
                "parent_index": 0,
                "mode": "Tunnel",
                "type": "SSL VPN",
                "aip": f"10.212.134.{200 + i}",
                "in_bytes": 1024,
                "out_bytes": 2048,
                "desthost": "",
            }
            for i in range(tunnels)
        ],
    }
