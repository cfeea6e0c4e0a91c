"""The GitHub Action (action.yml): valid for GitHub's published schema (check-jsonschema, offline),
and its command step run by bash the way a composite action's `shell: bash` runs it — with a
stand-in `promotion-bot` that records its arguments, and once with the real bot against a real
MLflow server. Inputs reach the script through the environment only, so no input runs code."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import ci_runner
from tests.ci_runner import REPO_ROOT, load_yaml
from tests.helpers import log_training_run

ACTION = REPO_ROOT / "action.yml"
RECORDER = """#!{python}
import json, os, sys
with open({out!r}, "a") as out:
    keys = ("PROMOTION_BOT_MODEL", "PROMOTION_BOT_PARAMS", "GITHUB_TOKEN")
    env = {{k: os.environ.get(k, "") for k in keys}}
    out.write(json.dumps({{"argv": sys.argv[1:], "env": env}}) + "\\n")
sys.exit(int(os.environ.get("RECORDER_EXIT", "0")))
"""


def action() -> dict[str, Any]:
    return dict(load_yaml(ACTION))


def step(step_id: str) -> dict[str, Any]:
    return next(s for s in action()["runs"]["steps"] if s.get("id") == step_id)


def run_step(
    tmp_path: Path, command: str, bin_dir: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """The `bot` step's script as GitHub runs `shell: bash` (bash -e -o pipefail), with the
    inputs as the step's `env:` sets them."""
    script = tmp_path / "step.sh"
    script.write_text(step("bot")["run"], encoding="utf-8")
    # `python` as setup-python leaves it: this environment's.
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    variables = {
        "PATH": path,
        "HOME": str(tmp_path),
        "PROMOTION_BOT_COMMAND": command,
        "PROMOTION_BOT_SETUP_ONLY": "false",
        "PROMOTION_BOT_TOKEN_INPUT": "",
        "GITHUB_TOKEN": "",
        "PROMOTION_BOT_PARAMS": "",
        "PROMOTION_BOT_MODEL": "",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
        "GITHUB_EVENT_NAME": "issue_comment",
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path,
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A `promotion-bot` on PATH that only records how it was called."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    stub = bin_dir / "promotion-bot"
    stub.write_text(RECORDER.format(python=sys.executable, out=str(calls)), encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return bin_dir, calls


def accepted_commands() -> list[str]:
    """The first words the `bot` step lets through: the arms of its `case`, as bash reads them."""
    script = step("bot")["run"]
    cases = script[script.index('case "${words[0]}" in') : script.index("esac")]
    arms = re.findall(r"^\s*([a-z][a-z |]*)\)", cases, re.MULTILINE)
    return [word.strip() for arm in arms for word in arm.split("|")]


def named_commands(text: str, pattern: str) -> list[str]:
    """The commands a sentence lists ("a, `b` or c"), from `pattern`'s one group."""
    match = re.search(pattern, text, re.DOTALL)
    assert match, f"no {pattern!r} in the text"
    words = re.split(r",\s*|\s+or\s+", " ".join(match[1].split()))
    return [word.strip("`") for word in words]


def calls_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- the file --------------------------------------------------------------------------------


def test_action_is_valid_for_github(tmp_path: Path) -> None:
    result = ci_runner.check_jsonschema("vendor.github-actions", [ACTION])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "action.yml"  # the control: the same check on a broken copy
    broken.write_text(ACTION.read_text().replace("using: composite", "using: compsite"))
    result = ci_runner.check_jsonschema("vendor.github-actions", [broken])
    assert result.returncode != 0 and "$.runs" in result.stdout


def test_action_takes_its_inputs_and_installs_the_bot_from_its_own_checkout() -> None:
    spec = action()
    assert set(spec["inputs"]) == {
        *("command", "setup-only", "token", "params", "model", "python-version", "constraints")
    }
    assert spec["runs"]["using"] == "composite"
    setup, key, cache, install, bot = spec["runs"]["steps"]
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    assert cache["uses"].startswith("actions/cache@")
    assert cache["with"]["key"].endswith("${{ steps.cache-key.outputs.key }}")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert install["env"]["PIP_CACHE_DIR"] == cache["with"]["path"]
    assert (
        'pip install --quiet --constraint "$ACTION_PATH/constraints.txt" "$ACTION_PATH"'
        in (install["run"])
    )
    # Inputs only through the environment: an expression inside `run` would be spliced into
    # the script before bash sees it.
    assert all("${{" not in step["run"] for step in (key, install, bot))
    # A step that runs a command holds the bot's secrets: it restores no cache a training job
    # (a setup-only step) could have written, and pip caches nothing in it either.
    assert "inputs.command == ''" in cache["if"]
    assert install["env"]["PROMOTION_BOT_COMMAND"] == "${{ inputs.command }}"
    assert 'if [ -n "$PROMOTION_BOT_COMMAND" ]' in install["run"]
    assert "export PIP_NO_CACHE_DIR=1" in install["run"]
    assert bot["env"] == {
        "PROMOTION_BOT_COMMAND": "${{ inputs.command }}",
        "PROMOTION_BOT_SETUP_ONLY": "${{ inputs.setup-only }}",
        "PROMOTION_BOT_TOKEN_INPUT": "${{ inputs.token }}",
        "PROMOTION_BOT_PARAMS": "${{ inputs.params }}",
        "PROMOTION_BOT_MODEL": "${{ inputs.model }}",
    }
    assert spec["outputs"]["request-url"]["value"] == "${{ steps.bot.outputs.request_url }}"


def test_the_accepted_commands_are_the_ones_the_docs_name_and_the_bot_has() -> None:
    accepted = accepted_commands()
    assert len(accepted) == len(set(accepted)) and "verify" in accepted
    description = action()["inputs"]["command"]["description"]
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    named = {
        "description": named_commands(description, r"One of (.+?), with its options"),
        "refusal": named_commands(
            step("bot")["run"], r"unknown command '\$\{words\[0\]\}' \(one of (.+?)\)"
        ),
        "README": named_commands(readme, r"Inputs: `command` \(one of\s+(.+?), with its\s+options"),
    }
    for where, commands in named.items():
        assert sorted(commands) == sorted(accepted), where
    from bot.cli import cli

    # Left out on purpose: `demo` (a throwaway registry), `comment` (posts as anyone it is told),
    # `serve` (a server, not a step), `permissions` (an MLflow admin's, never in a job that
    # holds the bot's account), `keygen` (a private key must never reach a CI log),
    # `report` (a workflow writes the status page with `poll --report`), `import-ledger` (an
    # operator's one-off step, its output read by that person before anything is written). A new
    # command of the bot is a decision to make here.
    assert set(cli.commands) - set(accepted) == {
        "import-ledger",
        "report",
        "comment",
        "demo",
        "keygen",
        "serve",
        "permissions",
    }


# --- the command step ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("register --alias ci-smoke", ["register", "--alias", "ci-smoke"]),
        ("  gate  ", ["gate"]),
        ("verify --format json", ["verify", "--format", "json"]),
        # Quoted as in a shell: one word each.
        ("history --since '2026-12-01'", ["history", "--since", "2026-12-01"]),
        ('history --since "2026-12-01 10:00"', ["history", "--since", "2026-12-01 10:00"]),
        ("status --model 'my model'", ["status", "--model", "my model"]),
        ("handle", ["handle", "--event-name", "issue_comment", "--event-file", "EVENT"]),
        (
            "handle --event-name x --event-file y",
            ["handle", "--event-name", "x", "--event-file", "y"],
        ),
        # Words, never shell: no substitution, no variable, no glob.
        (
            "status $(touch pwned) `touch pwned` * $HOME",
            ["status", "$(touch", "pwned)", "`touch", "pwned`", "*", "$HOME"],
        ),
        (
            "status '$(touch pwned)' \"`touch pwned`\"",
            ["status", "$(touch pwned)", "`touch pwned`"],
        ),
    ],
)
def test_the_command_becomes_the_bots_arguments(
    tmp_path: Path, recorder: tuple[Path, Path], command: str, argv: list[str]
) -> None:
    bin_dir, calls = recorder
    done = run_step(tmp_path, command, bin_dir, PROMOTION_BOT_MODEL="other-model")
    assert done.returncode == 0, done.stdout + done.stderr
    event = str(tmp_path / "event.json")
    assert calls_of(calls) == [
        {
            "argv": [event if arg == "EVENT" else arg for arg in argv],
            "env": {
                "PROMOTION_BOT_MODEL": "other-model",
                "PROMOTION_BOT_PARAMS": "",
                "GITHUB_TOKEN": "",
            },
        }
    ]
    assert not list(tmp_path.glob("pwned*"))


