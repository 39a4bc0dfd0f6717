"""The report's charts, drawn here as inline SVG (no script, no request elsewhere) and readable printed in black
and white: each series has its own line style and marker, bars are hatched, the heat map prints its numbers."""
from markupsafe import Markup, escape

WIDTH, HEIGHT = 680, 230
MARGIN = {"top": 14, "bottom": 34, "side": 46, "end": 14}  # side: where the value axis is

# One style per series, told apart by dash and marker as well as by grey.
STYLES = [
    {"dash": "", "marker": "circle", "stroke": "#000"},
    {"dash": "7 4", "marker": "square", "stroke": "#444"},
    {"dash": "2 3", "marker": "triangle", "stroke": "#000"},
    {"dash": "9 3 2 3", "marker": "diamond", "stroke": "#666"},
]
TARGET_STYLE = {"dash": "12 5", "stroke": "#000", "width": 1.6}


def _marker(kind: str, x: float, y: float, stroke: str) -> str:
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="#fff" stroke="{stroke}" stroke-width="1.5"/>'
    if kind == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{stroke}"/>'
    if kind == "triangle":
        return (f'<path d="M{x:.1f} {y - 4:.1f}L{x + 3.8:.1f} {y + 3:.1f}L{x - 3.8:.1f} {y + 3:.1f}Z" '
                f'fill="#fff" stroke="{stroke}" stroke-width="1.3"/>')
    return (f'<path d="M{x:.1f} {y - 4:.1f}L{x + 4:.1f} {y:.1f}L{x:.1f} {y + 4:.1f}L{x - 4:.1f} {y:.1f}Z" '
            f'fill="{stroke}"/>')


def legend_sample(index: int | None) -> Markup:
    """A small picture of a series' line style for the legend written in HTML (None: the target line)."""
    if index is None:
        line = (f'<line x1="2" y1="7" x2="34" y2="7" stroke="#000" stroke-width="{TARGET_STYLE["width"]}" '
                f'stroke-dasharray="{TARGET_STYLE["dash"]}"/>')
    else:
        style = STYLES[index % len(STYLES)]
        line = (f'<line x1="2" y1="7" x2="34" y2="7" stroke="{style["stroke"]}" stroke-width="2" '
                f'stroke-dasharray="{style["dash"]}"/>' + _marker(style["marker"], 18, 7, style["stroke"]))
    return Markup(f'<svg class="key" width="36" height="14" viewBox="0 0 36 14" aria-hidden="true">{line}</svg>')


def hatched_legend() -> Markup:
    return Markup('<svg class="key" width="18" height="14" viewBox="0 0 18 14" aria-hidden="true">'
                  + _hatch("legend-hatch") + '<rect x="1" y="1" width="16" height="12" fill="url(#legend-hatch)" '
                  'stroke="#000"/></svg>')


def _hatch(pattern_id: str) -> str:
    return (f'<defs><pattern id="{pattern_id}" patternUnits="userSpaceOnUse" width="6" height="6" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#000" stroke-width="2.2"/></pattern></defs>')


def _nice_top(value: float) -> float:
    """A round top for the value axis at or above `value`, in four round steps."""
    for step in (0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if step * 4 >= value:
            return step * 4
    return value


class _Frame:
    """The plot area's geometry: x runs right to left in Arabic (the first day at the right), like the pages."""

    def __init__(self, count: int, top: float, rtl: bool, ticks: int = 4):
        self.count, self.top, self.rtl, self.ticks = max(count, 1), top, rtl, ticks
        self.left = MARGIN["end"] if rtl else MARGIN["side"]
        self.right = WIDTH - (MARGIN["side"] if rtl else MARGIN["end"])
        self.y0, self.y1 = HEIGHT - MARGIN["bottom"], MARGIN["top"]

    def x(self, i: float) -> float:
        slot = (self.right - self.left) / self.count
        offset = slot * (i + 0.5)
        return self.right - offset if self.rtl else self.left + offset

    def y(self, value: float) -> float:
        return self.y0 - (self.y0 - self.y1) * (value / self.top if self.top else 0)

    def axes(self, labels: list[str], every: int, value_format) -> str:
        parts = [f'<line x1="{self.left}" y1="{self.y0}" x2="{self.right}" y2="{self.y0}" stroke="#000"/>']
        axis_x = self.right if self.rtl else self.left
        anchor = "start" if self.rtl else "end"
        for k in range(self.ticks + 1):
            value = self.top * k / self.ticks
            y = self.y(value)
            parts.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" stroke="#bbb" '
                         'stroke-width="0.6"/>')
            parts.append(f'<text x="{axis_x + (5 if self.rtl else -5)}" y="{y + 4:.1f}" text-anchor="{anchor}" '
                         f'class="tick">{escape(value_format(value))}</text>')
        for i, label in enumerate(labels):
            if i % every == 0 or i == len(labels) - 1:
                parts.append(f'<text x="{self.x(i):.1f}" y="{self.y0 + 16}" text-anchor="middle" class="tick">'
                             f'{escape(label)}</text>')
        return "".join(parts)


