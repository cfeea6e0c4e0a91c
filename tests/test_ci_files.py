"""The CI integration files (docs/design.md, "CI integration"), checked with the real tools:
GitLab's and GitHub's JSON schemas (check-jsonschema, vendored, offline), gitlab-ci-local's
expansion of the include template and its rule evaluation, and one real run of the included
`train:test` job against a real MLflow server. The GitHub Action: tests/test_action.py."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ci.request import DOTENV_FILE
from bot.config.params import Params, load_params, parse_params
from bot.forges.local import LocalForge
from bot.registry.client import Registry
from bot.threads.markers import parse_request_marker
from tests import ci_runner
from tests.ci_runner import REPO_ROOT, job_commands, load_yaml, workflow_triggers

GITLAB_CI = REPO_ROOT / ".gitlab-ci.yml"
TEMPLATE = REPO_ROOT / "ci" / "promotion-bot.yml"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
TRAIN_WORKFLOW = WORKFLOWS / "train.yml"
COMMANDS_WORKFLOW = WORKFLOWS / "promotion-commands.yml"
DVC_YAML = REPO_ROOT / "dvc.yaml"
PLACEHOLDER = REPO_ROOT / "scripts" / "placeholder_train.py"

GROUP = "model-promotion"
TRAINING_JOBS = ("train:smoke", "train:test")  # the project's code: the training account only
BOT_JOBS = ("promotion:smoke", "promotion:request", "promotion:poll")  # the bot alone
MODEL_JOBS = TRAINING_JOBS + BOT_JOBS
# Commands that move an alias (register, gate, and champion changes) or touch the request.
ALIAS_COMMAND = re.compile(r"\bpromotion-bot\s+(register|gate|request|poll|handle)\b")
# The project's params.yaml, which the CI files' hard-coded paths must agree with.
PARAMS = (
    load_params(REPO_ROOT / "params.yaml") if (REPO_ROOT / "params.yaml").exists() else Params()
)


def gitlab_repo(folder: Path, gitlab_ci: str | None = None) -> Path:
    """A git repository holding the pipeline and the template it includes."""
    (folder / "ci").mkdir(parents=True, exist_ok=True)
    shutil.copy2(TEMPLATE, folder / "ci" / TEMPLATE.name)
    if gitlab_ci is None:
        shutil.copy2(GITLAB_CI, folder / ".gitlab-ci.yml")
    else:
        (folder / ".gitlab-ci.yml").write_text(gitlab_ci, encoding="utf-8")
    ci_runner.git_commit_all(folder)
    return folder


@functools.cache
def gitlab_pipeline() -> dict[str, Any]:
    """.gitlab-ci.yml with its include expanded by gitlab-ci-local (read once per run)."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = gitlab_repo(Path(tmp) / "repo")
        return ci_runner.preview(repo, Path(tmp) / "home")


def gitlab_jobs() -> dict[str, dict[str, Any]]:
    return ci_runner.jobs(gitlab_pipeline())


def spec_header(template: Path) -> Any:
    """The `spec:` document of an include template (the jobs after `---` hold GitLab tags)."""
    return yaml.safe_load(template.read_text(encoding="utf-8").split("\n---\n")[0])


def run_lines(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]) for step in job.get("steps", []) if "run" in step]


def index_of(lines: list[str], pattern: str) -> int:
    """Position of the first line matching `pattern`; fails with the lines when none does."""
    for position, line in enumerate(lines):
        if re.search(pattern, line):
            return position
    raise AssertionError(f"no line matches {pattern!r} in {lines}")


# --- schemas (offline, vendored in check-jsonschema) -----------------------------------------


