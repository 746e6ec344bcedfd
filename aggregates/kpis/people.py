"""People KPIs: mobile-work users and the telework ratio (distinct staff in the FY)."""

from __future__ import annotations

import polars as pl

from workstyle.aggregates.kpis.base import (
    ENGINE,
    Ctx,
    KpiOutput,
    duration_seconds,
    fy_expr,
    fy_projection,
    month_str,
    pct,
)
from workstyle.schemas.tables import REMOTE_SESSIONS, TELEWORK_APPLICANTS, TELEWORK_DAYS


def mobile_work_users(ctx: Ctx) -> KpiOutput:
    """Distinct staff with at least one qualifying mobile-work session in the FY."""
    r = ctx.rules
    lf = ctx.scan(REMOTE_SESSIONS).filter(pl.col("start_time") < ctx.as_of_end)
    dur = duration_seconds()
    lf = ctx.attach(lf, "person", ctx.local_date("start_time"), None)
    excluded = list(ctx.excluded)
    acct = pl.col("canon").is_in(excluded) | pl.col("person").is_in(excluded)
    short = ~acct & dur.is_not_null() & (dur < r.min_session_seconds)
    nodur = ~acct & dur.is_null() & pl.lit(not r.count_sessions_without_duration)
    lf = lf.with_columns(
        acct.alias("acct"),
        short.alias("short"),
        nodur.alias("nodur"),
        fy_expr(pl.col("__day")).alias("fy"),
    )
    ok = ~(pl.col("acct") | pl.col("short") | pl.col("nodur"))
    # One scan, two results: per-FY input counts and the qualifying person-months.
    both = lf.group_by("canon", "dept", pl.col("__day").dt.month_start().alias("m"), "fy").agg(
        pl.len().alias("considered"),
        pl.col("acct").sum(),
        pl.col("short").sum(),
        pl.col("nodur").sum(),
        ok.sum().alias("sessions"),
        pl.col("in_directory").any().alias("in_directory"),
    )
    agg = both.collect(engine=ENGINE)
    pm = agg.filter(pl.col("sessions") > 0).with_columns(month_str(pl.col("m")).alias("month"))
    out = KpiOutput(
        "mobile_work_users",
        [],
        r.show("min_session_seconds", "count_sessions_without_duration", "excluded_accounts"),
        ["remote_sessions", "staff_directory (alias -> person, department)"],
        "distinct staff with at least one qualifying mobile-work session that started in the FY",
        no_data_reason="no mobile-work session records",
    )
    for y in out.years(ctx, agg["fy"]):
        fa = agg.filter(pl.col("fy") == y.fy)
        fp = pm.filter(pl.col("fy") == y.fy)
        people = fp["canon"].n_unique()
        y.count_year(people)
        unresolved = fp.filter(~pl.col("in_directory"))["canon"].n_unique()
        out.counts[y.fy] = [
            ("sessions considered", int(fa["considered"].sum())),
            ("excluded: excluded accounts", int(fa["acct"].sum())),
            (f"excluded: shorter than {r.min_session_seconds} s", int(fa["short"].sum())),
            ("excluded: length unknown", int(fa["nodur"].sum())),
            ("qualifying sessions", int(fa["sessions"].sum())),
            ("distinct people", people),
            ("people not found in staff_directory", unresolved),
        ]
        firsts = fp.group_by("canon").agg(pl.col("month").min())
        new_by_month = firsts.group_by("month").len()
        new = dict(zip(new_by_month["month"], new_by_month["len"], strict=True))
        for m, cum, projected in y.to_date(new):
            y.month(
                m,
                float(cum),
                to_date=True,
                numerator=float(cum),
                projected=projected,
                cumulative=True,
            )
        bd = fp.group_by("dept").agg(pl.col("canon").n_unique()).sort("dept")
        y.count_departments(bd["dept"], bd["canon"])
    return out


