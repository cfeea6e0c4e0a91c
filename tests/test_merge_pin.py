"""`merge_on_promote` merges only the commit the bot made at `request` (docs/security.md,
"The promotion branch").

The promotion branch is not protected: anyone who may push (GitHub Write, GitLab Developer) can
add commits to it after `request` (a params.yaml listing themselves as approver, a workflow that
reads the secrets). The approver approves a model; the bot's merge would land those commits
unreviewed. So `request` records the MR/PR head on the version (`promotion.request_head`),
`/promote` is refused before the champion moves when the head is another commit, and the merge
is pinned to the recorded head (`sha=`), so a push in between fails the merge.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

from bot.ci.request import open_or_update_request
from bot.commands import follow_ups
from bot.config.settings import Secret, Settings
from bot.forges._github_support import thread_from as github_thread
from bot.forges._gitlab_support import thread_from as gitlab_thread
from bot.forges.github import GitHubForge
from bot.forges.gitlab import GitLabForge
from bot.registry.tags import REQUEST_HEAD_TAG
from bot.threads.thread import Thread
from tests.forge_fixtures import body_of, github, github_url, gitlab
from tests.promotion_env import MakePlayground, Playground

EVIL = ".github/workflows/exfiltrate.yml"


def _mr_playground(make_pg: MakePlayground) -> tuple[Playground, Thread, str]:
    pg = make_pg(request={"kind": "merge_request"})
    version = pg.train(0.6)
    thread = pg.open_request(version, kind="merge_request")
    return pg, thread, f"promotion/{pg.model}/v{version}"


def test_promote_is_refused_when_someone_pushed_to_the_promotion_branch(
    make_pg: MakePlayground,
) -> None:
    pg, thread, branch = _mr_playground(make_pg)
    # devon (Developer / Write, no approver) pushes to the unprotected promotion branch
    pg.forge.commit_file(branch, "main", EVIL, "on: push\n", "ci: tweak")

    outcome, _ = pg.comment(thread, "maria", "/promote")

    assert (outcome.status, outcome.detail) == ("refused", "unreviewed_commits")
    assert pg.champion() is None
    assert not pg.forge.branch_file("main", EVIL).exists()
    [answer] = [c.body for c in pg.answers(thread)]
    assert "promotion-bot request" in answer and "review" in answer.lower()


def test_after_review_request_records_the_new_head_and_promote_merges(
    make_pg: MakePlayground,
) -> None:
    pg, thread, branch = _mr_playground(make_pg)
    pg.forge.commit_file(branch, "main", "notes.md", "reviewed\n", "docs: notes")
    assert pg.comment(thread, "maria", "/promote")[0].detail == "unreviewed_commits"

    open_or_update_request(pg.ctx)  # someone reviewed the commit and re-ran `request`
    outcome, _ = pg.comment(thread, "maria", "/promote")

    assert outcome.status == "changed", outcome
    assert pg.thread(thread).state == "merged"
    assert pg.forge.branch_file("main", "notes.md").exists()


def test_a_push_between_the_check_and_the_merge_fails_the_merge_and_says_so(
    make_pg: MakePlayground, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg, thread, branch = _mr_playground(make_pg)
    real = follow_ups.refresh_status

    def push_first(*args: Any, **kwargs: Any) -> Thread:
        pg.forge.commit_file(branch, "main", EVIL, "on: push\n", "ci: tweak")
        return real(*args, **kwargs)

    monkeypatch.setattr(follow_ups, "refresh_status", push_first)
    outcome, _ = pg.comment(thread, "maria", "/promote")

    assert outcome.status == "changed"  # the champion change stands
    assert pg.champion() is not None
    assert pg.thread(thread).state == "open"
    assert not pg.forge.branch_file("main", EVIL).exists()
    assert any("not merged" in c.body for c in pg.answers(thread))


def test_request_records_the_head_of_the_merge_request(make_pg: MakePlayground) -> None:
    pg = make_pg(request={"kind": "merge_request"})
    version = pg.train(0.6)
    result = open_or_update_request(pg.ctx)
    head = pg.forge.get_thread("merge_request", result.number).head_sha
    assert head and pg.ctx.registry.version(pg.model, version).tags[REQUEST_HEAD_TAG] == head


@pytest.mark.parametrize("platform", ["gitlab", "github"])
def test_the_merge_call_is_pinned_to_the_given_commit(platform: str) -> None:
    with responses.RequestsMock() as rsps:
        if platform == "gitlab":
            forge: Any = GitLabForge.from_settings(
                Settings(
                    platform="gitlab",
                    gitlab_url="https://gitlab.example.com",
                    gitlab_project="ml-team/soccer",
                    gitlab_token=Secret("glpat-x"),
                )
            )
            rsps.put(
                "https://gitlab.example.com/api/v4/projects/ml-team%2Fsoccer/merge_requests/8/merge",
                json=gitlab("merge_request", state="merged"),
            )
        else:
            forge = GitHubForge.from_settings(
                Settings(
                    platform="github",
                    github_repository="octo-org/models",
                    github_token=Secret("ghp-x"),
                )
            )
            rsps.put(github_url("/repos/octo-org/models/pulls/8/merge"), json=github("merge"))
        forge.merge(Thread("merge_request", "8", "t", "b", "", "open"), sha="b" * 40)
        assert body_of(rsps.calls[-1])["sha"] == "b" * 40


def test_both_adapters_read_the_head_commit_of_a_merge_request() -> None:
    assert (
        gitlab_thread("merge_request", gitlab("merge_request")).head_sha
        == (gitlab("merge_request")["sha"])
    )
    pull = github("pull_request")
    assert github_thread(pull).head_sha == pull["head"]["sha"]
    assert github_thread(github("issue")).head_sha == ""  # the issues listing has no head