def test_gitlab_ci_and_the_include_template_are_valid_for_gitlab(tmp_path: Path) -> None:
    header, body = ci_runner.split_documents(TEMPLATE, tmp_path)
    assert set(load_yaml(header)) == {"spec"}
    files = [GITLAB_CI, header, body]
    result = ci_runner.check_jsonschema("vendor.gitlab-ci", files, transform="gitlab-ci")
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflows_are_valid_for_github() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {TRAIN_WORKFLOW, COMMANDS_WORKFLOW} <= set(files)
    result = ci_runner.check_jsonschema("vendor.github-workflows", files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("source", "schema", "good", "broken", "reported"),
    [
        (
            TEMPLATE,
            "vendor.gitlab-ci",
            "  timeout: 15 minutes\n",
            "  timout: 15 minutes\n",
            "'timout' was unexpected",
        ),
        (
            TEMPLATE,
            "vendor.gitlab-ci",
            "    stage:\n      default: deploy\n",
            "    stage:\n      type: number\n      default: deploy\n",
            "$.spec.inputs.stage.default: 'deploy' is not of type 'number'",
        ),
        (
            TRAIN_WORKFLOW,
            "vendor.github-workflows",
            "      cancel-in-progress: false\n",
            "      cancel_in_progress: false\n",
            "$.jobs['register-smoke']",
        ),
    ],
    ids=["gitlab template job", "gitlab template input", "github"],
)
def test_schema_check_rejects_a_broken_key(
    tmp_path: Path, source: Path, schema: str, good: str, broken: str, reported: str
) -> None:
    text = source.read_text(encoding="utf-8")
    assert good in text
    copy = tmp_path / source.name
    copy.write_text(text.replace(good, broken, 1), encoding="utf-8")
    files = ci_runner.split_documents(copy, tmp_path) if source == TEMPLATE else [copy]
    transform = "gitlab-ci" if source == TEMPLATE else ""
    result = ci_runner.check_jsonschema(schema, files, transform=transform)
    assert result.returncode != 0
    assert reported in result.stdout


# --- .gitlab-ci.yml: structure ----------------------------------------------------------------


def test_every_gitlab_job_that_moves_an_alias_is_in_the_resource_group() -> None:
    movers = {
        name
        for name, job in gitlab_jobs().items()
        if any(ALIAS_COMMAND.search(line) for line in job_commands(job))
    }
    assert movers == set(BOT_JOBS)  # the training jobs run the project's code, never the bot
    for name in movers:
        assert gitlab_jobs()[name].get("resource_group") == GROUP, name
        assert gitlab_jobs()[name].get("interruptible") is False, name


def needed(job: dict[str, Any]) -> list[tuple[str, bool, bool]]:
    """A job's `needs` as (job, artifacts, optional)."""
    return [(n["job"], n.get("artifacts", True), n.get("optional", False)) for n in job["needs"]]


def test_gitlab_training_jobs_run_the_lifecycle_in_order() -> None:
    """Training, then the bot's job with the training job's run id (its artifact)."""
    jobs = gitlab_jobs()
    assert jobs["train:smoke"]["script"] == [
        "python scripts/placeholder_train.py --experiment smoke --logloss 0.69"
    ]
    assert jobs["promotion:smoke"]["script"] == ["promotion-bot register --alias ci-smoke"]
    assert needed(jobs["promotion:smoke"]) == [("train:smoke", True, False)]
    assert jobs["train:test"]["script"] == ["python scripts/placeholder_train.py"]
    assert needed(jobs["train:test"]) == [("promotion:smoke", False, True)]
    assert jobs["promotion:request"]["script"] == [
        "promotion-bot register --alias smoke",
        "promotion-bot gate",
        "promotion-bot request",
    ]
    assert needed(jobs["promotion:request"]) == [("train:test", True, False)]


def test_gitlab_request_job_keeps_the_gate_result_and_the_request_dotenv() -> None:
    assert gitlab_jobs()["train:test"]["artifacts"]["paths"] == [PARAMS.register_model.run_id_file]
    artifacts = gitlab_jobs()["promotion:request"]["artifacts"]
    assert PARAMS.promote_model.output in artifacts["paths"]
    assert PARAMS.register_model.run_id_file in artifacts["paths"]
    assert artifacts["reports"]["dotenv"] == DOTENV_FILE


