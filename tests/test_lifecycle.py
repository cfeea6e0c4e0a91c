"""Stage 1 `register` and Stage 2 `gate` (docs/design.md, "The lifecycle") against a real MLflow
server."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

from bot.ci.gate import gate
from bot.ci.register import read_run_id, register
from bot.config.params import parse_params
from bot.config.settings import Settings
from bot.errors import BotError, ConfigError, NotFoundError
from bot.registry.tags import REGISTERED_AS_TAG
from bot.runtime.context import Context
from tests.helpers import log_training_run

GATE_FIELDS = [
    "model",
    "version",
    "metric",
    "new_value",
    "candidate_version",
    "candidate_value",
    "tolerance",
    "greater_is_better",
    "passed",
    "reason",
]


def make_ctx(
    tracking_uri: str, model: str, register_model: dict[str, Any] | None = None, **promote: Any
) -> Context:
    params = parse_params(
        {
            "register_model": {"model_name": model, **(register_model or {})},
            "promote_model": promote,
        }
    )
    return Context(settings=Settings(tracking_uri=tracking_uri), params=params)


@pytest.fixture
def ctx(tracking_uri: str, model_name: str) -> Context:
    return make_ctx(tracking_uri, model_name)


def train(ctx: Context, run_id_file: Path | None = None, **metrics: float) -> str:
    values = {key.replace("_", "."): value for key, value in metrics.items()}
    return log_training_run(ctx.settings.tracking_uri, values, run_id_file=run_id_file)


def registered(ctx: Context, alias: str = "smoke", **metrics: float) -> int:
    return register(ctx, run_id=train(ctx, **metrics), alias=alias).version.version


def aliases(ctx: Context) -> dict[str, int]:
    return ctx.registry.aliases(ctx.model)


def gate_output(ctx: Context) -> dict[str, Any]:
    data = json.loads(Path(ctx.params.promote_model.output).read_text(encoding="utf-8"))
    assert list(data) == GATE_FIELDS
    return data


# --- register -------------------------------------------------------------------------------


def test_register_reads_the_run_id_file_and_sets_smoke(ctx: Context, tmp_path: Path):
    run_id = train(ctx, tmp_path / "data/models/final_run_id.json", final_logloss=0.6)
    result = register(ctx)
    assert (result.version.version, result.alias, result.reused) == (1, "smoke", False)
    assert result.version.run_id == run_id
    assert aliases(ctx) == {"smoke": 1}
    version = ctx.registry.version(ctx.model, 1)
    assert version.tags[REGISTERED_AS_TAG] == "smoke"
    assert version.source == f"runs:/{run_id}/model"


def test_register_twice_with_one_run_reuses_its_version(ctx: Context):
    run_id = train(ctx, final_logloss=0.6)
    first = register(ctx, run_id=run_id)
    again = register(ctx, run_id=run_id)
    assert (first.reused, again.reused) == (False, True)
    assert again.version.version == first.version.version == 1
    with pytest.raises(NotFoundError):  # no second version was created
        ctx.registry.version(ctx.model, 2)


def test_a_second_run_is_a_new_version_and_moves_the_alias(ctx: Context):
    assert registered(ctx, final_logloss=0.6) == 1
    assert registered(ctx, final_logloss=0.5) == 2
    assert aliases(ctx) == {"smoke": 2}


def test_ci_smoke_is_a_separate_alias_and_the_tag_remembers_it(ctx: Context):
    toy = registered(ctx, alias="ci-smoke", final_logloss=0.9)
    real = registered(ctx, alias="smoke", final_logloss=0.6)
    assert aliases(ctx) == {"ci-smoke": toy, "smoke": real}
    assert ctx.registry.version(ctx.model, toy).tags[REGISTERED_AS_TAG] == "ci-smoke"
    assert ctx.registry.version(ctx.model, real).tags[REGISTERED_AS_TAG] == "smoke"


def test_the_default_alias_comes_from_params(tracking_uri: str, model_name: str):
    ctx = make_ctx(tracking_uri, model_name, {"model_stage": "ci-smoke", "artifact_path": "clf"})
    run_id = train(ctx, final_logloss=0.9)
    result = register(ctx, run_id=run_id)
    assert result.alias == "ci-smoke"
    assert aliases(ctx) == {"ci-smoke": 1}
    assert result.version.source == f"runs:/{run_id}/clf"


def test_a_toy_stays_a_toy_when_its_run_is_registered_again_as_smoke(ctx: Context):
    run_id = train(ctx, final_logloss=0.9)
    register(ctx, run_id=run_id, alias="ci-smoke")
    again = register(ctx, run_id=run_id, alias="smoke")
    assert again.reused
    assert ctx.registry.version(ctx.model, 1).tags[REGISTERED_AS_TAG] == "ci-smoke"
    with pytest.raises(BotError, match=r"registered as ci-smoke"):
        gate(ctx)


def test_register_refuses_another_initial_alias(ctx: Context):
    with pytest.raises(ConfigError, match=r"ci-smoke or smoke, not 'champion'"):
        register(ctx, run_id="0" * 32, alias="champion")


def test_register_without_a_run_id_file_says_where_it_looked(ctx: Context):
    with pytest.raises(ConfigError) as caught:
        register(ctx)
    assert str(caught.value).startswith("data/models/final_run_id.json: no such file")
    assert not ctx.registry.model_exists(ctx.model)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "not a JSON file with a run_id"),
        ("", "not a JSON file with a run_id"),
        ('{"runid": "abc"}', 'expected {"run_id": "..."}'),
        ('{"run_id": ""}', 'expected {"run_id": "..."}'),
        ('{"run_id": 42}', 'expected {"run_id": "..."}'),
        ('["abc"]', 'expected {"run_id": "..."}'),
    ],
)
def test_a_malformed_run_id_file_is_a_clear_error(tmp_path: Path, content: str, expected: str):
    path = tmp_path / "run.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_run_id(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message


def test_the_run_id_is_stripped(tmp_path: Path):
    path = tmp_path / "run.json"
    path.write_text('{"run_id": " abc123 \\n"}', encoding="utf-8")
    assert read_run_id(path) == "abc123"


def test_register_a_missing_run_names_it_and_creates_nothing(ctx: Context):
    missing = "0123456789abcdef0123456789abcdef"
    with pytest.raises(NotFoundError, match=rf"run {missing}: not found"):
        register(ctx, run_id=missing)
    assert not ctx.registry.model_exists(ctx.model)


# --- gate ------------------------------------------------------------------------------------


def test_the_first_version_always_passes_and_becomes_candidate(ctx: Context):
    version = registered(ctx, final_logloss=0.9)
    result = gate(ctx)
    assert result.passed and result.version == version
    assert (result.candidate_version, result.candidate_value) == (None, None)
    assert aliases(ctx) == {"smoke": version, "candidate": version}
    assert gate_output(ctx) == {
        "model": ctx.model,
        "version": version,
        "metric": "final.logloss",
        "new_value": 0.9,
        "candidate_version": None,
        "candidate_value": None,
        "tolerance": 0.005,
        "greater_is_better": False,
        "passed": True,
        "reason": "no current candidate: the first version always passes",
    }


def test_a_version_within_tolerance_passes_and_moves_candidate(ctx: Context):
    registered(ctx, final_logloss=0.6)
    gate(ctx)
    new = registered(ctx, final_logloss=0.604)  # worse, but by less than 0.005
    result = gate(ctx)
    assert result.passed
    assert (result.candidate_version, result.candidate_value, result.new_value) == (1, 0.6, 0.604)
    assert aliases(ctx)["candidate"] == new
    assert gate_output(ctx)["passed"] is True
    assert result.reason == "passed: 0.604 <= 0.6 + 0.005"


def test_a_version_beyond_tolerance_fails_and_changes_nothing(
    ctx: Context, caplog: pytest.LogCaptureFixture
):
    registered(ctx, final_logloss=0.6)
    gate(ctx)
    new = registered(ctx, final_logloss=0.606)
    with caplog.at_level(logging.WARNING, logger="bot"):
        result = gate(ctx)  # an expected outcome: returned, not raised
    assert not result.passed
    assert aliases(ctx) == {"smoke": new, "candidate": 1}
    output = gate_output(ctx)
    assert output["passed"] is False
    assert output["reason"] == "failed: not 0.606 <= 0.6 + 0.005"
    assert (output["version"], output["candidate_version"]) == (new, 1)
    assert (output["new_value"], output["candidate_value"]) == (0.606, 0.6)
    assert any(
        r.levelno == logging.WARNING and "gate failed" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    ("new", "passed"), [(0.75, True), (0.7500001, False), (0.1, True)], ids=["at", "above", "below"]
)
def test_the_tolerance_boundary_is_inclusive(
    tracking_uri: str, model_name: str, new: float, passed: bool
):
    ctx = make_ctx(tracking_uri, model_name, tolerance=0.25)
    registered(ctx, final_logloss=0.5)
    gate(ctx)
    registered(ctx, final_logloss=new)
    assert gate(ctx).passed is passed


@pytest.mark.parametrize(
    ("new", "passed", "reason"),
    [
        (0.85, True, "passed: 0.85 >= 0.8 - 0.005"),
        (0.796, True, "passed: 0.796 >= 0.8 - 0.005"),
        (0.79, False, "failed: not 0.79 >= 0.8 - 0.005"),
    ],
    ids=["better", "within-tolerance", "beyond-tolerance"],
)
def test_greater_is_better(
    tracking_uri: str, model_name: str, new: float, passed: bool, reason: str
):
    ctx = make_ctx(tracking_uri, model_name, metric="final.accuracy", greater_is_better=True)
    registered(ctx, final_accuracy=0.8)
    gate(ctx)
    version = registered(ctx, final_accuracy=new)
    result = gate(ctx)
    assert (result.passed, result.reason) == (passed, reason)
    assert aliases(ctx)["candidate"] == (version if passed else 1)
    assert gate_output(ctx)["greater_is_better"] is True


def test_lower_is_better_refuses_a_higher_accuracy_style_jump(ctx: Context):
    registered(ctx, final_logloss=0.5)
    gate(ctx)
    registered(ctx, final_logloss=0.8)
    assert not gate(ctx).passed


def test_a_missing_metric_names_the_run_and_the_metric(ctx: Context):
    version = registered(ctx, final_accuracy=0.7)
    run_id = ctx.registry.version(ctx.model, version).run_id
    with pytest.raises(BotError) as caught:
        gate(ctx)
    message = str(caught.value)
    assert run_id in message and "'final.logloss'" in message and f"v{version}" in message
    assert aliases(ctx) == {"smoke": version}
    assert not Path(ctx.params.promote_model.output).exists()


def test_a_candidate_without_the_metric_is_an_error_too(tracking_uri: str, model_name: str):
    ctx = make_ctx(tracking_uri, model_name)
    registered(ctx, final_accuracy=0.7)
    ctx.registry.set_alias(ctx.model, "candidate", 1)
    registered(ctx, final_logloss=0.5)
    with pytest.raises(BotError, match=r"v1\) has no metric 'final.logloss'"):
        gate(ctx)


def test_a_ci_smoke_version_is_refused(ctx: Context):
    toy = registered(ctx, alias="ci-smoke", final_logloss=0.1)
    with pytest.raises(BotError, match=rf"v{toy} was registered as ci-smoke"):
        gate(ctx, version=toy)
    assert "candidate" not in aliases(ctx)


def test_gate_by_default_tests_the_ci_smoke_alias_when_params_say_so(
    tracking_uri: str, model_name: str
):
    ctx = make_ctx(tracking_uri, model_name, {"model_stage": "ci-smoke"})
    registered(ctx, alias="ci-smoke", final_logloss=0.1)
    with pytest.raises(BotError, match=r"toy model never becomes candidate"):
        gate(ctx)


def test_gate_before_register_says_what_to_do(ctx: Context):
    with pytest.raises(BotError, match=r"has no @smoke version: run `promotion-bot register`"):
        gate(ctx)


def test_gate_an_explicit_version(ctx: Context):
    registered(ctx, final_logloss=0.6)
    registered(ctx, final_logloss=0.7)
    result = gate(ctx, version=1)
    assert result.passed and result.version == 1
    assert aliases(ctx) == {"smoke": 2, "candidate": 1}
    with pytest.raises(NotFoundError):
        gate(ctx, version=9)


def test_gating_the_candidate_again_passes_without_change(ctx: Context):
    registered(ctx, final_logloss=0.6)
    gate(ctx)
    result = gate(ctx)
    assert result.passed and result.candidate_version == 1 and result.candidate_value == 0.6
    assert result.reason == "v1 already is candidate"


def test_a_custom_candidate_alias_and_output_path(tracking_uri: str, model_name: str):
    ctx = make_ctx(tracking_uri, model_name, candidate_alias="staging", output="out/deep/gate.json")
    registered(ctx, final_logloss=0.6)
    assert gate(ctx).passed
    assert aliases(ctx) == {"smoke": 1, "staging": 1}
    assert json.loads(Path("out/deep/gate.json").read_text())["passed"] is True


# --- a metric that is no finite number -----------------------------------------------------------


@pytest.mark.parametrize("value", [float("-inf"), float("inf"), float("nan")])
def test_a_non_finite_metric_fails_the_gate(ctx: Context, value: float):
    """-inf logloss (a numerical bug, or training code written to pass) is below every bound."""
    registered(ctx, final_logloss=0.6)
    gate(ctx)
    broken = registered(ctx, final_logloss=value)
    result = gate(ctx)
    assert not result.passed
    assert result.reason == f"failed: `final.logloss` of v{broken} is {value}, not a finite number"
    assert aliases(ctx)["candidate"] == 1
    assert gate_output(ctx)["new_value"] is None  # JSON has no -Infinity


def test_a_first_version_with_a_non_finite_metric_fails_too(ctx: Context):
    registered(ctx, final_logloss=float("-inf"))
    assert not gate(ctx).passed
    assert "candidate" not in aliases(ctx)


def test_minus_infinity_passes_no_gate_at_promote(make_pg: Any) -> None:
    """The attack end to end: even as the candidate (set by hand here), /promote is refused."""
    pg = make_pg(gates={"thresholds": {"final.logloss": {"max": 0.7}}})
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    broken = pg.train(-math.inf)
    assert pg.alias("candidate") == first  # `gate` refused it
    pg.ctx.registry.set_alias(pg.model, "candidate", broken)

    outcome, _ = pg.comment(pg.open_request(broken), "maria", "/promote")

    assert (outcome.status, outcome.detail) == ("refused", "gate")
    assert pg.champion() == first
