"""Google Meet: meeting instances assembled from Admin SDK Reports ``call_ended`` events.

Each ``call_ended`` event describes one endpoint (a person's device) leaving a
conference, so a meeting is the group of events sharing a ``conference_id``: it
started at the earliest ``event time - duration_seconds`` and ended at the latest
event time. A conference belongs to the window holding its first event; each window
is queried with ``max_meeting_hours`` of margin on both sides, so every event of its
conferences is seen even when the meeting crosses a window edge, and a row is never
written from half its events. Events are deduplicated on their id. The API answers
for the last 180 days: no window is asked for anything older.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from workstyle.adapters.base import Quarantined
from workstyle.adapters.http import HTTP_OPTIONS, HttpClient, TokenCache
from workstyle.adapters.windowed import (
    Page,
    PageRequest,
    Window,
    WindowedApiSource,
    WindowRows,
    ceil_second,
    parse_iso,
    seconds_between,
)
from workstyle.collector.errors import ConfigError
from workstyle.collector.options import Option

log = logging.getLogger("collector.google_meet")

SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
ACTIVITY_PATH = "/admin/reports/v1/activity/users/all/applications/meet"
#: "the most recent 180 days": how far back the Reports API answers.
HISTORY = dt.timedelta(days=180)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_jwt(key: dict[str, Any], subject: str, audience: str, now: float) -> str:
    """An RS256 JWT asserting the service account, impersonating ``subject``."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    header = {"alg": "RS256", "typ": "JWT"}
    if key.get("private_key_id"):
        header["kid"] = key["private_key_id"]
    claims = {
        "iss": key["client_email"],
        "scope": SCOPE,
        "aud": audience,
        "sub": subject,
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64(signature)


@dataclass
class _Conference:
    """The call_ended events of one conference seen so far."""

    first_event: dt.datetime
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    people: set[str] = field(default_factory=set)
    organizer: str | None = None
    meeting_code: str | None = None

    def add(self, when: dt.datetime, params: dict[str, Any], actor: dict[str, Any]) -> None:
        self.first_event = min(self.first_event, when)
        seconds = _int(params.get("duration_seconds"))
        began = when - dt.timedelta(seconds=seconds or 0)
        self.start = began if self.start is None else min(self.start, began)
        self.end = when if self.end is None else max(self.end, when)
        # One person on two devices, or rejoining, is several events: count the person.
        who = (
            params.get("identifier")
            or actor.get("email")
            or params.get("display_name")
            or params.get("endpoint_id")
        )
        if who:
            self.people.add(str(who).lower())
        self.organizer = self.organizer or params.get("organizer_email")
        self.meeting_code = self.meeting_code or params.get("meeting_code")


class GoogleMeet(WindowedApiSource):
    """Google Meet meeting instances from the Reports API (domain-wide delegation)."""

    kind = "google_meet"
    history_text = "the most recent 180 days"
    tables = ("meetings",)
    summary = "Google Meet meetings from Admin SDK Reports call_ended events."
    options = (
        Option(
            "service_account_key",
            "secret",
            "The service account's JSON key: 'file:PATH' (or 'env:VAR' holding the JSON).",
            required=True,
        ),
        Option(
            "admin_email",
            "str",
            "Workspace admin the service account impersonates (domain-wide delegation).",
            required=True,
            identity=True,
        ),
        Option(
            "base_url",
            "str",
            "Admin SDK base URL.",
            default="https://admin.googleapis.com",
            identity=True,
        ),
        Option("token_url", "str", "Token endpoint; default: the key's token_uri."),
        Option("initial_days", "int", "History read by the first incremental run.", default=30),
        Option("window_days", "int", "Days per query window.", default=7),
        Option(
            "max_meeting_hours",
            "int",
            "Longest meeting expected; each window is read"
            " with this margin so a meeting crossing its edge is assembled whole.",
            default=24,
        ),
        Option("page_size", "int", "Events per page (maxResults, at most 1000).", default=1000),
        *HTTP_OPTIONS,
    )

    # -- plumbing ---------------------------------------------------------------------
    def _key(self) -> dict[str, Any]:
        try:
            key = json.loads(self.secret("service_account_key"))
            if not isinstance(key, dict):
                raise ValueError
            key["client_email"], key["private_key"]
        except (ValueError, KeyError):
            # Never echo the content: it is a private key.
            raise ConfigError(
                f"{self.name}: service_account_key is not a service-account"
                " JSON key (expected client_email and private_key); download"
                " a JSON key for the service account"
            ) from None
        return key

    def open_client(self) -> HttpClient:
        client = self.make_client()
        key = self._key()
        client.token = TokenCache(lambda: self._fetch_token(client, key))
        return client

    def _fetch_token(self, client: HttpClient, key: dict[str, Any]) -> tuple[str, float]:
        url = str(self.opt("token_url") or key.get("token_uri") or TOKEN_URL)
        try:
            assertion = signed_jwt(key, str(self.opt("admin_email")), url, time.time())
        except (ValueError, TypeError):
            raise ConfigError(
                f"{self.name}: the private_key in service_account_key cannot be"
                " read as an RSA key; download a new JSON key"
            ) from None
        resp = client.request(
            "POST",
            url,
            "POST /token",
            auth=False,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
        body = resp.json()
        return body["access_token"], float(body.get("expires_in", 3600))

    # -- reading ----------------------------------------------------------------------
    def oldest(self, now: dt.datetime) -> dt.datetime:
        return ceil_second(now - HISTORY)

    def read_window(self, client: HttpClient, w: Window) -> WindowRows:
        """Conferences whose first call ended in ``w``, read with a margin each side."""
        margin = dt.timedelta(hours=int(self.opt("max_meeting_hours") or 24))
        lo = w.start - margin if w.floor is None else max(w.start - margin, w.floor)
        hi = w.end + margin if w.now is None else min(w.end + margin, w.now)
        q = Quarantined.empty()
        conferences: dict[str, _Conference] = {}
        seen: set[tuple[str, str]] = set()
        label = f"GET {ACTIVITY_PATH}"
        for n, activity in enumerate(self._activities(client, lo, hi), start=1):
            ident = activity.get("id") or {}
            when = parse_iso(ident.get("time"))
            key = (str(ident.get("time")), str(ident.get("uniqueQualifier")))
            if key in seen:
                continue  # the same event on two pages or in an overlapping re-query
            seen.add(key)
            for event in activity.get("events") or []:
                if event.get("name") != "call_ended":
                    continue
                params = {p.get("name"): _value(p) for p in event.get("parameters") or []}
                cid = params.get("conference_id")
                if when is None or not cid:
                    if when is None or w.start <= when < w.end:
                        q.add(
                            f"{label} {w.start:%Y-%m-%d} event {n}",
                            "call_ended without time or conference_id",
                            json.dumps(activity)[:1000],
                        )
                    continue
                conf = conferences.setdefault(str(cid), _Conference(first_event=when))
                conf.add(when, params, activity.get("actor") or {})
        rows = [
            self._row(cid, c, f"{label} {w.start:%Y-%m-%d} conference")
            for cid, c in conferences.items()
            if w.start <= c.first_event < w.end
        ]
        return rows, q, len(rows) + len(q)

    def next_page(self, page: Page) -> PageRequest | None:
        token = page.body.get("nextPageToken")
        return page.request.with_params(pageToken=token) if token else None

    def _activities(
        self, client: HttpClient, lo: dt.datetime, hi: dt.datetime
    ) -> Iterator[dict[str, Any]]:
        url = self.base_url("base_url", "https://admin.googleapis.com") + ACTIVITY_PATH
        params: dict[str, Any] = {
            "eventName": "call_ended",
            "startTime": f"{lo:%Y-%m-%dT%H:%M:%S.000Z}",
            "endTime": f"{hi:%Y-%m-%dT%H:%M:%S.000Z}",
            "maxResults": min(1000, int(self.opt("page_size") or 1000)),
        }
        for page in self.pages(client, PageRequest(url, f"GET {ACTIVITY_PATH}", params)):
            yield from page.body.get("items") or []

    def _row(self, cid: str, c: _Conference, location: str) -> dict[str, Any]:
        return {
            "meeting_id": cid,
            "platform": "google_meet",
            "start_time": c.start,
            "end_time": c.end,
            "duration_seconds": seconds_between(c.start, c.end),
            "participants": len(c.people),
            "host": c.organizer,
            "department": None,
            # Recurring meetings share a meeting code; each occurrence is a conference.
            "series_id": c.meeting_code,
            "topic": None,
            "_location": location,
        }

    def check(self) -> str:
        """Mint a token and read one page of the last day's call_ended events."""
        client = self.open_client()
        try:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            url = self.base_url("base_url", "https://admin.googleapis.com") + ACTIVITY_PATH
            client.get_json(
                url,
                f"GET {ACTIVITY_PATH}",
                {
                    "eventName": "call_ended",
                    "maxResults": 1,
                    "startTime": f"{now - dt.timedelta(days=1):%Y-%m-%dT%H:%M:%S.000Z}",
                },
            )
            return "ok (token issued by domain-wide delegation, Meet audit log readable)"
        finally:
            client.close()


def _value(p: dict[str, Any]) -> Any:
    for key in ("value", "intValue", "boolValue", "multiValue", "multiIntValue"):
        if key in p:
            return p[key]
    return None


def _int(value: Any) -> int | None:
    """Google's int64 values arrive as JSON strings."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