def test_the_pipeline_is_the_include_with_this_repository_as_the_bot() -> None:
    pipeline = load_yaml(GITLAB_CI)
    (include,) = pipeline["include"]
    assert include["local"] == "ci/promotion-bot.yml"
    assert include["inputs"]["install"] == "."
    assert not set(MODEL_JOBS) & set(pipeline)  # all included
    for name in MODEL_JOBS:
        job = gitlab_jobs()[name]
        assert job["image"] in ("python:3.11-slim", {"name": "python:3.11-slim"})
        install = job["before_script"][index_of(job["before_script"], r"pip install")]
        assert "PROMOTION_BOT_SKIP_INSTALL" in install and 'install --quiet "."' in install
        assert job["stage"] == "train"


def test_gitlab_variables_hold_no_secret() -> None:
    for name, job in gitlab_jobs().items():
        variables = job.get("variables") or {}
        for secret in ("MLFLOW_TRACKING_URI", "GITLAB_TOKEN", "MLFLOW_TRACKING_PASSWORD"):
            assert secret not in variables, name
    assert gitlab_jobs()["promotion:request"]["variables"]["PROMOTION_BOT_PLATFORM"] == "gitlab"
    for path in (GITLAB_CI, TEMPLATE):
        text = re.sub(r"\s*\n\s*#?\s*", " ", path.read_text(encoding="utf-8"))  # comments joined
        assert "CI_JOB_TOKEN cannot write notes" in text  # why a separate GITLAB_TOKEN
        # Protected: only pipelines of protected branches and tags ever see them.
        assert re.search(r"MASKED and PROTECTED", text), path.name


def test_gitlab_poll_is_only_ever_scheduled() -> None:
    rules = gitlab_jobs()["promotion:poll"]["rules"]
    runs = [rule for rule in rules if rule.get("when") != "never"]
    assert runs == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert gitlab_jobs()["promotion:poll"]["script"] == ["promotion-bot poll"]


def test_gitlab_test_job_runs_the_projects_ci_script() -> None:
    assert gitlab_jobs()["test"]["script"] == ["bash .ci/run"]
    assert (REPO_ROOT / ".ci" / "run").is_file()


# --- .gitlab-ci.yml: rules as gitlab-ci-local evaluates them ----------------------------------


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gitlab_repo(tmp_path_factory.mktemp("gitlab-rules"))


RULE_CASES = {
    "push to main": ({}, (), {"test", *TRAINING_JOBS, "promotion:smoke", "promotion:request"}),
    "schedule": ({"CI_PIPELINE_SOURCE": "schedule"}, (), {"promotion:poll"}),
    "push to a branch": ({"CI_COMMIT_BRANCH": "feature"}, (), {"test"}),
    "manual run on a branch": (
        {"CI_COMMIT_BRANCH": "feature", "CI_PIPELINE_SOURCE": "web"},
        (),
        {"test", *TRAINING_JOBS, "promotion:smoke", "promotion:request"},
    ),
    # Code nobody has merged never runs with the registry's credentials (docs/security.md).
    "merge request with the registry": (
        {"CI_PIPELINE_SOURCE": "merge_request_event", "MLFLOW_TRACKING_URI": "http://mlflow"},
        ("CI_COMMIT_BRANCH",),
        {"test"},
    ),
    "merge request without the registry": (
        {"CI_PIPELINE_SOURCE": "merge_request_event"},
        ("CI_COMMIT_BRANCH",),
        {"test"},
    ),
    "the bot's promotion branch": ({"CI_COMMIT_BRANCH": "promotion/m/v3"}, (), {"test"}),
    "local run, SKIP_MODEL_JOBS": ({"SKIP_MODEL_JOBS": "1"}, (), {"test"}),
    "scheduled local run, SKIP_MODEL_JOBS": (
        {"SKIP_MODEL_JOBS": "1", "CI_PIPELINE_SOURCE": "schedule"},
        (),
        set(),
    ),
}


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
@pytest.mark.parametrize(("variables", "unset", "expected"), RULE_CASES.values(), ids=RULE_CASES)
def test_gitlab_rules_pick_the_jobs_of_each_pipeline(
    pipeline_repo: Path,
    tmp_path: Path,
    variables: dict[str, str],
    unset: tuple[str, ...],
    expected: set[str],
) -> None:
    jobs = ci_runner.list_jobs(pipeline_repo, tmp_path, variables, unset)
    assert set(jobs) == {"test", *MODEL_JOBS}
    assert {name for name, when in jobs.items() if when != "never"} == expected


