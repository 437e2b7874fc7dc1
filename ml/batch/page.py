"""The daily summary as one small HTML page with nothing to fetch: a table of figures and an SVG histogram."""

from __future__ import annotations

from html import escape

STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222;max-width:52em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;"
         "text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#666}")


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td class=n>{escape(_fmt(v))}</td></tr>" for k, v in pairs)


def histogram_svg(edges: list[float], counts: list[int], threshold: float, width: int = 480, height: int = 140) -> str:
    """Bars of the score histogram over [0, 1] with the threshold as a red line."""
    top = max(counts, default=0) or 1
    bar = width / max(len(counts), 1)
    bars = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - c / top * height:.1f}" width="{bar - 1:.1f}" '
        f'height="{c / top * height:.1f}" fill="#4a7ab5"><title>{edges[i]:.2f}-{edges[i + 1]:.2f}: {c}</title></rect>'
        for i, c in enumerate(counts))
    x = threshold * width
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" role="img">{bars}'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#c33" stroke-width="2"/>'
            f'<text x="0" y="{height + 14}" font-size="11">0</text>'
            f'<text x="{width - 8}" y="{height + 14}" font-size="11">1</text></svg>')


def render(summary: dict) -> str:
    """The page for one summary (the dict `summarize` returns)."""
    model, score, labels = summary["model"], summary["score"], summary["labels"]
    title = f"{model['name']} v{model['version']} on {summary['day']}"
    volume = [("events", summary["events"]), ("alerts", summary["alerts"]), ("alert rate", summary["alert_rate"]),
              ("threshold", model["threshold"]), ("hours scored", summary["hours"]["scored"]),
              ("mean score", score["mean"]), *score["quantiles"].items()]
    metrics = labels["metrics"] or {}
    accuracy = [("labelled events", labels["labelled"]), ("label coverage", labels["coverage"]),
                ("failures", labels["positives"]),
                *((k.replace("_", " "), metrics[k]) for k in ("roc_auc", "pr_auc", "precision", "recall")
                  if k in metrics)]
    skipped = "".join(f"<li>{escape(s)}</li>" for s in summary["hours"]["skipped"])
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<h2>Volume and scores</h2><table>{_rows(volume)}</table>"
            f"<p>Score histogram (red: threshold {model['threshold']})</p>"
            f"{histogram_svg(score['histogram']['edges'], score['histogram']['counts'], model['threshold'])}"
            f"<h2>Against outcomes</h2><table>{_rows(accuracy)}</table>"
            f"<p class=note>{escape(labels['note'])}</p>"
            + (f"<h2>Hours skipped</h2><ul>{skipped}</ul>" if skipped else "")
            + f"<p class=note>Predictions: {escape(summary['predictions'])}</p></body></html>")
