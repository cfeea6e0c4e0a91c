"""Helpers for tests/test_ci_files.py: the real CI tools (check-jsonschema, gitlab-ci-local)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
GITLAB_CI_LOCAL_VERSION = "4.70"
INSTALL_HINT = (
    f"gitlab-ci-local {GITLAB_CI_LOCAL_VERSION}.x is not on PATH. Install it (Node 20 and rsync "
    f"needed): apt-get install -y rsync && npm install --global gitlab-ci-local@"
    f"{GITLAB_CI_LOCAL_VERSION}   (.ci/run does this)"
)
README = REPO_ROOT / "README.md"
# The pin the copy-paste examples leave to the reader: the tag or commit sha they reviewed.
PIN = "<tag or commit sha>"
# gitlab-ci-local warns when a test sets variables GitLab itself defines; here that is the point.
_PREDEFINED_OVERRIDES = "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,GITLAB_CI"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def venv_executable(name: str) -> str:
    """A console script of this interpreter's environment (check-jsonschema, promotion-bot)."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed next to {sys.executable} nor on PATH")
    return found


def check_jsonschema(
    schema: str, files: Iterable[Path], transform: str = ""
) -> subprocess.CompletedProcess[str]:
    """Validate with a builtin (vendored, offline) schema of check-jsonschema; `transform`
    "gitlab-ci" reads GitLab's `!reference` tags."""
    cmd = [venv_executable("check-jsonschema"), "--builtin-schema", schema]
    if transform:
        cmd += ["--data-transform", transform]
    cmd += [str(path) for path in files]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def split_documents(path: Path, folder: Path) -> list[Path]:
    """A GitLab CI template is two YAML documents (the `spec:` header, then the jobs);
    check-jsonschema reads one document per file."""
    parts = path.read_text(encoding="utf-8").split("\n---\n")
    files = []
    for index, part in enumerate(parts):
        file = folder / f"{path.stem}.{index}.yml"
        file.write_text(part.strip() + "\n", encoding="utf-8")
        files.append(file)
    return files


def readme_include(template: str) -> str:
    """The README's `include:` example of ci/<template> as a reader copies it, with each remote
    made the local copy the tests hold (no remote can be fetched here)."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    (block,) = [b for b in blocks if b.startswith("include:") and f"/ci/{template}\n" in b]
    remote = rf"remote: https://[^\n]*?/-/raw/{re.escape(PIN)}/(ci/\S+\.yml)"
    local, count = re.subn(remote, r"local: \1", block)
    assert count and "remote:" not in local, f"an unpinned remote in the README:\n{block}"
    return local


def preview(repo: Path, home: Path) -> dict[str, Any]:
    """The pipeline as gitlab-ci-local expands it: includes with their inputs, extends and
    !reference resolved."""
    result = subprocess.run(
        [gitlab_ci_local(), "--preview", *gitlab_ci_local_args(home)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"gitlab-ci-local --preview failed:\n{result.stderr[-3000:]}"
    start = result.stdout.find("---\n")  # anything before the document is a log line
    expanded = yaml.safe_load(result.stdout[max(start, 0) :])
    assert isinstance(expanded, dict)
    return expanded


def gitlab_ci_local() -> str:
    """The gitlab-ci-local executable; a missing one fails the test (it is part of CI's setup)."""
    found = shutil.which("gitlab-ci-local")
    if found is None:
        pytest.fail(INSTALL_HINT)
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=60, check=False
    ).stdout.strip()
    if not version.startswith(f"{GITLAB_CI_LOCAL_VERSION}."):
        pytest.fail(f"gitlab-ci-local {version!r} found; {INSTALL_HINT}")
    return found


def project_files(root: Path = REPO_ROOT) -> list[str]:
    """What a commit of the checkout would hold: tracked files plus new, not ignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def copy_project(dest: Path, root: Path = REPO_ROOT) -> Path:
    """Copy the project into `dest` as a fresh one-commit git repository (gitlab-ci-local needs
    git for CI_COMMIT_SHA and friends, and must never touch the real checkout)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in project_files(root):
        if name.startswith((".hypothesis/", ".gitlab-ci-local/")):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return dest