# A new repository: its whole .gitlab-ci.yml is the README's include, placeholders and all (the
# template is a local file here, as no remote can be fetched in the tests).
ADOPTER_CI = ci_runner.readme_include(TEMPLATE.name)
PINNED_INSTALL = f"git+https://<gitlab host>/<group>/promotion-bot.git@{ci_runner.PIN}"
ADOPTER_CASES = {
    "push to main": ({}, (), {"train:test", "promotion:request"}),  # no smoke-script: no smoke
    "merge request": ({"CI_PIPELINE_SOURCE": "merge_request_event"}, ("CI_COMMIT_BRANCH",), set()),
    "schedule": ({"CI_PIPELINE_SOURCE": "schedule"}, (), {"promotion:poll"}),
    "manual run": (
        {"CI_COMMIT_BRANCH": "feature", "CI_PIPELINE_SOURCE": "web"},
        (),
        {"train:test", "promotion:request"},
    ),
}


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
@pytest.mark.parametrize(
    ("variables", "unset", "expected"), ADOPTER_CASES.values(), ids=ADOPTER_CASES
)
def test_a_repository_adopts_the_bot_with_one_include(
    tmp_path: Path, variables: dict[str, str], unset: tuple[str, ...], expected: set[str]
) -> None:
    repo = gitlab_repo(tmp_path / "adopter", ADOPTER_CI)
    jobs = ci_runner.list_jobs(repo, tmp_path / "home", variables, unset)
    assert set(jobs) == set(MODEL_JOBS)
    assert {name for name, when in jobs.items() if when != "never"} == expected
    job = ci_runner.jobs(ci_runner.preview(repo, tmp_path / "home"))["train:test"]
    assert job["script"][0] == "python train.py"
    assert job["stage"] == "deploy"  # a stage every pipeline has
    install = job["before_script"][index_of(job["before_script"], r"pip install")]
    assert f'install --quiet "{PINNED_INSTALL}"' in install


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
@pytest.mark.parametrize("missing", ["install", "train-script"])
def test_the_include_without_a_required_input_is_refused(tmp_path: Path, missing: str) -> None:
    """No `install`, no job: the include never falls back to a name on PyPI."""
    lines = ADOPTER_CI.splitlines(keepends=True)
    kept = [line for line in lines if not line.strip().startswith(f"{missing}:")]
    assert len(kept) == len(lines) - 1
    repo = gitlab_repo(tmp_path / "adopter", "".join(kept))
    said = ci_runner.refusal(repo, tmp_path)
    assert f"`{missing}` input: required value has not been provided" in said


# --- the copy-paste examples: pinned to what the reader reviewed, never a name on PyPI -----------

EXAMPLES = [
    ci_runner.README,
    GITLAB_CI,
    REPO_ROOT / "action.yml",
    *sorted((REPO_ROOT / "ci").rglob("*.yml")),
    *sorted(WORKFLOWS.glob("*.yml")),
]


