"""The backtest's HTML page: each policy's accuracy per hourly window over one shared time axis, with
its retrains marked (filled: promoted; hollow: refused by the gates), in the loop report's look
(`ml.report.charts`, `ml.report.loop.CSS`), then the per-policy table. Self-contained: no script, no
network."""

from __future__ import annotations

from datetime import datetime
from html import escape

from ml.report.charts import Chart, TimeAxis
from ml.report.figures import VERSION_COLORS
from ml.report.loop import CSS

COLUMNS = (("retrains", "retrains"), ("false_alarms", "false alarms"), ("promotions", "promotions"),
           ("mean_accuracy", "mean acc"), ("worst_accuracy", "worst acc"), ("mean_roc_auc", "mean AUC"),
           ("worst_roc_auc", "worst AUC"), ("accuracy_after_change", "acc after change"),
           ("hours_to_better_champion", "h to better"), ("mean_regret", "regret"))


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def render_page(summary: dict, title: str) -> str:
    """The page for a `summarize` result."""
    policies = summary["policies"]
    times = [_t(h["hour"]) for p in policies for h in p["hourly"]]
    axis = TimeAxis.covering(times) if times else None
    parts = [f"<h1>{escape(title)}</h1>",
             f'<p class="meta">accuracy of the served predictions per hourly window (eventual labels); '
             f'change marked at {escape(summary["change_at"] or "none")}</p>']
    if axis is None:
        parts.append('<p class="empty">No window held labelled predictions.</p>')
    else:
        values = [h["accuracy"] for p in policies for h in p["hourly"] if h["accuracy"] is not None]
        lo = max(0.0, int((min(values) - 0.03) * 20) / 20)
        chart = Chart(axis, 260, lo, 1.0, lambda v: f"{v:.2f}", label="accuracy per window, per policy")
        legend = []
        for i, p in enumerate(policies):
            color = VERSION_COLORS[i % len(VERSION_COLORS)]
            chart.line([(_t(h["hour"]), h["accuracy"]) for h in p["hourly"]], color, "accuracy")
            for r in p["retrain_log"]:
                if r["passed"] is None:
                    continue
                at = _t(r["trained_at"])
                tip = f"{p['policy']}: retrain ({r['trigger']}) " + (
                    f"promoted v{r['version']}" if r["passed"] else f"refused by {', '.join(r['failed_gates'])}")
                chart.dot(at, chart.y(lo + 0.01), color, "retrain", tip, hollow=not r["passed"], r=4)
            legend.append(f'<span><i style="background:{color}"></i>{escape(p["policy"])}</span>')
        if summary["change_at"]:
            chart.vline(_t(summary["change_at"]), "#d62728", "change", "marked change")
        parts += ['<h2>Accuracy per window</h2>', chart.svg(),
                  f'<p class="legend">{"".join(legend)}<span>dots: retrains (hollow: refused by the gates)</span>'
                  '<span>red dashes: the marked change</span></p>']
    head = "".join(f"<th>{escape(label)}</th>" for _, label in COLUMNS)
    rows = "".join("<tr><td>" + escape(p["policy"]) + "</td>" + "".join(
        f"<td>{_cell(p[key])}</td>" for key, _ in COLUMNS) + "</tr>" for p in policies)
    parts.append(f"<h2>Policies</h2><table><tr><th>policy</th>{head}</tr>{rows}</table>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{CSS}</style>"
            f"</head><body>{''.join(parts)}</body></html>")


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else escape(str(value))
