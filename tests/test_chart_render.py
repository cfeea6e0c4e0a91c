"""The request's trend chart renders in a real browser (docs/design.md, "The promotion request"):
the Mermaid text `request` wrote, from a real registry, loaded into headless Chromium with the
`mermaid` package, must give an SVG whose line has one vertex per charted version, in the
order of the values, with the candidate and the champion named, and no parse error.

`UPDATE_CHART_PNG=1 pytest tests/test_chart_render.py` rewrites docs/chart.png (the README's
picture) from the same run.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from bot.ci.request import open_or_update_request
from bot.config.params import parse_params
from bot.config.settings import Settings
from bot.runtime.context import Context
from tests.chart_browser import render
from tests.helpers import log_training_run

pytestmark = pytest.mark.slow

DOCS_PNG = Path(__file__).resolve().parent.parent / "docs" / "chart.png"
# (final.logloss, alias, registered as): what a model's history looks like after a few pipelines.
HISTORY = [
    (0.661, "champion", "smoke"),
    (0.702, None, "ci-smoke"),  # a toy: never charted
    (0.652, None, "smoke"),
    (0.633, None, "smoke"),
    (0.648, None, "smoke"),
    (0.641, None, "smoke"),
    (0.624, "candidate", "smoke"),
]
CHARTED = [(1, 0.661), (3, 0.652), (4, 0.633), (5, 0.648), (6, 0.641), (7, 0.624)]


def chart_of(body: str) -> str:
    found = re.search(r"^```mermaid\n(.*?)\n```$", body, re.DOTALL | re.MULTILINE)
    assert found is not None, "no Mermaid block in the request"
    return found.group(1)


def test_the_requests_chart_renders_in_chromium(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    params = parse_params({"register_model": {"model_name": model_name}})
    settings = Settings(tracking_uri=tracking_uri, local_dir=tmp_path / "forge")
    ctx = Context(settings=settings, params=params)
    registry = ctx.registry
    registry.ensure_model(model_name)
    for logloss, alias, registered_as in HISTORY:
        run_id = log_training_run(tracking_uri, {"final.logloss": logloss})
        version = registry.create_version(model_name, f"runs:/{run_id}/model", run_id).version
        registry.set_version_tag(model_name, version, "promotion.registered_as", registered_as)
        if alias:
            registry.set_alias(model_name, alias, version)
    text = chart_of(open_or_update_request(ctx).body)

    shot = tmp_path / "chart.png"
    rendered = render(text, tmp_path, screenshot=shot)

    assert rendered.error == ""
    assert rendered.svg.startswith("<svg")
    points = rendered.line_points()
    assert len(points) == len(CHARTED)
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # one column per version, oldest first
    # SVG y grows downwards: the lowest logloss is the lowest point on the page.
    heights = [y for _, y in points]
    by_height = [version for _, version in sorted(zip(heights, CHARTED, strict=True))]
    assert by_height == sorted(CHARTED, key=lambda pair: -pair[1])
    texts = rendered.texts()
    assert "v1 champion" in texts and "v7 candidate" in texts
    assert [t for t in texts if re.fullmatch(r"v\d+", t)] == ["v3", "v4", "v5", "v6"]
    assert "final.logloss over 6 versions (lower is better)" in texts
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
    if os.environ.get("UPDATE_CHART_PNG") == "1":
        shutil.copyfile(shot, DOCS_PNG)


def test_the_harness_reports_a_chart_mermaid_cannot_parse(tmp_path: Path) -> None:
    """The control: the same page and browser, a chart with an exponent in it."""
    text = 'xychart-beta\n    x-axis ["v1", "v2"]\n    line [1e-05, 0.5]'
    rendered = render(text, tmp_path)
    assert "Parse error" in rendered.error
    assert rendered.line_points() == []
