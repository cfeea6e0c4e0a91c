"""Several models in one params.yaml (`models:`), and the single-model file unchanged
(docs/design.md, "Configuration")."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.model_set import load_models
from bot.config.params import Params, load_params
from bot.errors import ConfigError

SHARED = """\
promotion:
  approvers:
    min_role: maintainer
  checklist:
    - {id: metrics, text: "Metrics reviewed"}
models:
  - models/churn/params.yaml
  - register_model: {model_name: fraud}
    promotion:
      approvers: {teams: [ml-org/fraud-owners], min_role: null}
"""
CHURN = """\
register_model:
  model_name: churn
  run_id_file: models/churn/data/final_run_id.json
promotion:
  request:
    kind: merge_request
    labels: [model-promotion, churn]
  approvers:
    users: [maria]
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root / "params.yaml"


def test_a_params_file_without_models_is_one_model_as_before(tmp_path: Path) -> None:
    assert load_models(None).models == (Params(),)  # no params.yaml here: the defaults
    top = write(tmp_path, {"params.yaml": "register_model: {model_name: solo}\n"})
    models = load_models(top)
    assert (models.names, models.declared) == (("solo",), False)
    assert models.models[0] == load_params(top)


def test_each_model_is_the_shared_defaults_with_its_own_values_merged_over(tmp_path: Path) -> None:
    models = load_models(
        write(tmp_path, {"params.yaml": SHARED, "models/churn/params.yaml": CHURN})
    )
    assert models.declared and models.names == ("churn", "fraud")
    churn, fraud = models.models
    # its own file
    assert churn.register_model.run_id_file == "models/churn/data/final_run_id.json"
    assert churn.promotion.request.thread_kind == "merge_request"
    assert churn.promotion.approvers.users == ("maria",)
    # the shared defaults, written once: merged key by key under its own values
    assert churn.promotion.approvers.min_role == "maintainer"
    assert [item.id for item in churn.promotion.checklist] == ["metrics"]
    assert [item.id for item in fraud.promotion.checklist] == ["metrics"]
    # inline: its own values win, lists are replaced, not appended
    assert fraud.promotion.approvers.teams == ("ml-org/fraud-owners",)
    assert fraud.promotion.approvers.min_role is None
    assert fraud.promotion.request.labels == ("model-promotion",)
    # one listing for all: the label both carry, both kinds
    assert models.listing_labels == ("model-promotion",)
    assert models.thread_kinds == ("issue", "merge_request")


def test_each_model_trains_and_gates_into_its_own_files_unless_it_says_where(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        {
            "params.yaml": "models:\n  - register_model: {model_name: a}\n"
            "  - {register_model: {model_name: b, run_id_file: b/run.json}}\n"
        },
    )
    a, b = load_models(path)
    assert (a.register_model.run_id_file, a.promote_model.output) == (
        "data/models/a/final_run_id.json",
        "data/models/a/promoted_model.json",
    )
    assert (b.register_model.run_id_file, b.promote_model.output) == (
        "b/run.json",
        "data/models/b/promoted_model.json",
    )
    single = load_models(write(tmp_path / "one", {"params.yaml": "{}\n"}))
    assert single.models[0].register_model.run_id_file == "data/models/final_run_id.json"


def test_pick_requires_a_model_when_several_are_configured(tmp_path: Path) -> None:
    models = load_models(
        write(tmp_path, {"params.yaml": SHARED, "models/churn/params.yaml": CHURN})
    )
    assert models.pick("fraud", required=True).model_name == "fraud"
    with pytest.raises(ConfigError) as needed:
        models.pick(None, required=True)
    assert str(needed.value) == (
        f"{tmp_path / 'params.yaml'} configures 2 models (churn, fraud): choose one with "
        "--model NAME (or PROMOTION_BOT_MODEL)"
    )
    with pytest.raises(ConfigError) as unknown:
        models.pick("spam", required=True)
    assert str(unknown.value) == (
        f"--model: no model 'spam' in {tmp_path / 'params.yaml'}; one of: churn, fraud"
    )
    assert models.only("fraud").names == ("fraud",)
    one = write(tmp_path / "one", {"params.yaml": "register_model: {model_name: churn}\n"})
    single = load_models(one)
    assert single.pick("churn", required=True).model_name == "churn"
    with pytest.raises(ConfigError) as typo:  # a typo never names a model of its own
        single.pick("chrun", required=True)
    assert str(typo.value) == f"--model: no model 'chrun' in {one}; one of: churn"


