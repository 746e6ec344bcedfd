"""A fake Google OAuth token endpoint (JWT bearer) and Admin SDK Reports Meet activity.

The token endpoint verifies the RS256 signature with the test's public key and the
claims a real token server checks (issuer, audience, scope, subject, expiry). The
activity list returns events newest first, paged with ``nextPageToken``. As documented,
the API answers for the last 180 days: a ``startTime`` further back is not refused,
older events are simply gone.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.common import Tokens, iso, parse
from tests.fakes.server import FakeServer, Faults, Reply, Request

ADMIN = "admin@pref.example.jp"
CLIENT_EMAIL = "collector@pref-telemetry.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
PATH = "/admin/reports/v1/activity/users/all/applications/meet"
#: How far back the Reports API answers.
RETENTION = dt.timedelta(days=180)
UNAUTHORIZED = (
    "Client is unauthorized to retrieve access tokens using this method, or client not"
    " authorized for any of the scopes requested."
)


def throwaway_key() -> tuple[str, rsa.RSAPublicKey]:
    """A fresh RSA key as the service account's JSON key text, and its public half."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key = {
        "type": "service_account",
        "project_id": "pref-telemetry",
        "private_key_id": secrets.token_hex(8),
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return json.dumps(key), private.public_key()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGoogle:
    """Meet audit events and a token endpoint."""

    def __init__(self, server: FakeServer, public_key: rsa.RSAPublicKey) -> None:
        self.server = server
        self.public_key = public_key
        self.activities: list[dict[str, Any]] = []
        self.now: dt.datetime | None = None  # None: the real clock
        self.tokens = Tokens("ya29")
        self.faults = Faults()
        self.claims: list[dict[str, Any]] = []
        self._pages: dict[str, tuple[list[dict[str, Any]], int, int]] = {}
        server.route("POST", "/token", self.token)
        server.route("GET", PATH, self.activity)

    def token(self, req: Request) -> Reply:
        form = req.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            head, body, sig = form["assertion"].split(".")
            self.public_key.verify(
                _unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (KeyError, ValueError, InvalidSignature):
            return Reply(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        claims = json.loads(_unb64(body))
        self.claims.append(claims)
        if (
            json.loads(_unb64(head)).get("alg") != "RS256"
            or claims["iss"] != CLIENT_EMAIL
            or claims["aud"] != f"{self.server.url}/token"
            or claims["scope"] != SCOPE
            or not claims["iat"] <= time.time() < claims["exp"]
        ):
            return Reply(400, {"error": "invalid_grant", "error_description": "bad claims"})
        if claims.get("sub") != ADMIN:
            return Reply(
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": UNAUTHORIZED,
                },
            )
        return Reply(
            200, {"access_token": self.tokens.issue(), "expires_in": 3599, "token_type": "Bearer"}
        )

    def activity(self, req: Request) -> Reply:
        if (r := self.faults.take("activity")) is not None:
            return r
        if not self.tokens.ok(req):
            return Reply(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        token = req.query.get("pageToken")
        if token:
            items, offset, size = self._pages.pop(token)
        else:
            if req.query.get("eventName") != "call_ended":
                return Reply(400, {"error": {"code": 400, "message": "eventName"}})
            now = self.now or dt.datetime.now(dt.UTC)
            lo = max(parse(req.query["startTime"]), now - RETENTION)
            hi = parse(req.query.get("endTime", iso(now)))
            items = sorted(
                (a for a in self.activities if lo <= parse(a["id"]["time"]) < hi),
                key=lambda a: a["id"]["time"],
                reverse=True,
            )
            offset, size = 0, int(req.query.get("maxResults", 1000))
        body: dict[str, Any] = {
            "kind": "admin#reports#activities",
            "items": items[offset : offset + size],
        }
        if offset + size < len(items):
            nxt = secrets.token_urlsafe(9)
            self._pages[nxt] = (items, offset + size, size)
            body["nextPageToken"] = nxt
        return Reply(200, body)


def call_ended(
    when: dt.datetime,
    conference: str,
    who: str,
    seconds: int,
    *,
    unique: str | None = None,
    code: str = "abc-defg-hij",
    organizer: str = "kacho@pref.example.jp",
) -> dict[str, Any]:
    """A call_ended activity in the documented shape."""
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "uniqueQualifier": unique or str(secrets.randbits(62)),
            "applicationName": "meet",
            "customerId": "C03abc123",
        },
        "actor": {"email": who, "profileId": "1055", "callerType": "USER"},
        "events": [
            {
                "type": "call",
                "name": "call_ended",
                "parameters": [
                    {"name": "meeting_code", "value": code.replace("-", "").upper()},
                    {"name": "conference_id", "value": conference},
                    {"name": "organizer_email", "value": organizer},
                    {"name": "identifier_type", "value": "email_address"},
                    {"name": "identifier", "value": who},
                    {"name": "device_type", "value": "web"},
                    {"name": "endpoint_id", "value": "boq_" + secrets.token_hex(4)},
                    {"name": "duration_seconds", "intValue": str(seconds)},
                ],
            }
        ],
    }
