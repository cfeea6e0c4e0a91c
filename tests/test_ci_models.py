"""The CI files for several models in one repository (docs/design.md, "CI integration"): the
GitLab include per model (ci/promotion-bot-model.yml) and the one poll for all
(ci/promotion-bot-poll.yml), the GitHub workflow template with a matrix
(ci/github/train-models.yml). Checked with the real tools: the published schemas
(check-jsonschema, offline), gitlab-ci-local's expansion and rules, one model's `train:test` run
for real against a real MLflow server, and the workflow's change detection under bash."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.forges.local import LocalForge
from bot.registry.client import Registry
from bot.threads.markers import parse_request_marker
from tests import ci_runner
from tests.ci_runner import REPO_ROOT, job_commands, load_yaml, workflow_triggers

MODEL_TEMPLATE = REPO_ROOT / "ci" / "promotion-bot-model.yml"
POLL_TEMPLATE = REPO_ROOT / "ci" / "promotion-bot-poll.yml"
GITHUB_TEMPLATE = REPO_ROOT / "ci" / "github" / "train-models.yml"
PLACEHOLDER = REPO_ROOT / "scripts" / "placeholder_train.py"

# Pinned as the README says (the runs here set PROMOTION_BOT_SKIP_INSTALL: nothing is fetched).
INSTALL = (
    "git+https://gitlab.example.com/tools/promotion-bot.git@" + "0123456789abcdef" * 2 + "01234567"
)
ADOPTER_CI = f"""\
include:
  - local: ci/promotion-bot-model.yml
    inputs:
      model: {{churn}}
      folder: models/churn
      train-script: python placeholder_train.py --experiment churn --logloss 0.4
      install: {INSTALL}
  - local: ci/promotion-bot-model.yml
    inputs:
      model: {{fraud}}
      folder: models/fraud
      train-script: python placeholder_train.py --experiment fraud
      smoke-script: python placeholder_train.py --experiment fraud-toy
      install: {INSTALL}
  - local: ci/promotion-bot-poll.yml
    inputs:
      install: {INSTALL}
"""


def adopter(
    folder: Path,
    churn: str = "churn",
    fraud: str = "fraud",
    gitlab_ci: str = ADOPTER_CI,
    churn_params: str = "",
) -> Path:
    """A repository with two models, each in its folder, and an `origin` at its first commit
    (gitlab-ci-local evaluates `rules:changes` against origin/main)."""
    (folder / "ci").mkdir(parents=True)
    for template in (MODEL_TEMPLATE, POLL_TEMPLATE):
        shutil.copy2(template, folder / "ci" / template.name)
    shutil.copy2(PLACEHOLDER, folder / PLACEHOLDER.name)
    (folder / ".gitlab-ci.yml").write_text(gitlab_ci.format(churn=churn, fraud=fraud))
    (folder / "params.yaml").write_text(
        "models:\n  - models/churn/params.yaml\n  - models/fraud/params.yaml\n"
    )
    for key, name in (("churn", churn), ("fraud", fraud)):
        (folder / "models" / key).mkdir(parents=True)
        (folder / "models" / key / "params.yaml").write_text(
            (churn_params if key == "churn" and churn_params else "")
            or f"register_model: {{model_name: {name}}}\n"
        )
    ci_runner.git_commit_all(folder)
    _git(folder, "clone", "-q", "--bare", ".", "../origin.git")
    _git(folder, "remote", "add", "origin", "../origin.git")
    _git(folder, "fetch", "-q", "origin")
    _git(folder, "remote", "set-head", "origin", "main")
    return folder


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=ci-test", "-c", "user.email=ci-test@example.invalid"]
    done = subprocess.run(
        ["git", *identity, "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def commit(repo: Path, path: str, text: str = "changed\n") -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"change {path}")


def model_jobs(model: str) -> list[str]:
    """One include's jobs: the project's training, then the bot's job that takes its run id."""
    return [f"{kind}:{model}" for kind in ("train:smoke", "promotion:smoke")] + [
        f"{kind}:{model}" for kind in ("train:test", "promotion:request")
    ]


# --- schemas ---------------------------------------------------------------------------------


