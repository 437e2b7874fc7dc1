"""Small time charts as inline SVG: one shared time axis, lines, steps, markers, lanes and stacked bars.

Every chart of the loop report draws on the same `TimeAxis`, so a promotion, a decision and the hour a
version started serving line up vertically. The SVG needs no script, font or stylesheet from outside
the page; every piece of text is escaped, so a hostile reason or version cannot break out of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import escape

WIDTH, LEFT, RIGHT, TOP, BOTTOM = 960, 64, 16, 10, 26
STEP_HOURS = (1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 2160)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class TimeAxis:
    """The time span every chart of a page shares, mapped onto the plot's width."""

    start: datetime
    end: datetime

    @classmethod
    def covering(cls, times: list[datetime]) -> "TimeAxis":
        """The span of `times`, padded a little (half an hour each side for a single instant)."""
        lo, hi = min(times), max(times)
        pad = max((hi - lo) * 0.02, timedelta(minutes=30) if hi == lo else timedelta(0))
        return cls(lo - pad, hi + pad)

    def x(self, t: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        return LEFT + (WIDTH - LEFT - RIGHT) * (t - self.start).total_seconds() / span

    def ticks(self, most: int = 8) -> list[tuple[float, str]]:
        """Tick positions and labels on whole hours or days (UTC)."""
        hours = (self.end - self.start).total_seconds() / 3600
        step = next((s for s in STEP_HOURS if hours / s <= most), STEP_HOURS[-1])
        first = math.ceil((self.start - EPOCH).total_seconds() / 3600 / step) * step
        fmt = "%m-%d %H:%M" if step < 24 else "%Y-%m-%d"
        out, t = [], EPOCH + timedelta(hours=first)
        while t <= self.end:
            out.append((self.x(t), t.strftime(fmt)))
            t += timedelta(hours=step)
        return out


def nice_ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Round values from lo to hi for a value axis."""
    span = (hi - lo) or 1.0
    raw = span / most
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _title(text: str | None) -> str:
    return f"<title>{escape(text)}</title>" if text else ""


class Chart:
    """One chart: a value axis (or named lanes) over the shared time axis; add marks, then `svg()`."""

    def __init__(self, axis: TimeAxis, height: int, lo: float = 0.0, hi: float = 1.0,
                 fmt=lambda v: f"{v:g}", lanes: list[str] | None = None, label: str = ""):
        self.axis, self.height, self.lo, self.hi, self.fmt, self.label = axis, height, lo, hi, fmt, label
        self.lanes = lanes
        self.marks: list[str] = []
        self.under: list[str] = []  # drawn first, behind the marks

    def y(self, v: float) -> float:
        inner = self.height - TOP - BOTTOM
        return TOP + inner * (1 - (v - self.lo) / ((self.hi - self.lo) or 1.0))

    def lane_y(self, lane: str) -> float:
        inner = self.height - TOP - BOTTOM
        return TOP + inner * (self.lanes.index(lane) + 0.5) / len(self.lanes)

    def line(self, points: list[tuple[datetime, float | None]], color: str, cls: str, dash: str | None = None) -> None:
        """A line through the points in time order (dashed when `dash` is given); a None value leaves a gap."""
        runs, run = [], []
        for t, v in sorted(points, key=lambda p: p[0]):
            if v is None:
                runs, run = runs + [run], []
            else:
                run.append(f"{_f(self.axis.x(t))},{_f(self.y(v))}")
        for run in runs + [run]:
            if len(run) > 1:
                dashed = f' stroke-dasharray="{dash}"' if dash else ""
                self.marks.append(f'<polyline class="{cls}" points="{" ".join(run)}" fill="none" '
                                  f'stroke="{color}" stroke-width="1.5"{dashed}/>')

    def step(self, points: list[tuple[datetime, float]], color: str, cls: str, dash: str = "5 3") -> None:
        """A reference that holds its value until the next point and to the chart's right edge."""
        points = sorted(points, key=lambda p: p[0])
        if not points:
            return
        xy = []
        for i, (t, v) in enumerate(points):
            x_next = self.axis.x(points[i + 1][0]) if i + 1 < len(points) else WIDTH - RIGHT
            xy += [(self.axis.x(t), self.y(v)), (x_next, self.y(v))]
        pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in xy)
        self.marks.append(f'<polyline class="{cls}" points="{pts}" fill="none" stroke="{color}" '
                          f'stroke-width="1.2" stroke-dasharray="{dash}"/>')

    def dot(self, t: datetime, y: float, color: str, cls: str, title: str | None = None,
            hollow: bool = False, r: float = 3.5, square: bool = False) -> None:
        """A marker at a time and a pixel height (`self.y(v)` or `self.lane_y(lane)`)."""
        fill = "#fff" if hollow else color
        x = self.axis.x(t)
        if square:
            shape = f'<rect class="{cls}" x="{_f(x - r)}" y="{_f(y - r)}" width="{_f(2 * r)}" height="{_f(2 * r)}"'
        else:
            shape = f'<circle class="{cls}" cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}"'
        self.marks.append(f'{shape} fill="{fill}" stroke="{color}" stroke-width="1.5">{_title(title)}'
                          f'</{"rect" if square else "circle"}>')

    def text(self, t: datetime, y: float, text: str, color: str = "#333") -> None:
        """A short label beside a marker (on its left near the right edge)."""
        x = self.axis.x(t)
        at = f'x="{_f(x + 7)}"' if x < WIDTH - RIGHT - 60 else f'x="{_f(x - 7)}" text-anchor="end"'
        self.marks.append(f'<text {at} y="{_f(y + 4)}" font-size="11" fill="{color}">{escape(text)}</text>')

    def bar(self, t0: datetime, t1: datetime, v0: float, v1: float, color: str, cls: str, title: str) -> None:
        """A rectangle from t0 to t1 between values v0 and v1 (a slice of a stacked bar)."""
        x0, x1 = self.axis.x(t0), self.axis.x(t1)
        y0, y1 = self.y(v1), self.y(v0)
        self.marks.append(f'<rect class="{cls}" x="{_f(x0 + 0.5)}" y="{_f(y0)}" width="{_f(max(x1 - x0 - 1, 1))}" '
                          f'height="{_f(max(y1 - y0, 0.5))}" fill="{color}">{_title(title)}</rect>')

    def vline(self, t: datetime, color: str, cls: str, title: str | None = None) -> None:
        """A vertical guide across the plot (a promotion, a rollback)."""
        x = _f(self.axis.x(t))
        self.under.append(f'<line class="{cls}" x1="{x}" x2="{x}" y1="{TOP}" y2="{self.height - BOTTOM}" '
                          f'stroke="{color}" stroke-width="1" stroke-dasharray="2 2">{_title(title)}</line>')

    def svg(self) -> str:
        """The chart with its frame, grid, value (or lane) labels and time ticks."""
        bottom, parts = self.height - BOTTOM, []
        if self.lanes:
            for lane in self.lanes:
                y = _f(self.lane_y(lane))
                parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="#eee"/>'
                             f'<text x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end">{escape(lane)}</text>')
        else:
            for v in nice_ticks(self.lo, self.hi):
                y = _f(self.y(v))
                parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="#eee"/>'
                             f'<text x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end">{escape(self.fmt(v))}</text>')
        for x, label in self.axis.ticks():
            anchor = "end" if x > WIDTH - 40 else ("start" if x < LEFT + 20 else "middle")
            parts.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{bottom}" y2="{bottom + 4}" stroke="#999"/>'
                         f'<text x="{_f(x)}" y="{bottom + 16}" text-anchor="{anchor}">{escape(label)}</text>')
        frame = (f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{bottom - TOP}" '
                 f'fill="none" stroke="#ccc"/>')
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {self.height}" '
                f'width="100%" role="img" aria-label="{escape(self.label)}" font-size="11" '
                f'font-family="system-ui, sans-serif" fill="#555">{"".join(parts)}{frame}'
                f'<g>{"".join(self.under)}{"".join(self.marks)}</g></svg>')
