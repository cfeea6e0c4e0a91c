"""bot.ci.files: a model's CI files where its params put them, copied for artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.ci.files import copy_model_files
from bot.cli import cli
from bot.config.params import parse_params


def test_files_prints_the_models_paths_and_copies_those_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "models:\n"
        "  - {register_model: {model_name: churn, run_id_file: models/churn/data/run.json},\n"
        "     promote_model: {output: models/churn/data/gate.json}}\n"
        "  - {register_model: {model_name: fraud}}\n"
    )
    (tmp_path / "models/churn/data").mkdir(parents=True)
    (tmp_path / "models/churn/data/run.json").write_text('{"run_id": "abc"}\n')
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "PROMOTION_BOT_MODEL": "churn"}

    shown = CliRunner().invoke(cli, ["files"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "register_model.run_id_file: models/churn/data/run.json",
        "promote_model.output: models/churn/data/gate.json",
    ]

    copied = CliRunner().invoke(cli, ["files", "--copy-to", ".promotion-bot/churn"], env=env)
    assert copied.exit_code == 0, copied.output
    assert copied.output.splitlines() == [
        "register_model.run_id_file: models/churn/data/run.json: copied to "
        ".promotion-bot/churn/models/churn/data/run.json",
        "promote_model.output: models/churn/data/gate.json: not written, not copied",
    ]
    kept = tmp_path / ".promotion-bot/churn/models/churn/data/run.json"
    assert kept.read_text() == '{"run_id": "abc"}\n'
    assert not (tmp_path / ".promotion-bot/fraud").exists()


def test_a_file_outside_the_repository_is_copied_by_its_name(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "run.json"
    outside.parent.mkdir()
    outside.write_text("{}\n")
    params = parse_params({"register_model": {"run_id_file": str(outside)}})
    repo = tmp_path / "repo"
    repo.mkdir()
    [run_id, gate] = copy_model_files(params, repo / "kept", root=repo)
    assert run_id.copy == repo / "kept" / "run.json" and (repo / "kept" / "run.json").is_file()
    assert gate.copy is None