def test_the_templates_for_several_models_are_valid_for_gitlab_and_github(tmp_path: Path) -> None:
    files = []
    for template in (MODEL_TEMPLATE, POLL_TEMPLATE):
        header, body = ci_runner.split_documents(template, tmp_path)
        assert set(load_yaml(header)) == {"spec"}
        files += [header, body]
    result = ci_runner.check_jsonschema("vendor.gitlab-ci", files, transform="gitlab-ci")
    assert result.returncode == 0, result.stdout + result.stderr
    result = ci_runner.check_jsonschema("vendor.github-workflows", [GITHUB_TEMPLATE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_key_in_them(tmp_path: Path) -> None:
    """The control: the same check fails on a misspelt key."""
    text = MODEL_TEMPLATE.read_text(encoding="utf-8")
    copy = tmp_path / MODEL_TEMPLATE.name
    copy.write_text(text.replace("  resource_group:", "  resource_grop:", 1), encoding="utf-8")
    files = ci_runner.split_documents(copy, tmp_path)
    result = ci_runner.check_jsonschema("vendor.gitlab-ci", files, transform="gitlab-ci")
    assert result.returncode != 0 and "'resource_grop' was unexpected" in result.stdout
    broken = tmp_path / GITHUB_TEMPLATE.name
    workflow = GITHUB_TEMPLATE.read_text(encoding="utf-8")
    broken.write_text(workflow.replace("fail-fast:", "fail_fast:", 1), encoding="utf-8")
    result = ci_runner.check_jsonschema("vendor.github-workflows", [broken])
    assert result.returncode != 0


# --- GitLab: one include per model, one poll --------------------------------------------------


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return adopter(tmp_path_factory.mktemp("two-models") / "repo")


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
def test_each_model_has_its_own_jobs_resource_group_and_model(two_models: Path, tmp_path: Path):
    jobs = ci_runner.jobs(ci_runner.preview(two_models, tmp_path))
    assert set(jobs) == {*model_jobs("churn"), *model_jobs("fraud"), "promotion:poll"}
    for model in ("churn", "fraud"):
        for kind in ("train:smoke", "train:test", "promotion:smoke", "promotion:request"):
            job = jobs[f"{kind}:{model}"]
            assert job["variables"]["PROMOTION_BOT_MODEL"] == model
            changes = [rule.get("changes") for rule in job["rules"] if "changes" in rule]
            assert changes == [[f"models/{model}/**/*", "params.yaml"]]
        for kind in ("promotion:smoke", "promotion:request"):  # the bot's jobs: one at a time
            job = jobs[f"{kind}:{model}"]
            assert job["resource_group"] == f"model-promotion-{model}"
            assert job["interruptible"] is False
        kept = f".promotion-bot/{model}"
        assert jobs[f"promotion:request:{model}"]["script"] == [
            f'promotion-bot files --take-from "{kept}"'.replace(model, "$PROMOTION_BOT_MODEL"),
            "promotion-bot register --alias smoke",
            "promotion-bot gate",
            "promotion-bot request",
        ]
        # The run id reaches the bot as the training job's artifact: the model's own file,
        # wherever its params put it, copied into a folder the include can name.
        assert jobs[f"train:test:{model}"]["artifacts"]["paths"] == [f"{kept}/"]
        assert jobs[f"train:test:{model}"]["after_script"] == [
            'promotion-bot files --copy-to ".promotion-bot/$PROMOTION_BOT_MODEL"'
        ]
        (need,) = jobs[f"promotion:request:{model}"]["needs"]
        assert (need["job"], need["artifacts"]) == (f"train:test:{model}", True)
        assert jobs[f"train:test:{model}"]["needs"][0]["job"] == f"promotion:smoke:{model}"
    assert jobs["train:test:churn"]["script"] == [
        "python placeholder_train.py --experiment churn --logloss 0.4"
    ]
    poll = jobs["promotion:poll"]
    assert poll["script"] == ['promotion-bot poll --report ""']  # no page unless asked
    assert "PROMOTION_BOT_MODEL" not in poll["variables"]  # one poll, every model
    assert poll["resource_group"] == "model-promotion-commands"
    for name, job in jobs.items():
        assert not {"MLFLOW_TRACKING_URI", "GITLAB_TOKEN"} & set(job.get("variables") or {}), name
        assert any("MLFLOW_TRACKING_URI" in line for line in job_commands(job))  # refused if unset
        assert any(f'install --quiet "{INSTALL}"' in line for line in job_commands(job)), name


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
def test_the_readmes_includes_for_several_models_expand(tmp_path: Path) -> None:
    """The README's example as a reader copies it, placeholders and all (remotes made local)."""
    example = ci_runner.readme_include(MODEL_TEMPLATE.name).replace("{", "{{").replace("}", "}}")
    repo = adopter(tmp_path / "repo", gitlab_ci=example)
    jobs = ci_runner.jobs(ci_runner.preview(repo, tmp_path / "home"))
    assert set(jobs) == {*model_jobs("churn"), *model_jobs("fraud"), "promotion:poll"}
    pinned = f"git+https://<gitlab host>/<group>/promotion-bot.git@{ci_runner.PIN}"
    for name, job in jobs.items():
        assert any(f'install --quiet "{pinned}"' in line for line in job_commands(job)), name


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
@pytest.mark.parametrize("include", [0, 2], ids=["a model's", "the poll's"])
def test_an_include_without_install_is_refused(tmp_path: Path, include: int) -> None:
    """No `install`, no pipeline: neither include falls back to a name on PyPI."""
    parts = ADOPTER_CI.split("  - local: ")
    parts[include + 1] = "\n".join(
        line for line in parts[include + 1].split("\n") if "install:" not in line
    )
    repo = adopter(tmp_path / "repo", gitlab_ci="  - local: ".join(parts))
    said = ci_runner.refusal(repo, tmp_path)
    assert "`install` input: required value has not been provided" in said


PUSH = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}
CHURN = {"train:test:churn", "promotion:request:churn"}  # churn has no smoke-script
FRAUD = set(model_jobs("fraud"))
CHANGE_CASES = {
    "a change to churn": ("models/churn/train.py", PUSH, CHURN),
    "a change to fraud": ("models/fraud/data.csv", PUSH, FRAUD),
    "the shared params": ("params.yaml", PUSH, CHURN | FRAUD),
    "elsewhere": ("README.md", PUSH, set()),
    "a manual run": (
        "README.md",
        {"CI_PIPELINE_SOURCE": "web", "CI_COMMIT_BRANCH": "main"},
        CHURN | FRAUD,
    ),
    "a schedule": ("README.md", {"CI_PIPELINE_SOURCE": "schedule"}, {"promotion:poll"}),
    "a merge request": (
        "models/churn/train.py",
        {"CI_PIPELINE_SOURCE": "merge_request_event"},
        set(),
    ),
    "the bot's branch": (
        "models/churn/train.py",
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "promotion/churn/v3"},
        set(),
    ),
}


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
@pytest.mark.parametrize(
    ("changed", "variables", "expected"), CHANGE_CASES.values(), ids=CHANGE_CASES
)
def test_a_change_to_one_model_trains_that_model_only(
    tmp_path: Path, changed: str, variables: dict[str, str], expected: set[str]
) -> None:
    repo = adopter(tmp_path / "repo")
    commit(
        repo,
        changed,
        "# edited\nmodels: [models/churn/params.yaml, models/fraud/params.yaml]\n"
        if changed == "params.yaml"
        else "changed\n",
    )
    unset = ("CI_COMMIT_BRANCH",) if "CI_COMMIT_BRANCH" not in variables else ()
    jobs = ci_runner.list_jobs(repo, tmp_path / "home", variables, unset)
    assert {name for name, when in jobs.items() if when != "never"} == expected


