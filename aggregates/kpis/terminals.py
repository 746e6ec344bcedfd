"""The video-conference-capable terminals KPI: a share in the FY's latest snapshot."""

from __future__ import annotations

import datetime as dt

import polars as pl

from workstyle.aggregates.fiscal import fy_end
from workstyle.aggregates.kpis.base import ENGINE, Ctx, KpiOutput, fy_expr, month_str, pct
from workstyle.schemas.tables import TERMINALS


def vc_capable_terminals(ctx: Ctx) -> KpiOutput:
    """Share of terminals in the FY's latest inventory snapshot that can join a video call."""
    lf = ctx.store.scan(TERMINALS).filter(pl.col("snapshot_date") <= ctx.as_of)
    lf = ctx.attach(lf, None, pl.col("snapshot_date"), "department")
    snaps = (
        lf.group_by("source", "snapshot_date", "dept")
        .agg(pl.len().alias("n"), pl.col("vc_capable").sum().alias("vc"))
        .with_columns(
            fy_expr(pl.col("snapshot_date")).alias("fy"),
            month_str(pl.col("snapshot_date")).alias("month"),
        )
        .collect(engine=ENGINE)
    )
    out = KpiOutput(
        "vc_capable_terminals",
        [],
        ["(no counting switches: every terminal in the snapshot counts once)"],
        ["terminals"],
        "share of terminals in the FY's latest inventory snapshot (per source) that can"
        " join a video conference",
        no_data_reason="no terminal inventory snapshot",
    )
    org = snaps.group_by("snapshot_date").agg(pl.col("vc", "n").sum()).sort("snapshot_date")
    for y in out.years(ctx, snaps["fy"]):
        fa = snaps.filter(pl.col("fy") == y.fy)
        cur = _latest(fa)
        vc, n = _share(cur)
        value = pct(vc, n)
        projected = value
        last_day = cur["snapshot_date"].max()
        if value is not None and not y.complete:
            # Extend the change since the organisation's previous snapshot to the FY end.
            prev = org.filter(pl.col("snapshot_date") < last_day).tail(1)
            if prev.height and prev["n"].item():
                pv = 100.0 * prev["vc"].item() / prev["n"].item()
                span = (last_day - prev["snapshot_date"].item()).days
                ahead = (fy_end(y.fy) - dt.timedelta(days=1) - last_day).days
                projected = max(0.0, min(100.0, value + (value - pv) * ahead / span))
        snap_list = ", ".join(str(d) for d in sorted(set(cur["snapshot_date"])))
        out.counts[y.fy] = [
            ("snapshots in the FY", fa["snapshot_date"].n_unique()),
            ("latest snapshot(s) used", snap_list),
            ("terminals in it", int(n)),
            ("video-conference capable", int(vc)),
        ]
        y.year(
            value,
            numerator=vc,
            denominator=n,
            projected=projected,
            reason=f"snapshot {snap_list}",
        )
        for m in sorted(set(fa["month"])):
            mvc, mn = _share(_latest(fa.filter(pl.col("month") == m)))
            mv = pct(mvc, mn)
            y.month(m, mv, numerator=mvc, denominator=mn, projected=mv)
        bd = cur.group_by("dept").agg(pl.col("vc", "n").sum()).sort("dept")
        for d, dvc, dn in zip(bd["dept"], bd["vc"], bd["n"], strict=True):
            dv = pct(dvc, dn)
            y.department(d, dv, numerator=float(dvc), denominator=float(dn), projected=dv)
    return out


def _latest(frame: pl.DataFrame) -> pl.DataFrame:
    """Each source's latest snapshot in ``frame``."""
    last = frame.group_by("source").agg(pl.col("snapshot_date").max().alias("last"))
    return frame.join(last, on="source").filter(pl.col("snapshot_date") == pl.col("last"))


def _share(frame: pl.DataFrame) -> tuple[float, float]:
    """(capable, all) terminals in ``frame``."""
    return float(frame["vc"].sum()), float(frame["n"].sum())