@pytest.mark.parametrize("template", sorted((REPO_ROOT / "ci").glob("*.yml")), ids=lambda p: p.name)
def test_every_include_requires_a_pinned_install(template: Path) -> None:
    """GitLab makes an input without `default:` required; the description says what to give."""
    install = spec_header(template)["spec"]["inputs"]["install"]
    assert "default" not in install
    description = " ".join(install["description"].split())
    assert (
        f"`git+https://gitlab.example.com/tools/promotion-bot.git@{ci_runner.PIN}`" in description
    )
    assert "or `.` when this repository is the bot" in description
    assert "never a bare name" in description


def test_every_example_pins_the_copy_you_reviewed_and_never_installs_by_name() -> None:
    found = {"uses": 0, "raw": 0, "install": 0}
    pinned_git = f"/promotion-bot.git@{ci_runner.PIN}"
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        for ref in re.findall(r"promotion-bot@(<[^>]*>|[\w.-]+)", text):  # `uses:` of the action
            assert ref == "<full commit sha>", (path.name, ref)
            found["uses"] += 1
        for ref in re.findall(r"/-/raw/(<[^>]*>|[^/\s]+)/ci/", text):  # remote includes
            assert ref == ci_runner.PIN, (path.name, ref)
            found["raw"] += 1
        for value in re.findall(r"\binstall: *([^\n,}#]+)", text):  # the include's input
            value = value.strip().strip('"`')
            pinned = value.startswith("git+https://") and value.endswith(pinned_git)
            assert value == "." or pinned, (path.name, value)
            found["install"] += 1
        assert not re.search(r"pip install[^\n]*\bpromotion-bot\[", text), path.name
    assert all(found.values()), found  # the patterns still match the examples


# --- .gitlab-ci.yml: train:test and the bot's promotion:request, run for real ----------------