def _svg(body: str, title: str) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
                  f'role="img" aria-label="{escape(title)}">'
                  f'<title>{escape(title)}</title>{body}</svg>')


def _every(count: int) -> int:
    return 1 if count <= 12 else 2 if count <= 20 else 3


def columns(chart_id: str, labels: list[str], values: list, rtl: bool, title: str) -> Markup:
    """A hatched column per label (a day of the month); None draws no column (no data that day)."""
    top = _nice_top(max([v for v in values if v is not None] + [0]))
    frame = _Frame(len(labels), top, rtl)
    slot = (frame.right - frame.left) / frame.count
    parts = [_hatch(f"{chart_id}-hatch"), frame.axes(labels, _every(len(labels)), lambda v: f"{v:g}")]
    for i, value in enumerate(values):
        if value:
            y = frame.y(value)
            parts.append(f'<rect x="{frame.x(i) - slot * 0.35:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{frame.y0 - y:.1f}" fill="url(#{chart_id}-hatch)" stroke="#000" stroke-width="1"/>')
    return _svg("".join(parts), title)


def lines(labels: list[str], series: list[list], rtl: bool, title: str, target: float | None = None,
          top: float | None = None, value_format=lambda v: f"{v:g}", ticks: int = 4) -> Markup:
    """One line per series (style by position in STYLES), broken where a value is None, and a dashed target."""
    found = [v for values in series for v in values if v is not None] + ([target] if target is not None else [])
    frame = _Frame(len(labels), top or _nice_top(max(found + [0])), rtl, ticks)
    parts = [frame.axes(labels, _every(len(labels)), value_format)]
    if target is not None:
        y = frame.y(target)
        parts.append(f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.right}" y2="{y:.1f}" stroke="#000" '
                     f'stroke-width="{TARGET_STYLE["width"]}" stroke-dasharray="{TARGET_STYLE["dash"]}"/>')
    for index, values in enumerate(series):
        style = STYLES[index % len(STYLES)]
        runs, run = [], []
        for i, value in enumerate(values):
            if value is None:
                runs, run = runs + [run] if run else runs, []
            else:
                run.append((frame.x(i), frame.y(value)))
        runs += [run] if run else []
        for points in runs:
            if len(points) > 1:
                d = "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in points)
                parts.append(f'<path d="{d}" fill="none" stroke="{style["stroke"]}" stroke-width="2" '
                             f'stroke-dasharray="{style["dash"]}"/>')
            parts.extend(_marker(style["marker"], x, y, style["stroke"]) for x, y in points)
    return _svg("".join(parts), title)


def heat_map(grid: dict, weekdays: list[tuple[int, str]], hours: list[int], rtl: bool, title: str) -> Markup:
    """Weekday rows × hour columns; each cell greyer the longer the median wait, with the minutes written in it
    (white on the darkest cells) so the print needs no colour."""
    label_w, cell_w, cell_h, head = 150, 46, 30, 22
    width = label_w + cell_w * max(len(hours), 1) + 4
    height = head + cell_h * len(weekdays) + 4
    worst = max([cell["median"] for cell in grid.values()] + [1])
    parts = []
    for c, hour in enumerate(hours):
        x = (width - label_w - cell_w * (c + 1)) if rtl else (label_w + cell_w * c)
        parts.append(f'<text x="{x + cell_w / 2}" y="{head - 7}" text-anchor="middle" class="tick">{hour:02d}</text>')
    for r, (weekday, name) in enumerate(weekdays):
        y = head + r * cell_h
        parts.append(f'<text x="{width - 4 if rtl else 4}" y="{y + cell_h / 2 + 5}" '
                     f'text-anchor="start" class="day">{escape(name)}</text>')
        for c, hour in enumerate(hours):
            x = (width - label_w - cell_w * (c + 1)) if rtl else (label_w + cell_w * c)
            cell = grid.get((weekday, hour))
            if cell is None:
                parts.append(f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="#fff" stroke="#999" '
                             'stroke-width="0.6"/>')
                continue
            share = cell["median"] / worst
            grey = round(245 - 200 * share)
            ink = "#fff" if grey < 130 else "#000"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="rgb({grey},{grey},{grey})" '
                         'stroke="#999" stroke-width="0.6"/>')
            parts.append(f'<text x="{x + cell_w / 2}" y="{y + cell_h / 2 + 5}" text-anchor="middle" fill="{ink}" '
                         f'class="cell">{cell["median"]:.0f}</text>')
    return Markup(f'<svg class="chart heat" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'role="img" aria-label="{escape(title)}">'
                  f'<title>{escape(title)}</title>{"".join(parts)}</svg>')


def mark(met: bool) -> Markup:
    """A drawn tick or cross (no font needs to have the glyph), beside the word that says the same."""
    path = "M2 7.5L6 11.5L14 3" if met else "M3 3L13 13M13 3L3 13"
    return Markup(f'<svg class="mark" width="16" height="16" viewBox="0 0 16 16" aria-hidden="true">'
                  f'<path d="{path}" fill="none" stroke="#000" stroke-width="2.6" stroke-linecap="round"/></svg>')
