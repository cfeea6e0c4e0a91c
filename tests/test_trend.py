"""The request's trend chart (bot/ci/trend.py): the Mermaid text from fixed values, and which
versions a real registry puts on it, in how many registry calls. That a browser renders the text
is tests/test_chart_render.py."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from bot.ci.request import open_or_update_request
from bot.ci.trend import CHART_VERSIONS, Trend, TrendPoint, load_trend, mermaid_chart
from bot.config.params import parse_params
from bot.config.settings import Settings
from bot.registry.client import Registry
from bot.registry.versions import RunInfo
from bot.runtime.context import Context
from tests.helpers import log_training_run


def chart_lines(text: str) -> dict[str, str]:
    """`keyword -> rest of the line` for the chart's statements."""
    lines = {}
    for line in text.splitlines()[1:]:
        keyword, _, rest = line.strip().partition(" ")
        lines[keyword] = rest
    return lines


def test_chart_names_candidate_and_champion_and_lists_every_value_oldest_first() -> None:
    trend = Trend(
        "final.logloss",
        False,
        (TrendPoint(2, 0.65, "champion"), TrendPoint(3, 0.64), TrendPoint(4, 0.62, "candidate")),
    )
    text = mermaid_chart(trend)
    assert text.splitlines()[0].startswith("%%{init: ")  # a visible line colour
    assert text.splitlines()[1] == "xychart-beta"
    lines = chart_lines(text)
    assert lines["title"] == '"final.logloss over 3 versions (lower is better)"'
    assert lines["x-axis"] == '["v2 champion", "v3", "v4 candidate"]'
    assert lines["y-axis"] == '"final.logloss" 0.617 --> 0.653'
    assert lines["line"] == "[0.65, 0.64, 0.62]"
    better = mermaid_chart(Trend("final.accuracy", True, trend.points))
    assert "(higher is better)" in chart_lines(better)["title"]


@pytest.mark.parametrize(
    ("values", "axis", "line"),
    [
        ((1e-05, 2e-05), "0.000009 --> 0.000021", "[0.00001, 0.00002]"),  # no exponent
        ((-0.25, 0.1), "-0.285 --> 0.135", "[-0.25, 0.1]"),
        ((0.5, 0.5), "0.475 --> 0.525", "[0.5, 0.5]"),  # flat: a band around it
        ((0.0, 0.0), "-0.001 --> 0.001", "[0, 0]"),
        ((1234567.8, 0.61234567), "-123456 --> 1358020", "[1234570, 0.612346]"),
    ],
)
def test_numbers_are_plain_decimals_mermaid_can_parse(
    values: tuple[float, float], axis: str, line: str
) -> None:
    points = tuple(TrendPoint(n, v) for n, v in enumerate(values, start=1))
    lines = chart_lines(mermaid_chart(Trend("m", False, points)))
    assert lines["y-axis"] == f'"m" {axis}'
    assert lines["line"] == line
    assert not re.search(r"\de", lines["line"] + lines["y-axis"])


def test_a_metric_name_cannot_end_the_chart_or_the_markdown_fence() -> None:
    name = 'x" ```\nline [1]\n%%{init: {}}%% <b>'
    text = mermaid_chart(Trend(name, False, (TrendPoint(1, 1.0), TrendPoint(2, 2.0))))
    assert "`" not in text and "<" not in text
    assert len(text.splitlines()) == 6
    assert chart_lines(text)["y-axis"].startswith('"x_ ___ line _1_ ___init: _____ _b_" ')
    assert text.count('"') == 2 * 4 + text.splitlines()[0].count('"')  # title, y-axis, 2 labels


@pytest.mark.parametrize("points", [(), (TrendPoint(1, 0.6, "candidate"),)])
def test_no_chart_below_two_points(points: tuple[TrendPoint, ...]) -> None:
    assert mermaid_chart(Trend("m", False, points)) == ""
    assert mermaid_chart(None) == ""


# --- against a real registry -------------------------------------------------------------------


class CountingRegistry(Registry):
    """The real registry, counting the two reads the chart adds."""

    def __init__(self, tracking_uri: str) -> None:
        super().__init__(tracking_uri)
        self.calls: list[str] = []

    def newest_versions(self, name: str, limit: int) -> Any:
        self.calls.append(f"newest_versions({limit})")
        return super().newest_versions(name, limit)

    def runs_in(self, experiment_ids: Any, run_ids: Any) -> Any:
        self.calls.append(f"runs_in({len(run_ids)} runs)")
        return super().runs_in(experiment_ids, run_ids)


