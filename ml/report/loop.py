"""The loop report: one self-contained HTML page in the lake that shows what the continuous-training
loop did over time, for a person who would rather look than read logs.

Over one shared time axis (window end, UTC): the live ROC AUC of every serving version, as the monitor
saw it and as realized once the window's labels arrived, against the champion's holdout AUC and the
policy floor, label coverage, drift share against its threshold, every decision by kind, the model
version that served each hour, and the retrains, promotions and rollbacks; below, the latest Evidently
drift report, the recent decisions and the registry audit trail. Charts are inline SVG: the page needs
no network, no script and no plotting library to open.
"""

from __future__ import annotations

import posixpath
from datetime import datetime, timezone
from html import escape
from urllib.parse import urlparse

from ml.contract import Contract
from ml.lake import Lake
from ml.lake.layout import audit_prefix, loop_report_key
from ml.lake.window import HOUR
from ml.report.charts import EPOCH, Chart, TimeAxis
from ml.report.figures import EVENT_COLORS, FIGURES, NO_DECISIONS
from ml.report.inputs import DecisionPoint, LoopInputs, read_loop

RECENT_DECISIONS = 50
CSS = """body{font:14px system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 4px}.meta{color:#666}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:16px 0}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px}
.card b{display:block;font-size:18px}.empty{color:#777;font-style:italic;border:1px dashed #ccc;padding:12px}
.legend span{margin-right:14px;white-space:nowrap}.legend i{display:inline-block;width:12px;height:12px;
margin-right:4px;vertical-align:-1px;border-radius:2px}.legend i.dash{height:0;border-top:2px dashed;border-radius:0}
.legend i.hollow{background:#fff!important;border:2px solid}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;border-bottom:1px solid #eee;
padding:4px 6px;vertical-align:top}th{background:#f6f6f6}.problems{color:#a33}"""


def build_loop_report(lake: Lake, model_name: str, links: dict | None = None, key: str | None = None,
                      since: datetime | None = None, contract: Contract | None = None) -> dict:
    """Read the loop's decisions, audit trail and predictions from the lake, write the page to `key`
    (the loop report's own key when not given) atomically, and return its key, its URL and the figures
    it plotted. With the event `contract`, the live AUC chart also shows every window's figures per
    version as realized once its labels arrived."""
    key = key or loop_report_key()
    inputs = read_loop(lake, model_name, since, contract)
    page, figures = render_loop(inputs, model_name, links or {}, key, lake.uri)
    lake.write_text(key, page)
    return {"key": key, "url": lake.url(key), "figures": figures, "decisions": len(inputs.decisions),
            "audit_records": len(inputs.audit), "prediction_hours": len(inputs.serving),
            "problems": len(inputs.problems)}


def render_loop(inputs: LoopInputs, model_name: str, links: dict, key: str, lake_url: str) -> tuple[str, list[str]]:
    """The page's HTML and the names of the figures drawn (a figure without data is a note instead)."""
    times = [p.at for p in inputs.decisions] + [t for t, _ in inputs.audit if t is not None]
    times += [h for h in inputs.serving] + [h + HOUR for h in inputs.serving]
    axis = TimeAxis.covering(times) if times else None
    guides = [(t, r) for t, r in inputs.audit if t is not None and r.get("type") in ("promotion", "rollback")]
    figures: list[str] = []
    sections = [_figure(name, title, draw(axis, inputs), guides, figures) for name, title, draw in FIGURES]
    span = (min(times), max(times)) if times else None
    body = [_header(inputs, model_name, links, lake_url, span), *sections, _drift_link(inputs, key),
            _decision_table(inputs, key), _audit_table(inputs), _problems(inputs)]
    title = f"Continuum loop report: {model_name}"
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
            f'<body>{"".join(body)}</body></html>\n')
    return page, figures


# --- header and tables ------------------------------------------------------------------------------
def _header(inputs: LoopInputs, model_name: str, links: dict, lake_url: str,
            span: tuple[datetime, datetime] | None) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    span = f" · {span[0]:%Y-%m-%d %H:%M} to {span[1]:%Y-%m-%d %H:%M} UTC" if span else ""
    nav = " · ".join(_link(links.get(name), label) for name, label in (("airflow", "Airflow"), ("mlflow", "MLflow"))
                     if links.get(name))
    decisions, audit = inputs.decisions, [r for _, r in inputs.audit]
    latest = decisions[-1] if decisions else None
    judged = [p for p in decisions if p.live_auc is not None and p.judged is not False]
    shares = [p for p in decisions if p.drift_share is not None]
    champion = next((str(r.get("to")) for r in reversed(audit) if r.get("to") is not None), None) or next(
        (p.champion_version for p in reversed(decisions) if p.champion_version), None)
    cards = [
        ("champion", f"v{champion}" if champion else "none yet"),
        ("latest decision", (latest.kind + (" (suppressed)" if latest.suppressed_by else "")) if latest else "none yet"),
        ("live AUC", f"{judged[-1].live_auc:.3f}" if judged else "not judged yet"),
        ("drift share", f"{shares[-1].drift_share:.2f}" if shares else "none yet"),
        ("decisions", f"{len(decisions)}"), ("retrains asked", f"{sum(p.retrain for p in decisions)}"),
        ("promotions", f"{sum(r.get('type') == 'promotion' for r in audit)}"),
        ("rollbacks", f"{sum(r.get('type') == 'rollback' for r in audit)}"),
        ("events scored", f"{sum(sum(v.values()) for v in inputs.serving.values()):,}"),
    ]
    card_html = "".join(f'<div class="card">{escape(name)}<b>{escape(value)}</b></div>' for name, value in cards)
    reason = f'<p>Latest decision ({escape(latest.run_id)}): {escape(latest.reason)}</p>' if latest else ""
    return (f"<h1>Continuum loop report: {escape(model_name)}</h1>"
            f'<p class="meta">generated {now}{escape(span)} · lake {escape(lake_url)}'
            f"{' · ' + nav if nav else ''}</p><div class=\"cards\">{card_html}</div>{reason}")