@pytest.mark.slow
def test_a_fresh_repository_without_origin_runs_as_the_docs_say(tmp_path: Path) -> None:
    """`git init` and gitlab-ci-local, no remote yet: `rules:changes` has no origin/main to
    compare with. The option the include's comment and docs/adopting.md give works."""
    repo = adopter(tmp_path / "repo")
    _git(repo, "remote", "remove", "origin")
    option = "--evaluate-rule-changes=false"
    assert option.split("=")[0] in MODEL_TEMPLATE.read_text(encoding="utf-8")
    assert option.split("=")[0] in (REPO_ROOT / "docs" / "adopting.md").read_text(encoding="utf-8")
    push = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}
    jobs = ci_runner.list_jobs(repo, tmp_path / "home", push, options=[option])
    assert {name for name, when in jobs.items() if when != "never"} == {
        "train:test:churn",
        "train:test:fraud",
        "train:smoke:fraud",
        "promotion:request:churn",
        "promotion:request:fraud",
        "promotion:smoke:fraud",
    }


@pytest.mark.slow
def test_gitlab_ci_local_runs_one_models_train_test(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    churn, fraud = f"{model_name[:40]}-churn", f"{model_name[:40]}-fraud"
    # The model's files where its own params put them, not the default data/models/<name>/.
    own = (
        f"register_model: {{model_name: {churn}, run_id_file: models/churn/data/run.json}}\n"
        "promote_model: {output: models/churn/data/gate.json}\n"
    )
    repo = adopter(tmp_path / "repo", churn, fraud, churn_params=own)
    forge_dir = tmp_path / "forge"
    result = ci_runner.run_job(
        repo,
        tmp_path / "gcl-home",
        [f"train:test:{churn}", f"promotion:request:{churn}"],
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PROMOTION_BOT_SKIP_INSTALL": "1",
            "PROMOTION_BOT_PLATFORM": "local",
            "PROMOTION_BOT_LOCAL_DIR": str(forge_dir),
            "GITLAB_CI": "true",
            "GITLAB_USER_LOGIN": "dana",
            "CI_PIPELINE_SOURCE": "web",  # "Run pipeline": every model's jobs, no change needed
        },
        path_prefix=Path(sys.executable).parent,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert f"PASS  train:test:{churn}" in log and f"PASS  promotion:request:{churn}" in log
    assert "no artifacts" not in log.lower()
    # gitlab-ci-local keeps a job's artifacts under a folder named after the job (":" escaped):
    # the training job's holds the run id, the bot's job's the run id and the gate's result.
    kept = sorted((repo / ".gitlab-ci-local" / "artifacts").glob(f"*/.promotion-bot/{churn}"))
    assert len(kept) == 2, kept
    run_ids = {json.loads((k / "models/churn/data/run.json").read_text())["run_id"] for k in kept}
    (run_id,) = run_ids
    gates = [k / "models/churn/data/gate.json" for k in kept if (k / "models/churn/data").is_dir()]
    assert [json.loads(g.read_text())["passed"] for g in gates if g.is_file()] == [True]
    bot_job = re.escape(f"promotion:request:{churn}")
    assert re.search(rf"{bot_job} > PASS\b.*{re.escape(churn)}.*0\.4", log)  # the gate's line

    registry = Registry(tracking_uri)
    assert registry.aliases(churn) == {"smoke": 1, "candidate": 1}
    assert registry.version(churn, 1).run_id == run_id
    assert not registry.model_exists(fraud)  # the other model was not touched
    threads = LocalForge(forge_dir).find_threads(["model-promotion"], state="all")
    assert [thread.title for thread in threads] == [f"Promote {churn} v1 to champion"]
    marker = parse_request_marker(threads[0].body) or {}
    assert (marker["model"], marker["version"], marker["requested_by"]) == (churn, "1", "dana")
    assert registry.version(churn, 1).requested_in == threads[0].url


# --- GitHub: a matrix of the models that changed ------------------------------------------------


def test_the_github_template_trains_each_model_in_its_own_group() -> None:
    workflow = load_yaml(GITHUB_TEMPLATE)
    triggers = workflow_triggers(workflow)
    assert triggers["push"] == {"branches": ["main"], "paths": ["models/**", "params.yaml"]}
    assert "workflow_dispatch" in triggers and "concurrency" not in workflow
    train, job = workflow["jobs"]["train"], workflow["jobs"]["request"]
    for one in (train, job):
        matrix = one["strategy"]["matrix"]["model"]
        assert matrix == "${{ fromJSON(needs.changed.outputs.models) }}"
        assert one["strategy"]["fail-fast"] is False
    assert job["concurrency"] == {
        "group": "model-promotion-${{ matrix.model }}",
        "cancel-in-progress": False,
    }

    def bot_commands(one: dict[str, Any]) -> list[str]:
        uses = [s for s in one["steps"] if str(s.get("uses", "")).endswith("@<full commit sha>")]
        assert all(s["with"]["model"] == "${{ matrix.model }}" for s in uses if "with" in s)
        return [(s.get("with") or {}).get("command", "") for s in uses]

    assert bot_commands(train) == [""]  # Python and MLflow for the training, no command
    kept = ".promotion-bot/${{ matrix.model }}"
    assert bot_commands(job) == [
        f"files --take-from {kept}",
        "register --alias smoke",
        "gate",
        "request",
    ]
    # the model's name reaches the shell through the environment only
    train_step, copy_step = [s for s in train["steps"] if "run" in s]
    assert "${{" not in train_step["run"] and train_step["env"]["MODEL"] == "${{ matrix.model }}"
    # the model's files are where its params put them: the bot copies them into one folder ...
    assert copy_step["run"] == 'promotion-bot files --copy-to ".promotion-bot/$PROMOTION_BOT_MODEL"'
    assert copy_step["env"] == {"PROMOTION_BOT_MODEL": "${{ matrix.model }}"}
    # ... and the run id, the model's own file, is all the bot's job takes back from it
    (upload,) = [s for s in train["steps"] if "upload-artifact" in s.get("uses", "")]
    (download,) = [s for s in job["steps"] if "download-artifact" in s.get("uses", "")]
    assert upload["with"]["name"] == download["with"]["name"] == "run-id-${{ matrix.model }}"
    assert upload["with"]["path"].rstrip("/") == download["with"]["path"] == kept
    assert upload["with"]["include-hidden-files"] is True  # upload-artifact skips dot folders
    steps = job["steps"]
    assert steps.index(download) < next(
        i for i, s in enumerate(steps) if "files --take-from" in str(s.get("with"))
    )
    # each job's secrets from its own environment (tests/test_ci_privileges.py)
    assert (train["environment"], job["environment"]) == ("model-training", "promotion-bot")
    assert job["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    changed = workflow["jobs"]["changed"]
    assert "environment" not in changed and "secrets." not in json.dumps(changed)
    assert "${{" not in changed["steps"][1]["run"]


def run_detection(repo: Path, tmp_path: Path, event: str, before: str) -> list[str]:
    """The `changed` job's step, as GitHub runs `shell: bash`, in a checkout of `repo`."""
    step = load_yaml(GITHUB_TEMPLATE)["jobs"]["changed"]["steps"][1]
    script, output = tmp_path / "step.sh", tmp_path / "output"
    script.write_text(step["run"], encoding="utf-8")
    output.write_text("", encoding="utf-8")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_OUTPUT": str(output)}
    env.update(EVENT=event, BEFORE=before)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = output.read_text(encoding="utf-8").strip()
    assert line.startswith("models=")
    return list(json.loads(line.removeprefix("models=")))


def test_the_github_template_lists_the_models_a_push_changed(tmp_path: Path) -> None:
    repo = adopter(tmp_path / "repo")
    first = _git(repo, "rev-parse", "HEAD")
    commit(repo, "models/fraud/train.py")
    assert run_detection(repo, tmp_path, "push", first) == ["fraud"]
    second = _git(repo, "rev-parse", "HEAD")
    commit(repo, "README.md")
    assert run_detection(repo, tmp_path, "push", second) == []
    third = _git(repo, "rev-parse", "HEAD")
    commit(repo, "params.yaml", "models: [models/churn/params.yaml, models/fraud/params.yaml]\n")
    assert run_detection(repo, tmp_path, "push", third) == ["churn", "fraud"]
    assert run_detection(repo, tmp_path, "workflow_dispatch", "") == ["churn", "fraud"]
    # a new branch's first push names no earlier commit: every model
    assert run_detection(repo, tmp_path, "push", "0" * 40) == ["churn", "fraud"]


def test_the_commands_workflow_serves_every_model_as_it_is() -> None:
    """handle and poll take no --model: they route (tests/test_many_models.py)."""
    workflow: dict[str, Any] = load_yaml(
        REPO_ROOT / ".github" / "workflows" / "promotion-commands.yml"
    )
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "model" not in (step.get("with") or {})