@pytest.mark.parametrize(
    "command", ["demo", "register;touch pwned", "$(touch pwned)", "comment 1 /promote --as x"]
)
def test_other_commands_are_refused_before_the_bot_runs(
    tmp_path: Path, recorder: tuple[Path, Path], command: str
) -> None:
    bin_dir, calls = recorder
    done = run_step(tmp_path, command, bin_dir)
    assert done.returncode == 1
    assert "::error::promotion-bot: unknown command" in done.stdout
    assert calls_of(calls) == [] and not list(tmp_path.glob("pwned*"))


@pytest.mark.parametrize("code", [0, 1, 2], ids=["as approved", "drift", "cannot tell"])
def test_verify_runs_and_the_step_exits_with_its_code(
    tmp_path: Path, recorder: tuple[Path, Path], code: int
) -> None:
    """The README's drift monitor: a scheduled `command: verify` step fails on 1 and 2."""
    bin_dir, calls = recorder
    done = run_step(tmp_path, "verify", bin_dir, RECORDER_EXIT=str(code))
    assert done.returncode == code, done.stdout + done.stderr
    assert [call["argv"] for call in calls_of(calls)] == [["verify"]]


@pytest.mark.parametrize(
    ("command", "env", "said"),
    [
        ("", {}, "the command input is empty (misspelt?)"),
        ("   ", {}, "the command input is empty (misspelt?)"),
        ("gate", {"PROMOTION_BOT_SETUP_ONLY": "true"}, "setup-only is true and a command"),
        ("history --since '2026-12-01", {}, "the command input is no list of words"),
    ],
    ids=["missing", "blank", "both", "unbalanced-quote"],
)
def test_a_missing_or_unreadable_command_fails_the_step(
    tmp_path: Path, recorder: tuple[Path, Path], command: str, env: dict[str, str], said: str
) -> None:
    """`comand: gate` (misspelt) leaves `command` empty: a red step, not a green "setup"."""
    bin_dir, calls = recorder
    done = run_step(tmp_path, command, bin_dir, **env)
    assert done.returncode == 1
    assert f"::error::promotion-bot: {said}" in done.stdout + done.stderr
    assert calls_of(calls) == []


