"""Comment commands end to end: a real MLflow server, the local forge, the real handler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.threads.markers import answered_comment_ids
from tests.promotion_env import MakePlayground, Playground


def assert_one_answer_per_command(pg: Playground, thread: Any) -> None:
    answers = pg.answers(thread)
    ids = [cid for a in answers for cid in answered_comment_ids([a.body])]
    assert len(ids) == len(set(ids)), f"a comment was answered twice: {ids}"


# --- the happy paths ------------------------------------------------------------------------


def test_promote_makes_the_candidate_champion_with_one_answer_and_one_record(pg: Playground):
    version = pg.train(0.6)
    thread = pg.open_request(version)

    outcome, event = pg.comment(thread, "maria", "/promote\nLooks good.\nCalibration ok.")

    assert outcome.status == "changed"
    assert pg.champion() == version
    [answer] = pg.answers(thread)
    assert f"comment={event.comment_id}" in answer.body
    assert "@maria" in answer.body and "Looks good. Calibration ok." in answer.body
    [entry] = pg.history()
    assert entry["from"] is None and entry["to"] == version
    assert entry["actor"] == "maria" and entry["action"] == "promote"
    assert entry["reason"] == "Looks good.\nCalibration ok."
    assert entry["comment_id"] == event.comment_id and entry["request_url"] == thread.url
    tags = pg.ctx.registry.version(pg.model, version).tags
    assert tags["promotion.promoted_by"] == "maria"
    assert tags["promotion.request_url"] == thread.url
    assert tags["promotion.champion_since"] == entry["at"]
    after = pg.thread(thread)
    assert after.state == "closed"  # close_on_promote
    assert "Promoted" in after.body and "Waiting for approval" not in after.body


def test_promote_rollback_promote_is_recorded_in_order(pg: Playground):
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.59)
    thread = pg.open_request(second)
    assert pg.comment(thread, "olga", "/promote")[0].status == "changed"
    assert pg.champion() == second

    # a rollback works on the request even though /promote closed it
    outcome, _ = pg.comment(thread, "maria", f"/rollback v{first}\nDrift alert.")
    assert outcome.status == "changed", outcome
    assert pg.champion() == first
    outcome, _ = pg.comment(thread, "olga", f"/rollback {second}")
    assert outcome.status == "changed", outcome
    assert pg.champion() == second

    history = pg.history()
    assert [(h["action"], h["from"], h["to"], h["actor"]) for h in history] == [
        ("promote", None, first, "maria"),
        ("promote", first, second, "olga"),
        ("rollback", second, first, "maria"),
        ("rollback", first, second, "olga"),
    ]
    assert history[2]["reason"] == "Drift alert."
    rollback_answer = pg.answers(thread)[1].body
    assert f"`/rollback {second}`" in rollback_answer  # the exact command back to "from"
    assert_one_answer_per_command(pg, thread)


def test_merge_request_kind_is_merged_after_promote(make_pg: MakePlayground):
    pg = make_pg(request={"kind": "merge_request"})
    version = pg.train(0.6)
    thread = pg.open_request(version, kind="merge_request")
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"
    assert pg.thread(thread).state == "merged"


def test_approvers_listed_by_name_need_no_role(make_pg: MakePlayground):
    pg = make_pg(approvers={"users": ["Sam"], "min_role": None})
    version = pg.train(0.6)
    thread = pg.open_request(version)
    refused, _ = pg.comment(thread, "maria", "/promote")  # a maintainer, but not listed
    assert (refused.status, refused.detail) == ("refused", "not_eligible")
    assert pg.comment(thread, "sam", "/promote")[0].status == "changed"


def test_two_required_approvals_count_distinct_people(make_pg: MakePlayground):
    pg = make_pg(approvers={"required_approvals": 2})
    version = pg.train(0.6)
    thread = pg.open_request(version)

    first, _ = pg.comment(thread, "maria", "/promote")
    assert (first.status, first.detail) == ("approval", "1 of 2")
    again, _ = pg.comment(thread, "MARIA", "/promote")
    assert (again.status, again.detail) == ("approval", "1 of 2")
    assert pg.champion() is None
    assert "Approval 1 of 2" in pg.answers(thread)[0].body

    done, _ = pg.comment(thread, "olga", "/promote")
    assert done.status == "changed"
    assert pg.champion() == version
    assert "@maria" in pg.answers(thread)[-1].body and "@olga" in pg.answers(thread)[-1].body


# --- refusals: each leaves the registry untouched and says why --------------------------------


def refused(pg: Playground, thread: Any, author: str, body: str, code: str) -> str:
    before = (pg.ctx.registry.aliases(pg.model), pg.history())
    outcome, event = pg.comment(thread, author, body)
    assert (outcome.status, outcome.detail) == ("refused", code)
    assert (pg.ctx.registry.aliases(pg.model), pg.history()) == before
    answer = pg.answers(thread)[-1].body
    assert f"comment={event.comment_id}" in answer
    assert "refused" in answer and "**Why:**" in answer
    return answer


def test_non_approver_is_refused(pg: Playground):
    thread = pg.open_request(pg.train(0.6))
    answer = refused(pg, thread, "sam", "/promote", "not_eligible")
    assert "@sam is not an eligible approver" in answer and "maintainer" in answer


def test_stranger_with_no_role_is_refused_a_rollback(pg: Playground):
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    thread = pg.open_request(pg.train(0.59))
    refused(pg, thread, "mallory", f"/rollback {first}", "not_eligible")


def test_person_who_triggered_training_may_not_approve(pg: Playground):
    pg.forge.set_role("dana", "maintainer")
    thread = pg.open_request(pg.train(0.6), requested_by="dana")
    answer = refused(pg, thread, "dana", "/promote", "self_approval")
    assert "allow_self_approval" in answer


def test_self_approval_allowed_by_config(make_pg: MakePlayground):
    pg = make_pg(approvers={"allow_self_approval": True})
    pg.forge.set_role("dana", "maintainer")
    thread = pg.open_request(pg.train(0.6), requested_by="dana")
    assert pg.comment(thread, "dana", "/promote")[0].status == "changed"


def test_closed_request_is_refused(pg: Playground):
    thread = pg.open_request(pg.train(0.6))
    pg.forge.close(thread)
    refused(pg, thread, "maria", "/promote", "closed")


def test_stale_request_links_the_newer_one(pg: Playground):
    old = pg.open_request(pg.train(0.6))
    newer = pg.open_request(pg.train(0.58))
    answer = refused(pg, old, "maria", "/promote", "stale")
    assert newer.url in answer


def test_version_already_champion_is_refused(pg: Playground):
    version = pg.train(0.6)
    thread = pg.open_request(version)
    pg.ctx.registry.set_alias(pg.model, "champion", version)
    refused(pg, thread, "maria", "/promote", "already_champion")


def test_failing_hard_gate_is_refused_with_the_values(make_pg: MakePlayground):
    pg = make_pg(gates={"thresholds": {"final.accuracy": {"min": 0.8}}})
    thread = pg.open_request(pg.train(0.6, accuracy=0.7))
    answer = refused(pg, thread, "maria", "/promote", "gate")
    assert "final.accuracy" in answer and "0.7" in answer and "0.8" in answer


def test_regression_against_the_current_champion_is_rechecked_at_promote(pg: Playground):
    champion = pg.train(0.60)
    pg.comment(pg.open_request(champion), "maria", "/promote")
    # a worse model became candidate through the tolerance and a manual alias move
    worse = pg.train(0.70, gate_it=False)
    pg.ctx.registry.set_alias(pg.model, "candidate", worse)
    answer = refused(pg, pg.open_request(worse), "maria", "/promote", "gate")
    assert "regression" in answer


def test_required_tag_missing_is_refused(make_pg: MakePlayground):
    pg = make_pg(gates={"required_tags": ["git_sha"]})
    thread = pg.open_request(pg.train(0.6))
    refused(pg, thread, "maria", "/promote", "gate")


def test_unticked_checklist_is_refused(pg: Playground):
    thread = pg.open_request(pg.train(0.6), ticked=False)
    answer = refused(pg, thread, "maria", "/promote", "checklist")
    assert "4 checklist item(s)" in answer
    # ticking them in the body (as a person would) lets the next /promote through
    current = pg.thread(thread)
    pg.forge.update_body(current, current.body.replace("- [ ]", "* [X]"))
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"


def test_checklist_not_required_by_config(make_pg: MakePlayground):
    pg = make_pg(require_checklist=False)
    thread = pg.open_request(pg.train(0.6), ticked=False)
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"


def test_missing_platform_approval_is_refused(make_pg: MakePlayground):
    pg = make_pg(request={"kind": "merge_request"}, approvers={"require_platform_approval": True})
    thread = pg.open_request(pg.train(0.6), kind="merge_request")
    refused(pg, thread, "maria", "/promote", "platform_approval")
    pg.forge.approve(thread.number, "olga")
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"


def test_toy_version_is_never_promoted(pg: Playground):
    toy = pg.train(0.5, alias="ci-smoke")
    pg.ctx.registry.set_alias(pg.model, "candidate", toy)  # even if someone moved the alias
    refused(pg, pg.open_request(toy), "maria", "/promote", "toy")


def test_rollback_refusals(pg: Playground):
    first = pg.train(0.6)
    toy = pg.train(0.5, alias="ci-smoke")
    thread = pg.open_request(first)
    pg.comment(thread, "maria", "/promote")
    refused(pg, thread, "maria", "/rollback 99", "unknown_version")
    refused(pg, thread, "maria", f"/rollback {toy}", "toy")
    refused(pg, thread, "maria", f"/rollback {first}", "already_champion")


# --- what is not a command, and answers that are not changes ----------------------------------


def test_usage_help_and_silence(pg: Playground):
    version = pg.train(0.6)
    thread = pg.open_request(version)
    assert pg.comment(thread, "maria", "/rollback")[0].status == "usage"
    assert "not understood" in pg.answers(thread)[-1].body
    assert pg.comment(thread, "sam", "/help")[0].status == "help"
    help_answer = pg.answers(thread)[-1].body
    assert "`/promote`" in help_answer and f"this request is for v{version}" in help_answer
    for chatter in ("lgtm", "> /promote", "```\n/promote\n```", "/promoted", ""):
        assert pg.comment(thread, "maria", chatter)[0].status == "ignored"
    assert len(pg.answers(thread)) == 2
    assert pg.champion() is None


def test_a_command_word_with_words_after_it_gets_the_usage_answer_once(pg: Playground):
    """`/promote please`: meant for the bot, so answered (never silence), never acted on; the
    same comment delivered again is not answered twice."""
    from bot.commands.handler import handle_comment

    thread = pg.open_request(pg.train(0.6))
    outcome, event = pg.comment(thread, "maria", "/promote please")
    assert outcome.status == "usage", outcome
    answer = pg.answers(thread)[-1].body
    assert answer.startswith("### ❓ `/promote please` was not understood")
    assert "stands alone on its line; the reason goes below it" in answer
    assert handle_comment(pg.ctx, event).status != "usage"  # a redelivery: answered once
    assert len(pg.answers(thread)) == 1
    assert pg.champion() is None


def test_bot_never_acts_on_its_own_comments(pg: Playground):
    thread = pg.open_request(pg.train(0.6))
    pg.forge.set_role(pg.forge.bot_username(), "owner")
    outcome, _ = pg.comment(thread, pg.forge.bot_username(), "/promote")
    assert outcome.status == "ignored"
    outcome, _ = pg.comment(thread, pg.forge.bot_username().upper(), "/promote")
    assert outcome.status == "ignored"
    assert pg.champion() is None
    assert answered_comment_ids([c.body for c in pg.forge.list_comments(thread)]) == set()


def test_edited_comments_are_ignored(pg: Playground):
    from bot.commands.handler import handle_comment

    thread = pg.open_request(pg.train(0.6))
    posted = pg.forge.add_comment(thread.number, "maria", "/promote")
    outcome = handle_comment(pg.ctx, pg.event(thread, posted, action="edited"))
    assert outcome.status == "ignored"
    assert pg.champion() is None


def test_command_on_another_models_request_is_ignored(pg: Playground):
    thread = pg.open_request(pg.train(0.6), model="some-other-model")
    outcome, _ = pg.comment(thread, "maria", "/promote")
    assert outcome.status == "ignored"
    assert pg.champion() is None and pg.answers(thread) == []


def test_comment_on_a_thread_that_is_no_request_is_ignored(pg: Playground):
    thread = pg.forge.open_issue("Unrelated bug", "Something broke", ["model-promotion"])
    outcome, _ = pg.comment(thread, "maria", "/promote")
    assert outcome.status == "ignored"
    assert pg.answers(thread) == []


# --- exactly once ------------------------------------------------------------------------------


def test_the_same_comment_handled_twice_acts_and_answers_once(pg: Playground):
    from bot.commands.handler import handle_comment

    version = pg.train(0.6)
    thread = pg.open_request(version)
    outcome, event = pg.comment(thread, "maria", "/promote")
    assert outcome.status == "changed"
    assert handle_comment(pg.ctx, event).status == "duplicate"
    assert handle_comment(pg.ctx, event).status == "duplicate"
    assert len(pg.answers(thread)) == 1 and len(pg.history()) == 1


def test_lost_answer_is_posted_on_the_next_pass_without_a_second_change(
    pg: Playground, monkeypatch: pytest.MonkeyPatch
):
    from bot.commands.handler import handle_comment
    from bot.forges.local import LocalForge

    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    thread = pg.open_request(pg.train(0.58))
    posted = pg.forge.add_comment(thread.number, "maria", "/promote")
    event = pg.event(thread, posted)

    real_post = LocalForge.post_comment

    def forge_down(self: LocalForge, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("forge went away")

    monkeypatch.setattr(LocalForge, "post_comment", forge_down)
    with pytest.raises(ConnectionError):
        handle_comment(pg.ctx, event)
    assert len(pg.history()) == 2  # the change was made and recorded before the answer

    monkeypatch.setattr(LocalForge, "post_comment", real_post)
    outcome = handle_comment(pg.ctx, event)
    assert outcome.status == "recovered"
    assert handle_comment(pg.ctx, event).status == "duplicate"
    assert len(pg.history()) == 2
    [answer] = pg.answers(thread)
    assert f"from | v{first}" in answer.body


def test_change_interrupted_before_its_record_is_finished_on_the_next_pass(
    pg: Playground, monkeypatch: pytest.MonkeyPatch
):
    from bot.commands.change import ChangeFailed
    from bot.commands.handler import handle_comment
    from bot.registry.client import Registry

    version = pg.train(0.6)
    thread = pg.open_request(version)
    posted = pg.forge.add_comment(thread.number, "maria", "/promote")
    event = pg.event(thread, posted)

    real_append = Registry.append_history

    def registry_fails(self: Registry, *args: Any, **kwargs: Any) -> None:
        from bot.errors import RegistryError

        raise RegistryError("registry answered 503")

    monkeypatch.setattr(Registry, "append_history", registry_fails)
    with pytest.raises(ChangeFailed):
        handle_comment(pg.ctx, event)
    assert pg.champion() == version and pg.history() == []  # moved, not yet recorded
    assert pg.ctx.registry.pending(pg.model) is not None

    monkeypatch.setattr(Registry, "append_history", real_append)
    assert handle_comment(pg.ctx, event).status == "recovered"
    assert [h["to"] for h in pg.history()] == [version]
    assert pg.ctx.registry.pending(pg.model) is None
    assert len(pg.answers(thread)) == 1


def test_registry_failure_before_the_change_is_answered_and_changes_nothing(
    pg: Playground, monkeypatch: pytest.MonkeyPatch
):
    from bot.errors import RegistryError
    from bot.registry.client import Registry

    thread = pg.open_request(pg.train(0.6))

    def down(self: Registry, *args: Any, **kwargs: Any) -> None:
        raise RegistryError("the registry at http://mlflow is unreachable")

    monkeypatch.setattr(Registry, "set_pending", down)
    outcome, _ = pg.comment(thread, "maria", "/promote")
    assert outcome.status == "error"
    assert pg.champion() is None and pg.history() == []
    answer = pg.answers(thread)[-1].body
    assert "the model registry failed" in answer and "Comment the command again" in answer
    assert "http://mlflow" not in answer  # where and what the server said: the log only


# --- review fixes: rollback scope, registry-held requester, live approvals, platform ----------


def test_rollback_only_returns_to_an_earlier_champion(pg: Playground):
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    fresh = pg.train(0.55)  # candidate, never champion
    thread = pg.open_request(fresh)
    answer = refused(pg, thread, "maria", f"/rollback {fresh}", "never_champion")
    assert "`/promote`" in answer


def test_editing_the_request_marker_cannot_dodge_the_self_approval_rule(
    make_pg: MakePlayground, monkeypatch: pytest.MonkeyPatch
):
    pg = make_pg()
    pg.forge.set_role("dana", "maintainer")
    monkeypatch.setattr(
        pg.ctx, "settings", pg.ctx.settings.with_overrides(requested_by="dana"), raising=False
    )
    version = pg.train(0.6)  # register records dana as the one who trained it
    assert pg.ctx.registry.version(pg.model, version).requested_by == "dana"
    thread = pg.open_request(version, requested_by="someone-else")  # an edited marker
    refused(pg, thread, "dana", "/promote", "self_approval")


def test_an_approval_stops_counting_when_its_author_loses_the_role(make_pg: MakePlayground):
    pg = make_pg(approvers={"required_approvals": 2})
    version = pg.train(0.6)
    thread = pg.open_request(version)
    assert pg.comment(thread, "maria", "/promote")[0].detail == "1 of 2"
    pg.forge.set_role("maria", "reporter")
    outcome, _ = pg.comment(thread, "olga", "/promote")
    assert (outcome.status, outcome.detail) == ("approval", "1 of 2")
    assert pg.champion() is None


def test_a_comment_from_another_platform_is_ignored(pg: Playground):
    from dataclasses import replace

    from bot.commands.handler import handle_comment

    thread = pg.open_request(pg.train(0.6))
    posted = pg.forge.add_comment(thread.number, "maria", "/promote")
    outcome = handle_comment(pg.ctx, replace(pg.event(thread, posted), platform="github"))
    assert outcome.status == "ignored"
    assert pg.champion() is None and pg.answers(thread) == []


def test_promote_works_when_the_champions_run_was_deleted(pg: Playground):
    from mlflow import MlflowClient

    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    run_id = pg.ctx.registry.version(pg.model, first).run_id
    MlflowClient(tracking_uri=pg.ctx.settings.tracking_uri).delete_run(run_id)
    second = pg.train(0.58)
    outcome, _ = pg.comment(pg.open_request(second), "maria", "/promote")
    assert outcome.status == "changed", outcome
    assert pg.champion() == second


# --- the champion the bot replaced is a rollback target; one set by hand since is not -----------


@pytest.mark.parametrize("seen_first", [False, True], ids=["unseen", "seen by poll first"])
def test_rollback_returns_to_the_champion_the_bot_replaced(pg: Playground, seen_first: bool):
    """A team adopts the bot with v1 serving (set by hand, or by an earlier process); the
    bot's first change goes v1 -> v2. When v2 misbehaves, the way back is offered and taken."""
    from bot.commands.external_change import report_drift

    first = pg.train(0.6, gate_it=False)
    pg.ctx.registry.set_alias(pg.model, "champion", first)
    if seen_first:  # poll saw v1 before the first change: recorded as the champion it found
        report_drift(pg.ctx, "poll")
    second = pg.train(0.59)
    thread = pg.open_request(second)
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"
    promoted = pg.answers(thread)[-1].body
    assert f"To go back, comment `/rollback {first}`." in promoted

    outcome, _ = pg.comment(thread, "maria", f"/rollback {first}")

    assert outcome.status == "changed", outcome
    assert pg.champion() == first
    assert f"`/rollback {second}`" in pg.answers(thread)[-1].body  # and back again


