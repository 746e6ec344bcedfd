"""The standard adapter suite's cases: one small real-format record writer per file kind.

Every FILE kind of ``workstyle.adapters.REGISTRY`` has a :class:`Case` here (the
suite fails for a kind without one). A case writes records in the kind's own
format, one canonical row each, with a free-text field the suite fills (Japanese
text, undecodable bytes, a field over 1 MiB, a quoted line break, a bare CR) and a
``marker`` column whose value tells which record a stored row came from. Variants
(an out-of-range integer, a wrong field count) are the kind's own bad records.

The API kinds are exempt here: their standard treatment runs against the local
fake servers (tests/fakes/), owned by the API-window work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Kinds that are not file kinds, and why they are not in this suite.
EXEMPT: dict[str, str] = {
    "zoom": "API kind: standard treatment against the local fake servers (API windows issue)",
    "teams": "API kind: standard treatment against the local fake servers (API windows issue)",
    "webex": "API kind: standard treatment against the local fake servers (API windows issue)",
    "google_meet": "API kind: standard treatment against the local fake servers (API windows)",
    "snmp_printer_counters": "polls SNMP agents, reads no files (tested with a real snmpd)",
}

#: Text of every good record's free-text field: UTF-8 Japanese, so a file is recognisably UTF-8.
NOTE = "資料".encode()
#: Bytes that are valid neither as UTF-8 nor as CP932 (plus a CP932 word, as a mis-saved line has).
BAD_BYTES = "会議".encode("cp932") + b"\x81\x7f\xff\xfe"
#: A field larger than pyarrow's default 1 MiB block.
HUGE = b"x" * (1024 * 1024 + 512 * 1024)
BASE = dt.datetime(2024, 5, 13, 0, 0, tzinfo=dt.UTC)

Record = Callable[[int, bytes], bytes]


@dataclass
class Case:
    kind: str
    table: str
    #: Source options for a folder (as written in the config: relative or absolute).
    options: Callable[[str], dict[str, Any]]
    #: File name of the n-th file of a test (matched by ``options``' patterns).
    filename: Callable[[int], str]
    #: One record (ends with a newline): record index, free-text bytes.
    record: Record
    #: Stored column and its value for record i.
    marker: str
    marker_of: Callable[[int], Any]
    #: Bytes before the first record (banner, header).
    head: bytes = b""
    #: Bad records: variant -> (writer, a word the quarantine reason must contain).
    variants: dict[str, tuple[Record, str]] = field(default_factory=dict)
    #: Checks that do not apply to this kind, with why.
    not_applicable: dict[str, str] = field(default_factory=dict)
    #: Whether a record can span physical lines (a quoted line break, an XML value).
    multiline: bool = True

    def file(self, records: list[int | tuple[str, int]], note: dict[int, bytes] | None = None):
        """The file's bytes and the physical line each record starts at.

        ``records`` holds record indexes, or ``(variant, index)`` for a bad record;
        ``note`` gives some positions (in ``records``) another free text.
        """
        note = note or {}
        out = bytearray(self.head)
        lines: list[int] = []
        for pos, r in enumerate(records):
            lines.append(out.count(b"\n") + 1)
            text = note.get(pos, NOTE)
            if isinstance(r, tuple):
                out += self.variants[r[0]][0](r[1], text)
            else:
                out += self.record(r, text)
        return bytes(out), lines


def _t(i: int) -> dt.datetime:
    return BASE + dt.timedelta(hours=1, minutes=i)


# -- papercut_print_logger ------------------------------------------------------------
PPL_HEAD = (
    b"PaperCut Print Logger - http://www.papercut.com/\n"
    b"Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,"
    b"Height,Width,Duplex,Grayscale,Size\n"
)


def _ppl(i: int, note: bytes, copies: str = "1") -> bytes:
    local = _t(i) + dt.timedelta(hours=9)
    return (
        f"{local:%Y-%m-%d %H:%M:%S},user{i},{i + 1},{copies},MFP-A,".encode()
        + b'"'
        + note
        + f'.pdf",PC{i:03d},A4,PCL6,,,NOT DUPLEX,GRAYSCALE,10kb,\n'.encode()
    )


PAPERCUT_PRINT_LOGGER = Case(
    kind="papercut_print_logger",
    table="print_jobs",
    options=lambda folder: {"path": folder, "timezone": "Asia/Tokyo"},
    filename=lambda n: f"papercut-print-log-2024-05-{13 + n:02d}.csv",
    head=PPL_HEAD,
    record=_ppl,
    marker="pages",
    marker_of=lambda i: i + 1,
    variants={
        "bad_int": (lambda i, note: _ppl(i, note, copies="3000000000"), "copies"),
        "wrong_fields": (
            lambda i, note: f"2024-05-13 10:{i:02d}:00,user{i},{i + 1}\n".encode(),
            "field",
        ),
    },
)


# -- csv (a meetings export) ----------------------------------------------------------
def _csv(i: int, note: bytes, participants: str | None = None) -> bytes:
    start, end = _t(i), _t(i) + dt.timedelta(minutes=30)
    n = participants if participants is not None else str(i + 1)
    return (
        f"{1000 + i},{start:%Y-%m-%d %H:%M:%S},{end:%Y-%m-%d %H:%M:%S},{n},".encode()
        + f"host{i}@example.jp,".encode()
        + note
        + b"\n"
    )


CSV = Case(
    kind="csv",
    table="meetings",
    options=lambda folder: {
        "path": f"{folder}/*.csv*",
        "table": "meetings",
        "timezone": "UTC",
        "columns": {
            "meeting_id": "meeting_id",
            "start_time": "start",
            "end_time": "end",
            "participants": "participants",
            "host": "host",
            "topic": "topic",
        },
        "constants": {"platform": "zoom"},
    },
    filename=lambda n: f"meetings-{n:02d}.csv",
    head=b"meeting_id,start,end,participants,host,topic\n",
    record=_csv,
    marker="participants",
    marker_of=lambda i: i + 1,
    variants={
        "bad_int": (lambda i, note: _csv(i, note, participants="99999999999"), "participants"),
        "wrong_fields": (lambda i, note: f"{1000 + i},2024-05-13 01:00:00\n".encode(), "field"),
    },
)


# -- papercut_ng_print_log ------------------------------------------------------------
NG_COLUMNS = [
    "date",
    "time",
    "server",
    "printer",
    "user",
    "account",
    "client",
    "document",
    "pages",
    "color_pages",
    "copies",
]


def _ng(i: int, note: bytes, copies: str = "1") -> bytes:
    local = _t(i) + dt.timedelta(hours=9)
    return (
        f"{local:%Y-%m-%d}\t{local:%I:%M:%S %p}\tPCSRV01\tMFP-A\tuser{i}\tuser{i}\tPC{i}\t".encode()
        + note
        + f".pdf\t{i + 1}\t0\t{copies}\n".encode()
    )


PAPERCUT_NG_PRINT_LOG = Case(
    kind="papercut_ng_print_log",
    table="print_jobs",
    options=lambda folder: {
        "paths": [f"{folder}/printlog_*"],
        "columns": NG_COLUMNS,
        "timezone": "Asia/Tokyo",
    },
    filename=lambda n: f"printlog_2024_05_{13 + n:02d}.log",
    record=_ng,
    marker="pages",
    marker_of=lambda i: i + 1,
    multiline=False,
    variants={
        "bad_int": (lambda i, note: _ng(i, note, copies="3000000000"), "copies"),
        "wrong_fields": (lambda i, note: b"2024-05-13\t9:00:00 AM\tPCSRV01\n", "field"),
    },
    not_applicable={"multiline": "one job per line; a line break ends the job"},
)


# -- fortigate_vpn --------------------------------------------------------------------
def _fgt(i: int, note: bytes, sent: str = "100", tunnel: str | None = None) -> bytes:
    end = _t(i) + dt.timedelta(minutes=60)
    local = end + dt.timedelta(hours=9)
    tid = f" tunnelid={100 + i}" if tunnel is None else tunnel
    return (
        f'<189>date={local:%Y-%m-%d} time={local:%H:%M:%S} devname="FGT-HQ'.encode()
        + note
        + (
            f'" devid="FG100FTK19000001" eventtime={int(end.timestamp()) * 10**9} tz="+0900"'
            ' logid="0101039948" type="event" subtype="vpn" level="information" vd="root"'
            ' logdesc="SSL VPN tunnel down" action="tunnel-down" tunneltype="ssl-tunnel"'
            f'{tid} remip=198.51.100.{i} user="user{i}" duration={60 * (i + 1)}'
            f' sentbyte={sent} rcvdbyte=200 msg="SSL tunnel shutdown"\n'
        ).encode()
    )


FORTIGATE_VPN = Case(
    kind="fortigate_vpn",
    table="remote_sessions",
    options=lambda folder: {"paths": [f"{folder}/fgt*"]},
    filename=lambda n: f"fgt-2024-05-{13 + n:02d}.log",
    record=_fgt,
    marker="duration_seconds",
    marker_of=lambda i: 60 * (i + 1),
    multiline=False,
    variants={
        "bad_int": (lambda i, note: _fgt(i, note, sent="99999999999999999999"), "sentbyte"),
        "wrong_fields": (lambda i, note: _fgt(i, note, tunnel=""), "tunnelid"),
    },
    not_applicable={"multiline": "one syslog message per line"},
)


# -- cisco_asa_vpn --------------------------------------------------------------------
def _asa(i: int, note: bytes, xmt: str = "10", user: str | None = None) -> bytes:
    end = _t(i) + dt.timedelta(minutes=60) + dt.timedelta(hours=9)
    who = f"Username = user{i}, " if user is None else user
    return (
        f"<166>{end:%b %d %Y %H:%M:%S} asa01 : %ASA-4-113019: Group = GP".encode()
        + note
        + (
            f", {who}IP = 198.51.100.{i}, Session disconnected. Session Type: SSL,"
            f" Duration: 0h:{i + 1:02d}m:00s, Bytes xmt: {xmt}, Bytes rcv: 20,"
            " Reason: User Requested\n"
        ).encode()
    )


CISCO_ASA_VPN = Case(
    kind="cisco_asa_vpn",
    table="remote_sessions",
    options=lambda folder: {"paths": [f"{folder}/asa*"], "timezone": "Asia/Tokyo"},
    filename=lambda n: f"asa-2024-05-{13 + n:02d}.log",
    record=_asa,
    marker="duration_seconds",
    marker_of=lambda i: 60 * (i + 1),
    multiline=False,
    variants={
        "bad_int": (lambda i, note: _asa(i, note, xmt="99999999999999999999"), "xmt"),
        "wrong_fields": (lambda i, note: _asa(i, note, user=""), "user"),
    },
    not_applicable={"multiline": "one syslog message per line"},
)


# -- rd_gateway -----------------------------------------------------------------------
def _rdg(i: int, note: bytes, received: str = "4096", user: str | None = None) -> bytes:
    who = f"<Username>PREF\\user{i}</Username>" if user is None else user
    return (
        b"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        b"<Provider Name='Microsoft-Windows-TerminalServices-Gateway'/><EventID>303</EventID>"
        + f"<TimeCreated SystemTime='{_t(i) + dt.timedelta(hours=1):%Y-%m-%dT%H:%M:%S}.0000000Z'/>"
        f"<EventRecordID>{5000 + i}</EventRecordID><Computer>RDG01.pref.local</Computer>"
        f"</System><UserData><EventInfo xmlns='aag'>{who}"
        f"<IpAddress>198.51.100.{i}</IpAddress><Resource>PC{i}".encode()
        + note
        + (
            "</Resource><ConnectionProtocol>HTTP</ConnectionProtocol>"
            f"<BytesReceived>{received}</BytesReceived><BytesTransfered>8192</BytesTransfered>"
            f"<SessionDuration>{60 * (i + 1)}</SessionDuration></EventInfo></UserData></Event>\n"
        ).encode()
    )


RD_GATEWAY = Case(
    kind="rd_gateway",
    table="remote_sessions",
    options=lambda folder: {"paths": [f"{folder}/rdg*"]},
    filename=lambda n: f"rdg-2024-05-{13 + n:02d}.xml",
    record=_rdg,
    marker="duration_seconds",
    marker_of=lambda i: 60 * (i + 1),
    variants={
        "bad_int": (
            lambda i, note: _rdg(i, note, received="99999999999999999999"),
            "BytesReceived",
        ),
        "wrong_fields": (lambda i, note: _rdg(i, note, user=""), "Username"),
    },
)


# -- windows_print_events -------------------------------------------------------------
def _event(event_id: int, record: int, time: dt.datetime, data: str) -> str:
    return (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        f"<Provider Name='Microsoft-Windows-PrintService'/><EventID>{event_id}</EventID>"
        f"<TimeCreated SystemTime='{time:%Y-%m-%dT%H:%M:%S}.1234567Z'/>"
        f"<EventRecordID>{record}</EventRecordID><Computer>PRN01.pref.local</Computer>"
        f"</System><UserData>{data}</UserData></Event>"
    )


def _wpe(i: int, note: bytes) -> bytes:
    printed = (
        f"<DocumentPrinted><Param1>{i}</Param1><Param2>@NOTE@</Param2><Param3>user{i}</Param3>"
        f"<Param4>\\\\PC-{i}</Param4><Param5>MFP-A</Param5><Param6>IP_10.0.0.1</Param6>"
        f"<Param7>1024</Param7><Param8>{i + 1}</Param8></DocumentPrinted>"
    )
    return _event(307, 6000 + i, _t(i), printed).encode().replace(b"@NOTE@", note) + b"\n"


def _wpe_copies(i: int, note: bytes) -> bytes:
    render = (
        f"<RenderJobDiag><JobId>{i}</JobId><Color>1</Color><Copies>3000000000</Copies>"
        "</RenderJobDiag>"
    )
    rendered = _event(805, 7000 + i, _t(i) - dt.timedelta(seconds=5), render).encode()
    return rendered + _wpe(i, note)


WINDOWS_PRINT_EVENTS = Case(
    kind="windows_print_events",
    table="print_jobs",
    options=lambda folder: {"paths": [f"{folder}/print*"]},
    filename=lambda n: f"print-2024-05-{13 + n:02d}.xml",
    record=_wpe,
    marker="pages",
    marker_of=lambda i: i + 1,
    variants={"bad_int": (_wpe_copies, "copies")},
    not_applicable={"wrong_fields": "XML events name their fields; a missing one is its own check"},
)

CASES: dict[str, Case] = {
    c.kind: c
    for c in (
        PAPERCUT_PRINT_LOGGER,
        CSV,
        PAPERCUT_NG_PRINT_LOG,
        FORTIGATE_VPN,
        CISCO_ASA_VPN,
        RD_GATEWAY,
        WINDOWS_PRINT_EVENTS,
    )
}
