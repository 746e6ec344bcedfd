"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

Headless Chromium (Debian's ``chromium``) is started with networking made impossible
(every host name resolves to nothing, every request goes to a proxy nobody listens on),
and the Network domain of the page reports every request the page tries, failed or not.
No websocket, no port, no extra package: commands go in on fd 3 and replies come out on
fd 4 as NUL-separated JSON.

Also a tool: ``python -m tests.cdp REPORT.html OUT.png`` saves a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--remote-debugging-pipe",
    # Networking disabled: no name resolves and every request is sent to a dead proxy,
    # so a page that asks for anything gets nothing (and the monitor sees it ask).
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)


def _high(fd: int) -> int:
    """The same pipe end on a descriptor number of 10 or more."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class CdpError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """One headless Chromium with one page attached; use as a context manager."""

    def __init__(self, binary: str = CHROMIUM, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="report-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # The child's ends must not sit on fd 3 or 4 themselves (the shell's redirections
        # would overwrite one with the other): move them above 9 first.
        to_child_r = _high(to_child_r)
        from_child_w = _high(from_child_w)
        self._log = open(Path(self._profile.name) / "chromium.log", "wb")  # noqa: SIM115
        # bash puts our pipe ends on the fds Chromium expects (3 in, 4 out).
        self.proc = subprocess.Popen(
            [
                "bash",  # dash's redirections take one-digit descriptors only
                "-c",
                'exec "$@" 3<&"$CDP_IN" 4>&"$CDP_OUT"',
                "bash",
                binary,
                *FLAGS,
                f"--user-data-dir={self._profile.name}/profile",
                "about:blank",
            ],
            env={**os.environ, "CDP_IN": str(to_child_r), "CDP_OUT": str(from_child_w)},
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # -- protocol ---------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("no answer from Chromium in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    log = (Path(self._profile.name) / "chromium.log").read_text(errors="replace")
                    raise CdpError(f"Chromium exited (code {self.proc.poll()}): {log[-500:]}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = True) -> Any:
        """Send one command and return its result; events seen meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        """Wait for an event of the page (or return one already seen)."""
        for ev in self.events:
            if ev["method"] == method:
                return ev
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._read_message(deadline)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg

    # -- a page -------------------------------------------------------------------------
    def open_page(self, width: int = 1280, height: int = 1800) -> None:
        """Create a page, attach to it, and start watching its network."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, False
        )
        self.session = attached["sessionId"]
        for domain in ("Network", "Page", "Runtime", "DOM", "CSS"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def load(self, url: str) -> None:
        """Navigate and wait until the page's load event."""
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def requests(self) -> list[str]:
        """Every URL the page asked for since it was opened (including failed requests)."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (the test's probe; the page itself has none)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CdpError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    def fonts_for(self, expression: str) -> list[dict[str, Any]]:
        """The platform fonts that rendered the text of the element ``expression`` yields."""
        self.send("DOM.getDocument", {"depth": 0})
        obj = self.send("Runtime.evaluate", {"expression": expression})["result"]
        node = self.send("DOM.requestNode", {"objectId": obj["objectId"]})["nodeId"]
        return self.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]

    def screenshot(self, full_page: bool = False) -> bytes:
        """A PNG of the viewport (or the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    def close(self) -> None:
        """Close the browser (politely, then firmly) and remove its profile."""
        with contextlib.suppress(CdpError, OSError):
            self.send("Browser.close", session=False)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str]) -> int:
    """Save a screenshot of an HTML file: ``python -m tests.cdp IN.html OUT.png [W H]``."""
    src, out = Path(argv[0]).resolve(), Path(argv[1])
    width, height = (int(argv[2]), int(argv[3])) if len(argv) > 3 else (1280, 1800)
    with Browser() as b:
        b.open_page(width, height)
        b.load(src.as_uri())
        out.write_bytes(b.screenshot())
        stray = [u for u in b.requests() if u != src.as_uri()]
    print(f"wrote {out}; requests other than the page: {stray or 'none'}")
    return 1 if stray else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