def test_a_champion_set_by_hand_after_adoption_is_no_rollback_target(pg: Playground):
    """The bot made v1 champion; then someone set v2 in the MLflow UI (recorded as drift).
    The bot's next change replaces v2, which nobody approved here: not offered, refused."""
    from bot.commands.external_change import report_drift

    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    by_hand = pg.train(0.61, gate_it=False)
    pg.ctx.registry.set_alias(pg.model, "champion", by_hand)
    report_drift(pg.ctx, "poll")
    third = pg.train(0.58)
    thread = pg.open_request(third)
    assert pg.comment(thread, "maria", "/promote")[0].status == "changed"
    assert "/rollback" not in pg.answers(thread)[-1].body  # no advice the bot would refuse

    answer = refused(pg, thread, "maria", f"/rollback {by_hand}", "never_champion")

    assert "set by hand" in answer
    assert pg.comment(thread, "maria", f"/rollback {first}")[0].status == "changed"


# --- templates render in a sandbox ---------------------------------------------------------------

STOLEN = "glpat-this-is-the-bots-token"


def test_a_template_override_cannot_read_the_bots_secrets(
    make_pg: MakePlayground, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template is code: in a plain Jinja environment `cycler.__init__.__globals__.os.environ`
    reads the bot's environment into a public answer, where no log masking applies."""
    from bot.errors import ConfigError

    overrides = Path("ci-templates")  # inside the repository (the test's working folder)
    overrides.mkdir()
    payload = "{{ cycler.__init__.__globals__.os.environ['GITLAB_TOKEN'] }}\n"
    (overrides / "answer_help.md.j2").write_text(payload, encoding="utf-8")
    monkeypatch.setenv("GITLAB_TOKEN", STOLEN)
    pg = make_pg(templates_dir="ci-templates")
    thread = pg.open_request(pg.train(0.6))

    with pytest.raises(ConfigError, match=r"answer_help\.md\.j2"):
        pg.comment(thread, "sam", "/help")

    assert not any(STOLEN in answer.body for answer in pg.answers(thread))