def telework_ratio(ctx: Ctx) -> KpiOutput:
    """Share of the FY's telework applicants with at least one qualifying home-work day."""
    r = ctx.rules
    fy_col = pl.col("fiscal_year").cast(pl.Int32)
    apps = ctx.scan(TELEWORK_APPLICANTS).filter(
        (fy_col <= ctx.as_of_fy)
        & (pl.col("registered_on").is_null() | (pl.col("registered_on") <= ctx.as_of))
    )
    # Department: the one the applicant belonged to when the FY (or their
    # registration, if later) began; transfers happen on 1 April.
    day = pl.max_horizontal(pl.date(fy_col, 4, 1), pl.col("registered_on"))
    apps = ctx.attach(apps, "person", day, "department")
    fy_last = pl.date(fy_col + 1, 3, 31)
    left = pl.col("left_on").is_not_null() & (
        pl.col("left_on") <= pl.min_horizontal(pl.lit(ctx.as_of), fy_last)
    )
    never_present = left & (pl.col("left_on") < pl.date(fy_col, 4, 1))
    drop = {"keep": pl.lit(False), "present": never_present, "exclude": left}[r.leavers]
    apps_df = (
        apps.select(
            pl.col("canon"), fy_col.alias("fy"), "dept", left.alias("left"), drop.alias("drop")
        )
        .sort("canon", "fy", "dept")
        .unique(["canon", "fy"], keep="first")
        .collect(engine=ENGINE)
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
    days = ctx.scan(TELEWORK_DAYS).filter(pl.col("work_date") <= ctx.as_of)
    days = ctx.attach(days, "person", pl.col("work_date"), None)
    qualifies = pl.col("location").is_in(locations) & pl.col("portion").is_in(portions)
    day_agg = (
        days.with_columns(fy_expr(pl.col("work_date")).alias("fy"), qualifies.alias("q"))
        .group_by("canon", "fy", month_str(pl.col("work_date").dt.month_start()).alias("month"))
        .agg(
            pl.len().alias("records"),
            pl.col("q").sum().alias("qualifying"),
            (pl.col("location") == "home").sum().alias("home"),
        )
        .collect(engine=ENGINE)
    )
    out = KpiOutput(
        "telework_ratio",
        [],
        r.show(
            "count_half_days",
            "count_hour_portions",
            "count_satellite_days",
            "count_mobile_days",
            "leavers",
        ),
        [
            "telework_applicants",
            "telework_days",
            "staff_directory (alias -> person, applicant department)",
        ],
        "of the staff on the FY's applicant list, the share with at least one qualifying"
        f" day (locations: {', '.join(locations)}; portions: {', '.join(portions)}) in the"
        " FY; staff not on the list never count",
        no_data_reason="no telework applicant list",
    )
    firsts = (
        day_agg.filter(pl.col("qualifying") > 0)
        .group_by("canon", "fy")
        .agg(pl.col("month").min().alias("first"))
    )
    day_fys = set(day_agg["fy"])
    for y in out.years(ctx, apps_df["fy"]):
        fy = y.fy
        fa = apps_df.filter(pl.col("fy") == fy)
        denom_df = fa.filter(~pl.col("drop"))
        joined = denom_df.join(firsts.filter(pl.col("fy") == fy), on=["canon", "fy"], how="left")
        n_app = joined.height
        doers = int(joined["first"].is_not_null().sum())
        fd = day_agg.filter(pl.col("fy") == fy)
        non_app = (
            fd.filter(pl.col("qualifying") > 0)
            .join(fa, on=["canon", "fy"], how="anti")["canon"]
            .n_unique()
        )
        out.counts[fy] = [
            ("applicants on the list", fa.height),
            ("applicants who left in the FY", int(fa["left"].sum())),
            (f"applicants dropped by leavers rule ({r.leavers})", int(fa["drop"].sum())),
            ("applicants in the denominator", n_app),
            ("telework-day records considered", int(fd["records"].sum())),
            ("qualifying day records", int(fd["qualifying"].sum())),
            ("applicants with a qualifying day", doers),
            ("non-applicants with qualifying days (never counted)", non_app),
        ]
        if fy not in day_fys:
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
            projected=None if y.complete else _capped(fy_projection(doers, fy, ctx.as_of), n_app),
        )
        first_by_month = joined.drop_nulls("first").group_by("first").len()
        new = dict(zip(first_by_month["first"], first_by_month["len"], strict=True))
        for m, cum, projected in y.to_date(new):
            y.month(
                m,
                pct(cum, n_app),
                to_date=True,
                numerator=float(cum),
                denominator=float(n_app),
                projected=_capped(projected, n_app),
            )
        bd = (
            joined.group_by("dept")
            .agg(pl.len().alias("den"), pl.col("first").is_not_null().sum().alias("num"))
            .sort("dept")
        )
        for d, num, den in zip(bd["dept"], bd["num"], bd["den"], strict=True):
            y.department(
                d,
                pct(num, den),
                numerator=float(num),
                denominator=float(den),
                projected=None if y.complete else _capped(fy_projection(num, fy, ctx.as_of), den),
            )
    return out


def _capped(projected: float, den: int) -> float | None:
    """A projected share in %: nobody outside the denominator can join it."""
    return pct(min(projected, den), den)
