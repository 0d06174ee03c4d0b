"""Server-side SVG charts: the geometry here, the markup in a template (no JavaScript, no
CDN). Series differ by colour *and* by dash pattern and marker, so colour is never the
only cue; every chart comes with a table of the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# Each at least 3:1 against white (WCAG 1.4.11), and distinguishable without colour.
STYLES = [
    ("#1748b5", "", "circle"),
    ("#a61b1b", "8 4", "square"),
    ("#17633a", "2 4", "diamond"),
    ("#7a4a00", "10 3 2 3", "circle"),
    ("#6b21a8", "4 2", "square"),
]


@dataclass
class Series:
    label: str
    colour: str
    dash: str
    marker: str
    segments: list[str] = field(default_factory=list)  # "x,y x,y ..." for each unbroken run
    points: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass
class LineChart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    series: list[Series]


def line_chart(
    months: list[date],
    series: list[tuple[str, list[float | None]]],
    *,
    y_max: float = 100,
    y_suffix: str = "%",
    width: int = 720,
    height: int = 280,
) -> LineChart:
    left, right, top, bottom = 48, 16, 16, 40
    pw, ph = width - left - right, height - top - bottom
    step = pw / max(len(months) - 1, 1)

    def x(i: int) -> float:
        return round(left + i * step, 1)

    def y(v: float) -> float:
        return round(top + ph - (v / y_max) * ph, 1)

    y_ticks = [
        (y(v), f"{round(v)}{y_suffix}") for v in (0, y_max / 4, y_max / 2, 3 * y_max / 4, y_max)
    ]
    x_labels = [
        (x(i), f"{m:%b}" if m.month != 1 and i else f"{m:%b %y}") for i, m in enumerate(months)
    ]
    out = []
    for n, (label, values) in enumerate(series):
        colour, dash, marker = STYLES[n % len(STYLES)]
        s = Series(label=label, colour=colour, dash=dash, marker=marker)
        run: list[str] = []
        for i, v in enumerate(values):
            if v is None:
                if run:
                    s.segments.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(i)},{y(v)}")
            s.points.append((x(i), y(v), f"{label}, {months[i]:%B %Y}: {round(v)}{y_suffix}"))
        if run:
            s.segments.append(" ".join(run))
        out.append(s)
    return LineChart(width, height, left, top, pw, ph, y_ticks, x_labels, out)
