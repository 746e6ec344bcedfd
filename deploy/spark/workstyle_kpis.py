"""The six work-style KPIs on Apache Spark, over the collector's Parquet dataset.

A self-contained ``spark-submit`` job: it needs pyspark and Python 3.11 (tomllib),
not the collector package. It reads the same Hive-partitioned dataset
(``<table>[/organisation=<code>]/source=<name>/month=<YYYY-MM>/part-0.parquet``) on any
filesystem Spark reaches (local, HDFS, ``s3a://``), for one organisation or all of
them together, applies the same ``[kpi]`` counting rules with the same defaults, and
writes the same three KPI tables (yearly, monthly, by_department) with the columns of
``schemas/kpi.py``.

The scans over the event tables -- local day in the configured zone, person ->
department through the staff directory's validity intervals, the counting rules,
the reductions per month, person and department -- run as Spark DataFrame code on
the cluster. What comes back to the driver is small (per FY x month x department
counts); the per-FY arithmetic (means, projections, targets, statuses) runs there,
as in the collector's polars engine (``aggregates/kpis/``), which it mirrors
function by function. ``tests/aggregates/test_spark_kpis.py`` holds the two to the
same table, KPI by KPI, year by year, department by department.

    spark-submit deploy/spark/workstyle_kpis.py s3a://bucket/collector-data \\
        --config /etc/collector/collector.toml --as-of 2025-03-31 --organisation all \\
        --out s3a://bucket/collector-data/kpi-spark
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import os
import re
import sys
import tomllib
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

KPI_IDS = (
    "web_meetings_per_month",
    "paperless_meetings",
    "mobile_work_users",
    "telework_ratio",
    "paper_vs_r3",
    "vc_capable_terminals",
)
DEFAULT_UNITS = {
    "web_meetings_per_month": "meetings/month",
    "paperless_meetings": "meetings",
    "mobile_work_users": "people",
    "telework_ratio": "%",
    "paper_vs_r3": "%",
    "vc_capable_terminals": "%",
}
FINAL, PROJECTION = "final", "projection"
KPI_FILES = ("yearly", "monthly", "by_department")
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(9999, 12, 31)
#: The partition level above ``source=`` in a dataset of many organisations.
ORG_KEY, ALL_ORGANISATIONS = "organisation", "all"
REIWA_OFFSET = 2018
COUNTERS, SHEETS, IMPRESSIONS = "printer_counters", "sheets", "impressions"


class UsageError(Exception):
    """A problem the user fixes: printed as one line, exit code 2."""


# -- the [kpi] counting rules (aggregates/settings.py) ------------------------------------
@dataclass(frozen=True)
class Rules:
    """The ``[kpi]`` switches, with the collector's defaults."""

    min_meeting_minutes: float = 1.0
    min_participants: int = 2
    count_meetings_without_duration: bool = True
    meeting_months: str = "since_first_data"
    exclude_paper_distributed: bool = True
    min_session_seconds: int = 60
    count_sessions_without_duration: bool = False
    excluded_accounts: tuple[str, ...] = ()
    count_half_days: bool = True
    count_hour_portions: bool = False
    count_satellite_days: bool = False
    count_mobile_days: bool = False
    leavers: str = "present"
    paper_basis: str = "print_jobs"
    paper_same_period: str = "complete_months"
    unknown_department: str = "(unknown)"


CHOICES = {
    "meeting_months": ("since_first_data", "all", "with_data"),
    "leavers": ("keep", "present", "exclude"),
    "paper_basis": ("print_jobs", "paper_purchases", COUNTERS),
    "paper_same_period": ("complete_months", "days"),
}


def rules_from(section: dict[str, Any], where: str) -> Rules:
    """The ``[kpi]`` table as :class:`Rules`; an unknown key or value is a UsageError."""
    known = Rules.__dataclass_fields__
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key not in known:
            raise UsageError(f"{where}: [kpi] unknown key {key!r}")
        if key in CHOICES and value not in CHOICES[key]:
            raise UsageError(
                f"{where}: [kpi] key {key!r}: expected one of {', '.join(CHOICES[key])}"
            )
        values[key] = value
    if "excluded_accounts" in values:
        values["excluded_accounts"] = tuple(str(a) for a in values["excluded_accounts"] or ())
    if "min_meeting_minutes" in values:
        values["min_meeting_minutes"] = float(values["min_meeting_minutes"])
    return Rules(**values)


# -- the plan (aggregates/targets.py) ------------------------------------------------------
def parse_fiscal_year(text: str | int) -> int:
    """'R5', '2023', 'FY2023', '令和5年度', '令和元年度' -> 2023."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    s = unicodedata.normalize("NFKC", str(text)).strip()
    m = re.match(r"^(?:令和|R)\s*(元|\d{1,2})\s*(?:年度|年)?$", s, re.IGNORECASE)
    if m:
        return REIWA_OFFSET + (1 if m.group(1) == "元" else int(m.group(1)))
    m = re.match(r"^(?:FY)?\s*(\d{4})\s*(?:年度)?$", s, re.IGNORECASE)
    if m:
        return int(m.group(1))
    raise ValueError(f"not a fiscal year: {text!r} (expected e.g. R5, 2023 or 令和5年度)")


def label(fy: int) -> str:
    return f"R{fy - REIWA_OFFSET}" if fy > REIWA_OFFSET else str(fy)


@dataclass(frozen=True)
class KpiPlan:
    kpi: str
    name_ja: str
    name_en: str
    unit: str
    direction: str = "higher"
    targets: dict[int, float] = field(default_factory=dict)
    baseline_fy: int | None = None


@dataclass(frozen=True)
class Plan:
    kpis: dict[str, KpiPlan]
    first_fy: int | None = None
    last_fy: int | None = None

    def get(self, kpi: str) -> KpiPlan:
        return self.kpis.get(kpi) or KpiPlan(kpi, kpi, kpi, DEFAULT_UNITS[kpi])

    def fiscal_years(self) -> set[int]:
        years = {fy for k in self.kpis.values() for fy in k.targets}
        if self.first_fy is not None and self.last_fy is not None:
            years |= set(range(self.first_fy, self.last_fy + 1))
        return years


def load_plan(path: str) -> Plan:
    """The targets TOML; every problem is one UsageError line naming file and key."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: targets file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None

    def fy(where: str, text: Any) -> int:
        try:
            return parse_fiscal_year(text)
        except ValueError as exc:
            raise UsageError(f"{path}: {where}: {exc}") from None

    kpis = {}
    for kpi, entry in (raw.get("kpi") or {}).items():
        if kpi not in KPI_IDS:
            raise UsageError(f"{path}: [kpi.{kpi}]: unknown KPI; expected one of {KPI_IDS}")
        direction = entry.get("direction", "higher")
        if direction not in ("higher", "lower"):
            raise UsageError(f"{path}: [kpi.{kpi}] key 'direction': expected higher or lower")
        targets = {
            fy(f"[kpi.{kpi}] targets", k): float(v) for k, v in (entry.get("targets") or {}).items()
        }
        base = entry.get("baseline_fy")
        kpis[kpi] = KpiPlan(
            kpi,
            str(entry.get("name_ja", kpi)),
            str(entry.get("name_en", kpi)),
            str(entry.get("unit", DEFAULT_UNITS[kpi])),
            direction,
            targets,
            fy(f"[kpi.{kpi}] baseline_fy", base) if base else None,
        )
    plan = raw.get("plan", {})
    first, last = plan.get("first_fy"), plan.get("last_fy")
    return Plan(
        kpis,
        fy("[plan] first_fy", first) if first else None,
        fy("[plan] last_fy", last) if last else None,
    )