@pytest.mark.slow
def test_gitlab_train_test_job_runs_with_a_local_runner(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    repo = ci_runner.copy_project(tmp_path / "repo")
    params_file = repo / "params.yaml"
    params = (load_yaml(params_file) if params_file.exists() else None) or {}
    params.setdefault("register_model", {})["model_name"] = model_name
    params_file.write_text(json.dumps(params), encoding="utf-8")  # JSON is YAML
    config = parse_params(params)
    sha = ci_runner.git_commit_all(repo)
    forge_dir = tmp_path / "forge"

    result = ci_runner.run_job(
        repo,
        tmp_path / "gcl-home",
        ["train:test", "promotion:request"],
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PROMOTION_BOT_SKIP_INSTALL": "1",
            "PROMOTION_BOT_PLATFORM": "local",
            "PROMOTION_BOT_LOCAL_DIR": str(forge_dir),
            "GITLAB_CI": "true",  # what GitLab itself sets (gitlab-ci-local says "false")
            "GITLAB_USER_LOGIN": "dana",  # else gitlab-ci-local derives it from git config
        },
        path_prefix=Path(sys.executable).parent,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert "PASS  train:test" in log and "PASS  promotion:request" in log
    assert re.search(r"train:test +\$ python scripts/placeholder_train\.py\n", log)  # the input
    gate_line = rf"promotion:request > PASS\b.*{re.escape(model_name)}.*0\.61"
    assert re.search(gate_line, log)  # the bot's job found the run id in the artifact

    registry = Registry(tracking_uri)
    assert registry.aliases(model_name) == {"smoke": 1, "candidate": 1}
    run = registry.run(registry.version(model_name, 1).run_id)
    assert run.metrics["final.logloss"] == pytest.approx(0.61)
    assert run.tags["git_sha"] == sha  # CI_COMMIT_SHA reached the training step

    gate = json.loads((repo / config.promote_model.output).read_text(encoding="utf-8"))
    assert (gate["model"], gate["version"], gate["passed"]) == (model_name, 1, True)
    artifacts = repo / ".gitlab-ci-local" / "artifacts"
    exported = {path.name for path in artifacts.glob("*/data/models/*.json")}
    assert exported == {"promoted_model.json", "final_run_id.json"}
    assert list(artifacts.glob(f"*/.gitlab-ci-reports/dotenv/{DOTENV_FILE}"))

    threads = LocalForge(forge_dir).find_threads(config.promotion.request.labels, state="all")
    assert [thread.title for thread in threads] == [f"Promote {model_name} v1 to champion"]
    state = parse_request_marker(threads[0].body) or {}
    assert (state["model"], state["version"], state["requested_by"]) == (model_name, "1", "dana")
    assert state["run"] == run.run_id
    dotenv = (repo / DOTENV_FILE).read_text(encoding="utf-8")
    assert f"PROMOTION_REQUEST_URL={threads[0].url}\n" in dotenv


@pytest.mark.slow  # gitlab-ci-local, a few seconds a run
def test_gitlab_bot_jobs_refuse_to_run_without_a_registry(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    """Without MLFLOW_TRACKING_URI the bot would use a throwaway sqlite file inside the job."""
    result = ci_runner.run_job(
        pipeline_repo,
        tmp_path / "gcl-home",
        "promotion:poll",
        {"CI_PIPELINE_SOURCE": "schedule", "PROMOTION_BOT_SKIP_INSTALL": "1"},
        path_prefix=Path(sys.executable).parent,
        timeout=120,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-3000:]
    assert "error: set MLFLOW_TRACKING_URI in Settings > CI/CD > Variables (masked, pro" in log
    assert "promotion:poll $ promotion-bot --version" in log  # the bot from PATH, not installed
    assert "$ promotion-bot poll" not in log


def test_gitlab_ci_local_missing_fails_with_install_instructions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match=r"npm install --global gitlab-ci-local@4\.70"):
        ci_runner.gitlab_ci_local()


# --- GitHub workflows: every bot step is the repository's own action (`uses: ./`) -------------


def steps_of(job: dict[str, Any]) -> list[str]:
    """Each step as `run: <script>` or `bot: <command>` (the action, `uses: ./`)."""
    out = []
    for step in job.get("steps", []):
        if step.get("uses") == "./":
            out.append(f"bot: {(step.get('with') or {}).get('command', '')}".rstrip())
        elif "run" in step:
            out.append(f"run: {step['run']}")
    return out


def test_github_comment_workflow_handles_new_comments_one_at_a_time() -> None:
    """Which comments start a job, and that they cannot cancel the poll or training:
    tests/test_ci_privileges.py."""
    workflow = load_yaml(COMMANDS_WORKFLOW)
    triggers = workflow_triggers(workflow)
    assert triggers["issue_comment"] == {"types": ["created"]}
    assert "schedule" in triggers  # the poll answers commands whose run GitHub cancelled
    handle = workflow["jobs"]["handle"]
    # On the job: a workflow-level group would also queue every ordinary comment's skipped run.
    assert "concurrency" not in workflow
    assert handle["concurrency"] == {"group": "promotion-handle", "cancel-in-progress": False}
    condition = " ".join(handle["if"].split())
    assert "github.event.comment.user.type != 'Bot'" in condition
    assert steps_of(handle)[-1] == "bot: handle"  # the action adds the event name and file
    poll = workflow["jobs"]["poll"]
    assert poll["concurrency"] == {"group": "promotion-poll", "cancel-in-progress": False}
    assert steps_of(poll)[-1] == (
        "bot: ${{ vars.PROMOTION_BOT_REPORT == 'true' && "
        "'poll --report status-page/index.html' || 'poll' }}"
    )
    upload = poll["steps"][-1]
    wanted = "always() && vars.PROMOTION_BOT_REPORT == 'true'"  # asked for, even after a failure
    assert upload["if"] == wanted
    assert (
        upload["uses"] == "actions/upload-artifact@v4" and upload["with"]["path"] == "status-page/"
    )
    assert workflow["permissions"]["issues"] == "write"
    assert workflow["permissions"]["pull-requests"] == "write"


def test_github_train_workflow_trains_registers_gates_and_requests() -> None:
    workflow = load_yaml(TRAIN_WORKFLOW)
    triggers = workflow_triggers(workflow)
    assert triggers["push"] == {"branches": ["main"]}
    assert "workflow_dispatch" in triggers
    jobs = workflow["jobs"]
    # Python and the bot first (the placeholder training uses its MLflow), then the training.
    assert steps_of(jobs["train-smoke"]) == [
        "bot:",
        "run: python scripts/placeholder_train.py --experiment smoke --logloss 0.69",
    ]
    assert (jobs["register-smoke"]["needs"], steps_of(jobs["register-smoke"])) == (
        "train-smoke",
        ["bot: register --alias ci-smoke"],
    )
    assert jobs["train-test"]["needs"] == "register-smoke"
    assert steps_of(jobs["train-test"]) == ["bot:", "run: python scripts/placeholder_train.py"]
    job = jobs["request"]
    assert job["needs"] == "train-test"
    assert steps_of(job)[:3] == ["bot: register --alias smoke", "bot: gate", "bot: request"]
    for name in ("register-smoke", "request"):  # the bot's jobs: one alias mover at a time
        assert jobs[name]["concurrency"] == {"group": GROUP, "cancel-in-progress": False}
    # The run id travels as an artifact from the training job to the bot's.
    uploads = {
        step["with"]["name"]: name
        for name, one in jobs.items()
        for step in one["steps"]
        if step.get("uses") == "actions/upload-artifact@v4"
    }
    for name, trainer in (("register-smoke", "train-smoke"), ("request", "train-test")):
        (download,) = [s for s in jobs[name]["steps"] if "download-artifact" in s.get("uses", "")]
        assert uploads[download["with"]["name"]] == trainer
        assert download["with"]["path"] == "data/models"
    assert job["permissions"] == {
        "contents": "write",
        "issues": "write",
        "pull-requests": "write",
    }
    request = next(step for step in job["steps"] if step.get("id") == "request")
    assert request["env"]["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert job["outputs"]["request_url"] == "${{ steps.request.outputs.request-url }}"


@pytest.mark.parametrize("path", [TRAIN_WORKFLOW, COMMANDS_WORKFLOW], ids=lambda p: p.name)
def test_only_default_branch_jobs_of_an_environment_hold_its_secrets(path: Path) -> None:
    """The CI-credential rule (docs/security.md): MLflow's secrets live in the `promotion-bot`
    and `model-training` environments, which only the default branch may use; no job outside
    them names them. Which job holds which: tests/test_ci_privileges.py."""
    workflow = load_yaml(path)
    assert workflow["env"]["PROMOTION_BOT_PLATFORM"] == "github"
    assert not [key for key in workflow["env"] if "MLFLOW" in key or "TOKEN" in key]
    secret_like = re.compile(r"TOKEN|PASSWORD|SECRET|USERNAME|URI")
    for name, job in workflow["jobs"].items():
        blocks = [job.get("env", {})] + [step.get("env", {}) for step in job.get("steps", [])]
        for block in blocks:
            for key, value in block.items():
                if key == "PROMOTION_BOT_USERNAME":  # a name, no secret: a repository variable
                    assert value == f"${{{{ vars.{key} }}}}", (name, key)
                elif secret_like.search(key):
                    assert value == f"${{{{ secrets.{key} }}}}", (name, key)
        if any(step.startswith("bot: ") for step in steps_of(job)):  # a command: the registry
            assert job["environment"] in ("promotion-bot", "model-training"), name
            assert job["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
        # No step installs or runs the bot itself: the action does, as for any repository.
        assert not [step for step in steps_of(job) if "promotion-bot" in step], name


def test_the_projects_own_checks_hold_no_secret() -> None:
    workflow = load_yaml(WORKFLOWS / "ci.yml")
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    assert "secrets." not in text
    assert all("environment" not in job for job in workflow["jobs"].values())


# --- dvc.yaml ---------------------------------------------------------------------------------


def test_dvc_stages_call_the_cli_with_the_params_sections() -> None:
    """Structure only: DVC publishes no JSON schema that works offline (the file was checked
    by hand with `dvc stage list`, `dvc dag` and `dvc repro`)."""
    stages = load_yaml(DVC_YAML)["stages"]
    assert list(stages) == ["register_model", "promote_model"]
    register, promote = stages["register_model"], stages["promote_model"]
    assert re.match(r"promotion-bot register\b", register["cmd"])
    assert promote["cmd"] == "promotion-bot gate"
    run_id_file = PARAMS.register_model.run_id_file
    assert run_id_file in register["deps"]
    assert run_id_file in promote["deps"]
    assert register["params"] == ["register_model"]
    assert promote["params"] == ["promote_model"]
    assert promote["outs"] == [{PARAMS.promote_model.output: {"cache": False}}]
    # promote_model must run after register_model: DVC orders stages only through deps/outs.
    register_outs = [next(iter(out)) if isinstance(out, dict) else out for out in register["outs"]]
    assert set(register_outs) & set(promote["deps"])
    assert register["cmd"].endswith(f"> {register_outs[0]}")


# --- the placeholder training step ------------------------------------------------------------


@pytest.mark.slow
def test_placeholder_training_logs_a_run_the_bot_can_register(
    tmp_path: Path, tracking_uri: str
) -> None:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "GITHUB_SHA": "0123abcd",
        "DATA_VERSION": "2024-05-01",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    result = subprocess.run(
        [sys.executable, str(PLACEHOLDER), "--logloss", "0.42", "--experiment", "ci-test-smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = json.loads((tmp_path / Params().register_model.run_id_file).read_text())["run_id"]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(run_id)
    assert run.data.metrics == {"final.logloss": 0.42, "final.accuracy": 0.55}
    assert run.data.tags["git_sha"] == "0123abcd"
    assert run.data.tags["data_version"] == "2024-05-01"
    assert client.get_experiment(run.info.experiment_id).name == "ci-test-smoke"
    assert [item.path for item in client.list_artifacts(run_id, "model")] == [
        "model/placeholder.json"
    ]


def test_placeholder_training_writes_the_run_id_where_params_say(tmp_path: Path) -> None:
    sys.path.insert(0, str(PLACEHOLDER.parent))
    try:
        import placeholder_train
    finally:
        sys.path.remove(str(PLACEHOLDER.parent))
    params = tmp_path / "params.yaml"
    assert placeholder_train.run_id_file_from_params(str(params)) == (
        Params().register_model.run_id_file
    )
    params.write_text("register_model:\n  run_id_file: out/run.json\n", encoding="utf-8")
    assert placeholder_train.run_id_file_from_params(str(params)) == "out/run.json"
    assert placeholder_train.run_tags({"CI_COMMIT_SHA": "abc"}, "") == {
        "training.placeholder": "true",
        "git_sha": "abc",
        "mlflow.source.git.commit": "abc",
    }


def test_placeholder_training_without_a_server_fails_in_seconds_in_one_line(
    tmp_path: Path,
) -> None:
    """The walkthrough before an MLflow server is started: one line naming the server (without
    its password) and what to do, within seconds, no traceback, no run id file."""
    from tests.mlflow_server import free_port

    env = {
        "PATH": str(Path(sys.executable).parent),
        "MLFLOW_TRACKING_URI": f"http://ci:hunter2-pw@127.0.0.1:{free_port()}",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(PLACEHOLDER)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: could not log the run to MLflow at http://***@127.0.0.1:"), line
    assert "the server is unreachable" in line and "hunter2-pw" not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()
