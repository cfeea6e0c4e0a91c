"""The commit a CI job runs at, as its CI says: what a forge deployment names without asking the
forge which commit its default branch is at (bot.commands.deployments).

Only a branch's commit, and only in the configured project's own CI: a merge request's or a
tag's pipeline, or a job that talks to another project, names nothing, and the deployment then
asks the forge (docs/operations.md, "The forge's deployment history").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_BRANCH_REF = "refs/heads/"


@dataclass(frozen=True)
class CiCommit:
    platform: str = ""  # gitlab | github; "" = not a CI job
    projects: tuple[str, ...] = ()  # the job's own project: GitLab id and path, GitHub owner/name
    branch: str = ""
    sha: str = ""

    def of(self, platform: str, project: str) -> CiCommit | None:
        """This commit, when the job runs in `project`'s own CI on `platform`; else None."""
        if not (self.sha and self.branch) or platform != self.platform:
            return None
        return self if project.strip("/").lower() in self.projects else None


def from_ci_env(env: Mapping[str, str]) -> CiCommit:
    """GitLab CI: CI_COMMIT_SHA with CI_COMMIT_BRANCH (set in branch pipelines only); GitHub
    Actions: GITHUB_SHA when GITHUB_REF is a branch (an `issue_comment` or `schedule` run: the
    default branch's newest commit)."""
    if env.get("GITLAB_CI") and env.get("CI_COMMIT_BRANCH") and env.get("CI_COMMIT_SHA"):
        projects = _named(env, "CI_PROJECT_ID", "CI_PROJECT_PATH")
        return CiCommit("gitlab", projects, env["CI_COMMIT_BRANCH"], env["CI_COMMIT_SHA"])
    ref = env.get("GITHUB_REF", "")
    if env.get("GITHUB_ACTIONS") and ref.startswith(_BRANCH_REF) and env.get("GITHUB_SHA"):
        projects = _named(env, "GITHUB_REPOSITORY")
        return CiCommit("github", projects, ref[len(_BRANCH_REF) :], env["GITHUB_SHA"])
    return CiCommit()


def _named(env: Mapping[str, str], *variables: str) -> tuple[str, ...]:
    return tuple(env[name].strip("/").lower() for name in variables if env.get(name))