# -- pseudonyms of excluded accounts (collector/pseudonyms.py) ----------------------------
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def read_secret(ref: str, where: str) -> str:
    """An ``env:NAME`` / ``file:PATH`` reference; errors never show the value."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if not value:
            raise UsageError(f"{where}: environment variable {ref[4:]} is not set or empty")
        return value
    if not ref.startswith("file:"):
        raise UsageError(f"{where}: expected 'env:VARIABLE' or 'file:PATH'")
    try:
        value = Path(ref[5:]).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"{where}: cannot read secret file {ref[5:]}: {exc.strerror}") from None
    if not value:
        raise UsageError(f"{where}: secret file {ref[5:]} is empty")
    return value


def pseudonym(key: bytes, identifier: str) -> str | None:
    """HMAC-SHA256 of the normalised identifier (case folded, domain forms removed)."""
    s = identifier.strip().lower()
    s = re.sub(r"^.*\\", "", s)
    s = re.sub(r"@.*$", "", s).strip()
    if not s:
        return None
    return hmac.new(key, s.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def excluded_pseudonyms(accounts: Iterable[str], key_ref: str | None) -> frozenset[str]:
    """32-hex entries as given, account names hashed with the pseudonymisation key."""
    given = {a.lower() for a in accounts if HEX32.match(a.lower())}
    names = [a for a in accounts if not HEX32.match(a.lower())]
    if names:
        if key_ref is None:
            raise UsageError(
                "[kpi] excluded_accounts names accounts: pass --pseudonym-key env:VAR or"
                " file:PATH (the collector's [privacy] key) or list their 32-hex pseudonyms"
            )
        key = read_secret(key_ref, "--pseudonym-key").encode("utf-8")
        given |= {p for p in (pseudonym(key, n) for n in names) if p}
    return frozenset(given)


# -- the fiscal calendar (aggregates/fiscal.py) -------------------------------------------
def fiscal_year_of(day: dt.date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def fy_start(fy: int) -> dt.date:
    return dt.date(fy, 4, 1)


def fy_end(fy: int) -> dt.date:
    return dt.date(fy + 1, 4, 1)


def fy_months(fy: int) -> list[str]:
    return [f"{fy + (m < 4)}-{m:02d}" for m in (*range(4, 13), 1, 2, 3)]


def month_start(month: str) -> dt.date:
    return dt.date(int(month[:4]), int(month[5:7]), 1)


def month_end(month: str) -> dt.date:
    start = month_start(month)
    return dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1) - dt.timedelta(1)


def month_of(day: dt.date) -> str:
    return f"{day.year}-{day.month:02d}"


def fy_days(fy: int) -> int:
    return (fy_end(fy) - fy_start(fy)).days


def fy_complete(fy: int, as_of: dt.date) -> bool:
    return as_of >= fy_end(fy) - dt.timedelta(days=1)


def month_complete(month: str, as_of: dt.date) -> bool:
    return as_of >= month_end(month)


def elapsed_days(fy: int, as_of: dt.date) -> int:
    return max(0, min(fy_days(fy), (as_of - fy_start(fy)).days + 1))


def fy_months_through(fy: int, as_of: dt.date) -> list[str]:
    return [m for m in fy_months(fy) if month_start(m) <= as_of]


def month_idx(month: str) -> int:
    """'YYYY-MM' -> months since April (0..11)."""
    return (int(month[5:]) - 4) % 12


def fy_projection(value: float, fy: int, through: dt.date) -> float:
    done = elapsed_days(fy, through)
    return value * fy_days(fy) / done if done else value


def month_projection(count: float, month: str, as_of: dt.date) -> float | None:
    if month_complete(month, as_of):
        return None
    days = (as_of - month_start(month)).days + 1
    return count * ((month_end(month) - month_start(month)).days + 1) / days


def pct(num: float, den: float) -> float | None:
    return 100.0 * num / den if den else None


def trend(points: list[tuple[float, float]], at: Iterable[float]) -> list[float]:
    """Least-squares straight line through ``points`` evaluated at ``at``."""
    n = len(points)
    if n == 0:
        return []
    if n == 1:
        return [points[0][1] for _ in at]
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return [my + slope * (x - mx) for x in at]


# -- result rows (aggregates/kpis/base.py) ------------------------------------------------
@dataclass
class Row:
    kpi: str
    fiscal_year: int
    value: float | None
    complete: bool
    judge: str
    month: str | None = None
    department: str | None = None
    numerator: float | None = None
    denominator: float | None = None
    projected: float | None = None
    basis: str | None = None
    reason: str | None = None
    target_factor: float | None = 1.0
    cumulative: bool = False


@dataclass
class Output:
    kpi: str
    no_data_reason: str
    basis: str | None = None
    rows: list[Row] = field(default_factory=list)


class FyRows:
    """One fiscal year's rows of one KPI (the collector's ``FyRows``)."""

    def __init__(self, out: Output, fy: int, as_of: dt.date) -> None:
        self.out, self.fy, self.as_of = out, fy, as_of
        self.complete = fy_complete(fy, as_of)
        self.judge = FINAL if self.complete else PROJECTION
        self.basis = out.basis

    def year(self, value: float | None, **fields: Any) -> None:
        self._add(value, self.complete, self.judge, **fields)

    def month(
        self, month: str, value: float | None, *, to_date: bool = False, **fields: Any
    ) -> None:
        complete = month_complete(month, self.as_of)
        final = complete and (not to_date or month == fy_months(self.fy)[-1])
        if to_date:
            fields.setdefault("reason", "fiscal year to date")
        self._add(value, complete, FINAL if final else PROJECTION, month=month, **fields)

    def department(self, department: str, value: float | None, **fields: Any) -> None:
        self._add(value, self.complete, self.judge, department=department, **fields)

    def count_year(self, total: int) -> None:
        projected = None if self.complete else fy_projection(total, self.fy, self.as_of)
        self.year(float(total), numerator=float(total), projected=projected, cumulative=True)

    def count_month(self, month: str, count: float, **fields: Any) -> None:
        self.month(
            month,
            count,
            numerator=count,
            projected=month_projection(count, month, self.as_of),
            cumulative=True,
            **fields,
        )

    def count_departments(self, counts: Iterable[tuple[str, int]]) -> None:
        for d, c in sorted(counts):
            self.department(d, float(c), numerator=float(c), target_factor=None, cumulative=True)

    def to_date(self, new: dict[str, int]) -> Iterator[tuple[str, int, float]]:
        total = 0
        for m in fy_months_through(self.fy, self.as_of):
            total += new.get(m, 0)
            yield m, total, fy_projection(total, self.fy, min(month_end(m), self.as_of))

    def _add(self, value: float | None, complete: bool, judge: str, **fields: Any) -> None:
        fields.setdefault("basis", self.basis)
        self.out.rows.append(Row(self.out.kpi, self.fy, value, complete, judge, **fields))


# -- the job's context: reading the dataset, the staff directory ---------------------------
STRING, LONG, INT, SHORT = T.StringType(), T.LongType(), T.IntegerType(), T.ShortType()
DATE, TS, BOOL, DOUBLE = T.DateType(), T.TimestampType(), T.BooleanType(), T.DoubleType()

#: The columns the KPIs read, with their Parquet types (schemas/tables.py).
TABLES: dict[str, dict[str, T.DataType]] = {
    "meetings": {
        "start_time": TS,
        "end_time": TS,
        "duration_seconds": LONG,
        "participants": INT,
        "host": STRING,
        "department": STRING,
    },
    "paperless_meetings": {
        "start_time": TS,
        "department": STRING,
        "paper_also_distributed": BOOL,
    },
    "remote_sessions": {
        "person": STRING,
        "start_time": TS,
        "end_time": TS,
        "duration_seconds": LONG,
    },
    "telework_days": {"person": STRING, "work_date": DATE, "location": STRING, "portion": STRING},
    "telework_applicants": {
        "person": STRING,
        "fiscal_year": SHORT,
        "department": STRING,
        "registered_on": DATE,
        "left_on": DATE,
    },
    "print_jobs": {
        "printed_at": TS,
        "person": STRING,
        "sheets": LONG,
        "sheets_upper_bound": BOOL,
        "department": STRING,
    },
    "paper_purchases": {"purchased_on": DATE, "sheets": LONG, "department": STRING},
    "printer_counter_deltas": {
        "interval_end": TS,
        "pages": LONG,
        "unit": STRING,
        "kind": STRING,
    },
    "terminals": {"snapshot_date": DATE, "vc_capable": BOOL, "department": STRING},
    "staff_directory": {
        "person": STRING,
        "employee_no": STRING,
        "email": STRING,
        "department": STRING,
        "valid_from": DATE,
        "valid_to": DATE,
    },
}
#: Tables partitioned by a UTC timestamp: their month= folders can be pruned by as-of.
TIMESTAMP_PARTITIONED = {"meetings", "remote_sessions", "print_jobs"}


@dataclass
class Job:
    """Everything a KPI needs: the session, the dataset, rules, plan, as-of date, zone."""

    spark: SparkSession
    root: str
    rules: Rules
    plan: Plan
    as_of: dt.date
    timezone: str = "Asia/Tokyo"
    basis: str | None = None
    excluded: frozenset[str] = frozenset()
    #: One organisation's 地方公共団体コード, or None: every organisation together.
    organisation: str | None = None

    def __post_init__(self) -> None:
        # Local calendar days come from the session zone: to_date(ts) is the local day.
        self.spark.conf.set("spark.sql.session.timeZone", self.timezone)
        # Partition values stay strings ("2024-04" is a month, "001" a source name).
        self.spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        local = dt.datetime.combine(
            self.as_of + dt.timedelta(days=1), dt.time(), ZoneInfo(self.timezone)
        )
        self.as_of_end_utc = local.astimezone(dt.UTC)
        self.as_of_fy = fiscal_year_of(self.as_of)
        self._intervals: DataFrame | None = None

    @property
    def as_of_end(self) -> Column:
        """The first instant after the as-of day (local) ends, as a timestamp literal."""
        micros = int(self.as_of_end_utc.timestamp()) * 1_000_000
        return F.timestamp_micros(F.lit(micros))

    def _fs(self, path: str) -> Any:
        jvm = self.spark.sparkContext._jvm
        p = jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()), p

    def _matches(self, pattern: str) -> bool:
        """Whether a path (a glob) names anything, on whatever filesystem holds it."""
        fs, p = self._fs(pattern)
        found = fs.globStatus(p)
        return found is not None and len(found) > 0

    def scan(self, table: str) -> DataFrame:
        """The table's columns the KPIs read, ``source``, ``month`` and ``organisation``.

        One organisation: its ``organisation=<code>`` folder. Every organisation: both
        layouts, partitions with the organisation level and without it (a dataset
        written before it had organisations), as the collector's reader scans them.
        Empty when there is no data.
        """
        cols = [T.StructField(n, t) for n, t in TABLES[table].items()]
        part = [T.StructField("source", STRING), T.StructField("month", STRING)]
        base = f"{self.root}/{table}"
        frames = []
        if self.organisation is not None:
            path = f"{base}/{ORG_KEY}={self.organisation}"
            if self._matches(path):
                df = self.spark.read.schema(T.StructType(cols + part)).parquet(path)
                frames.append(df.withColumn(ORG_KEY, F.lit(self.organisation)))
        else:
            levelled = T.StructType([*cols, T.StructField(ORG_KEY, STRING), *part])
            if self._matches(f"{base}/{ORG_KEY}=*"):
                reader = self.spark.read.option("basePath", base).schema(levelled)
                frames.append(reader.parquet(f"{base}/{ORG_KEY}=*"))
            if self._matches(f"{base}/source=*"):
                reader = self.spark.read.option("basePath", base).schema(T.StructType(cols + part))
                df = reader.parquet(f"{base}/source=*")
                frames.append(df.withColumn(ORG_KEY, F.lit(None).cast(STRING)))
        if not frames:
            empty = T.StructType([*cols, *part, T.StructField(ORG_KEY, STRING)])
            return self.spark.createDataFrame([], empty)
        df = frames[0].select(*[f.name for f in cols], "source", "month", ORG_KEY)
        for other in frames[1:]:
            df = df.unionByName(other)
        if table in TIMESTAMP_PARTITIONED:
            df = df.filter(F.col("month") <= month_of(self.as_of_end_utc.date()))
        return df

    @property
    def intervals(self) -> DataFrame:
        """alias -> (person, department) intervals covering every day (staff_directory.py)."""
        if self._intervals is None:
            self._intervals = F.broadcast(load_intervals(self)).cache()
        return self._intervals

    def attach(
        self, df: DataFrame, person: str | None, day: Column, own_department: str | None
    ) -> DataFrame:
        """Add ``__day``, ``canon``, ``dept`` and ``in_directory`` to an event frame."""
        unknown = F.lit(self.rules.unknown_department)
        df = df.withColumn("__day", day)
        own = F.col(own_department) if own_department else F.lit(None).cast(STRING)
        if person is None:
            return df.select(
                "*",
                F.lit(None).cast(STRING).alias("canon"),
                F.coalesce(own, unknown).alias("dept"),
                F.lit(False).alias("in_directory"),
            )
        iv = self.intervals
        # The intervals cover each alias's every day exactly once: one row per event.
        cond = (
            (df[person] == iv["alias"])
            & (df["__day"] >= iv["d_from"])
            & (df["__day"] <= iv["d_to"])
        )
        joined = df.join(iv, cond, "left")
        return joined.select(
            *[df[c] for c in df.columns if c != person],
            df[person],
            F.coalesce(iv["canon"], df[person]).alias("canon"),
            F.coalesce(own, iv["dir_department"], unknown).alias("dept"),
            iv["d_from"].isNotNull().alias("in_directory"),
        )

    def wanted(self, fy: int) -> bool:
        return fy <= self.as_of_fy

    def years(self, out: Output, found: Iterable[int]) -> Iterator[FyRows]:
        for fy in sorted(set(found)):
            if self.wanted(fy):
                yield FyRows(out, fy, self.as_of)


def load_intervals(job: Job) -> DataFrame:
    """The staff directory as alias -> (canon, d_from, d_to, dir_department) intervals."""
    min_d, max_d = F.lit(MIN_DATE), F.lit(MAX_DATE)
    raw = job.scan("staff_directory").filter(F.col("valid_from") <= F.lit(job.as_of))
    # One entry per (person, valid_from): the last one the collector's reader reads
    # (partitions with the organisation level first, then those without; in path order).
    last = Window.partitionBy("person", "valid_from").orderBy(
        F.col(ORG_KEY).desc_nulls_first(), F.col("source").desc(), F.col("month").desc()
    )
    entries = raw.withColumn("_rn", F.row_number().over(last)).filter(F.col("_rn") == 1).drop("_rn")
    by_person = Window.partitionBy("person").orderBy("valid_from")
    nxt = F.lead("valid_from").over(by_person)
    entries = entries.withColumn("next_from", nxt).withColumn(
        "eff_to",
        F.least(
            F.coalesce(F.col("valid_to"), max_d),
            F.coalesce(F.date_sub(F.col("next_from"), 1), max_d),
        ),
    )
    spans = entries.select(
        "person",
        F.col("valid_from").alias("d_from"),
        F.col("eff_to").alias("d_to"),
        F.col("department").alias("dir_department"),
    )
    head = (
        entries.groupBy("person")
        .agg(F.min("valid_from").alias("first"))
        .filter(F.col("first") > min_d)
        .select(
            "person",
            min_d.alias("d_from"),
            F.date_sub("first", 1).alias("d_to"),
            F.lit(None).cast(STRING).alias("dir_department"),
        )
    )
    gaps = (
        entries.filter(F.col("eff_to") < max_d)
        .withColumn(
            "gap_end",
            F.when(F.col("next_from").isNull(), max_d).otherwise(F.date_sub("next_from", 1)),
        )
        .filter(F.col("eff_to") < F.col("gap_end"))
        .select(
            "person",
            F.date_add("eff_to", 1).alias("d_from"),
            F.col("gap_end").cast(DATE).alias("d_to"),
            F.lit(None).cast(STRING).alias("dir_department"),
        )
    )
    intervals = spans.unionByName(head).unionByName(gaps).filter(F.col("d_from") <= F.col("d_to"))
    aliases = (
        entries.select(F.col("person").alias("alias"), "person", F.lit(0).alias("prio"))
        .unionByName(
            entries.select(F.col("employee_no").alias("alias"), "person", F.lit(1).alias("prio"))
        )
        .unionByName(
            entries.select(F.col("email").alias("alias"), "person", F.lit(2).alias("prio"))
        )
        .dropna(subset=["alias"])
        .distinct()
    )
    # An alias claimed by two people goes to the one whose account it is, else to the
    # first by pseudonym: every event resolves the same way on every run.
    pick = Window.partitionBy("alias").orderBy("prio", "person")
    aliases = aliases.withColumn("_rn", F.row_number().over(pick)).filter(F.col("_rn") == 1)
    return aliases.join(intervals, "person").select(
        "alias", F.col("person").alias("canon"), "d_from", "d_to", "dir_department"
    )


# -- column helpers ------------------------------------------------------------------------
def fy_col(day: Column) -> Column:
    return (F.year(day) - F.when(F.month(day) < 4, 1).otherwise(0)).cast(INT)


def month_col(day: Column) -> Column:
    return F.date_format(day, "yyyy-MM")


def duration_seconds() -> Column:
    """Own duration, else end - start in whole seconds (truncated, as polars does), else null."""
    diff = F.expr("(unix_micros(end_time) - unix_micros(start_time)) div 1000000")
    return F.coalesce(F.col("duration_seconds").cast(DOUBLE), diff.cast(DOUBLE))


def n(cond: Column) -> Column:
    """How many rows meet ``cond`` (null counts as not)."""
    return F.sum(F.when(cond, 1).otherwise(0))


def total(col: Column | str) -> Column:
    """Sum of a column, 0 when every value is null."""
    return F.coalesce(F.sum(col), F.lit(0))


def distinct_count(col: str) -> Column:
    """Distinct values including null (as polars' n_unique counts it)."""
    return F.count_distinct(F.coalesce(F.col(col), F.lit("\x00null")))


def rows(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


# -- the six KPIs (aggregates/kpis/) -------------------------------------------------------
def web_meetings_per_month(job: Job) -> Output:
    """Web meetings that took place, per local start month; FY = mean over complete months."""
    r = job.rules
    df = job.scan("meetings").filter(F.col("start_time") < job.as_of_end)
    dur = duration_seconds()
    short = dur.isNotNull() & (dur < r.min_meeting_minutes * 60)
    nodur = dur.isNull() & F.lit(not r.count_meetings_without_duration)
    few = F.col("participants").isNotNull() & (F.col("participants") < r.min_participants)
    df = job.attach(df, "host", F.to_date("start_time"), "department")
    df = df.select(
        month_col(F.col("__day")).alias("month"),
        "dept",
        short.alias("short"),
        (~short & nodur).alias("nodur"),
        (~short & ~nodur & few).alias("few"),
    )
    agg = rows(
        df.groupBy("month", "dept").agg(
            F.count(F.lit(1)).alias("considered"),
            n(F.col("short")).alias("short"),
            n(F.col("nodur")).alias("nodur"),
            n(F.col("few")).alias("few"),
            n(~(F.col("short") | F.col("nodur") | F.col("few"))).alias("counted"),
        )
    )
    first_month = min((a["month"] for a in agg), default=None)
    monthly: dict[str, int] = defaultdict(int)
    considered: dict[str, int] = defaultdict(int)
    for a in agg:
        monthly[a["month"]] += a["counted"]
        considered[a["month"]] += a["considered"]
    out = Output("web_meetings_per_month", "no web meeting records")
    for y in job.years(out, (fiscal_year_of(month_start(m)) for m in monthly)):
        fy = y.fy
        started = fy_months_through(fy, job.as_of)
        complete_months = [m for m in started if month_complete(m, job.as_of)]
        if r.meeting_months == "since_first_data":
            counted_months = [m for m in complete_months if first_month and m >= first_month]
        elif r.meeting_months == "with_data":
            counted_months = [m for m in complete_months if considered.get(m, 0) > 0]
        else:
            counted_months = complete_months
        k = len(counted_months)
        tot = sum(monthly.get(m, 0) for m in counted_months)
        value = tot / k if k else None
        projected = None
        if value is not None and not y.complete:
            idx = {m: i for i, m in enumerate(fy_months(fy))}
            pts = [(idx[m], float(monthly.get(m, 0))) for m in counted_months]
            rest = [i for i in range(12) if fy_months(fy)[i] not in complete_months]
            projected = (tot + sum(trend(pts, rest))) / (k + len(rest))
        reason = None if k else "no complete month with meeting data in this FY yet"
        if k and k < len(complete_months):
            reason = (
                f"mean over {k} of {len(complete_months)} complete months"
                f" (rule meeting_months = {r.meeting_months})"
            )
        y.year(
            value, numerator=float(tot), denominator=float(k), projected=projected, reason=reason
        )
        for m in started:
            if not (first_month and m < first_month):
                y.count_month(m, float(monthly.get(m, 0)), denominator=1.0)
        if k:
            dept: dict[str, int] = defaultdict(int)
            for a in agg:
                if a["month"] in counted_months:
                    dept[a["dept"]] += a["counted"]
            for d in sorted(dept):
                c = dept[d]
                y.department(d, c / k, numerator=float(c), denominator=float(k), target_factor=None)
    return out


def paperless_meetings(job: Job) -> Output:
    """Meetings held on a paperless meeting system in the FY (and month)."""
    r = job.rules
    df = job.scan("paperless_meetings").filter(F.col("start_time") < job.as_of_end)
    paper = F.coalesce(F.col("paper_also_distributed"), F.lit(False)) & F.lit(
        r.exclude_paper_distributed
    )
    df = job.attach(df, None, F.to_date("start_time"), "department")
    agg = rows(
        df.groupBy(month_col(F.col("__day")).alias("month"), "dept").agg(n(~paper).alias("counted"))
    )
    out = Output("paperless_meetings", "no paperless-meeting records")
    by_fy: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in agg:
        by_fy[fiscal_year_of(month_start(a["month"]))].append(a)
    for y in job.years(out, by_fy):
        fa = by_fy[y.fy]
        y.count_year(sum(a["counted"] for a in fa))
        counts: dict[str, int] = defaultdict(int)
        depts: dict[str, int] = defaultdict(int)
        for a in fa:
            counts[a["month"]] += a["counted"]
            depts[a["dept"]] += a["counted"]
        for m in fy_months_through(y.fy, job.as_of):
            y.count_month(m, float(counts.get(m, 0)), target_factor=1 / 12)
        y.count_departments(depts.items())
    return out


def mobile_work_users(job: Job) -> Output:
    """Distinct staff with at least one qualifying mobile-work session in the FY."""
    r = job.rules
    df = job.scan("remote_sessions").filter(F.col("start_time") < job.as_of_end)
    dur = duration_seconds()
    df = job.attach(df, "person", F.to_date("start_time"), None)
    excluded = sorted(job.excluded)
    acct = (
        (F.col("canon").isin(excluded) | F.col("person").isin(excluded))
        if excluded
        else F.lit(False)
    )
    short = ~acct & dur.isNotNull() & (dur < r.min_session_seconds)
    nodur = ~acct & dur.isNull() & F.lit(not r.count_sessions_without_duration)
    ok = ~(acct | short | nodur)
    # Per person and FY: the month of the first qualifying session and the departments
    # of the qualifying ones; then counted per (FY, department, first month). A person
    # in two departments counts once in each, and once (the primary row) for the FY.
    per_person = df.groupBy(fy_col(F.col("__day")).alias("fy"), "canon").agg(
        F.min(F.when(ok, month_col(F.col("__day")))).alias("first"),
        F.array_sort(F.collect_set(F.when(ok, F.col("dept")))).alias("depts"),
    )
    counted = (
        per_person.select("fy", "first", F.posexplode_outer("depts").alias("pos", "dept"))
        .groupBy("fy", "dept", "first", F.coalesce(F.col("pos"), F.lit(0)).alias("pos"))
        .count()
    )
    fys: set[int] = set()
    people: dict[int, int] = defaultdict(int)
    new: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    depts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in rows(counted):
        fys.add(a["fy"])
        if a["first"] is None:
            continue
        if a["pos"] == 0:
            people[a["fy"]] += a["count"]
            new[a["fy"]][a["first"]] += a["count"]
        depts[a["fy"]][a["dept"]] += a["count"]
    out = Output("mobile_work_users", "no mobile-work session records")
    for y in job.years(out, fys):
        y.count_year(people[y.fy])
        for m, cum, projected in y.to_date(new[y.fy]):
            y.month(
                m,
                float(cum),
                to_date=True,
                numerator=float(cum),
                projected=projected,
                cumulative=True,
            )
        y.count_departments(depts[y.fy].items())
    return out


def telework_ratio(job: Job) -> Output:
    """Share of the FY's telework applicants with at least one qualifying home-work day."""
    r = job.rules
    fy = F.col("fiscal_year").cast(INT)
    apps = job.scan("telework_applicants").filter(
        (fy <= job.as_of_fy)
        & (F.col("registered_on").isNull() | (F.col("registered_on") <= F.lit(job.as_of)))
    )
    # Department: the one held when the FY (or the registration, if later) began;
    # transfers happen on 1 April.
    day = F.greatest(F.make_date(fy, F.lit(4), F.lit(1)), F.col("registered_on"))
    apps = job.attach(apps, "person", day, "department")
    fy_last = F.make_date(fy + 1, F.lit(3), F.lit(31))
    left = F.col("left_on").isNotNull() & (F.col("left_on") <= F.least(F.lit(job.as_of), fy_last))
    never_present = left & (F.col("left_on") < F.make_date(fy, F.lit(4), F.lit(1)))
    drop = {"keep": F.lit(False), "present": never_present, "exclude": left}[r.leavers]
    # One applicant row per person and FY (the first department, as the engine keeps).
    apps_pc = (
        apps.groupBy("canon", fy.alias("fy"))
        .agg(F.min(F.struct("dept", left.alias("left"), drop.alias("drop"))).alias("a"))
        .select("canon", "fy", "a.dept", "a.drop", F.lit(True).alias("applicant"))
    )
    locations = (
        ["home"]
        + (["satellite"] if r.count_satellite_days else [])
        + (["mobile"] if r.count_mobile_days else [])
    )
    portions = (
        ["full"]
        + (["am", "pm"] if r.count_half_days else [])
        + (["hours"] if r.count_hour_portions else [])
    )
    days = job.scan("telework_days").filter(F.col("work_date") <= F.lit(job.as_of))
    days = job.attach(days, "person", F.col("work_date"), None)
    qualifies = F.col("location").isin(locations) & F.col("portion").isin(portions)
    # Per person and FY with any day record: the month of the first qualifying day.
    days_pc = days.groupBy("canon", fy_col(F.col("work_date")).alias("fy")).agg(
        F.min(F.when(qualifies, month_col(F.col("work_date")))).alias("first"),
        F.lit(True).alias("has_days"),
    )
    both = apps_pc.join(days_pc, ["canon", "fy"], "full")
    counted = both.groupBy(
        "fy",
        F.coalesce("applicant", F.lit(False)).alias("applicant"),
        F.coalesce("drop", F.lit(False)).alias("drop"),
        F.coalesce("has_days", F.lit(False)).alias("has_days"),
        "dept",
        "first",
    ).count()
    app_fys: set[int] = set()
    day_fys: set[int] = set()
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    new: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    depts: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for a in rows(counted):
        fy_, k = a["fy"], a["count"]
        if a["has_days"]:
            day_fys.add(fy_)
        if not a["applicant"]:
            continue
        app_fys.add(fy_)
        if a["drop"]:
            continue
        did = a["first"] is not None
        totals[fy_][0] += k
        depts[fy_][a["dept"]][1] += k
        if did:
            totals[fy_][1] += k
            depts[fy_][a["dept"]][0] += k
            new[fy_][a["first"]] += k
    out = Output("telework_ratio", "no telework applicant list")
    for y in job.years(out, app_fys):
        n_app, doers = totals[y.fy]
        if y.fy not in day_fys:
            y.year(
                None,
                numerator=None,
                denominator=float(n_app),
                reason="no telework-day records in this FY",
            )
            continue
        if n_app == 0:
            y.year(None, denominator=0.0, reason="no applicants in the denominator")
            continue
        y.year(
            pct(doers, n_app),
            numerator=float(doers),
            denominator=float(n_app),
            projected=None if y.complete else _capped(fy_projection(doers, y.fy, job.as_of), n_app),
        )
        for m, cum, projected in y.to_date(new[y.fy]):
            y.month(
                m,
                pct(cum, n_app),
                to_date=True,
                numerator=float(cum),
                denominator=float(n_app),
                projected=_capped(projected, n_app),
            )
        for d in sorted(depts[y.fy]):
            num, den = depts[y.fy][d]
            y.department(
                d,
                pct(num, den),
                numerator=float(num),
                denominator=float(den),
                projected=None if y.complete else _capped(fy_projection(num, y.fy, job.as_of), den),
            )
    return out


def _capped(projected: float, den: int) -> float | None:
    return pct(min(projected, den), den)


#: Per (FY, month of the FY, department), every quantity the paper KPI compares; each
#: also "_td": only the days of the month up to the as-of day of the month, which is
#: what a FY or month in progress is compared through.
PAPER_SUMS = ("sheets", "records", "upper", "impressions", "n_impressions", "n_sheets", "lower")


def paper_vs_r3(job: Job) -> Output:
    """Sheets in the FY / sheets in the baseline FY x 100, on one basis, same period."""
    r = job.rules
    basis = job.basis or r.paper_basis
    table = {"print_jobs": "print_jobs", "paper_purchases": "paper_purchases"}.get(
        basis, "printer_counter_deltas"
    )
    entry = job.plan.get("paper_vs_r3")
    base_fy = entry.baseline_fy or job.plan.first_fy
    out = Output("paper_vs_r3", f"no {table} records")
    if base_fy is None:
        out.basis = basis
        out.no_data_reason = "the targets file names no baseline_fy (or plan first_fy)"
        return out
    daily = _paper_sums(job, basis)
    shown = _counter_basis(daily) if basis == COUNTERS else basis
    out.basis = shown
    by_fy: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in daily:
        by_fy[a["fy"]].append(a)
    base = by_fy.get(base_fy, [])
    for y in job.years(out, by_fy):
        fy = y.fy
        fa = by_fy[fy]
        if basis == COUNTERS:
            y.basis = _counter_basis(fa + base)
        unit = _unit(basis, y.basis)
        cond, what = _period(job, fy)
        num = _sum(fa, cond, "sheets")
        den, ref_n = _sum(base, cond, "sheets"), _sum(base, cond, "records")
        reason = f"{y.basis}: {label(fy)} vs {label(base_fy)}, {what}"
        if fy == base_fy:
            reason = f"baseline year (= 100 by definition); {reason}"
        value: float | None = None
        if what == "no complete month":
            reason = f"no complete month of {label(fy)} yet (paper_same_period = complete_months)"
        elif ref_n == 0 or den == 0:
            reason = (
                f"no {label(base_fy)} ({base_fy}) {unit} on basis {y.basis} in the"
                " compared period: cannot compare"
            )
        else:
            value = pct(num, den)
        y.year(
            value,
            numerator=float(num),
            denominator=float(den) if value is not None else None,
            projected=value,
            reason=reason,
        )
        for m in fy_months_through(fy, job.as_of):
            i, whole = month_idx(m), month_complete(m, job.as_of)

            def mcond(a: dict[str, Any], i: int = i, whole: bool = whole) -> str | None:
                return None if a["midx"] != i else ("" if whole else "_td")

            mn, md = float(_sum(fa, mcond, "sheets")), float(_sum(base, mcond, "sheets"))
            mv = pct(mn, md)
            y.month(
                m,
                mv,
                numerator=mn,
                denominator=md if md else None,
                projected=mv,
                reason=None if md else f"no {label(base_fy)} {unit} in the same month",
            )
        if value is None and what == "no complete month":
            continue
        cur, ref = _by_dept(fa, cond), _by_dept(base, cond)
        for d in sorted(set(cur) | set(ref)):
            n_, b = float(cur.get(d, 0)), float(ref.get(d, 0))
            dv = pct(n_, b)
            y.department(
                d,
                dv,
                numerator=n_,
                denominator=b or None,
                projected=dv,
                reason=None if b else f"no {label(base_fy)} {unit} for this department",
            )
    return out


def _paper_sums(job: Job, basis: str) -> list[dict[str, Any]]:
    """The basis reduced on the cluster to (fy, month of FY, department) sums."""
    zero = F.lit(0)
    if basis == "print_jobs":
        df = job.scan("print_jobs").filter(F.col("printed_at") < job.as_of_end)
        df = job.attach(df, "person", F.to_date("printed_at"), "department")
        cols = {
            "sheets": F.col("sheets"),
            "upper": F.coalesce(F.col("sheets_upper_bound"), F.lit(False)).cast(INT),
        }
    elif basis == "paper_purchases":
        df = job.scan("paper_purchases").filter(F.col("purchased_on") <= F.lit(job.as_of))
        df = job.attach(df, None, F.col("purchased_on"), "department")
        cols = {"sheets": F.col("sheets")}
    else:
        # A delta belongs to the local day (and so the FY) in which its interval ends.
        df = job.scan("printer_counter_deltas").filter(F.col("interval_end") < job.as_of_end)
        df = job.attach(df, None, F.to_date("interval_end"), None)
        is_sheets, is_impr = F.col("unit") == SHEETS, F.col("unit") == IMPRESSIONS
        paper = F.coalesce(is_sheets | is_impr, F.lit(False))
        cols = {
            "sheets": F.when(paper, F.col("pages")).otherwise(0),
            "impressions": F.when(is_impr, F.col("pages")),
            "n_impressions": F.coalesce(is_impr, F.lit(False)).cast(INT),
            "n_sheets": F.coalesce(is_sheets, F.lit(False)).cast(INT),
            # A reset's delta counts only the pages since the reset: a lower bound.
            "lower": (paper & (F.col("kind") == "reset")).cast(INT),
        }
    cols["records"] = F.lit(1)
    d = F.col("__day")
    df = df.select(
        fy_col(d).alias("fy"),
        ((F.month(d) - 4 + 12) % 12).alias("midx"),
        (F.dayofmonth(d) <= job.as_of.day).alias("td"),
        "dept",
        *[cols.get(c, zero).alias(c) for c in PAPER_SUMS],
    )
    aggs = [total(c).alias(c) for c in PAPER_SUMS]
    aggs += [total(F.when(F.col("td"), F.col(c))).alias(f"{c}_td") for c in PAPER_SUMS]
    return rows(df.groupBy("fy", "midx", "dept").agg(*aggs))


def _period(job: Job, fy: int) -> tuple[Any, str]:
    """Which part of any FY is compared: per sums row, '' (whole), '_td' or None (not)."""
    if fy_complete(fy, job.as_of):
        return (lambda a: ""), "whole FY"
    if job.rules.paper_same_period == "days":
        o = month_idx(month_of(job.as_of))

        def through(a: dict[str, Any]) -> str | None:
            return "" if a["midx"] < o else "_td" if a["midx"] == o else None

        return through, f"through {job.as_of:%m-%d}"
    k = sum(month_complete(m, job.as_of) for m in fy_months(fy))
    names = [m[5:] for m in fy_months(fy)[:k]]
    return (lambda a: "" if a["midx"] < k else None), (
        ("complete months " + ",".join(names)) if k else "no complete month"
    )


def _sum(sums: list[dict[str, Any]], cond: Any, col: str) -> int:
    return sum(a[col + s] for a in sums if (s := cond(a)) is not None)


def _by_dept(sums: list[dict[str, Any]], cond: Any) -> dict[str, int]:
    """Sheets per department over the department's rows in the compared period."""
    out: dict[str, int] = {}
    for a in sums:
        s = cond(a)
        if s is not None and a["records" + s]:
            out[a["dept"]] = out.get(a["dept"], 0) + a["sheets" + s]
    return out


def _counter_basis(sums: list[dict[str, Any]]) -> str:
    impressions = any(a["n_impressions"] for a in sums)
    sheets = any(a["n_sheets"] for a in sums)
    if impressions and sheets:
        return f"{COUNTERS} (impressions and sheets)"
    return f"{COUNTERS} (impressions)" if impressions else COUNTERS


def _unit(basis: str, shown: str | None) -> str:
    if basis == "print_jobs":
        return "sheets"
    if basis == "paper_purchases":
        return "sheets purchased"
    if shown == COUNTERS:
        return "sheets"
    return "impressions" if shown == f"{COUNTERS} (impressions)" else "pages"


def vc_capable_terminals(job: Job) -> Output:
    """Share of terminals in the FY's latest inventory snapshot that can join a video call."""
    df = job.scan("terminals").filter(F.col("snapshot_date") <= F.lit(job.as_of))
    df = job.attach(df, None, F.col("snapshot_date"), "department")
    snaps = rows(
        df.groupBy("source", "snapshot_date", "dept").agg(
            F.count(F.lit(1)).alias("n"), total(F.col("vc_capable").cast(INT)).alias("vc")
        )
    )
    for s in snaps:
        s["fy"], s["month"] = fiscal_year_of(s["snapshot_date"]), month_of(s["snapshot_date"])
    out = Output("vc_capable_terminals", "no terminal inventory snapshot")
    org: dict[dt.date, list[int]] = {}
    for s in snaps:
        o = org.setdefault(s["snapshot_date"], [0, 0])
        o[0] += s["vc"]
        o[1] += s["n"]
    for y in job.years(out, (s["fy"] for s in snaps)):
        fa = [s for s in snaps if s["fy"] == y.fy]
        cur = _latest(fa)
        vc, k = _share(cur)
        value = pct(vc, k)
        projected = value
        last_day = max(s["snapshot_date"] for s in cur)
        if value is not None and not y.complete:
            prev = [d for d in sorted(org) if d < last_day][-1:]
            if prev and org[prev[0]][1]:
                pvc, pn = org[prev[0]]
                pv = 100.0 * pvc / pn
                span = (last_day - prev[0]).days
                ahead = (fy_end(y.fy) - dt.timedelta(days=1) - last_day).days
                projected = max(0.0, min(100.0, value + (value - pv) * ahead / span))
        snap_list = ", ".join(str(d) for d in sorted({s["snapshot_date"] for s in cur}))
        y.year(
            value, numerator=vc, denominator=k, projected=projected, reason=f"snapshot {snap_list}"
        )
        for m in sorted({s["month"] for s in fa}):
            mvc, mn = _share(_latest([s for s in fa if s["month"] == m]))
            mv = pct(mvc, mn)
            y.month(m, mv, numerator=mvc, denominator=mn, projected=mv)
        bd: dict[str, list[int]] = {}
        for s in cur:
            b = bd.setdefault(s["dept"], [0, 0])
            b[0] += s["vc"]
            b[1] += s["n"]
        for d in sorted(bd):
            dvc, dn = bd[d]
            dv = pct(dvc, dn)
            y.department(d, dv, numerator=float(dvc), denominator=float(dn), projected=dv)
    return out


def _latest(snaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each source's latest snapshot among ``snaps``."""
    last: dict[str, dt.date] = {}
    for s in snaps:
        last[s["source"]] = max(last.get(s["source"], s["snapshot_date"]), s["snapshot_date"])
    return [s for s in snaps if s["snapshot_date"] == last[s["source"]]]


def _share(snaps: list[dict[str, Any]]) -> tuple[float, float]:
    return float(sum(s["vc"] for s in snaps)), float(sum(s["n"] for s in snaps))


JOBS = {
    "web_meetings_per_month": web_meetings_per_month,
    "paperless_meetings": paperless_meetings,
    "mobile_work_users": mobile_work_users,
    "telework_ratio": telework_ratio,
    "paper_vs_r3": paper_vs_r3,
    "vc_capable_terminals": vc_capable_terminals,
}


# -- targets, statuses, the KPI table (aggregates/engine.py) -------------------------------
def compute(job: Job, computed_at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every KPI's rows with target and status, sorted as the collector sorts them."""
    outputs = [JOBS[k](job) for k in KPI_IDS]
    years = {r.fiscal_year for o in outputs for r in o.rows} | job.plan.fiscal_years()
    years = {fy for fy in years if job.wanted(fy)}
    computed_at = computed_at or dt.datetime.now(dt.UTC)
    result = []
    for out in outputs:
        have = {r.fiscal_year for r in out.rows if r.month is None and r.department is None}
        for fy in sorted(years - have):
            FyRows(out, fy, job.as_of).year(None, reason=f"{out.no_data_reason} for {label(fy)}")
        result += [_finish(r, job, computed_at) for r in out.rows]
    order = {k: i for i, k in enumerate(KPI_IDS)}
    result.sort(
        key=lambda r: (order[r["kpi"]], r["fiscal_year"], r["month"] or "", r["department"] or "")
    )
    return result


def _finish(r: Row, job: Job, computed_at: dt.datetime) -> dict[str, Any]:
    entry = job.plan.get(r.kpi)
    fy_target = entry.targets.get(r.fiscal_year)
    target = None if fy_target is None or r.target_factor is None else fy_target * r.target_factor
    reason = r.reason
    if r.value is None:
        status = "no_data"
    elif target is None:
        status = "no_data"
        why = (
            "the plan's target is for the whole organisation"
            if r.target_factor is None
            else f"no target for {label(r.fiscal_year)} in the plan"
        )
        reason = f"{reason}; {why}" if reason else why
    else:
        status = _status(r, target, entry.direction)
    return {
        "kpi": r.kpi,
        "fiscal_year": r.fiscal_year,
        "label": label(r.fiscal_year),
        "month": r.month,
        "department": r.department,
        "value": r.value,
        "target": target,
        "unit": entry.unit,
        "status": status,
        "basis": r.basis,
        "complete": r.complete,
        "numerator": r.numerator,
        "denominator": r.denominator,
        "reason": reason,
        "as_of": job.as_of,
        "computed_at": computed_at,
        "projected": r.projected,
        "direction": entry.direction,
        "name_ja": entry.name_ja,
        "name_en": entry.name_en,
        "organisation": job.organisation,
    }


def _status(r: Row, target: float, direction: str) -> str:
    def meets(v: float) -> bool:
        return v >= target - 1e-9 if direction == "higher" else v <= target + 1e-9

    if r.judge == FINAL:
        return "achieved" if meets(r.value) else "behind"
    if r.cumulative and meets(r.value):
        return "achieved"
    projected = r.projected if r.projected is not None else r.value
    return "on_track" if meets(projected) else "behind"


#: The KPI table's columns (schemas/kpi.py); Spark writes every Parquet column nullable.
KPI_SCHEMA = T.StructType(
    [
        T.StructField("kpi", STRING, False),
        T.StructField("fiscal_year", SHORT, False),
        T.StructField("label", STRING, False),
        T.StructField("month", STRING),
        T.StructField("department", STRING),
        T.StructField("value", DOUBLE),
        T.StructField("target", DOUBLE),
        T.StructField("unit", STRING, False),
        T.StructField("status", STRING, False),
        T.StructField("basis", STRING),
        T.StructField("complete", BOOL, False),
        T.StructField("numerator", DOUBLE),
        T.StructField("denominator", DOUBLE),
        T.StructField("reason", STRING),
        T.StructField("as_of", DATE, False),
        T.StructField("computed_at", TS, False),
        T.StructField("projected", DOUBLE),
        T.StructField("direction", STRING),
        T.StructField("name_ja", STRING),
        T.StructField("name_en", STRING),
        T.StructField("organisation", STRING),
    ]
)


def split(result: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """yearly (whole organisation), monthly, by_department, as the collector splits them."""
    return {
        "yearly": [r for r in result if r["month"] is None and r["department"] is None],
        "monthly": [r for r in result if r["month"] is not None],
        "by_department": [r for r in result if r["department"] is not None],
    }


def _floats(r: dict[str, Any]) -> tuple[Any, ...]:
    out = []
    for f in KPI_SCHEMA.fields:
        v = r[f.name]
        out.append(float(v) if isinstance(f.dataType, T.DoubleType) and v is not None else v)
    return tuple(out)


def write(spark: SparkSession, result: list[dict[str, Any]], out_dir: str) -> dict[str, str]:
    """Write ``<out>/{yearly,monthly,by_department}.parquet`` (a Spark folder each)."""
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    paths = {}
    for name, part in split(result).items():
        path = f"{out_dir.rstrip('/')}/{name}.parquet"
        frame = spark.createDataFrame([_floats(r) for r in part], KPI_SCHEMA)
        # Spark replaces the folder as a whole job commit: readers never see half a table.
        frame.coalesce(1).write.mode("overwrite").parquet(path)
        paths[name] = path
    return paths


# -- command line --------------------------------------------------------------------------
def job_from_args(spark: SparkSession, argv: list[str] | None = None) -> tuple[Job, str]:
    """Parse the arguments (and the collector config they name) into a Job and output dir."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", help="The collector's data_dir (any Spark/Hadoop path).")
    ap.add_argument("--config", help="collector.toml: [collector] timezone, [kpi], [targets].")
    ap.add_argument("--targets", help="The plan's targets TOML (default: the config's).")
    ap.add_argument("--as-of", help="Count through this local day (default: today).")
    ap.add_argument("--timezone", help="Calendar zone (default: the config's, or Asia/Tokyo).")
    ap.add_argument("--basis", choices=CHOICES["paper_basis"], help="paper_vs_r3 basis.")
    ap.add_argument(
        "--pseudonym-key",
        help="env:VAR or file:PATH: the [privacy] key, to pseudonymise excluded account names.",
    )
    ap.add_argument(
        "--organisation",
        default=ALL_ORGANISATIONS,
        help="One organisation's code (its organisation=<code> partitions), or all (default).",
    )
    ap.add_argument("--out", help="Output folder (default: <data_dir>/kpi-spark).")
    args = ap.parse_args(argv)
    cfg: dict[str, Any] = {}
    base = Path.cwd()
    if args.config:
        try:
            with open(args.config, "rb") as fh:
                cfg = tomllib.load(fh)
        except FileNotFoundError:
            raise UsageError(f"{args.config}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{args.config}: not valid TOML: {exc}") from None
        base = Path(args.config).resolve().parent
    where = args.config or "(no --config)"
    rules = rules_from(cfg.get("kpi") or {}, where)
    targets = args.targets or (cfg.get("targets") or {}).get("file")
    if not targets:
        raise UsageError(f"{where}: no [targets] file; pass --targets PATH to the plan's TOML")
    plan = load_plan(str(base / targets) if not args.targets else args.targets)
    tz = args.timezone or (cfg.get("collector") or {}).get("timezone") or "Asia/Tokyo"
    try:
        ZoneInfo(tz)
    except (KeyError, ValueError):
        raise UsageError(f"{where}: timezone {tz!r} is not an IANA zone name") from None
    as_of = (
        dt.date.fromisoformat(args.as_of) if args.as_of else dt.datetime.now(ZoneInfo(tz)).date()
    )
    key = args.pseudonym_key or (cfg.get("privacy") or {}).get("key")
    excluded = excluded_pseudonyms(rules.excluded_accounts, key)
    organisation = None if args.organisation == ALL_ORGANISATIONS else args.organisation
    if organisation is not None and not re.fullmatch(r"\d{6}", organisation):
        raise UsageError(
            f"--organisation {organisation!r}: expected a 6-digit 地方公共団体コード or 'all'"
        )
    job = Job(
        spark, args.data_dir.rstrip("/"), rules, plan, as_of, tz, args.basis, excluded, organisation
    )
    return job, args.out or f"{job.root}/kpi-spark"


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: compute and write the KPI tables; 2 on a usage error."""
    spark = SparkSession.builder.appName("workstyle-kpis").getOrCreate()
    try:
        job, out = job_from_args(spark, argv)
        paths = write(spark, compute(job), out)
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    for name, path in paths.items():
        sys.stdout.write(f"{name}: {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
