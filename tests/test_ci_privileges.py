"""Least privilege in the CI files (docs/security.md, "Accounts"), read from the files as the CI
systems expand them: no job that runs the project's code holds the bot's forge token, MLflow
account or signing key; the bot's jobs run only the bot; no checkout in a job that holds a
secret leaves its token behind; a comment cannot cancel training or the poll. gitlab-ci-local
runs the split include with environment-scoped variables and shows what each job receives."""

from __future__ import annotations

import functools
import json
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bot.commands.grammar import COMMANDS, parse_comment
from tests import ci_runner
from tests.ci_runner import REPO_ROOT, load_yaml
from tests.test_ci_models import adopter

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
GITHUB_FILES = [*WORKFLOWS, REPO_ROOT / "ci" / "github" / "train-models.yml"]
COMMANDS_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "promotion-commands.yml"
BOT_ENVIRONMENT, TRAINING_ENVIRONMENT = "promotion-bot", "model-training"
BOT_SECRETS = ("PROMOTION_BOT_SIGNING_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN")
BOT_COMMAND = re.compile(r"^promotion-bot (register|gate|request|poll|handle)\b")
INSTALL = "git+https://gitlab.example.com/tools/promotion-bot.git@" + "0" * 40


# --- GitLab: the includes as gitlab-ci-local expands them ---------------------------------------

ONE_MODEL = f"""\
include:
  - local: ci/promotion-bot.yml
    inputs: {{install: "{INSTALL}", train-script: sh train.sh, smoke-script: sh train.sh}}
"""


