"""The request's trend chart: the gate metric over the model's newest versions, as a Mermaid
`xychart-beta` (docs/design.md, "The promotion request").

GitHub and current GitLab render Mermaid inside Markdown, so the chart is part of the body:
nothing is uploaded and no image host ever sees the numbers. A renderer without Mermaid shows the
block as text; the metric table stays the reference. Reading the registry (`load_trend`: one
search for the newest versions, one for their runs) is kept apart from writing the chart
(`mermaid_chart`, pure), so the body can be rendered from fixed values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.registry.versions import RunInfo, VersionInfo

if TYPE_CHECKING:
    from bot.registry.client import Registry

CHART_VERSIONS = 10  # the newest real versions charted (besides the candidate and the champion)
# Every pipeline may also register a toy version (ci-smoke): look further back for real ones.
_SEARCHED = 3 * CHART_VERSIONS
LINE_COLOUR = "#1f6feb"  # Mermaid's default theme draws xychart lines in a near-white lavender
# Mermaid's xychart strings have no escapes: a quote or a backtick would end the chart or the
# Markdown fence, so names keep only characters that are plain text everywhere.
_UNSAFE = re.compile(r"[^\w .:/()+\-=,]")


@dataclass(frozen=True)
class TrendPoint:
    version: int
    value: float
    role: str = ""  # "candidate", "champion" or ""


@dataclass(frozen=True)
class Trend:
    metric: str
    greater_is_better: bool
    points: tuple[TrendPoint, ...]  # oldest version first


def load_trend(
    registry: Registry,
    model: str,
    metric: str,
    greater_is_better: bool,
    named: Mapping[int, tuple[str, RunInfo]],
    limit: int = CHART_VERSIONS,
) -> Trend:
    """The metric of the newest `limit` real versions, plus the versions in `named`.

    `named` maps a version number to its role ("candidate", "champion") and the run already read
    for the metric table, so those runs are not read twice. The other runs come from one search
    in the experiments of the named runs: a version trained in another experiment, a deleted
    run, a toy or failed registration, a missing or non-finite value is left out of the chart.
    """
    newest = [v for v in registry.newest_versions(model, _SEARCHED) if _charted(v)][:limit]
    others = [v for v in newest if v.version not in named]
    experiments = sorted({run.experiment_id for _, run in named.values() if run.experiment_id})
    found = registry.runs_in(experiments, [v.run_id for v in others]) if others else []
    runs = {run.run_id: run for run in found}
    points = [
        TrendPoint(v.version, value)
        for v in others
        if (value := _value(runs.get(v.run_id), metric)) is not None
    ]
    points += [
        TrendPoint(number, value, role)
        for number, (role, run) in named.items()
        if (value := _value(run, metric)) is not None
    ]
    return Trend(metric, greater_is_better, tuple(sorted(points, key=lambda p: p.version)))


def _charted(version: VersionInfo) -> bool:
    return not version.is_toy and version.status != "FAILED_REGISTRATION"


def _value(run: RunInfo | None, metric: str) -> float | None:
    value = run.metrics.get(metric) if run is not None else None
    return value if value is not None and math.isfinite(value) else None


def mermaid_chart(trend: Trend | None) -> str:
    """The chart's Mermaid text ("" when fewer than two versions have the metric)."""
    if trend is None or len(trend.points) < 2:
        return ""
    labels = ", ".join(f'"{_label(point)}"' for point in trend.points)
    values = [point.value for point in trend.points]
    low, high = _axis(min(values), max(values))
    better = "higher" if trend.greater_is_better else "lower"
    metric = _plain(trend.metric)
    theme = {"themeVariables": {"xyChart": {"plotColorPalette": LINE_COLOUR}}}
    return "\n".join(
        [
            "%%{init: " + json.dumps(theme) + "}%%",
            "xychart-beta",
            f'    title "{metric} over {len(values)} versions ({better} is better)"',
            f"    x-axis [{labels}]",
            f'    y-axis "{metric}" {_number(low)} --> {_number(high)}',
            f"    line [{', '.join(_number(value) for value in values)}]",
        ]
    )


def _label(point: TrendPoint) -> str:
    return f"v{point.version} {point.role}" if point.role else f"v{point.version}"


def _plain(text: str) -> str:
    return _UNSAFE.sub("_", " ".join(text.split()))[:80]


def _axis(low: float, high: float) -> tuple[float, float]:
    """A range with a margin, so the line never sits on the frame (nor collapses when flat)."""
    margin = (high - low) * 0.1 or max(abs(high) * 0.05, 0.001)
    return low - margin, high + margin


def _number(value: float) -> str:
    """Six significant digits in plain decimal notation: Mermaid's grammar has no exponent
    (`1e-05` is a parse error there)."""
    text = format(Decimal(f"{value:.6g}"), "f")
    return "0" if float(text) == 0 else text
