"""The figures of the loop report, each drawn over the page's shared time axis from what the lake
holds, or, when there is nothing to draw yet, the note that says so."""

from __future__ import annotations

from html import escape

from ml.lake.layout import decision_key, raw_prefix
from ml.lake.window import HOUR
from ml.report.charts import Chart, TimeAxis
from ml.report.inputs import LoopInputs

KIND_COLORS = {"metric": "#d62728", "data": "#1f77b4", "schedule": "#9467bd", "none": "#9e9e9e"}
EVENT_COLORS = {"retrain": "#ff7f0e", "promotion": "#2ca02c", "rollback": "#8c564b"}
VERSION_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                  "#9c755f", "#bab0ac")
NO_DECISIONS = f"No decisions yet: monitor_model records one every run in {decision_key('<run>')}."


def _key(color: str, label: str, style: str = "") -> str:
    cls = f' class="{style}"' if style else ""
    prop = "border-color" if style else "background"
    return f'<span><i{cls} style="{prop}:{color}"></i>{escape(label)}</span>'


def _live_auc(axis: TimeAxis | None, inputs: LoopInputs) -> tuple[Chart, str] | str:
    points = [p for p in inputs.decisions if p.live_auc is not None]
    if axis is None or not points:
        return NO_DECISIONS if not inputs.decisions else "No live AUC yet: no window had labels to judge it on."
    refs = [p for p in inputs.decisions if p.champion_auc is not None]
    floors = [p for p in inputs.decisions if p.auc_floor is not None]
    values = [p.live_auc for p in points] + [p.champion_auc for p in refs] + [p.auc_floor for p in floors]
    lo = max(0.0, int((min(values) - 0.03) * 20) / 20)
    hi = min(1.0, max(lo + 0.1, (int((max(values) + 0.02) * 20) + 1) / 20))
    chart = Chart(axis, 200, lo, hi, lambda v: f"{v:.2f}", label="live ROC AUC over time")
    chart.step([(p.at, p.auc_floor) for p in floors], "#d62728", "floor")
    chart.step([(p.at, p.champion_auc) for p in refs], "#2ca02c", "holdout", dash="8 3")
    chart.line([(p.at, p.live_auc) for p in inputs.decisions], "#1f77b4", "live")
    for p in points:
        tip = f"{p.run_id}: live AUC {p.live_auc:.4f}"
        tip += f" on {p.mature_labels} mature labels" if p.mature_labels is not None else ""
        tip += " (not judged)" if p.judged is False else ""
        chart.dot(p.at, chart.y(p.live_auc), "#1f77b4", "live-point", tip, hollow=p.judged is False, r=3)
    legend = (_key("#1f77b4", "live ROC AUC (hollow: too few mature labels to judge)")
              + _key("#2ca02c", "champion's holdout AUC", "dash") + _key("#d62728", "policy floor", "dash"))
    return chart, legend


def _coverage(axis: TimeAxis | None, inputs: LoopInputs) -> tuple[Chart, str] | str:
    points = [p for p in inputs.decisions if p.coverage is not None]
    if axis is None or not points:
        return NO_DECISIONS if not inputs.decisions else "No label coverage yet: no window had labelled predictions."
    hi = max(1.0, max(p.coverage for p in points))
    chart = Chart(axis, 140, 0.0, hi, lambda v: f"{v:.0%}", label="label coverage over time")
    chart.line([(p.at, p.coverage) for p in inputs.decisions], "#17becf", "coverage")
    for p in points:
        chart.dot(p.at, chart.y(p.coverage), "#17becf", "coverage-point", f"{p.run_id}: {p.coverage:.1%} labelled",
                  r=2.5)
    return chart, _key("#17becf", "labels joined / predictions in the window")


def _drift(axis: TimeAxis | None, inputs: LoopInputs) -> tuple[Chart, str] | str:
    points = [p for p in inputs.decisions if p.drift_share is not None]
    if axis is None or not points:
        return NO_DECISIONS if not inputs.decisions else "No drift share yet: no window was checked for drift."
    chart = Chart(axis, 160, 0.0, 1.0, lambda v: f"{v:.0%}", label="drift share over time")
    chart.step([(p.at, p.drift_threshold) for p in inputs.decisions if p.drift_threshold is not None],
               "#d62728", "threshold")
    chart.line([(p.at, p.drift_share) for p in inputs.decisions], "#ff7f0e", "drift")
    for p in points:
        over = p.drift_threshold is not None and p.drift_share >= p.drift_threshold
        tip = f"{p.run_id}: drift share {p.drift_share:.2f}"
        tip += f"; drifted: {', '.join(p.drifted)}" if p.drifted else ""
        chart.dot(p.at, chart.y(p.drift_share), "#d62728" if over else "#ff7f0e", "drift-point", tip, r=3)
    return chart, (_key("#ff7f0e", "share of drifted features (red: at or above the threshold)")
                   + _key("#d62728", "threshold", "dash"))