def _report_href(point: DecisionPoint | None, report_key: str, page_key: str) -> str:
    """A drift report's link: the decision's own http(s) link, else the lake key relative to the page
    (which opens in a local lake and on any static host of the bucket)."""
    link = point.report_link if point else None
    if _safe(link) and urlparse(link.strip()).scheme:
        return link.strip()
    return posixpath.relpath(report_key, posixpath.dirname(page_key) or ".")


def _drift_link(inputs: LoopInputs, page_key: str) -> str:
    if not inputs.drift_report:
        return "<h2>Latest drift report</h2>" + _empty("No drift report yet: monitor_model writes one every run.")
    point = next((p for p in reversed(inputs.decisions) if p.report_key == inputs.drift_report), None)
    href = _report_href(point, inputs.drift_report, page_key)
    where = f" (run {escape(point.run_id)}, window end {point.at:%Y-%m-%d %H:%M} UTC)" if point else ""
    return (f'<h2>Latest drift report</h2><p><a class="drift-report" href="{escape(href)}">'
            f"{escape(inputs.drift_report)}</a>{where}</p>")


def _decision_table(inputs: LoopInputs, page_key: str) -> str:
    head = "<h2>Recent decisions</h2>"
    if not inputs.decisions:
        return head + _empty(NO_DECISIONS)
    rows = []
    for p in reversed(inputs.decisions[-RECENT_DECISIONS:]):
        action = "retrain asked" if p.retrain else (f"suppressed: {p.suppressed_by}" if p.suppressed_by else "-")
        extra = [_link(_report_href(p, p.report_key, page_key), "drift report")] if p.report_key else []
        extra += [_link(p.mlflow_run, "MLflow run")] if _safe(p.mlflow_run) else []
        rows.append(f'<tr class="decision-row"><td>{p.at:%Y-%m-%d %H:%M}</td><td>{escape(p.kind)}</td>'
                    f"<td>{escape(action)}</td><td>{escape(p.reason)}</td><td>{' '.join(extra)}</td></tr>")
    shown = f"<p class=\"meta\">the latest {RECENT_DECISIONS} of {len(inputs.decisions)}</p>" \
        if len(inputs.decisions) > RECENT_DECISIONS else ""
    return (head + shown + "<table><tr><th>window end (UTC)</th><th>kind</th><th>action</th><th>reason</th>"
            "<th>links</th></tr>" + "".join(rows) + "</table>")


def _audit_table(inputs: LoopInputs) -> str:
    head = "<h2>Registry audit trail</h2>"
    if not inputs.audit:
        return head + _empty(f"No promotions or rollbacks yet: every champion move is recorded under {audit_prefix()}/.")
    newest_first = sorted(enumerate(inputs.audit), reverse=True,
                          key=lambda item: (item[1][0] is not None, item[1][0] or EPOCH, item[0]))
    rows = []
    for _, (at, r) in newest_first:
        cells = [f"{at:%Y-%m-%d %H:%M:%S}" if at else r.get("at")]
        cells += [r.get(f) for f in ("type", "from", "to", "actor", "reason")]
        rows.append('<tr class="audit">' + "".join(f"<td>{escape('-' if c is None else str(c))}</td>" for c in cells)
                    + "</tr>")
    return (head + "<table><tr><th>at (UTC)</th><th>type</th><th>from</th><th>to</th><th>actor</th>"
            "<th>reason</th></tr>" + "".join(rows) + "</table>")


def _problems(inputs: LoopInputs) -> str:
    if not inputs.problems:
        return ""
    items = "".join(f"<li>{escape(p)}</li>" for p in inputs.problems)
    return f'<h2>Records left out</h2><ul class="problems">{items}</ul>'


def _empty(note: str) -> str:
    return f'<p class="empty">{escape(note)}</p>'


def _safe(url: str | None) -> bool:
    """A link a page may carry: http(s), or a relative path; never javascript: or data:."""
    if not isinstance(url, str) or not url.strip():
        return False
    parsed = urlparse(url.strip())
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) or (not parsed.scheme and not parsed.netloc)


def _link(url: str | None, label: str) -> str:
    return f'<a href="{escape(url.strip())}">{escape(label)}</a>' if _safe(url) else escape(label)




def _figure(name: str, title: str, drawn: tuple[Chart, str] | str, guides: list, figures: list[str]) -> str:
    """A titled section: the chart (with a guide at every champion move) and its legend, or the note
    that says why there is none yet."""
    if isinstance(drawn, str):
        return f"<h2>{escape(title)}</h2>" + _empty(drawn)
    figures.append(name)
    chart, legend = drawn
    for t, r in guides:
        chart.vline(t, EVENT_COLORS[r["type"]], "guide", f"{r['type']} to v{r.get('to')} at {r.get('at')}")
    return (f'<h2>{escape(title)}</h2><figure id="{name}" style="margin:0">{chart.svg()}'
            f'<div class="legend">{legend}</div></figure>')
