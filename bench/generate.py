"""Synthetic prefecture in the real export formats, for the benchmarks.

Writes four fiscal years (R3-R6, 2021-04-01 .. 2025-03-31) of a prefecture of
5,000 staff in 60 departments, in the formats the adapters read:

- print/      PaperCut Print Logger daily CSVs (banner, header, trailing commas, local
              time, UTF-8 with BOM) -- about 50 million jobs at ``--scale 1``
- vpn/        FortiGate syslog, one file a day (tunnel-up/down pairs plus traffic noise)
- meetings/   web-meeting usage export per FY (gzip), the bundled example's format
- paperless/  paperless-meeting export per FY (gzip)
- telework/   telework records and applicant lists per FY (CP932)
- terminals/  terminal inventory snapshots
- paper/      copy-paper purchases (CP932)
- staff/      the staff directory

The csv-export formats are those of ``config/example-data`` (its generator's helpers
are reused), and ``collector.toml`` is derived from ``config/example.toml``. Volumes
grow or shrink by FY the way the plan expects (more web meetings, less paper) with a
seasonal pattern. Every day's data comes from its own random stream seeded by
``--seed`` and the date, so the output does not depend on ``--jobs`` and a single day
(``--only-day``) is byte-identical to the same day of a full run.

``manifest.json`` (also printed) gives, per table, the rows the pipeline must land and
the malformed lines planted (each must be quarantined, not dropped).

    python3 bench/generate.py --out /tmp/bench-data/s0.1 --scale 0.1 --jobs 2
    python3 bench/generate.py --out /tmp/bench-data/s0.1 --scale 1 --only-day 2025-03-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import importlib.util
import json
import multiprocessing
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
FYS = (2021, 2022, 2023, 2024)
STAFF = 5000
SECTIONS = ("総務課", "企画課", "調整課", "管理課", "事業課")  # 12 x 5 = 60 departments
START = dt.date(2021, 4, 1)
END = dt.date(2025, 4, 1)  # exclusive
TZ_OFFSET = 9 * 3600  # Asia/Tokyo has no DST: local = UTC + 9 h
#: Volumes at scale 1 over the four years (issue 3 and issue 7).
PRINT_JOBS = 50_000_000
WEB_MEETINGS = 200_000
REMOTE_SESSIONS = 1_000_000
TELEWORK_DAYS = 2_000_000
PAPERLESS = {2021: 9_000, 2022: 11_800, 2023: 13_500, 2024: 15_800}
#: Growth by FY (R3..R6): paper falls, everything digital rises.
PRINT_FY = {2021: 1.0, 2022: 0.984, 2023: 0.969, 2024: 0.955}
DUPLEX_FY = {2021: 0.50, 2022: 0.56, 2023: 0.62, 2024: 0.68}
MEETING_FY = {2021: 0.16, 2022: 0.22, 2023: 0.28, 2024: 0.34}
VPN_FY = {2021: 0.18, 2022: 0.23, 2023: 0.27, 2024: 0.32}
VPN_USERS = {2021: 1100, 2022: 1450, 2023: 1750, 2024: 2150}
TELEWORK_FY = {2021: 0.20, 2022: 0.24, 2023: 0.27, 2024: 0.29}
APPLICANTS = {2021: 1800, 2022: 2200, 2023: 2600, 2024: 3000}
VC_SHARE = {2021: 0.44, 2022: 0.63, 2023: 0.80, 2024: 0.93}
PAPER_FY = {2021: 1.0, 2022: 0.975, 2023: 0.955, 2024: 0.94}
#: Month weights April..March: quiet August and New Year, busy budget season.
SEASON = np.array([1.05, 0.97, 1.0, 1.0, 0.82, 0.96, 1.02, 1.0, 0.9, 0.95, 1.08, 1.2])
PRINT_HEADER = (
    "Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,"
    "Height,Width,Duplex,Grayscale,Size"
)
PRINT_BANNER = "PaperCut Print Logger - http://www.papercut.com/"
EXTRA_DOCS = ["Microsoft Word - 起案文書, 改訂版.docx", "週報 (第{}週).xlsx"]
# Stream ids of the per-day random generators.
K_PRINT, K_VPN, K_BAD, K_STAFF, K_MEET, K_PAPERLESS, K_TELE, K_TERM, K_PAPER = range(1, 10)


def _example() -> ModuleType:
    """The bundled example's generator (its folder name is not importable)."""
    path = ROOT / "config" / "example-data" / "generate.py"
    spec = importlib.util.spec_from_file_location("example_data_generate", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the repo
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EX = _example()


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent random stream per (seed, kind, date...), so days are reproducible."""
    return np.random.default_rng([seed, *stream])


def fy_of(day: dt.date) -> int:
    """The fiscal year (April-March) of a day."""
    return day.year if day.month >= 4 else day.year - 1


@dataclass
class World:
    """Who the staff are and where they work each FY; shared by every generator."""

    seed: int
    scale: float
    accounts: list[str] = field(default_factory=list)
    employee_nos: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    departments: list[tuple[str, str]] = field(default_factory=list)
    #: Department index of each person, per FY.
    dept: dict[int, np.ndarray] = field(default_factory=dict)
    #: How much each person prints (log-normal), normalised to probabilities.
    activity: np.ndarray = field(default_factory=lambda: np.empty(0))
    days: dict[int, list[dt.date]] = field(default_factory=dict)
    _norm: dict[tuple[float, ...], float] = field(default_factory=dict)

    @classmethod
    def build(cls, seed: int, scale: float) -> World:
        """The staff, departments and calendar, from the seed alone (not the scale)."""
        w = cls(seed, scale)
        w.accounts = [EX.account(n) for n in range(1, STAFF + 1)]
        w.employee_nos = [EX.employee_no(n) for n in range(1, STAFF + 1)]
        w.emails = [EX.email(n) for n in range(1, STAFF + 1)]
        w.departments = [
            (f"{code}-{k + 1}", f"{name}{section}")
            for code, name in EX.DEPARTMENTS
            for k, section in enumerate(SECTIONS)
        ]
        rng = rng_for(seed, K_STAFF)
        current = rng.integers(0, len(w.departments), STAFF)
        for i, fy in enumerate(FYS):
            if i:  # about a fifth of the staff move on 1 April
                moved = rng.random(STAFF) < 0.2
                current = np.where(moved, rng.integers(0, len(w.departments), STAFF), current)
            w.dept[fy] = current.copy()
        act = rng.lognormal(0.0, 0.8, STAFF)
        w.activity = act / act.sum()
        w.days = {fy: EX.working_days(fy) for fy in FYS}
        return w

    def all_days(self) -> list[dt.date]:
        """Every working day of the four years, in order."""
        return [d for fy in FYS for d in self.days[fy]]

    def per_day(self, total: float, growth: dict[int, float], day: dt.date) -> float:
        """The day's mean share of a four-year ``total`` under growth and season."""
        key = tuple(growth.values())
        if key not in self._norm:
            self._norm[key] = sum(
                growth[fy] * SEASON[(d.month - 4) % 12] for fy in FYS for d in self.days[fy]
            )
        return total * growth[fy_of(day)] * SEASON[(day.month - 4) % 12] / self._norm[key]


def _series(values: list[str]) -> pl.Series:
    return pl.Series(values, dtype=pl.String)


def _local_strings(day: dt.date, seconds: np.ndarray, fmt: str) -> pl.Series:
    """Local wall-clock strings for seconds after the day's midnight."""
    base = (day - dt.date(1970, 1, 1)).days * 86400
    micros = (seconds.astype(np.int64) + base) * 1_000_000
    return pl.Series(micros).cast(pl.Datetime("us")).dt.strftime(fmt)


# -- print logs ------------------------------------------------------------------------
def _docs() -> list[str]:
    """Document names as PaperCut logs them (one with a comma, so quoting is exercised)."""
    names = [t.format(k) for t in EX.DOCS for k in range(1, 41)]
    names += [t.format(k) if "{}" in t else t for t in EXTRA_DOCS for k in range(1, 6)]
    return names


def bad_days(world: World, kind: int) -> set[dt.date]:
    """The days on which a malformed line is planted (about one per 250 k rows, min 2)."""
    days = world.all_days()
    n = max(2, round(world.scale * PRINT_JOBS / 250_000)) if kind == K_PRINT else 2
    rng = rng_for(world.seed, K_BAD, kind)
    picked = rng.choice(len(days), size=min(n, len(days)), replace=False)
    return {days[i] for i in picked}


def print_day(world: World, day: dt.date, bad: bool) -> tuple[bytes, int, int]:
    """One daily PaperCut file: its bytes, valid jobs and planted malformed lines."""
    rng = rng_for(world.seed, K_PRINT, day.toordinal())
    fy = fy_of(day)
    mean = world.per_day(world.scale * PRINT_JOBS, PRINT_FY, day)
    n = max(1, int(rng.normal(mean, mean * 0.08))) if mean else 0
    if n == 0:
        return b"", 0, 0
    secs = np.sort(8 * 3600 + (rng.beta(2.2, 2.5, n) * 11 * 3600).astype(np.int64))
    who = rng.choice(STAFF, n, p=world.activity)
    copies = np.where(rng.random(n) < 0.85, 1, rng.integers(2, 6, n))
    per_copy = np.maximum(1, rng.exponential(6.0, n).astype(np.int64))
    dept = world.dept[fy][who]
    printers = _series(
        [f"MFP-{code}-{k}" for code, _ in world.departments for k in ("A", "B")]
    ).gather(dept * 2 + rng.integers(0, 2, n))
    upper = rng.random(n) < 0.2  # the domain form some clients send
    users = pl.Series(world.accounts).gather(who)
    users = pl.when(pl.Series(upper)).then("PREF\\" + users.str.to_uppercase()).otherwise(users)
    docs = _docs()
    frame = pl.DataFrame(
        {
            "time": _local_strings(day, secs, "%Y-%m-%d %H:%M:%S"),
            "user": pl.select(users).to_series(),
            "pages": per_copy * copies,
            "copies": copies,
            "printer": printers,
            "doc": _series(docs).gather(rng.integers(0, len(docs), n)),
            "client": pl.Series(who + 1).cast(pl.String).str.zfill(5),
            "paper": np.where(rng.random(n) < 0.9, "A4", "A3"),
            "lang": np.where(rng.random(n) < 0.8, "PCL6", "PostScript"),
            "duplex": np.where(rng.random(n) < DUPLEX_FY[fy], "DUPLEX", "NOT DUPLEX"),
            "gray": np.where(rng.random(n) < 0.7, "GRAYSCALE", "NOT GRAYSCALE"),
            "size": rng.integers(8, 2048, n),
        }
    )
    c = pl.col
    line = pl.concat_str(
        [
            c("time"),
            c("user"),
            c("pages").cast(pl.String),
            c("copies").cast(pl.String),
            c("printer"),
            pl.lit('"') + c("doc") + pl.lit('"'),
            pl.lit("PC") + c("client"),
            c("paper"),
            c("lang"),
            pl.lit(""),
            pl.lit(""),
            c("duplex"),
            c("gray"),
            c("size").cast(pl.String) + pl.lit("kb"),
            pl.lit(""),  # the logger's trailing comma
        ],
        separator=",",
    )
    lines = frame.select(line.alias("l")).to_series()
    planted = 0
    if bad:
        # A truncated write (too few fields) or a hand edit (a non-number in Pages).
        i = n // 2
        text = lines[i]
        broken = (
            ",".join(text.split(",")[:5])
            if day.toordinal() % 2
            else text.replace(f",{frame['pages'][i]},", ",abc,", 1)
        )
        lines = lines.scatter(i, broken)
        planted = 1
    body = "\r\n".join([PRINT_BANNER, PRINT_HEADER, lines.str.join("\r\n").item(), ""])
    # UTF-8 with a BOM, as the logger writes on a Windows server.
    return body.encode("utf-8-sig"), n - planted, planted


# -- FortiGate VPN syslog --------------------------------------------------------------
def vpn_day(world: World, day: dt.date, bad: bool) -> tuple[bytes, int, int]:
    """One day of FortiGate syslog: bytes, sessions (tunnel-down lines) and planted lines."""
    rng = rng_for(world.seed, K_VPN, day.toordinal())
    fy = fy_of(day)
    mean = world.per_day(world.scale * REMOTE_SESSIONS, VPN_FY, day)
    n = int(rng.poisson(mean)) if mean else 0
    if n == 0 and not bad:
        return b"", 0, 0
    pool = rng_for(world.seed, K_VPN, fy).choice(STAFF, VPN_USERS[fy], replace=False)
    who = pool[rng.integers(0, len(pool), n)]
    start = 7 * 3600 + rng.integers(0, 12 * 3600, n)
    dur = np.minimum(rng.lognormal(8.5, 0.9, n).astype(np.int64), 86399 - start - 1)
    dur = np.where(rng.random(n) < 0.02, rng.integers(5, 60, n), dur)  # aborted logins
    form = rng.random(n)
    acct = pl.Series(world.accounts).gather(who)
    user = (
        pl.select(
            pl.when(pl.Series(form < 0.25))
            .then("PREF\\" + acct)
            .when(pl.Series(form < 0.4))
            .then(pl.Series(world.emails).gather(who))
            .otherwise(acct)
        )
        .to_series()
        .alias("user")
    )
    hq = rng.random(n) < 0.7
    tunnel = day.toordinal() * 100_000 + np.arange(n)  # unique: tunnel id + start is the key
    sent = rng.integers(10_000, 500_000_000, n)
    rcvd = rng.integers(10_000, 50_000_000, n)
    common = {
        "devname": np.where(hq, '"FGT-HQ"', '"FGT-BR"'),
        "devid": np.where(hq, '"FG100FTK19000001"', '"FG60FTK20000002"'),
        "vd": np.where(hq, '"root"', '"branch"'),
        "tunnelid": tunnel,
        "remip": pl.Series(rng.integers(0, 65536, n)).cast(pl.String),
        "user": user,
    }
    ups = pl.DataFrame({**common, "t": start, "kind": 0})
    downs = pl.DataFrame({**common, "t": start + dur, "kind": 1, "dur": dur, "s": sent, "r": rcvd})
    noise = pl.DataFrame({**common, "t": start + np.minimum(dur, 30), "kind": 2})
    events = pl.concat([ups, downs, noise], how="diagonal").sort("t", "kind")
    base = (day - dt.date(1970, 1, 1)).days * 86400
    c = pl.col
    local = (c("t") + base).cast(pl.Int64) * 1_000_000
    ts = local.cast(pl.Datetime("us"))
    head = pl.concat_str(
        [
            pl.lit("<189>date="),
            ts.dt.strftime("%Y-%m-%d"),
            pl.lit(" time="),
            ts.dt.strftime("%H:%M:%S"),
            pl.lit(" devname="),
            c("devname"),
            pl.lit(" devid="),
            c("devid"),
            pl.lit(" eventtime="),
            (c("t") + base - TZ_OFFSET).cast(pl.String),
            pl.lit(' tz="+0900" logid="'),
        ]
    )
    tunnel_fields = pl.concat_str(
        [
            pl.lit(' vd="'),
            c("vd").str.strip_chars('"'),
            pl.lit('" tunneltype="ssl-tunnel" tunnelid='),
            c("tunnelid").cast(pl.String),
            pl.lit(" remip=198.51."),
            c("remip"),
            pl.lit(' user="'),
            c("user"),
            pl.lit('" group="VPN-Users"'),
        ]
    )
    line = (
        pl.when(c("kind") == 0)
        .then(
            pl.concat_str(
                [
                    head,
                    pl.lit(
                        '0101039947" type="event" subtype="vpn" level="information"'
                        ' logdesc="SSL VPN tunnel up" action="tunnel-up"'
                    ),
                    tunnel_fields,
                    pl.lit(' reason="login successfully" msg="SSL tunnel established"'),
                ]
            )
        )
        .when(c("kind") == 1)
        .then(
            pl.concat_str(
                [
                    head,
                    pl.lit(
                        '0101039948" type="event" subtype="vpn" level="information"'
                        ' logdesc="SSL VPN tunnel down" action="tunnel-down"'
                    ),
                    tunnel_fields,
                    pl.lit(' reason="user logout" duration='),
                    c("dur").cast(pl.String),
                    pl.lit(" sentbyte="),
                    c("s").cast(pl.String),
                    pl.lit(" rcvdbyte="),
                    c("r").cast(pl.String),
                    pl.lit(' msg="SSL tunnel shutdown"'),
                ]
            )
        )
        .otherwise(
            pl.concat_str(
                [
                    head,
                    pl.lit('0000000013" type="traffic" subtype="forward" level="notice" vd='),
                    c("vd"),
                    pl.lit(' srcip=10.212.134.200 dstip=10.1.2.3 action="accept"'),
                    pl.lit(" sentbyte=1200 rcvdbyte=800"),
                ]
            )
        )
    )
    lines = events.select(line.alias("l")).to_series()
    planted = 0
    if bad:
        lines = lines.append(pl.Series(["%%% line mangled by the syslog relay ###"]))
        planted = 1
    return (lines.str.join("\n").item() + "\n").encode(), n, planted


def _month_task(args: tuple[int, float, int, int, str, str | None, str | None]) -> dict[str, int]:
    """Write the daily print and VPN files of one month (a unit of parallel work)."""
    seed, scale, year, month, out, until_iso, only = args
    world = _world(seed, scale)
    bad_print, bad_vpn = bad_days(world, K_PRINT), bad_days(world, K_VPN)
    stats = dict.fromkeys(
        ("print_jobs", "print_malformed", "print_files", "print_bytes", "sessions", "vpn_bad"), 0
    )
    until = dt.date.fromisoformat(until_iso) if until_iso else END
    # --only-day may name any day (a weekend day adds a new file to a full dataset).
    days = [dt.date.fromisoformat(only)] if only else world.all_days()
    for day in days:
        if (day.year, day.month) != (year, month) or (not only and day >= until):
            continue
        data, jobs, planted = print_day(world, day, day in bad_print)
        if data:
            path = Path(out) / "print" / f"papercut-print-log-{day:%Y-%m-%d}.csv"
            path.write_bytes(data)
            stats["print_files"] += 1
            stats["print_bytes"] += len(data)
        stats["print_jobs"] += jobs
        stats["print_malformed"] += planted
        text, sessions, planted = vpn_day(world, day, day in bad_vpn)
        if text:
            (Path(out) / "vpn" / f"fgt-{day:%Y-%m-%d}.log").write_bytes(text)
        stats["sessions"] += sessions
        stats["vpn_bad"] += planted
    return stats


_WORLDS: dict[tuple[int, float], World] = {}


def _world(seed: int, scale: float) -> World:
    """One World per process (workers build theirs once)."""
    key = (seed, scale)
    if key not in _WORLDS:
        _WORLDS[key] = World.build(seed, scale)
    return _WORLDS[key]


# -- the csv exports (formats of config/example-data) ----------------------------------
def _write_frame(
    path: Path, df: pl.DataFrame, *, encoding: str = "utf-8-sig", gz: bool = False
) -> None:
    """Write like the example's ``write_csv`` (header, CRLF, minimal quoting), in bulk."""
    data = df.write_csv(line_terminator="\r\n").encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if gz else data)