def _decisions(axis: TimeAxis | None, inputs: LoopInputs) -> tuple[Chart, str] | str:
    if axis is None or not inputs.decisions:
        return NO_DECISIONS
    lanes = list(KIND_COLORS) + sorted({p.kind for p in inputs.decisions} - set(KIND_COLORS))
    chart = Chart(axis, 40 + 26 * len(lanes), lanes=lanes, label="decisions over time")
    for p in inputs.decisions:
        color = KIND_COLORS.get(p.kind, "#8c564b")
        state = "retrain" if p.retrain else ("suppressed" if p.suppressed_by else "quiet")
        held = f" (suppressed: {p.suppressed_by})" if p.suppressed_by else ""
        tip = f"{p.at:%Y-%m-%d %H:%M} {p.kind}{held}: {p.reason}"
        chart.dot(p.at, chart.lane_y(p.kind), color, f"decision {state}", tip, hollow=state == "suppressed",
                  r=5 if state != "quiet" else 3, square=state == "suppressed")
    legend = "".join(_key(c, k) for k, c in KIND_COLORS.items())
    return chart, legend + _key("#555", "suppressed (pending retrain, cooldown or budget)", "hollow")


def _version_order(version: str) -> tuple:
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def _serving(axis: TimeAxis | None, inputs: LoopInputs) -> tuple[Chart, str] | str:
    if axis is None or not inputs.serving:
        return f"No predictions offloaded yet: lake_offload writes {raw_prefix('predictions')}/dt=/hour= every hour."
    versions = sorted({v for counts in inputs.serving.values() for v in counts}, key=_version_order)
    colors = {v: VERSION_COLORS[i % len(VERSION_COLORS)] for i, v in enumerate(versions)}
    top = max([sum(c.values()) for c in inputs.serving.values()] + [1]) * 1.05
    chart = Chart(axis, 180, 0.0, top, lambda v: f"{v:,.0f}", label="events per hour per model version")
    for hour, counts in inputs.serving.items():
        base, end = 0, hour + HOUR
        for v in sorted(counts, key=_version_order):
            chart.bar(hour, end, base, base + counts[v], colors[v], "serving",
                      f"v{v}: {counts[v]:,} events, {hour:%Y-%m-%d %H}:00 UTC")
            base += counts[v]
    totals = {v: sum(c.get(v, 0) for c in inputs.serving.values()) for v in versions}
    return chart, "".join(_key(colors[v], f"v{v} ({totals[v]:,} events)") for v in versions)


def _events(axis: TimeAxis | None, inputs: LoopInputs) -> tuple[Chart, str] | str:
    retrains = [p for p in inputs.decisions if p.retrain]
    moves = [(t, r) for t, r in inputs.audit if t is not None and r.get("type") in ("promotion", "rollback")]
    if axis is None or not (retrains or moves):
        return "No retrains, promotions or rollbacks yet."
    chart = Chart(axis, 40 + 26 * 3, lanes=["retrain", "promotion", "rollback"], label="loop events")
    for p in retrains:
        chart.dot(p.at, chart.lane_y("retrain"), EVENT_COLORS["retrain"], "event retrain",
                  f"{p.at:%Y-%m-%d %H:%M} retrain asked ({p.kind}): {p.reason}", r=5)
    for t, r in moves:
        kind = r["type"]
        tip = f"{r.get('at')} {kind} v{r.get('from')} to v{r.get('to')} by {r.get('actor')}: {r.get('reason')}"
        chart.dot(t, chart.lane_y(kind), EVENT_COLORS[kind], f"event {kind}", tip, r=5, square=True)
        chart.text(t, chart.lane_y(kind), f"v{r.get('to')}")
    return chart, (_key(EVENT_COLORS["retrain"], "retrain asked by a decision")
                   + _key(EVENT_COLORS["promotion"], "promotion (to the version shown)")
                   + _key(EVENT_COLORS["rollback"], "rollback (to the version shown)"))


FIGURES = (
    ("live_auc", "Live ROC AUC", _live_auc),
    ("label_coverage", "Label coverage", _coverage),
    ("drift_share", "Drift share", _drift),
    ("decisions", "Decisions", _decisions),
    ("serving", "Model version serving (events per hour)", _serving),
    ("events", "Retrains, promotions and rollbacks", _events),
)
