"""The figures of the loop report, each drawn over the page's shared time axis from what the lake
holds, or, when there is nothing to draw yet, the note that says so."""

from __future__ import annotations

from html import escape

from ml.lake.layout import decision_key, raw_prefix
from ml.lake.window import HOUR
from ml.report.charts import Chart, TimeAxis
from ml.report.inputs import DecisionPoint, LoopInputs

KIND_COLORS = {"metric": "#d62728", "data": "#1f77b4", "schedule": "#9467bd", "none": "#9e9e9e"}
EVENT_COLORS = {"retrain": "#ff7f0e", "promotion": "#2ca02c", "rollback": "#8c564b"}
VERSION_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                  "#9c755f", "#bab0ac")
NO_DECISIONS = f"No decisions yet: monitor_model records one every run in {decision_key('<run>')}."


def _key(color: str, label: str, style: str = "") -> str:
    cls = f' class="{style}"' if style else ""
    prop = "border-color" if style else "background"
    return f'<span><i{cls} style="{prop}:{color}"></i>{escape(label)}</span>'


def version_colors(inputs: LoopInputs) -> dict[str, str]:
    """One color per model version, the same in every chart of the page."""
    seen = {v for counts in inputs.serving.values() for v in counts}
    seen |= {v for p in inputs.decisions for v in (*p.by_version, *p.realized)}
    return {v: VERSION_COLORS[i % len(VERSION_COLORS)] for i, v in enumerate(sorted(seen, key=_version_order))}


def _counted(p: DecisionPoint, version: str, figures: dict, at_run: bool) -> bool:
    """Whether a version's figures had the labels to judge on: the monitor's verdict for its champion,
    the policy's fewest mature labels for any other version and for the figures realized later."""
    if at_run and version == p.champion_version and p.judged is not None:
        return p.judged
    return p.min_labels is None or (figures.get("labels") or 0) >= p.min_labels


def _live_tip(p: DecisionPoint, version: str, figures: dict, at_run: bool) -> str:
    hours = p.live_hours or 1
    when = "at the monitor's run" if at_run else f"realized later on the events of the {hours} h to {p.at:%H:%M}"
    tip = f"{p.run_id}: v{version} live AUC {figures['roc_auc']:.4f} {when}"
    if figures.get("labels") is not None:
        tip += f", {figures['labels']:,.0f} labels"
        tip += f" of {figures['predictions']:,.0f} predictions" if figures.get("predictions") else ""
    tip += f", accuracy {figures['accuracy']:.4f}" if figures.get("accuracy") is not None else ""
    return tip + ("" if _counted(p, version, figures, at_run) else " (too few mature labels to judge)")


def _live_auc(axis: TimeAxis | None, inputs: LoopInputs) -> tuple[Chart, str] | str:
    """Live ROC AUC per serving version: as the monitor saw it (circles, solid), as realized once the
    window's labels arrived (squares, dashed), and the champion's estimated before them (dotted)."""
    sides = (("by_version", "live", True), ("realized", "realized", False))
    points = [(p, v, f, cls, at_run) for p in inputs.decisions for field, cls, at_run in sides
              for v, f in getattr(p, field).items() if f.get("roc_auc") is not None]
    if axis is None or not points:
        return NO_DECISIONS if not inputs.decisions else "No live AUC yet: no window had labels to judge it on."
    refs = [p for p in inputs.decisions if p.champion_auc is not None]
    floors = [p for p in inputs.decisions if p.auc_floor is not None]
    estimates = [(p, v, f) for p in inputs.decisions for v, f in p.estimated.items()]
    values = [f["roc_auc"] for _, _, f, _, _ in points] + [p.champion_auc for p in refs] + [p.auc_floor for p in floors]
    values += [f["roc_auc"] for _, _, f in estimates]
    lo = max(0.0, int((min(values) - 0.03) * 20) / 20)
    hi = min(1.0, max(lo + 0.1, (int((max(values) + 0.02) * 20) + 1) / 20))
    chart = Chart(axis, 220, lo, hi, lambda v: f"{v:.2f}", label="live ROC AUC over time, per serving version")
    chart.step([(p.at, p.auc_floor) for p in floors], "#d62728", "floor")
    chart.step([(p.at, p.champion_auc) for p in refs], "#2ca02c", "holdout", dash="8 3")
    colors = version_colors(inputs)
    drawn = sorted({v for _, v, _, _, _ in points}, key=_version_order)
    for v in drawn:
        for field, cls, _ in sides:
            chart.line([(p.at, getattr(p, field).get(v, {}).get("roc_auc")) for p in inputs.decisions], colors[v],
                       escape(f"{cls} v{v}"), dash=None if field == "by_version" else "4 3")
    for v in sorted({v for _, v, _ in estimates}, key=_version_order):
        chart.line([(p.at, p.estimated.get(v, {}).get("roc_auc")) for p in inputs.decisions], colors[v],
                   escape(f"estimated v{v}"), dash="1 3")
    for p, v, f in estimates:
        tip = (f"{p.run_id}: v{v} AUC estimated {f['roc_auc']:.4f} at the monitor's run, before the labels of the "
               f"{p.live_hours or 1} h to {p.at:%H:%M}" + (" (estimator unreliable: concept drift?)"
                                                           if f.get("unreliable") else ""))
        chart.dot(p.at, chart.y(f["roc_auc"]), colors[v], "estimated-point", tip, hollow=True, r=2)
    for p, v, f, cls, at_run in points:
        chart.dot(p.at, chart.y(f["roc_auc"]), colors[v], f"{cls}-point", _live_tip(p, v, f, at_run),
                  hollow=not _counted(p, v, f, at_run), r=3, square=not at_run)
    legend = "".join(_key(colors[v], f"v{v}") for v in drawn)
    legend += (_key("#555", "circle, solid: at the monitor's run", "hollow")
               + _key("#555", "square, dashed: realized later, once the window's labels arrived", "dash")
               + (_key("#555", "dotted: estimated at the monitor's run, before the labels", "dash") if estimates else "")
               + "<span>hollow: too few mature labels to judge</span>"
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
    colors = version_colors(inputs)
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