def _fy_dates(world: World, fy: int, n: int, rng: np.random.Generator) -> pl.Series:
    """``n`` working days of the FY, weighted by season, as dates."""
    days = world.days[fy]
    w = SEASON[[(d.month - 4) % 12 for d in days]]
    pick = rng.choice(len(days), n, p=w / w.sum())
    return pl.Series([days[0] - dt.date(1970, 1, 1)]).dt.total_days().item() + pl.Series(
        [(d - days[0]).days for d in days]
    ).gather(pick)


def _as_date(epoch_days: pl.Series) -> pl.Series:
    return epoch_days.cast(pl.Int32).cast(pl.Date)


def web_meetings(world: World, out: Path) -> int:
    """Per-FY gzip exports; (会議ID, 開始日時) is unique, as the config's key needs."""
    total = 0
    dept_names = _series([name for _, name in world.departments])
    for fy in FYS:
        rng = rng_for(world.seed, K_MEET, fy)
        n = int(world.scale * WEB_MEETINGS * MEETING_FY[fy] / sum(MEETING_FY.values()))
        day = _as_date(_fy_dates(world, fy, n, rng))
        start_min = 9 * 60 + 15 * rng.integers(0, 32, n)
        minutes = rng.choice([15, 30, 30, 45, 60, 60, 90, 120], n)
        people = rng.integers(2, 25, n)
        test = rng.random(n) < 0.03  # a test call: alone, or under a minute
        people = np.where(test, 1, people)
        minutes = np.where(test, 0, minutes)
        series = rng.integers(10**9, 10**10, max(1, n // 500))
        mid = np.where(rng.random(n) < 0.3, series[rng.integers(0, len(series), n)],
                       rng.integers(10**9, 10**10, n))  # fmt: skip
        host = rng.integers(0, STAFF, n)
        start = day.cast(pl.Datetime("us")) + pl.Series(start_min * 60_000_000).cast(
            pl.Duration("us")
        )
        end = start + pl.Series((minutes * 60 + rng.integers(0, 50, n)) * 1_000_000).cast(
            pl.Duration("us")
        )
        df = pl.DataFrame(
            {
                "会議ID": pl.Series(mid).cast(pl.String),
                "開始日時": start.dt.strftime("%Y/%m/%d %H:%M"),
                "終了日時": end.dt.strftime("%Y/%m/%d %H:%M:%S"),
                "参加者数": people,
                "主催者": pl.Series(world.emails).gather(host),
                "所属": dept_names.gather(world.dept[fy][host]),
                "会議名": np.where(rng.random(n) < 0.5, "定例打合せ", "課内会議"),
            }
        ).unique(["会議ID", "開始日時"], keep="first", maintain_order=True)
        _write_frame(out / "meetings" / f"web-meetings-R{fy - 2018}.csv.gz", df, gz=True)
        total += df.height
    return total


def paperless(world: World, out: Path) -> int:
    """Per-FY gzip exports of a paperless-meeting system; 4 % also handed out paper."""
    total = 0
    dept_names = _series([name for _, name in world.departments])
    for fy in FYS:
        rng = rng_for(world.seed, K_PAPERLESS, fy)
        n = max(1, int(world.scale * PAPERLESS[fy]))
        day = _as_date(_fy_dates(world, fy, n, rng))
        start = day.cast(pl.Datetime("us")) + pl.Series(
            (9 * 60 + 30 * rng.integers(0, 16, n)) * 60_000_000
        ).cast(pl.Duration("us"))
        end = start + pl.Series(rng.choice([30, 60, 90], n) * 60_000_000).cast(pl.Duration("us"))
        df = pl.DataFrame(
            {
                "会議ID": pl.Series([f"PL{fy}{k:07d}" for k in range(n)]),
                "開催日時": start.dt.strftime("%Y/%m/%d %H:%M"),
                "終了日時": end.dt.strftime("%Y/%m/%d %H:%M"),
                "主管課": dept_names.gather(rng.integers(0, len(dept_names), n)),
                "参加者数": rng.integers(3, 30, n),
                "資料数": rng.integers(1, 8, n),
                "資料ページ数": rng.integers(5, 120, n),
                "紙資料配布": np.where(rng.random(n) < 0.04, "○", "×"),
                "システム": "moreNOTE",
                "会議名": "部内会議",
            }
        )
        _write_frame(out / "paperless" / f"paperless-meetings-R{fy - 2018}.csv.gz", df, gz=True)
        total += n
    return total


def telework(world: World, out: Path) -> tuple[int, int]:
    """Applicant lists and records per FY (CP932); one record per person and day."""
    days_total = apps_total = 0
    dept_names = _series([name for _, name in world.departments])
    kinds = _series(
        ["在宅勤務", "在宅勤務(午前)", "在宅勤務(午後)", "サテライトオフィス勤務", "モバイルワーク"]
    )
    for fy in FYS:
        rng = rng_for(world.seed, K_TELE, fy)
        people = rng.choice(STAFF, APPLICANTS[fy], replace=False)
        left = rng.random(len(people)) < 0.02
        leave_day = [
            f"{dt.date(fy, int(m), 28):%Y/%m/%d}" if gone else ""
            for gone, m in zip(left, rng.integers(6, 13, len(people)), strict=True)
        ]
        apps = pl.DataFrame(
            {
                "年度": f"令和{fy - 2018}年度",
                "職員番号": pl.Series(world.employee_nos).gather(people),
                "所属": dept_names.gather(world.dept[fy][people]),
                "登録日": [
                    f"{dt.date(fy, 4, int(d)):%Y/%m/%d}" for d in rng.integers(1, 20, len(people))
                ],
                "退職日": leave_day,
            }
        )
        _write_frame(
            out / "telework" / f"telework-applicants-R{fy - 2018}.csv", apps, encoding="cp932"
        )
        apps_total += apps.height
        n = int(world.scale * TELEWORK_DAYS * TELEWORK_FY[fy] / sum(TELEWORK_FY.values()))
        doers = people[: int(len(people) * (0.6 + 0.08 * (fy - 2021)))]
        who = doers[rng.integers(0, len(doers), n)]
        home = rng.random(n) < 0.9
        kind = np.where(home, rng.choice([0, 0, 1, 2], n), rng.integers(3, 5, n))
        df = (
            pl.DataFrame(
                {
                    "職員番号": pl.Series(world.employee_nos).gather(who),
                    "day": _fy_dates(world, fy, n, rng),
                    "勤務形態": kinds.gather(kind),
                }
            )
            .unique(["職員番号", "day"], keep="first", maintain_order=True)
            .sort("day", maintain_order=True)
        )
        df = df.select(
            "職員番号", _as_date(df["day"]).dt.strftime("%Y/%m/%d").alias("勤務日"), "勤務形態"
        )
        _write_frame(out / "telework" / f"telework-records-R{fy - 2018}.csv", df, encoding="cp932")
        days_total += df.height
    return days_total, apps_total


def small_tables(world: World, out: Path) -> dict[str, int]:
    """Staff directory, terminal inventories and paper purchases (row-sized, not scaled)."""
    rows = []
    for p in range(STAFF):
        start = 0
        for i in range(1, len(FYS) + 1):
            if i == len(FYS) or world.dept[FYS[i]][p] != world.dept[FYS[start]][p]:
                code, name = world.departments[world.dept[FYS[start]][p]]
                valid_to = "" if i == len(FYS) else f"{dt.date(FYS[i], 3, 31):%Y/%m/%d}"
                rows.append(
                    [
                        world.employee_nos[p],
                        world.accounts[p],
                        world.emails[p],
                        name,
                        code,
                        f"{dt.date(FYS[start], 4, 1):%Y/%m/%d}",
                        valid_to,
                    ]
                )
                start = i
    staff_header = ["職員番号", "アカウント", "メールアドレス", "所属", "所属コード"]
    EX.write_csv(
        out / "staff" / "staff-directory.csv", [*staff_header, "適用開始日", "適用終了日"], rows
    )
    counts = {"staff_directory": len(rows)}

    rng = rng_for(world.seed, K_TERM)
    n_terms = int(STAFF * 1.1)
    terms = 0
    for fy in FYS:
        snapshot = dt.date(fy, 12, 1)
        vc = rng.random(n_terms) < VC_SHARE[fy]
        dept = rng.integers(0, len(world.departments), n_terms)
        EX.write_csv(
            out / "terminals" / f"terminal-inventory-{snapshot:%Y-%m-%d}.csv",
            ["端末番号", "棚卸日", "Web会議対応", "種別", "所属"],
            [
                [
                    f"PC-{k + 1:05d}",
                    f"{snapshot:%Y/%m/%d}",
                    "○" if vc[k] else "×",
                    "ノートPC" if k % 3 else "デスクトップPC",
                    world.departments[dept[k]][1],
                ]
                for k in range(n_terms)
            ],
        )
        terms += n_terms
    counts["terminals"] = terms

    rng = rng_for(world.seed, K_PAPER)
    purchases = []
    for fy in FYS:
        for m in (*range(4, 13), 1, 2, 3):
            year = fy + (m < 4)
            for _code, name in world.departments:
                boxes = max(1, int(rng.normal(40, 6) * PAPER_FY[fy] * SEASON[(m - 4) % 12]))
                purchases.append(
                    [
                        f"K{year}{m:02d}-{len(purchases) + 1:06d}",
                        f"{dt.date(year, m, 10):%Y/%m/%d}",
                        "A4",
                        boxes,
                        boxes * 2500,
                        name,
                        boxes * 2980,
                    ]
                )
    EX.write_csv(
        out / "paper" / "copy-paper-purchases.csv",
        ["伝票番号", "購入日", "用紙サイズ", "数量(箱)", "枚数", "所属", "金額(円)"],
        purchases,
        encoding="cp932",
    )
    counts["paper_purchases"] = len(purchases)
    return counts


# -- the collector config --------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)  # JSON strings are TOML basic strings


def _toml_key(k: str) -> str:
    return (
        k
        if k.replace("_", "").replace("-", "").isascii()
        and k.replace("_", "").replace("-", "").isalnum()
        else json.dumps(k, ensure_ascii=False)
    )


def _toml_table(prefix: str, table: dict[str, Any], out: list[str]) -> None:
    for k, v in table.items():
        if not isinstance(v, dict):
            out.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in table.items():
        if isinstance(v, dict):
            out.append(f"[{prefix}.{_toml_key(k)}]")
            _toml_table(f"{prefix}.{_toml_key(k)}", v, out)


def write_config(out: Path, data_dir: Path) -> Path:
    """``collector.toml``: the example's csv sources on the generated files, plus the logs."""
    example = tomllib.loads((ROOT / "config" / "example.toml").read_text(encoding="utf-8"))
    sources: list[dict[str, Any]] = [
        {"name": "print", "kind": "papercut_print_logger", "path": str(out / "print")},
        {"name": "vpn", "kind": "fortigate_vpn", "paths": [str(out / "vpn" / "fgt-*.log*")]},
    ]
    for src in example["sources"]:
        if src["kind"] != "csv" or src["table"] == "remote_sessions":
            continue  # the logs above replace the example's print files and VPN report
        src = dict(src)
        src["path"] = str(out / src["path"].removeprefix("example-data/"))
        sources.append(src)
    key = out / "pseudonym.key"
    key.write_text("bench-" + "0" * 58 + "\n", encoding="utf-8")
    key.chmod(0o600)
    lines = [
        "# Generated by bench/generate.py: the synthetic prefecture's sources.",
        "[collector]",
        f"data_dir = {_toml_value(str(data_dir))}",
        'timezone = "Asia/Tokyo"',
        'lookback = "3d"',
        "",
        "[privacy]",
        f"key = {_toml_value('file:' + str(key))}",
    ]
    for src in sources:
        lines += ["", "[[sources]]"]
        _toml_table("sources", src, lines)
    path = out / "collector.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- main ------------------------------------------------------------------------------
def generate(
    out: Path,
    scale: float,
    seed: int = 7,
    jobs: int = 1,
    until: dt.date | None = None,
    only_day: dt.date | None = None,
    data_dir: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Write the dataset (or one day of logs); return and save its manifest."""
    out = out.resolve()
    for sub in ("print", "vpn"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world = _world(seed, scale)
    months = sorted({(d.year, d.month) for d in world.all_days()})
    if only_day:
        months = [(only_day.year, only_day.month)]
    tasks = [
        (
            seed,
            scale,
            y,
            m,
            str(out),
            until.isoformat() if until else None,
            only_day.isoformat() if only_day else None,
        )
        for y, m in months
    ]
    if jobs > 1:
        # Months are independent; each worker builds its World once. spawn, not fork:
        # forking a process whose polars threads hold locks can deadlock the child.
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            parts = pool.map(_month_task, tasks, chunksize=1)
    else:
        parts = [_month_task(t) for t in tasks]
    logs = {k: sum(p[k] for p in parts) for k in parts[0]}
    log(f"logs written in {time.perf_counter() - t0:.1f}s")
    manifest: dict[str, Any] = {
        "seed": seed,
        "scale": scale,
        "only_day": only_day.isoformat() if only_day else None,
        "until": until.isoformat() if until else None,
        "rows": {"print_jobs": logs["print_jobs"], "remote_sessions": logs["sessions"]},
        "malformed": {"print_jobs": logs["print_malformed"], "remote_sessions": logs["vpn_bad"]},
        "print_files": logs["print_files"],
        "print_bytes": logs["print_bytes"],
    }
    if not only_day:
        manifest["rows"]["meetings"] = web_meetings(world, out)
        manifest["rows"]["paperless_meetings"] = paperless(world, out)
        days, apps = telework(world, out)
        manifest["rows"]["telework_days"] = days
        manifest["rows"]["telework_applicants"] = apps
        manifest["rows"].update(small_tables(world, out))
        manifest["config"] = str(write_config(out, data_dir or out / "collector-data"))
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["seconds"] = round(time.perf_counter() - t0, 2)
    return manifest


def main() -> None:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="Output folder (created).")
    ap.add_argument("--scale", type=float, default=0.01, help="1 = about 50 M print jobs.")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=multiprocessing.cpu_count())
    ap.add_argument("--until", type=dt.date.fromisoformat, help="Daily logs before this day only.")
    ap.add_argument("--only-day", type=dt.date.fromisoformat, help="Write one day of logs only.")
    ap.add_argument(
        "--data-dir", type=Path, help="data_dir of the config (default OUT/collector-data)."
    )
    args = ap.parse_args()
    manifest = generate(
        args.out,
        args.scale,
        args.seed,
        args.jobs,
        args.until,
        args.only_day,
        args.data_dir,
        log=print,
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
