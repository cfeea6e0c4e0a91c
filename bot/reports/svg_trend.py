"""The status page's trend: the gate metric over a model's newest versions, drawn by the bot as
an inline SVG (docs/security.md, "The status page").

No script and nothing fetched: the page's Content-Security-Policy allows neither, and a chart
library would be code from outside running next to the page's data. Pure: points in, markup
out; every number is formatted here and no text from outside enters the drawing (versions are
integers, the metric's name is escaped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 320, 120
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 10, 10, 22
LINE = "#1f6feb"
CHAMPION = "#1a7f37"


@dataclass(frozen=True)
class Point:
    version: int
    value: float
    champion: bool = False


def trend_svg(metric: str, points: Sequence[Point]) -> str:
    """An SVG of `points` (oldest version first), or "" when fewer than two are drawable."""
    drawn = sorted((p for p in points if math.isfinite(p.value)), key=lambda p: p.version)
    if len(drawn) < 2:
        return ""
    low = min(p.value for p in drawn)
    high = max(p.value for p in drawn)
    span = (high - low) or abs(high) or 1.0
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(index: int) -> float:
        return PAD_LEFT + inner_w * index / (len(drawn) - 1)

    def y(value: float) -> float:
        return PAD_TOP + inner_h * (1 - (value - low) / span)

    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(drawn)
    )
    dots = "".join(
        f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="{4 if p.champion else 2.5}" '
        f'fill="{CHAMPION if p.champion else LINE}"><title>v{p.version}: {p.value:.6g}'
        f"{' (champion)' if p.champion else ''}</title></circle>"
        for i, p in enumerate(drawn)
    )
    labels = "".join(
        f'<text x="{x(i):.1f}" y="{HEIGHT - 6}" text-anchor="middle">v{p.version}</text>'
        for i, p in enumerate(drawn)
        if i in (0, len(drawn) - 1) or p.champion
    )
    name = escape(metric, quote=True)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{name} by version" class="trend" font-size="10" '
        'font-family="sans-serif">'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 4}" text-anchor="end">{high:.4g}</text>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + inner_h}" text-anchor="end">{low:.4g}</text>'
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + inner_h}" x2="{WIDTH - PAD_RIGHT}" '
        f'y2="{PAD_TOP + inner_h}" stroke="#999" stroke-width="0.5"/>'
        f'<path d="{path}" fill="none" stroke="{LINE}" stroke-width="1.5"/>'
        f"{dots}{labels}</svg>"
    )