def test_setup_only_skips_the_command_step() -> None:
    assert step("bot")["if"] == "inputs.setup-only != 'true' || inputs.command != ''"


def test_the_token_input_is_the_bots_github_token(
    tmp_path: Path, recorder: tuple[Path, Path]
) -> None:
    bin_dir, calls = recorder
    given = run_step(tmp_path, "status", bin_dir, PROMOTION_BOT_TOKEN_INPUT="ghs_input")
    kept = run_step(tmp_path, "status", bin_dir, GITHUB_TOKEN="ghp_job_env")
    assert given.returncode == 0 and kept.returncode == 0, given.stdout + kept.stdout
    tokens = [call["env"]["GITHUB_TOKEN"] for call in calls_of(calls)]
    assert tokens == ["ghs_input", "ghp_job_env"]  # empty input: the job's own stays


def test_every_action_used_is_pinned_by_full_commit_sha() -> None:
    used = [s["uses"] for s in action()["runs"]["steps"] if "uses" in s]
    assert used and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses) for uses in used), used


def test_the_constraints_pin_every_runtime_dependency_within_its_range() -> None:
    """constraints.txt (the action's cached, repeatable install) names a version of each of
    pyproject.toml's dependencies that the range there allows."""
    import tomllib
    from packaging.requirements import Requirement

    pinned = {}
    for line in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for dependency in project["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{name} is not in constraints.txt"
        assert requirement.specifier.contains(pinned[name]), (name, pinned[name])


def test_no_registry_configured_is_refused(tmp_path: Path, recorder: tuple[Path, Path]) -> None:
    bin_dir, calls = recorder
    done = run_step(tmp_path, "gate", bin_dir, MLFLOW_TRACKING_URI="")
    assert done.returncode == 1
    assert "::error::promotion-bot: set MLFLOW_TRACKING_URI" in done.stdout
    assert calls_of(calls) == []


@pytest.mark.slow
def test_the_step_runs_the_real_bot_and_hands_the_request_to_the_workflow(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    """register, gate and request as three `uses: ./` steps would run them: the model input
    chooses the model, and `request` writes the outputs action.yml maps."""
    bin_dir = Path(sys.executable).parent  # the real promotion-bot of this environment
    run_id_file = tmp_path / "data" / "models" / "final_run_id.json"
    log_training_run(tracking_uri, {"final.logloss": 0.6}, run_id_file=run_id_file)
    outputs = tmp_path / "github-output"
    common = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PROMOTION_BOT_MODEL": model_name,
        "PROMOTION_BOT_PLATFORM": "local",
        "PROMOTION_BOT_LOCAL_DIR": str(tmp_path / "forge"),
        "PROMOTION_BOT_REQUESTED_BY": "dana",
        "GITHUB_OUTPUT": str(outputs),
    }
    for command in ("register --alias smoke", "gate", "request"):
        done = run_step(tmp_path, command, bin_dir, **common)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert set(lines) == {"request_url", "request_number"}  # what action.yml's outputs read
    assert lines["request_url"].startswith("file://") and lines["request_number"] == "1"
    from bot.registry.client import Registry

    assert Registry(tracking_uri).aliases(model_name) == {"smoke": 1, "candidate": 1}
