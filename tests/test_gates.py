"""bot.rules.gates, fast and pure: the hard gates of `promotion.gates`, from run data alone
(docs/design.md, "Rules for a champion change")."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config.params import parse_params
from bot.registry.versions import RunInfo
from bot.rules.gates import GateCheck, evaluate_gates, failed


def params(gates: dict[str, Any] | None = None, **promote_model: Any) -> Any:
    return parse_params({"promote_model": promote_model, "promotion": {"gates": gates or {}}})


def run(metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None) -> RunInfo:
    return RunInfo("r", "1", metrics or {}, tags or {})


def verdicts(checks: list[GateCheck]) -> list[tuple[str, bool]]:
    return [(check.name, check.passed) for check in checks]


@pytest.mark.parametrize(
    ("candidate", "champion", "allowed", "passed", "detail"),
    [
        ({"final.logloss": 0.6}, None, 0.0, True, "no current champion"),
        ({}, {"final.logloss": 0.6}, 0.0, False, "candidate run has no `final.logloss`"),
        ({"final.logloss": 0.6}, {}, 0.0, True, "champion run has no `final.logloss`"),
        ({"final.logloss": 0.59}, {"final.logloss": 0.6}, 0.0, True, "worse by 0, allowed 0"),
        ({"final.logloss": 0.6}, {"final.logloss": 0.6}, 0.0, True, "worse by 0,"),
        ({"final.logloss": 0.61}, {"final.logloss": 0.6}, 0.0, False, "worse by 0.01,"),
        ({"final.logloss": 0.61}, {"final.logloss": 0.6}, 0.02, True, "allowed 0.02"),
    ],
)
def test_regression_against_the_champion_lower_is_better(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    allowed: float,
    passed: bool,
    detail: str,
):
    checks = evaluate_gates(
        params({"max_regression_vs_champion": allowed}),
        run(candidate),
        None if champion is None else run(champion),
    )
    [check] = checks
    assert (check.name, check.passed) == ("regression", passed)
    assert detail in check.detail


def test_regression_when_higher_is_better():
    higher = params(metric="auc", greater_is_better=True)
    [worse] = evaluate_gates(higher, run({"auc": 0.80}), run({"auc": 0.81}))
    [better] = evaluate_gates(higher, run({"auc": 0.82}), run({"auc": 0.81}))
    assert (worse.passed, better.passed) == (False, True)
    assert "higher is better" in worse.detail


def test_thresholds_and_required_tags_in_a_stable_order():
    gates = {
        "thresholds": {"final.logloss": {"max": 0.7}, "final.accuracy": {"min": 0.5, "max": 0.9}},
        "required_tags": ["git_sha", "data_version", "owner"],
    }
    candidate = run(
        {"final.logloss": 0.65, "final.accuracy": 0.95},
        {"git_sha": "abc", "data_version": "  ", "unrelated": "x"},
    )
    checks = evaluate_gates(params(gates), candidate, None)
    assert verdicts(checks) == [
        ("regression", True),
        ("threshold:final.accuracy:min", True),
        ("threshold:final.accuracy:max", False),
        ("threshold:final.logloss:max", True),
        ("tag:git_sha", True),
        ("tag:data_version", False),  # blank counts as missing
        ("tag:owner", False),
    ]
    assert [check.name for check in failed(checks)] == [
        "threshold:final.accuracy:max",
        "tag:data_version",
        "tag:owner",
    ]


def test_a_threshold_on_a_metric_the_run_lacks_fails_and_says_so():
    checks = evaluate_gates(params({"thresholds": {"f1": {"min": 0.5}}}), run(), None)
    assert verdicts(checks) == [("regression", True), ("threshold:f1:min", False)]
    assert checks[1].detail == "`f1` missing on the candidate run (it logged no metrics)"
    logged = RunInfo("r", "1", metrics={"final.f1": 0.6, "final.logloss": 0.5})
    checks = evaluate_gates(params({"thresholds": {"final.f": {"min": 0.5}}}), logged, None)
    assert checks[1].detail == (  # a misspelt name in params beside the right one
        "`final.f` missing on the candidate run (did you mean `final.f1`? it has `final.f1`, "
        "`final.logloss`)"
    )


# --- non-finite metric values --------------------------------------------------------------------

NON_FINITE = [float("-inf"), float("inf"), float("nan")]


@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_a_non_finite_candidate_metric_fails_every_gate_it_feeds(value: float):
    bounds = {"final.logloss": {"max": 0.7, "min": 0.0}}
    checks = evaluate_gates(
        params({"thresholds": bounds}), run({"final.logloss": value}), run({"final.logloss": 0.6})
    )
    assert verdicts(checks) == [
        ("regression", False),
        ("threshold:final.logloss:min", False),
        ("threshold:final.logloss:max", False),
    ]
    assert all(f"`final.logloss` is {value}, not a finite number" in c.detail for c in checks)


@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_a_non_finite_candidate_metric_fails_even_without_a_champion(value: float):
    checks = evaluate_gates(params(), run({"final.logloss": value}), None)
    assert verdicts(checks) == [("regression", False)]


@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_a_champion_whose_metric_is_no_number_is_not_comparable(value: float):
    """Only a champion set by hand can carry one (gate and /promote refuse it): it does not
    block its own replacement."""
    checks = evaluate_gates(params(), run({"final.logloss": 0.6}), run({"final.logloss": value}))
    assert verdicts(checks) == [("regression", True)]
    assert "not comparable" in checks[0].detail