def git_commit_all(repo: Path) -> str:
    """`git init` + one commit of everything; returns the commit sha."""

    identity = ["-c", "user.name=ci-test", "-c", "user.email=ci-test@example.invalid"]

    def git(*args: str) -> str:
        command = ["git", *identity, "-c", "commit.gpgsign=false", *args]
        done = subprocess.run(
            command, cwd=repo, capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "snapshot for gitlab-ci-local")
    return git("rev-parse", "HEAD")


def gitlab_ci_local_args(
    home: Path, variables: Mapping[str, str] | None = None, unset: Iterable[str] = ()
) -> list[str]:
    """Common options: an isolated HOME for gitlab-ci-local's own variables file, and the
    variables of one simulated pipeline."""
    args = ["--home", str(home), "--ignore-predefined-vars", _PREDEFINED_OVERRIDES]
    for key, value in (variables or {}).items():
        args += ["--variable", f"{key}={value}"]
    for key in unset:
        args += ["--unset-variable", key]
    return args


def list_jobs(
    repo: Path,
    home: Path,
    variables: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    options: Iterable[str] = (),
) -> dict[str, str]:
    """Job name -> `when` as gitlab-ci-local evaluates the rules for one kind of pipeline."""
    args = gitlab_ci_local_args(home, variables, unset)
    result = subprocess.run(
        [gitlab_ci_local(), "--list-json", *args, *options],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"gitlab-ci-local --list-json failed:\n{result.stderr[-3000:]}"
    return {job["name"]: job["when"] for job in json.loads(result.stdout)}


def refusal(repo: Path, home: Path) -> str:
    """What gitlab-ci-local says when it refuses the pipeline (it must refuse it)."""
    result = subprocess.run(
        [gitlab_ci_local(), "--list", *gitlab_ci_local_args(home)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, f"gitlab-ci-local took the pipeline:\n{result.stdout[-3000:]}"
    return result.stderr


def run_job(
    repo: Path,
    home: Path,
    job: str | Sequence[str],
    variables: Mapping[str, str],
    path_prefix: Path,
    timeout: float = 540.0,
) -> subprocess.CompletedProcess[str]:
    """Run one job (or several, in the order their `needs` give) with the shell executor (no
    Docker): its commands run in `repo` with PATH starting at `path_prefix`, so they use this
    environment's python and promotion-bot."""
    # A runner's job sees only the variables its project gives it: nothing of this process's
    # own registry, forge or signing settings leaks into the shell executor's jobs.
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PROMOTION_BOT_", "GITLAB_", "GITHUB_", "MLFLOW_"))
    }
    env = dict(inherited, PATH=f"{path_prefix}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [
        gitlab_ci_local(),
        "--force-shell-executor",
        "--no-color",
        *gitlab_ci_local_args(home, variables),
        *([job] if isinstance(job, str) else job),
    ]
    return subprocess.run(
        cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def jobs(pipeline: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The jobs of a .gitlab-ci.yml (hidden templates and global keywords left out), each with
    its `extends` templates merged in the way GitLab does for these keys (deep merge of maps,
    lists replaced)."""
    reserved = {"stages", "variables", "workflow", "default", "include", "image", "services"}
    reserved |= {"cache", "before_script", "after_script"}
    found: dict[str, dict[str, Any]] = {}
    for name, body in pipeline.items():
        if name.startswith(".") or name in reserved or not isinstance(body, dict):
            continue
        found[name] = _resolve_extends(pipeline, body)
    return found


def _resolve_extends(pipeline: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    parents = body.get("extends", [])
    parents = [parents] if isinstance(parents, str) else list(parents)
    merged: dict[str, Any] = {}
    for parent in parents:
        merged = _deep_merge(merged, _resolve_extends(pipeline, pipeline[parent]))
    return _deep_merge(merged, {key: value for key, value in body.items() if key != "extends"})


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def job_commands(job: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key in ("before_script", "script", "after_script"):
        value = job.get(key) or []
        lines += [value] if isinstance(value, str) else [str(line) for line in value]
    return lines


def workflow_triggers(workflow: Mapping[Any, Any]) -> dict[str, Any]:
    """The `on:` block; YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True."""
    triggers = workflow.get("on", workflow.get(True))
    if isinstance(triggers, str):
        return {triggers: None}
    if isinstance(triggers, list):
        return dict.fromkeys(triggers)
    return dict(triggers or {})
