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


# --- the bot's job takes back the run id, and nothing else ----------------------------------
# The folder comes from a training job's artifacts: project code wrote it (docs/adopting.md,
# "Artifacts").
OWN = parse_params({"register_model": {"model_name": "churn", "run_id_file": "m/run.json"}})


def test_take_from_puts_back_only_the_run_id_at_the_params_path(tmp_path: Path) -> None:
    from bot.ci.files import take_run_id

    folder = tmp_path / ".promotion-bot/churn"
    (folder / "m").mkdir(parents=True)
    (folder / "m/run.json").write_text('{"run_id": "abc"}\n')
    (folder / "params.yaml").write_text("promotion: {approvers: {users: [mallory]}}\n")
    (tmp_path / "params.yaml").write_text("register_model: {model_name: churn}\n")

    assert take_run_id(OWN, folder, tmp_path) == tmp_path / "m/run.json"
    assert (tmp_path / "m/run.json").read_text() == '{"run_id": "abc"}\n'
    assert (tmp_path / "params.yaml").read_text() == "register_model: {model_name: churn}\n"


@pytest.mark.parametrize("planted", ["link to a secret", "link out of the folder", "too large"])
def test_take_from_refuses_what_training_code_could_plant(tmp_path: Path, planted: str) -> None:
    from bot.ci.files import RUN_ID_FILE_MOST_BYTES, take_run_id
    from bot.errors import BotError

    folder = tmp_path / ".promotion-bot/churn"
    (folder / "m").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("PROMOTION_BOT_SIGNING_KEY=5e5e\n")
    if planted == "link to a secret":
        (folder / "m/run.json").symlink_to(secret)
    elif planted == "link out of the folder":
        (folder / "m").rmdir()
        (folder / "m").symlink_to(tmp_path)
        (tmp_path / "run.json").write_text('{"run_id": "abc"}\n')
    else:
        (folder / "m/run.json").write_text("x" * (RUN_ID_FILE_MOST_BYTES + 1))

    with pytest.raises(BotError):
        take_run_id(OWN, folder, tmp_path / "repo")
    assert not (tmp_path / "repo/m/run.json").exists()  # nothing written
