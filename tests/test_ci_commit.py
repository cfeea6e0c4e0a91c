"""The commit a CI job runs at (bot.config.ci_commit): only a branch's commit, and only for the
configured project's own CI, so a forge deployment never names a commit the forge lacks."""

from __future__ import annotations

import pytest

from bot.config.ci_commit import CiCommit, from_ci_env
from bot.config.settings import Settings

SHA = "0c2f1e9d8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
GITLAB = {
    "GITLAB_CI": "true",
    "CI_PROJECT_ID": "4242",
    "CI_PROJECT_PATH": "ML-Team/soccer",
    "CI_COMMIT_SHA": SHA,
    "CI_COMMIT_BRANCH": "main",
}
GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REPOSITORY": "octo-org/models",
    "GITHUB_SHA": SHA,
    "GITHUB_REF": "refs/heads/main",
}
TABLE = [
    ("gitlab branch pipeline", GITLAB, CiCommit("gitlab", ("4242", "ml-team/soccer"), "main", SHA)),
    ("github issue_comment run", GITHUB, CiCommit("github", ("octo-org/models",), "main", SHA)),
    (
        "github branch with a slash",
        {**GITHUB, "GITHUB_REF": "refs/heads/release/2"},
        CiCommit("github", ("octo-org/models",), "release/2", SHA),
    ),
    # A merge request's or a tag's pipeline has no CI_COMMIT_BRANCH: its commit may be on no
    # branch of the project.
    ("gitlab merge request pipeline", {**GITLAB, "CI_COMMIT_BRANCH": ""}, CiCommit()),
    ("github pull request run", {**GITHUB, "GITHUB_REF": "refs/pull/7/merge"}, CiCommit()),
    ("github tag run", {**GITHUB, "GITHUB_REF": "refs/tags/v1"}, CiCommit()),
    ("no CI", {"CI_COMMIT_SHA": SHA, "GITHUB_SHA": SHA}, CiCommit()),
]


@pytest.mark.parametrize(("case", "env", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_the_commit_a_ci_job_runs_at(case: str, env: dict[str, str], expected: CiCommit) -> None:
    assert from_ci_env(env) == expected


@pytest.mark.parametrize(
    ("env", "override", "known"),
    [
        (GITLAB, {}, True),  # GITLAB_PROJECT defaults to CI_PROJECT_ID
        (GITLAB, {"GITLAB_PROJECT": "ml-team/Soccer"}, True),  # its path, in any case
        (GITLAB, {"GITLAB_PROJECT": "ml-team/other"}, False),  # another project's commit
        (GITHUB, {}, True),
        (GITHUB, {"PROMOTION_BOT_PLATFORM": "gitlab", "GITLAB_PROJECT": "1"}, False),
    ],
)
def test_only_the_configured_projects_own_ci_commit_is_used(
    env: dict[str, str], override: dict[str, str], known: bool
) -> None:
    ran = Settings.from_env({**env, **override}).commit_ran_at()
    assert (ran is not None and ran.sha == SHA) is known