REFUSED = {
    "a missing file": (
        {"params.yaml": "models: [models/a/params.yaml]\n"},
        "params.yaml: models[1]: models/a/params.yaml: no such file",
    ),
    "two models with one name": (
        {
            "params.yaml": "models:\n  - register_model: {model_name: a}\n"
            "  - register_model: {model_name: a}\n"
        },
        "params.yaml: models: two models named 'a'",
    ),
    "two names one marker": (
        {
            "params.yaml": "models:\n  - register_model: {model_name: a b}\n"
            "  - register_model: {model_name: a_b}\n"
        },
        "params.yaml: models: two models read as one in a marker: 'a b' and 'a_b'",
    ),
    "one record file for two merge requests": (
        {
            "params.yaml": "promotion:\n  request: {kind: merge_request, record_path: p.json}\n"
            "models:\n  - register_model: {model_name: a}\n"
            "  - register_model: {model_name: b}\n"
        },
        "params.yaml: models: 'a' and 'b' both commit p.json (promotion.request.record_path)",
    ),
    "one run id file for two models": (
        {
            "params.yaml": "register_model: {run_id_file: data/run.json}\n"
            "models:\n  - register_model: {model_name: a}\n"
            "  - register_model: {model_name: b}\n"
        },
        "params.yaml: models: 'a' and 'b' both use data/run.json (register_model.run_id_file)",
    ),
    "one gate result for two models": (
        {
            "params.yaml": "models:\n"
            "  - {register_model: {model_name: a}, promote_model: {output: gate.json}}\n"
            "  - {register_model: {model_name: b}, promote_model: {output: gate.json}}\n"
        },
        "params.yaml: models: 'a' and 'b' both use gate.json (promote_model.output)",
    ),
    "no label in common": (
        {
            "params.yaml": "models:\n"
            "  - {register_model: {model_name: a}, promotion: {request: {labels: [x]}}}\n"
            "  - {register_model: {model_name: b}, promotion: {request: {labels: [y]}}}\n"
        },
        "params.yaml: models: the models' promotion.request.labels share no label; poll finds "
        "every model's requests in one listing by a label they all carry",
    ),
    "a model without its name": (
        {"params.yaml": "models:\n  - promotion: {approvers: {users: [a]}}\n"},
        "params.yaml: models[1]: register_model.model_name: each model names its own",
    ),
    "a bad key in a model's file": (
        {
            "params.yaml": "models: [m/params.yaml]\n",
            "m/params.yaml": "register_model: {model_name: a}\npromotion: {approvers: "
            "{min_role: None}}\n",
        },
        "m/params.yaml: promotion.approvers.min_role: unknown role 'None' (null, unquoted, "
        "admits approvers.users only); one of: developer, maintainer, owner, write, maintain, "
        "admin",
    ),
    "a bad shared key is the top file's": (
        {
            "params.yaml": "promotion: {gates: {max_regression_vs_champion: -1}}\n"
            "models: [m/params.yaml]\n",
            "m/params.yaml": "register_model: {model_name: a}\n",
        },
        "params.yaml: promotion.gates.max_regression_vs_champion: Input should be greater "
        "than or equal to 0",
    ),
    "a bad inline key": (
        {"params.yaml": "models:\n  - register_model: {model_name: a, colour: red}\n"},
        "params.yaml: models[1]: register_model.colour: unknown key",
    ),
    "a model file listing models": (
        {
            "params.yaml": "models: [m/params.yaml]\n",
            "m/params.yaml": "register_model: {model_name: a}\nmodels: []\n",
        },
        "m/params.yaml: models: only params.yaml lists the models",
    ),
    "a path leaving the repository": (
        {"params.yaml": "models: [../elsewhere/params.yaml]\n"},
        "params.yaml: models[1]: '../elsewhere/params.yaml' must be a relative file path "
        "inside the repository",
    ),
    "an empty list": ({"params.yaml": "models: []\n"}, "params.yaml: models: expected a list"),
    "a number": (
        {"params.yaml": "models: [3]\n"},
        "params.yaml: models[1]: expected the path of a params file or a mapping",
    ),
    "teams that are no teams": (
        {
            "params.yaml": "models:\n  - {register_model: {model_name: a}, promotion: "
            "{approvers: {teams: ['@org/t']}}}\n"
        },
        "params.yaml: models[1]: promotion.approvers.teams: '@org/t' is not a team",
    ),
}


@pytest.mark.parametrize(("files", "message"), REFUSED.values(), ids=REFUSED)
def test_what_would_be_ambiguous_or_broken_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, files)
    with pytest.raises(ConfigError) as refused:
        load_models()
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
