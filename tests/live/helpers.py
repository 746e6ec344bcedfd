"""Live-reader test helpers: a settable clock, configs, and log lines in the real formats."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from workstyle.collector.config import Config, from_dict

TZ = ZoneInfo("Asia/Tokyo")
PAPERCUT_HEAD = (
    "\ufeffPaperCut Print Logger - http://www.papercut.com/\n"
    "Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,"
    "Height,Width,Duplex,Grayscale,Size\n"
)


class Clock:
    """Wall time the readers see; tests move it."""

    def __init__(self, when: dt.datetime) -> None:
        self.when = when

    def __call__(self) -> float:
        return self.when.timestamp()

    def advance(self, **delta: float) -> None:
        self.when += dt.timedelta(**delta)


def live_config(tmp_path: Path, *sources: dict[str, Any]) -> Config:
    return from_dict(
        {
            "collector": {"data_dir": str(tmp_path / "data"), "timezone": "Asia/Tokyo"},
            "privacy": {"key": "env:COLLECTOR_TEST_KEY"},
            "sources": list(sources),
        },
        tmp_path / "collector.toml",
    )


def fgt(when: dt.datetime, action: str, tunnel: int, user: str, vd: str = "root") -> str:
    """A FortiGate SSL-VPN tunnel-up/-down syslog line (FortiOS 7 field order)."""
    local = when.astimezone(TZ)
    line = (
        f'<189>date={local:%Y-%m-%d} time={local:%H:%M:%S} devname="FGT-HQ"'
        f' devid="FG100FTK19000001" eventtime={int(when.timestamp())}000000000 tz="+0900"'
        f' logid="{"0101039947" if action == "tunnel-up" else "0101039948"}" type="event"'
        f' subtype="vpn" level="information" vd="{vd}" action="{action}"'
        f' tunneltype="ssl-tunnel" tunnelid={tunnel} remip=198.51.100.{tunnel % 250}'
        f' user="{user}" group="VPN-Users"'
    )
    if action == "tunnel-down":
        line += ' reason="user logout" duration=600 sentbyte=1048576 rcvdbyte=204800'
    return line + "\n"


def asa(when: dt.datetime, msgid: str, user: str, ip: str) -> str:
    """A Cisco ASA session start (113039) or end (113019) syslog line."""
    local = when.astimezone(TZ)
    head = f"<166>{local:%b %d %Y %H:%M:%S} asa01 : "
    if msgid == "113039":
        body = (
            f"%ASA-6-113039: Group <GP-Staff> User <{user}> IP <{ip}>"
            " AnyConnect parent session started."
        )
    else:
        body = (
            f"%ASA-4-113019: Group = GP-Staff, Username = {user}, IP = {ip}, Session"
            " disconnected. Session Type: AnyConnect-Parent, Duration: 0h:10m:00s,"
            " Bytes xmt: 1048576, Bytes rcv: 204800, Reason: User Requested"
        )
    return head + body + "\n"


def papercut(when: dt.datetime, user: str, pages: int, copies: int, duplex: bool) -> str:
    """A PaperCut Print Logger job row (server-local time, trailing comma)."""
    local = when.astimezone(TZ)
    return (
        f'{local:%Y-%m-%d %H:%M:%S},{user},{pages},{copies},MFP-HONCHO-2F,"会議資料.pdf",'
        f"PC00101,A4,PCL6,,,{'DUPLEX' if duplex else 'NOT DUPLEX'},GRAYSCALE,120kb,\n"
    )


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
