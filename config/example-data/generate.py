"""Regenerate the bundled example data (deterministic): ``python generate.py``.

A fictional prefecture office of 2,400 staff in 12 departments, fiscal years R3-R6
(2021-04-01 .. 2025-03-31), the whole plan period, in the real export formats the adapters read:

- print/      PaperCut Print Logger monthly CSVs (banner line, trailing commas; R3
              written by a Japanese-Windows server in CP932, later ones UTF-8 with BOM)
- meetings/   a web-meeting usage export per FY (gzip; recurring meetings share an id)
- paperless/  a paperless-meeting system's export per FY (gzip; 紙資料配布 ○/×)
- vpn/        a VPN gateway's session report per FY (gzip; users by e-mail address)
- telework/   telework records (職員番号, 在宅勤務(午前) ...) and the applicant lists
- terminals/  terminal inventory snapshots (Web会議対応 ○/×)
- paper/      copy-paper purchase records (CP932)
- staff/      the staff directory (employee number, account and e-mail, department,
              validity; personnel transfers on 1 April)

Volumes follow the plan's scale so that some KPIs reach their targets and some do
not. Two print rows are malformed on purpose: the example run quarantines them.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 2021
FYS = (2021, 2022, 2023, 2024)
DEPARTMENTS = [
    ("D01", "総務部"),
    ("D02", "企画部"),
    ("D03", "環境生活部"),
    ("D04", "保健福祉部"),
    ("D05", "経済商工観光部"),
    ("D06", "農政部"),
    ("D07", "水産林政部"),
    ("D08", "土木部"),
    ("D09", "出納局"),
    ("D10", "教育庁"),
    ("D11", "企業局"),
    ("D12", "議会事務局"),
]
STAFF = 2400
DOMAIN = "pref.example.lg.jp"
PRINTERS = ["MFP-HONCHO-2F", "MFP-HONCHO-3F", "MFP-HONCHO-5F", "MFP-BUNCHO-1F"]
DOCS = [
    "会議資料_第{}回.pdf",
    "予算要求書_{}.xlsx",
    "起案文書{}.docx",
    "議事録_{}.docx",
    "Microsoft Word - 報告書{}.docx",
    "説明資料（案）{}.pptx",
]


def account(n: int) -> str:
    return f"s{n:05d}"


def employee_no(n: int) -> str:
    return f"{100000 + n}"


def email(n: int) -> str:
    return f"{account(n)}@{DOMAIN}"


def working_days(fy: int) -> list[dt.date]:
    day, end = dt.date(fy, 4, 1), dt.date(fy + 1, 4, 1)
    out = []
    while day < end:
        if (
            day.weekday() < 5
            and not (day.month == 12 and day.day >= 29)
            and not (day.month == 1 and day.day <= 3)
        ):
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[object]],
    *,
    encoding: str = "utf-8-sig",
    gz: bool = False,
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)


def departments(rng: random.Random) -> dict[int, list[tuple[str, str]]]:
    """Department of each person per FY; about 20 % move on each 1 April."""
    out: dict[int, list[tuple[str, str]]] = {}
    for n in range(1, STAFF + 1):
        dept = DEPARTMENTS[rng.randrange(len(DEPARTMENTS))]
        seq = []
        for _ in FYS:
            if seq and rng.random() < 0.2:
                dept = DEPARTMENTS[rng.randrange(len(DEPARTMENTS))]
            seq.append(dept)
        out[n] = seq
    return out


def staff_directory(depts: dict[int, list[tuple[str, str]]]) -> None:
    rows = []
    for n, seq in depts.items():
        start = 0
        for i in range(1, len(FYS) + 1):
            if i == len(FYS) or seq[i] != seq[start]:
                valid_to = "" if i == len(FYS) else f"{dt.date(FYS[i], 3, 31):%Y/%m/%d}"
                code, name = seq[start]
                rows.append(
                    [
                        employee_no(n),
                        account(n),
                        email(n),
                        name,
                        code,
                        f"{dt.date(FYS[start], 4, 1):%Y/%m/%d}",
                        valid_to,
                    ]
                )
                start = i
    write_csv(
        HERE / "staff" / "staff-directory.csv",
        [
            "職員番号",
            "アカウント",
            "メールアドレス",
            "所属",
            "所属コード",
            "適用開始日",
            "適用終了日",
        ],
        rows,
    )


def print_logs(rng: random.Random) -> None:
    # Sheets per FY relative to R3: R4 98.4 %, R5 96.9 %.
    factor = {2021: 1.0, 2022: 0.984, 2023: 0.969, 2024: 0.955}
    banner = "PaperCut Print Logger - http://www.papercut.com/\r\n"
    header = (
        "Time,User,Pages,Copies,Printer,Document Name,Client,Paper Size,Language,"
        "Height,Width,Duplex,Grayscale,Size\r\n"
    )
    for fy in FYS:
        by_month: dict[str, list[str]] = {}
        for day in working_days(fy):
            for _ in range(int(rng.gauss(14, 2) * factor[fy])):
                n = rng.randrange(1, STAFF + 1)
                user = account(n) if rng.random() < 0.8 else f"PREF\\{account(n).upper()}"
                t = dt.datetime.combine(day, dt.time(8, 30)) + dt.timedelta(
                    seconds=rng.randrange(0, 10 * 3600)
                )
                copies = 1 if rng.random() < 0.85 else rng.randrange(2, 6)
                per_copy = max(1, int(rng.expovariate(1 / 6)))
                duplex = rng.random() < 0.55
                doc = rng.choice(DOCS).format(rng.randrange(1, 40))
                by_month.setdefault(f"{day:%Y-%m}", []).append(
                    f"{t:%Y-%m-%d %H:%M:%S},{user},{per_copy * copies},{copies},"
                    f'{rng.choice(PRINTERS)},"{doc}",PC{n:05d},A4,PCL6,,,'
                    f"{'DUPLEX' if duplex else 'NOT DUPLEX'},"
                    f"{'GRAYSCALE' if rng.random() < 0.7 else 'NOT GRAYSCALE'},"
                    f"{rng.randrange(20, 900)}kb,\r\n"
                )
        for month, lines in by_month.items():
            if month == "2022-06":
                # Two malformed rows, as a truncated write and a hand edit leave them.
                lines.insert(10, "2022-06-02 10:15:00,s00042,,1,MFP-HONCHO-2F\r\n")
                lines.insert(
                    20,
                    '2022-06-03 11:00:00,s00043,abc,1,MFP-HONCHO-2F,"x",PC00043,'
                    "A4,PCL6,,,DUPLEX,GRAYSCALE,12kb,\r\n",
                )
            text = banner + header + "".join(lines)
            encoding = "cp932" if fy == 2021 else "utf-8-sig"
            path = HERE / "print" / f"papercut-print-log-{month}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode(encoding))


def web_meetings(rng: random.Random, depts: dict[int, list[tuple[str, str]]]) -> None:
    per_month = {2021: 860, 2022: 1010, 2023: 1170, 2024: 1420}
    for i, fy in enumerate(FYS):
        rows = []
        days = working_days(fy)
        months: dict[str, list[dt.date]] = {}
        for d in days:
            months.setdefault(f"{d:%Y-%m}", []).append(d)
        series = [f"{rng.randrange(10**9, 10**10)}" for _ in range(120)]
        for mdays in months.values():
            for _ in range(int(rng.gauss(per_month[fy], 30))):
                n = rng.randrange(1, STAFF + 1)
                day = rng.choice(mdays)
                start = dt.datetime.combine(day, dt.time(9, 0)) + dt.timedelta(
                    minutes=15 * rng.randrange(0, 32)
                )
                minutes = rng.choice([15, 30, 30, 45, 60, 60, 90, 120])
                participants = rng.randrange(2, 25)
                if rng.random() < 0.03:  # a test call: alone, or under a minute
                    participants, minutes = 1, 0
                mid = (
                    rng.choice(series) if rng.random() < 0.3 else f"{rng.randrange(10**9, 10**10)}"
                )
                end = start + dt.timedelta(minutes=minutes, seconds=rng.randrange(0, 50))
                rows.append(
                    [
                        mid,
                        f"{start:%Y/%m/%d %H:%M}",
                        f"{end:%Y/%m/%d %H:%M:%S}",
                        participants,
                        email(n),
                        depts[n][i][1],
                        "定例打合せ",
                    ]
                )
        write_csv(
            HERE / "meetings" / f"web-meetings-R{fy - 2018}.csv.gz",
            ["会議ID", "開始日時", "終了日時", "参加者数", "主催者", "所属", "会議名"],
            rows,
            gz=True,
        )


def paperless(rng: random.Random) -> None:
    per_year = {2021: 7600, 2022: 11400, 2023: 12600, 2024: 16700}
    for fy in FYS:
        rows = []
        days = working_days(fy)
        for k in range(per_year[fy]):
            day = rng.choice(days)
            start = dt.datetime.combine(day, dt.time(9, 0)) + dt.timedelta(
                minutes=30 * rng.randrange(0, 16)
            )
            end = start + dt.timedelta(minutes=rng.choice([30, 60, 90]))
            paper = "○" if rng.random() < 0.04 else "×"
            rows.append(
                [
                    f"PL{fy}{k:06d}",
                    f"{start:%Y/%m/%d %H:%M}",
                    f"{end:%Y/%m/%d %H:%M}",
                    rng.choice(DEPARTMENTS)[1],
                    rng.randrange(3, 30),
                    rng.randrange(1, 8),
                    rng.randrange(5, 120),
                    paper,
                    "moreNOTE",
                    "部内会議",
                ]
            )
        write_csv(
            HERE / "paperless" / f"paperless-meetings-R{fy - 2018}.csv.gz",
            [
                "会議ID",
                "開催日時",
                "終了日時",
                "主管課",
                "参加者数",
                "資料数",
                "資料ページ数",
                "紙資料配布",
                "システム",
                "会議名",
            ],
            rows,
            gz=True,
        )


def vpn(rng: random.Random) -> None:
    users = {2021: 980, 2022: 1290, 2023: 1560, 2024: 2040}
    for fy in FYS:
        rows = []
        days = working_days(fy)
        people = rng.sample(range(1, STAFF + 1), users[fy])
        sid = 0
        for n in people:
            for _ in range(rng.randrange(1, 12)):
                sid += 1
                day = rng.choice(days)
                start = dt.datetime.combine(day, dt.time(7, 0)) + dt.timedelta(
                    seconds=rng.randrange(0, 12 * 3600)
                )
                secs = rng.randrange(600, 8 * 3600)
                rows.append(
                    [
                        f"R{fy - 2018}-{sid:07d}",
                        email(n),
                        f"{start:%Y-%m-%d %H:%M:%S}",
                        f"{start + dt.timedelta(seconds=secs):%Y-%m-%d %H:%M:%S}",
                        secs,
                        "vpn-gw01",
                    ]
                )
        # The backup service account connects nightly: excluded by [kpi] excluded_accounts.
        for k, day in enumerate(days[::20]):
            rows.append(
                [
                    f"R{fy - 2018}-svc{k:03d}",
                    f"svc-backup@{DOMAIN}",
                    f"{day:%Y-%m-%d} 02:00:00",
                    f"{day:%Y-%m-%d} 03:30:00",
                    5400,
                    "vpn-gw01",
                ]
            )
        # Someone who only ever connected for a few seconds (does not qualify).
        rows.append(
            [
                f"R{fy - 2018}-short",
                email(2399),
                f"{days[5]:%Y-%m-%d} 09:00:00",
                f"{days[5]:%Y-%m-%d} 09:00:20",
                20,
                "vpn-gw01",
            ]
        )
        write_csv(
            HERE / "vpn" / f"vpn-sessions-R{fy - 2018}.csv.gz",
            ["セッションID", "ユーザー", "接続開始", "接続終了", "接続時間(秒)", "ゲートウェイ"],
            rows,
            gz=True,
        )


def telework(rng: random.Random, depts: dict[int, list[tuple[str, str]]]) -> None:
    applicants = {2021: 480, 2022: 610, 2023: 720, 2024: 800}
    did_share = {2021: 0.62, 2022: 0.74, 2023: 0.78, 2024: 0.86}
    kinds = ["在宅勤務", "在宅勤務", "在宅勤務(午前)", "在宅勤務(午後)"]
    for i, fy in enumerate(FYS):
        people = rng.sample(range(1, STAFF + 1), applicants[fy])
        app_rows = []
        for n in people:
            left = ""
            if rng.random() < 0.02:
                left = f"{dt.date(fy, rng.randrange(6, 13), 28):%Y/%m/%d}"
            app_rows.append(
                [
                    f"令和{fy - 2018}年度",
                    employee_no(n),
                    depts[n][i][1],
                    f"{dt.date(fy, 4, rng.randrange(1, 20)):%Y/%m/%d}",
                    left,
                ]
            )
        write_csv(
            HERE / "telework" / f"telework-applicants-R{fy - 2018}.csv",
            ["年度", "職員番号", "所属", "登録日", "退職日"],
            app_rows,
            encoding="cp932",
        )
        days = working_days(fy)
        rows = []
        doers = rng.sample(people, int(len(people) * did_share[fy]))
        for n in doers:
            for day in sorted(rng.sample(days, rng.randrange(1, 15))):
                rows.append([employee_no(n), f"{day:%Y/%m/%d}", rng.choice(kinds)])
        # Applicants who only worked at a satellite office or on the move.
        for n in rng.sample([p for p in people if p not in set(doers)], 15):
            rows.append(
                [
                    employee_no(n),
                    f"{rng.choice(days):%Y/%m/%d}",
                    rng.choice(["サテライトオフィス勤務", "モバイルワーク"]),
                ]
            )
        write_csv(
            HERE / "telework" / f"telework-records-R{fy - 2018}.csv",
            ["職員番号", "勤務日", "勤務形態"],
            rows,
            encoding="cp932",
        )


def terminals(rng: random.Random) -> None:
    share = {
        dt.date(2021, 12, 1): 0.44,
        dt.date(2022, 12, 1): 0.63,
        dt.date(2023, 6, 1): 0.70,
        dt.date(2023, 12, 1): 0.77,
        dt.date(2024, 12, 1): 0.94,
    }
    for snapshot, p in share.items():
        rows = []
        for k in range(1, 3001):
            kind = "ノートPC" if k % 3 else "デスクトップPC"
            rows.append(
                [
                    f"PC-{k:05d}",
                    f"{snapshot:%Y/%m/%d}",
                    "○" if rng.random() < p else "×",
                    kind,
                    rng.choice(DEPARTMENTS)[1],
                ]
            )
        write_csv(
            HERE / "terminals" / f"terminal-inventory-{snapshot:%Y-%m-%d}.csv",
            ["端末番号", "棚卸日", "Web会議対応", "種別", "所属"],
            rows,
        )


def paper_purchases(rng: random.Random) -> None:
    factor = {2021: 1.0, 2022: 0.975, 2023: 0.955, 2024: 0.94}
    rows = []
    k = 0
    for fy in FYS:
        for m in (*range(4, 13), 1, 2, 3):
            year = fy + (m < 4)
            for _code, name in DEPARTMENTS:
                k += 1
                boxes = max(1, int(rng.gauss(40, 6) * factor[fy]))
                rows.append(
                    [
                        f"K{year}{m:02d}-{k:05d}",
                        f"{dt.date(year, m, 10):%Y/%m/%d}",
                        "A4",
                        boxes,
                        boxes * 2500,
                        name,
                        boxes * 2980,
                    ]
                )
    write_csv(
        HERE / "paper" / "copy-paper-purchases.csv",
        ["伝票番号", "購入日", "用紙サイズ", "数量(箱)", "枚数", "所属", "金額(円)"],
        rows,
        encoding="cp932",
    )


def main() -> None:
    rng = random.Random(SEED)
    depts = departments(rng)
    staff_directory(depts)
    print_logs(rng)
    web_meetings(rng, depts)
    paperless(rng)
    vpn(rng)
    telework(rng, depts)
    terminals(rng)
    paper_purchases(rng)


if __name__ == "__main__":
    main()