def add_version(
    registry: Registry,
    model: str,
    metrics: dict[str, float],
    experiment: str = "trend",
    registered_as: str = "smoke",
) -> tuple[int, RunInfo]:
    run_id = log_training_run(registry.tracking_uri, metrics, experiment=experiment)
    registry.ensure_model(model)
    version = registry.create_version(model, f"runs:/{run_id}/model", run_id).version
    registry.set_version_tag(model, version, "promotion.registered_as", registered_as)
    return version, registry.run(run_id)


def test_load_trend_charts_real_versions_of_the_named_experiments(
    tracking_uri: str, model_name: str
) -> None:
    registry = CountingRegistry(tracking_uri)
    _, champion = add_version(registry, model_name, {"final.logloss": 0.65})  # v1
    add_version(registry, model_name, {"final.logloss": 0.9}, registered_as="ci-smoke")  # v2 toy
    add_version(registry, model_name, {"final.logloss": 0.64})  # v3
    add_version(registry, model_name, {"final.accuracy": 0.5})  # v4: no gate metric
    add_version(registry, model_name, {"final.logloss": 0.63}, experiment="elsewhere")  # v5
    add_version(registry, model_name, {"final.logloss": math.nan})  # v6: not a number
    add_version(registry, model_name, {"final.logloss": 0.61})  # v7
    _, candidate = add_version(registry, model_name, {"final.logloss": 0.62})  # v8
    registry.calls.clear()

    named = {1: ("champion", champion), 8: ("candidate", candidate)}
    trend = load_trend(registry, model_name, "final.logloss", False, named)

    assert trend.points == (
        TrendPoint(1, 0.65, "champion"),
        TrendPoint(3, 0.64),
        TrendPoint(7, 0.61),
        TrendPoint(8, 0.62, "candidate"),
    )
    # One search for versions; one for the runs not read already (v3, v4, v5, v6, v7).
    assert registry.calls == [f"newest_versions({3 * CHART_VERSIONS})", "runs_in(5 runs)"]


def test_load_trend_keeps_the_newest_versions_and_an_older_champion(
    tracking_uri: str, model_name: str
) -> None:
    registry = CountingRegistry(tracking_uri)
    _, champion = add_version(registry, model_name, {"final.logloss": 0.7})  # v1
    for index in range(CHART_VERSIONS + 2):  # v2 .. v13
        add_version(registry, model_name, {"final.logloss": 0.6 + index / 1000})
    _, candidate = add_version(registry, model_name, {"final.logloss": 0.55})  # v14
    registry.calls.clear()
    named = {1: ("champion", champion), 14: ("candidate", candidate)}
    trend = load_trend(registry, model_name, "final.logloss", False, named)
    assert [p.version for p in trend.points] == [1, *range(5, 15)]
    assert len(registry.calls) == 2


def test_a_request_with_the_chart_turned_off_reads_no_more_than_before(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    registry = CountingRegistry(tracking_uri)
    for logloss, alias in ((0.65, "champion"), (0.64, None), (0.62, "candidate")):
        version, _ = add_version(registry, model_name, {"final.logloss": logloss})
        if alias:
            registry.set_alias(model_name, alias, version)

    def request(chart: bool) -> str:
        params = parse_params(
            {
                "register_model": {"model_name": model_name},
                "promotion": {"request": {"chart": chart}},
            }
        )
        settings = Settings(tracking_uri=tracking_uri, local_dir=tmp_path / f"forge-{chart}")
        ctx = Context(settings=settings, params=params, registry=registry)
        registry.calls.clear()
        return open_or_update_request(ctx).body

    off = request(chart=False)
    assert registry.calls == []
    assert "### Trend" not in off and "mermaid" not in off
    on = request(chart=True)
    assert len(registry.calls) == 2
    assert '    x-axis ["v1 champion", "v2", "v3 candidate"]\n' in on
    assert on.index("### Metrics") < on.index("### Trend") < on.index("### Hard gates")


def test_with_only_the_candidate_and_the_champion_no_run_is_searched(
    tracking_uri: str, model_name: str
) -> None:
    registry = CountingRegistry(tracking_uri)
    _, champion = add_version(registry, model_name, {"final.logloss": 0.65})
    _, candidate = add_version(registry, model_name, {"final.logloss": 0.62})
    registry.calls.clear()
    named = {1: ("champion", champion), 2: ("candidate", candidate)}
    trend = load_trend(registry, model_name, "final.logloss", False, named)
    assert [p.role for p in trend.points] == ["champion", "candidate"]
    assert registry.calls == [f"newest_versions({3 * CHART_VERSIONS})"]