def gitlab_repo(folder: Path, gitlab_ci: str | None, files: dict[str, str] | None = None) -> Path:
    (folder / "ci").mkdir(parents=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    for template in (REPO_ROOT / "ci").glob("*.yml"):
        shutil.copy2(template, folder / "ci" / template.name)
    ci = (REPO_ROOT / ".gitlab-ci.yml").read_text() if gitlab_ci is None else gitlab_ci
    (folder / ".gitlab-ci.yml").write_text(ci, encoding="utf-8")
    ci_runner.git_commit_all(folder)
    return folder


@functools.cache
def gitlab_jobs(pipeline: str) -> dict[str, dict[str, Any]]:
    """The jobs of this repository's pipeline, the README's one-model include, or a two-model
    repository (tests/test_ci_models.py's, whose `rules:changes` need an origin)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "repo"
        if pipeline == "two models":
            repo = adopter(folder)
        else:
            repo = gitlab_repo(folder, None if pipeline == "this repository" else ONE_MODEL)
        return ci_runner.jobs(ci_runner.preview(repo, Path(tmp) / "home"))


def environment_of(job: dict[str, Any]) -> str:
    environment = job.get("environment") or ""
    return str(environment["name"] if isinstance(environment, dict) else environment)


PIPELINES = ["this repository", "one model", "two models"]


@pytest.mark.slow  # gitlab-ci-local expands each pipeline
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_no_gitlab_job_that_runs_project_code_is_in_the_bots_environment(pipeline: str) -> None:
    """Environment-scoped variables reach only jobs of their environment: the bot's account,
    GITLAB_TOKEN and the signing key live in `promotion-bot`, whose jobs run only the bot."""
    jobs = gitlab_jobs(pipeline)
    kinds = {"bot": 0, "project": 0}
    for name, job in jobs.items():
        script = [str(line) for line in job.get("script", [])]
        runs_project_code = any(not line.startswith("promotion-bot ") for line in script)
        environment = environment_of(job)
        if runs_project_code:
            kinds["project"] += 1
            assert environment in ("", TRAINING_ENVIRONMENT), name
        if environment == BOT_ENVIRONMENT:
            kinds["bot"] += 1
            assert not runs_project_code, name
            assert job.get("cache") == [], name  # no cache a training job could have written
        if any(BOT_COMMAND.match(line) for line in script):
            assert environment == BOT_ENVIRONMENT, name
        for secret in BOT_SECRETS:  # never in a file, whatever the job
            assert secret not in (job.get("variables") or {}), name
    assert kinds["bot"] >= 3 and kinds["project"] >= 2, kinds  # the patterns still match


@pytest.mark.slow  # gitlab-ci-local expands each pipeline
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_each_gitlab_bot_job_takes_the_run_id_from_its_training_job(pipeline: str) -> None:
    jobs = gitlab_jobs(pipeline)
    registering = [name for name, job in jobs.items() if "register" in " ".join(job["script"])]
    assert registering
    for name in registering:
        (need,) = jobs[name]["needs"]
        trainer = jobs[need["job"]]
        assert need["artifacts"] is True and environment_of(trainer) == TRAINING_ENVIRONMENT
        (kept,) = trainer["artifacts"]["paths"]  # the run id file alone, or the folder of it
        assert kept.endswith("final_run_id.json") or kept.startswith(".promotion-bot/"), kept
        if kept.startswith(".promotion-bot/"):  # several models: only the run id comes back
            assert any("files --take-from" in line for line in jobs[name]["script"])


STUB = """#!{python}
import json, os, sys
run_id = "data/models/final_run_id.json"
found = open(run_id).read() if os.path.exists(run_id) else ""
record = {{"argv": sys.argv[1:], "env": dict(os.environ), "run_id_file": found}}
with open(os.path.join({folder!r}, "bot.jsonl"), "a") as out:
    out.write(json.dumps(record) + "\\n")
"""
SCOPED_VARIABLES = """\
global:
  MLFLOW_TRACKING_URI: http://127.0.0.1:9
  MLFLOW_TRACKING_USERNAME:
    values: {promotion-bot: the-bot, model-training: the-trainer}
  MLFLOW_TRACKING_PASSWORD:
    values: {promotion-bot: bot-password-1, model-training: trainer-password-2}
  GITLAB_TOKEN:
    values: {promotion-bot: glpat-bot-token-3}
  PROMOTION_BOT_SIGNING_KEY:
    values: {promotion-bot: signing-key-4}
"""


@pytest.mark.slow  # gitlab-ci-local runs two jobs
def test_gitlab_ci_local_gives_the_training_job_none_of_the_bots_variables(
    tmp_path: Path,
) -> None:
    """The split include run by gitlab-ci-local with the variables scoped as the README says:
    the training script sees the training account only; the bot's job sees the bot's account,
    GITLAB_TOKEN and the signing key, and the run id the training wrote."""
    records, bin_dir = tmp_path / "records", tmp_path / "bin"
    records.mkdir()
    bin_dir.mkdir()
    stub = bin_dir / "promotion-bot"  # records what the bot would have been given
    stub.write_text(STUB.format(python=sys.executable, folder=str(records)), encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    train = (
        f"{sys.executable} -c 'import json, os; print(json.dumps(dict(os.environ)))'"
        f" > {records}/training.json\n"
        'mkdir -p data/models && echo \'{"run_id": "r-42"}\' > data/models/final_run_id.json\n'
    )
    one_model = ONE_MODEL.replace(", smoke-script: sh train.sh", "")
    repo = gitlab_repo(tmp_path / "repo", one_model, {"train.sh": train})
    home = tmp_path / "home"
    (home / ".gitlab-ci-local").mkdir(parents=True)
    (home / ".gitlab-ci-local" / "variables.yml").write_text(SCOPED_VARIABLES, encoding="utf-8")

    result = ci_runner.run_job(
        repo,
        home,
        ["train:test", "promotion:request"],
        {"PROMOTION_BOT_SKIP_INSTALL": "1"},
        path_prefix=bin_dir,
        timeout=300,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]

    training = json.loads((records / "training.json").read_text(encoding="utf-8"))
    assert training["MLFLOW_TRACKING_USERNAME"] == "the-trainer"
    assert training["MLFLOW_TRACKING_PASSWORD"] == "trainer-password-2"
    assert not {"GITLAB_TOKEN", "PROMOTION_BOT_SIGNING_KEY"} & set(training)
    seen = json.dumps(training)
    assert "bot-password-1" not in seen and "glpat-bot-token-3" not in seen

    calls = [json.loads(line) for line in (records / "bot.jsonl").read_text().splitlines()]
    by_job = {(call["env"]["CI_JOB_NAME"], " ".join(call["argv"])): call for call in calls}
    assert set(by_job) == {
        ("train:test", "--version"),  # the install step of the training job: its MLflow
        ("promotion:request", "--version"),
        ("promotion:request", "register --alias smoke"),
        ("promotion:request", "gate"),
        ("promotion:request", "request"),
    }
    register = by_job[("promotion:request", "register --alias smoke")]
    assert register["env"]["MLFLOW_TRACKING_USERNAME"] == "the-bot"
    assert register["env"]["GITLAB_TOKEN"] == "glpat-bot-token-3"
    assert register["env"]["PROMOTION_BOT_SIGNING_KEY"] == "signing-key-4"
    assert json.loads(register["run_id_file"]) == {"run_id": "r-42"}  # the training's artifact
    assert "GITLAB_TOKEN" not in by_job[("train:test", "--version")]["env"]


# --- GitHub: the workflows ----------------------------------------------------------------------


def bot_action(step: dict[str, Any]) -> bool:
    uses = str(step.get("uses", ""))
    return uses == "./" or uses.endswith("/promotion-bot@<full commit sha>")


def runs_only_the_bot(job: dict[str, Any]) -> bool:
    """Every step is a checkout, an artifact, a command of the bot's action, or a summary line:
    nothing of the project's code (a training script, `.ci/run`) runs in the job."""
    for step in job.get("steps", []):
        uses = str(step.get("uses", ""))
        if uses.startswith(("actions/checkout@", "actions/download-artifact@")):
            continue
        if uses.startswith("actions/upload-artifact@"):
            continue
        if bot_action(step) and (step.get("with") or {}).get("command"):
            continue
        if "run" in step and re.fullmatch(
            r'echo "[^"$]*\$\w+" >> "\$GITHUB_STEP_SUMMARY"', step["run"]
        ):
            continue
        return False
    return True


def holds_bot_secrets(workflow: dict[str, Any], job: dict[str, Any]) -> list[str]:
    text = json.dumps(job)
    held = [name for name in BOT_SECRETS if f"secrets.{name}" in text]
    held += ["github.token"] if "github.token" in text else []
    held += ["the bot's environment"] if job.get("environment") == BOT_ENVIRONMENT else []
    permissions = job.get("permissions", workflow.get("permissions", {}))
    held += [f"{scope}: write" for scope, level in permissions.items() if level == "write"]
    return held


@pytest.mark.parametrize("path", GITHUB_FILES, ids=lambda p: p.name)
def test_no_github_job_that_runs_project_code_holds_the_bots_secrets(path: Path) -> None:
    workflow = load_yaml(path)
    for name, job in workflow["jobs"].items():
        if runs_only_the_bot(job):
            continue
        assert holds_bot_secrets(workflow, job) == [], (path.name, name)
        assert job.get("environment") in (None, TRAINING_ENVIRONMENT), (path.name, name)
    for name, job in workflow["jobs"].items():
        if any(
            bot_action(step) and (step.get("with") or {}).get("command") for step in job["steps"]
        ):
            assert job["environment"] == BOT_ENVIRONMENT, (path.name, name)
            assert runs_only_the_bot(job), (path.name, name)


@pytest.mark.parametrize("path", GITHUB_FILES, ids=lambda p: p.name)
def test_no_checkout_in_a_job_that_holds_a_secret_keeps_its_token(path: Path) -> None:
    workflow = load_yaml(path)
    checked = 0
    for name, job in workflow["jobs"].items():
        secret = "secrets." in json.dumps(job) or holds_bot_secrets(workflow, job)
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@") and secret:
                assert (step.get("with") or {}).get("persist-credentials") is False, name
                checked += 1
    assert checked or path.name == "ci.yml"


def test_the_control_a_training_step_in_the_bots_job_is_caught() -> None:
    """The check above fails on the layout this replaced: training in the bot's job."""
    workflow = load_yaml(REPO_ROOT / ".github" / "workflows" / "train.yml")
    job = workflow["jobs"]["request"]
    job["steps"].insert(2, {"run": "python scripts/placeholder_train.py"})
    assert not runs_only_the_bot(job)
    assert holds_bot_secrets(workflow, job)


# --- GitHub: comments and concurrency -------------------------------------------------------------


def handle_runs_for(body: str, bot: str = "", author_type: str = "User") -> bool:
    """The handle job's `if:` evaluated as GitHub does (startsWith is case-insensitive)."""
    condition = " ".join(load_yaml(COMMANDS_WORKFLOW)["jobs"]["handle"]["if"].split())
    python = (
        condition.replace("&&", " and ")
        .replace("||", " or ")
        .replace("startsWith(", "starts_with(")
        .replace("format(", "fmt(")
        .replace("github.event_name", "event_name")
        .replace("github.event.comment.user.type", "author_type")
        .replace("github.event.comment.body", "body")
        .replace("vars.PROMOTION_BOT_USERNAME", "bot")
    )
    assert not re.search(r"\b(github|vars|secrets)\.", python), python  # all translated
    names = {
        "starts_with": lambda text, prefix: text.lower().startswith(prefix.lower()),
        "fmt": lambda template, *args: template.format(*args),
        "event_name": "issue_comment",
        "author_type": author_type,
        "body": body,
        "bot": bot,
    }
    return bool(eval(python, {"__builtins__": {}}, names))  # noqa: S307 - our own file


COMMENTS = [
    *[f"/{word}" for word in COMMANDS],
    "/promote\nThe March data is better.",
    "/rollback 7",
    "/ROLLBACK v7",
    "/rollback",  # a usage answer
    "/Help",
]
MENTIONS = [f"@promo-bot {word}" for word in COMMANDS] + ["@promo-bot rollback 3"]
CHATTER = ["@alice thanks", "/lgtm", "thanks!", "@alice promote it?", "> /promote", "+1"]


@pytest.mark.parametrize("body", COMMENTS + MENTIONS)
def test_a_command_starts_the_handle_job(body: str) -> None:
    assert parse_comment(body, "promo-bot") is not None  # the bot's grammar takes it
    assert handle_runs_for(body, bot="promo-bot")


@pytest.mark.parametrize("body", CHATTER + MENTIONS)
def test_discussion_never_starts_a_job_that_holds_the_secrets(body: str) -> None:
    """Mentions count only with PROMOTION_BOT_USERNAME set, and only of the bot."""
    assert parse_comment(body, "") is None
    assert not handle_runs_for(body, bot="")
    assert not handle_runs_for(body.replace("@promo-bot", "@alice"), bot="promo-bot")


def test_the_bots_own_answers_start_nothing() -> None:
    assert not handle_runs_for("/promote", bot="promo-bot", author_type="Bot")


def concurrency_groups(path: Path) -> dict[str, str]:
    workflow = load_yaml(path)
    groups = {f"{path.name}:workflow": (workflow.get("concurrency") or {}).get("group", "")}
    for name, job in workflow["jobs"].items():
        groups[f"{path.name}:{name}"] = (job.get("concurrency") or {}).get("group", "")
    return {where: group for where, group in groups.items() if group}


def test_a_comment_cannot_cancel_training_or_the_poll() -> None:
    """GitHub keeps one pending run per group and cancels the older: the handle job's group is
    its own, so a flood of comments replaces only pending handles (which the poll answers)."""
    handle = concurrency_groups(COMMANDS_WORKFLOW).pop("promotion-commands.yml:handle")
    others = {}
    for path in GITHUB_FILES:
        others |= concurrency_groups(path)
    del others["promotion-commands.yml:handle"]
    assert "promotion-commands.yml:poll" in others and "train.yml:request" in others
    template_groups = {g.split("${{")[0] for g in others.values()}  # a matrix's prefix
    assert all(not handle.startswith(prefix) for prefix in template_groups), others
    assert handle not in others.values()
    assert load_yaml(COMMANDS_WORKFLOW)["jobs"]["handle"]["concurrency"]["group"] == handle
