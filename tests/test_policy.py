"""bot.commands.policy, fast: who may move the champion and when a command is refused, in the
order a person would fix them (docs/design.md, "Rules for a champion change").

No MLflow server: the registry is an in-memory double with the real read interface
(tests/fakes/memory_registry.py), the forge the local one in a temporary folder.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.commands.policy import (
    Refusal,
    actor_refusal,
    promote_refusal,
    rollback_refusal,
    self_approval_refusal,
)
from bot.config.params import parse_params
from bot.config.settings import Settings
from bot.forges.local import LocalForge
from bot.registry.client import Registry
from bot.registry.records import HistoryEntry
from bot.registry.tags import (
    CHAMPION_SINCE_TAG,
    REGISTERED_AS_TAG,
    REQUEST_HEAD_TAG,
    REQUESTED_BY_ID_TAG,
    REQUESTED_BY_TAG,
    REQUESTED_IN_TAG,
)
from bot.registry.versions import VersionInfo, binding_value, requester_tags
from bot.runtime.context import Context
from bot.threads.thread import Thread
from tests.fakes.memory_registry import MemoryRegistry

MODEL = "churn"
_REQUESTER_27 = {"promotion.requested_by": "dana", "promotion.requested_by_id": "27"}
TICKED = "- [x] a <!-- check:metrics -->\n- [x] b <!-- check:data -->\n"
TICKED += "- [x] c <!-- check:contract -->\n- [x] d <!-- check:rollback -->\n"


def context(
    tmp_path: Path, registry: MemoryRegistry | None = None, **promotion: Any
) -> tuple[Context, MemoryRegistry, LocalForge]:
    params = parse_params({"register_model": {"model_name": MODEL}, "promotion": promotion}, "t")
    settings = Settings(platform="local", local_dir=tmp_path / "forge")
    registry = registry or MemoryRegistry()  # the double stands in for MLflow
    ctx = Context(settings=settings, params=params, registry=registry)
    forge = ctx.forge
    assert isinstance(forge, LocalForge)
    for person, role in {"maria": "maintainer", "dana": "developer", "sam": "reporter"}.items():
        forge.set_role(person, role)
    return ctx, registry, forge


def thread(state: str = "open", body: str = TICKED, kind: str = "issue") -> Thread:
    return Thread(kind, "7", "Promote", body, "https://forge/7", state, "promotion-bot")  # type: ignore[arg-type]


def code(refusal: Refusal | None) -> str | None:
    return None if refusal is None else refusal.code


def test_the_double_has_the_real_registrys_interface():
    methods = [n for n, v in vars(MemoryRegistry).items() if callable(v) and not n.startswith("_")]
    helpers = {"add_version", "add_history", "delete_run"}
    assert len(set(methods) - helpers) >= 10
    for name in set(methods) - helpers:
        real, double = getattr(Registry, name), getattr(MemoryRegistry, name)
        assert inspect.signature(real) == inspect.signature(double), name


# --- who: actor_refusal and self_approval_refusal -------------------------------------------------


@pytest.mark.parametrize(
    ("approvers", "author", "expected"),
    [
        ({}, "maria", None),  # maintainer, min_role maintainer
        ({}, "dana", "not_eligible"),  # developer < maintainer
        ({"min_role": "developer"}, "dana", None),
        ({}, "sam", "not_eligible"),
        ({}, "stranger", "not_eligible"),  # no role at all
        ({"users": ["Sam"], "min_role": None}, "sam", None),  # listed, any letter case
        ({"users": ["Sam"], "min_role": None}, "maria", "not_eligible"),  # role alone no longer
        # a listed name must still be a member: whoever holds the name now may be a stranger
        ({"users": ["zoe"], "min_role": None}, "zoe", "not_eligible"),
        ({"users": ["zoe"]}, "zoe", "not_eligible"),
        ({"users": ["Sam"]}, "maria", "not_eligible"),  # a list alone: no default role
        ({"users": ["Sam"], "min_role": "maintainer"}, "maria", None),  # given, it applies
        ({}, "promotion-bot", "bot"),  # never the bot
        ({}, "PROMOTION-BOT", "bot"),
    ],
)
def test_who_may_approve(
    tmp_path: Path, approvers: dict[str, Any], author: str, expected: str | None
):
    ctx, _, _ = context(tmp_path, approvers=approvers)
    assert code(actor_refusal(ctx, author, "")) == expected


def test_the_not_eligible_answer_says_who_is(tmp_path: Path):
    ctx, _, _ = context(tmp_path, approvers={"users": ["olga"], "min_role": "owner"})
    refusal = actor_refusal(ctx, "dana", "")
    assert refusal is not None and refusal.why == (
        "@dana is not an eligible approver: not listed in `promotion.approvers.users`; the "
        "developer role, below the owner role that is required"
    )
    # the words of the request body's "Who may approve" (bot.rules.approvers.describe)
    assert refusal.todo == "Approvers are `olga` or anyone with the owner role or higher."


@pytest.mark.parametrize(
    ("allowed", "author", "author_id", "recorded", "expected"),
    [
        (False, "dana", "", {"promotion.requested_by": "dana"}, "self_approval"),
        (False, "DANA", "", {"promotion.requested_by": "Dana"}, "self_approval"),
        (False, "maria", "", {"promotion.requested_by": "dana"}, None),
        # ids decide when both sides have one: a rename keeps the id, a new holder of the name
        # has another
        (False, "dana-r", "27", _REQUESTER_27, "self_approval"),
        (False, "dana", "41", _REQUESTER_27, None),
        (False, "dana", "", _REQUESTER_27, "self_approval"),  # no id on the comment: names
        (False, "dana", "27", {"promotion.requested_by_id": "27"}, "self_approval"),
        (False, "dana", "", {}, "no_requester"),  # nobody recorded: cannot be checked
        (True, "dana", "", {}, None),
        (True, "dana", "", {"promotion.requested_by": "dana"}, None),
    ],
)
def test_self_approval(
    tmp_path: Path,
    allowed: bool,
    author: str,
    author_id: str,
    recorded: dict[str, str],
    expected: str | None,
):
    ctx, _, _ = context(tmp_path, approvers={"allow_self_approval": allowed})
    name, user_id = recorded.get(REQUESTED_BY_TAG, ""), recorded.get(REQUESTED_BY_ID_TAG, "")
    signed = requester_tags(ctx.keys, MODEL, 3, name, user_id)  # as `register` records it
    version = VersionInfo(MODEL, 3, "run", tags=signed)
    assert code(self_approval_refusal(ctx, author, author_id, version)) == expected


def test_a_requester_record_the_bot_did_not_sign_decides_nothing(tmp_path: Path):
    ctx, _, _ = context(tmp_path)
    signed = requester_tags(ctx.keys, MODEL, 3, "dana", "27")
    for tags in (
        {REQUESTED_BY_TAG: "dana"},  # written by hand (or by a version before keys)
        {**signed, REQUESTED_BY_TAG: "erin"},  # rewritten so that dana may approve
        requester_tags(ctx.keys, MODEL, 4, "erin", ""),  # another version's record, copied
    ):
        version = VersionInfo(MODEL, 3, "run", tags=tags)
        assert code(self_approval_refusal(ctx, "dana", "27", version)) == "requester_unsigned"


def test_the_key_id_of_a_forged_requester_record_is_shown_inert(tmp_path: Path):
    """The refusal names what is wrong with the record, and with it the key id the tag claims:
    text a registry writer chose, which must not ping, link or hide anything in the bot's voice."""
    ctx, _, _ = context(tmp_path)
    version = VersionInfo(MODEL, 3, "run", tags={REQUESTED_BY_TAG: "dana|@all[x](//e:x"})
    refusal = self_approval_refusal(ctx, "erin", "28", version)
    assert refusal is not None and refusal.code == "requester_unsigned"
    assert "@all" not in refusal.why and "[x](" not in refusal.why
    assert "@\u200ball\\[x\\]" in refusal.why


# --- /promote: promote_refusal, in the order a person would fix things ------------------------


def promotion_world(
    tmp_path: Path, **promotion: Any
) -> tuple[Context, MemoryRegistry, VersionInfo]:
    """v1 champion (logloss 0.60), v2 candidate (0.55): every rule holds for v2."""
    ctx, registry, _ = context(tmp_path, **promotion)
    registry.add_version(MODEL, {"final.logloss": 0.60})
    candidate = registry.add_version(MODEL, {"final.logloss": 0.55}, run_tags={"git_sha": "abc"})
    registry.set_alias(MODEL, "champion", 1)
    registry.set_alias(MODEL, "candidate", 2)
    return ctx, registry, candidate


def refuse_promote(
    ctx: Context, registry: MemoryRegistry, version: VersionInfo, on: Thread | None = None
) -> str | None:
    aliases = registry.aliases(MODEL)
    candidate = registry.version(MODEL, aliases["candidate"]) if "candidate" in aliases else None
    champion = registry.version(MODEL, aliases["champion"]) if "champion" in aliases else None
    refusal, _gates = promote_refusal(ctx, on or thread(), version, candidate, champion)
    return code(refusal)


def test_promote_passes_when_every_rule_holds(tmp_path: Path):
    ctx, registry, candidate = promotion_world(tmp_path)
    refusal, gates = promote_refusal(
        ctx, thread(), candidate, candidate, registry.version(MODEL, 1)
    )
    assert refusal is None
    assert [(gate.name, gate.passed) for gate in gates] == [("regression", True)]


Arrange = Callable[[MemoryRegistry, VersionInfo], Any]


@pytest.mark.parametrize(
    ("arrange", "on", "expected"),
    [
        (None, thread(state="closed"), "closed"),
        (None, thread(state="merged"), "closed"),
        (lambda r, v: r.set_version_tag(MODEL, 2, REGISTERED_AS_TAG, "ci-smoke"), None, "toy"),
        (lambda r, v: r.set_alias(MODEL, "champion", 2), None, "already_champion"),
        (lambda r, v: r.set_alias(MODEL, "candidate", 1), None, "stale"),
        (None, thread(body=TICKED.replace("[x] b", "[ ] b")), "checklist"),
        (None, thread(body=""), "checklist"),
    ],
    ids=["closed", "merged", "toy", "already-champion", "stale", "one-unticked", "no-checklist"],
)
def test_promote_refusals(
    tmp_path: Path, arrange: Arrange | None, on: Thread | None, expected: str
):
    ctx, registry, candidate = promotion_world(tmp_path)
    if arrange is not None:
        arrange(registry, candidate)
    assert refuse_promote(ctx, registry, registry.version(MODEL, 2), on) == expected


def test_a_closed_request_is_refused_before_anything_else_is_read(tmp_path: Path):
    ctx, registry, _ = promotion_world(tmp_path)
    registry.set_version_tag(MODEL, 2, REGISTERED_AS_TAG, "ci-smoke")  # also a toy
    assert refuse_promote(ctx, registry, registry.version(MODEL, 2), thread("closed")) == "closed"


@pytest.mark.parametrize("sealed", [True, False])
def test_the_stale_answer_links_the_candidates_request(tmp_path: Path, sealed: bool):
    """Only a binding the bot sealed: one written by hand links nothing (no request is listed)."""
    ctx, registry, _ = promotion_world(tmp_path)
    newer = registry.add_version(MODEL, {"final.logloss": 0.5})
    url = "https://forge/9"
    binding = binding_value(ctx.keys, MODEL, newer.version, url) if sealed else url
    registry.set_version_tag(MODEL, newer.version, REQUESTED_IN_TAG, binding)
    registry.set_alias(MODEL, "candidate", newer.version)
    refusal, _ = promote_refusal(
        ctx,
        thread(),
        registry.version(MODEL, 2),
        registry.version(MODEL, newer.version),
        registry.version(MODEL, 1),
    )
    assert refusal is not None and refusal.code == "stale"
    assert "v2 is no longer `candidate` (v3 is)" in refusal.why
    assert refusal.todo.endswith("See https://forge/9.") is sealed


@pytest.mark.parametrize(
    ("gates", "expected"),
    [
        ({"max_regression_vs_champion": 0.0}, None),
        ({"thresholds": {"final.logloss": {"max": 0.5}}}, "gate"),
        ({"thresholds": {"final.accuracy": {"min": 0.5}}}, "gate"),  # missing on the run
        ({"required_tags": ["git_sha"]}, None),
        ({"required_tags": ["data_version"]}, "gate"),
    ],
)
def test_hard_gates_are_checked_again_at_promote(
    tmp_path: Path, gates: dict[str, Any], expected: str | None
):
    ctx, registry, candidate = promotion_world(tmp_path, gates=gates)
    assert refuse_promote(ctx, registry, candidate) == expected


def test_a_candidate_worse_than_the_champion_fails_the_regression_gate(tmp_path: Path):
    ctx, registry, _ = promotion_world(tmp_path)
    worse = registry.add_version(MODEL, {"final.logloss": 0.61})
    registry.set_alias(MODEL, "candidate", worse.version)
    refusal, gates = promote_refusal(ctx, thread(), worse, worse, registry.version(MODEL, 1))
    assert refusal is not None and refusal.code == "gate"
    assert "regression: `final.logloss` 0.61 vs champion 0.6" in refusal.why
    assert [gate.passed for gate in gates] == [False]


def test_a_deleted_champion_run_is_not_comparable_and_does_not_block(tmp_path: Path):
    ctx, registry, candidate = promotion_world(tmp_path)
    registry.delete_run(registry.version(MODEL, 1).run_id)
    refusal, gates = promote_refusal(
        ctx, thread(), candidate, candidate, registry.version(MODEL, 1)
    )
    assert refusal is None and "not comparable" in gates[0].detail


def test_checklist_not_required(tmp_path: Path):
    ctx, registry, candidate = promotion_world(tmp_path, require_checklist=False)
    assert refuse_promote(ctx, registry, candidate, thread(body="")) is None


def test_platform_approval_applies_to_merge_requests_only(tmp_path: Path):
    ctx, registry, candidate = promotion_world(
        tmp_path, approvers={"require_platform_approval": True}
    )
    assert refuse_promote(ctx, registry, candidate, thread(kind="issue")) is None
    forge = ctx.forge
    assert isinstance(forge, LocalForge)
    forge.commit_file("promotion/churn/v2", "main", "r.json", "{}", "record")
    mr = forge.open_merge_request(
        "Promote", TICKED, ["model-promotion"], "promotion/churn/v2", "main"
    )
    registry.set_version_tag(MODEL, candidate.version, REQUEST_HEAD_TAG, mr.head_sha)
    candidate = registry.version(MODEL, candidate.version)
    assert refuse_promote(ctx, registry, candidate, mr) == "platform_approval"
    forge.approve(mr.number, "maria")
    assert refuse_promote(ctx, registry, candidate, mr) is None


def test_a_merge_request_is_merged_only_at_the_head_request_recorded(tmp_path: Path):
    ctx, registry, candidate = promotion_world(tmp_path)
    forge = ctx.forge
    assert isinstance(forge, LocalForge)
    forge.commit_file("promotion/churn/v2", "main", "r.json", "{}", "record")
    mr = forge.open_merge_request("Promote", TICKED, ["l"], "promotion/churn/v2", "main")
    assert refuse_promote(ctx, registry, candidate, mr) == "unreviewed_commits"  # none recorded
    registry.set_version_tag(MODEL, candidate.version, REQUEST_HEAD_TAG, mr.head_sha)
    candidate = registry.version(MODEL, candidate.version)
    assert refuse_promote(ctx, registry, candidate, mr) is None
    forge.commit_file("promotion/churn/v2", "main", "params.yaml", "x", "pushed later")
    moved = forge.get_thread("merge_request", mr.number)
    assert refuse_promote(ctx, registry, candidate, moved) == "unreviewed_commits"
    unmerged, _, _ = context(tmp_path, registry, request={"merge_on_promote": False})
    assert refuse_promote(unmerged, registry, candidate, moved) is None  # people merge it


# --- /rollback: rollback_refusal ----------------------------------------------------------------


def rollback(registry: MemoryRegistry, ctx: Context, number: int) -> str | None:
    try:
        target: VersionInfo | None = registry.version(MODEL, number)
    except Exception:
        target = None
    champion = registry.aliases(MODEL).get("champion")
    return code(rollback_refusal(ctx, target, number, champion, registry.history(MODEL)))


def test_rollback_rules(tmp_path: Path):
    ctx, registry, _ = context(tmp_path)
    for _ in range(4):
        registry.add_version(MODEL, {"final.logloss": 0.6})
    registry.set_version_tag(MODEL, 3, REGISTERED_AS_TAG, "ci-smoke")
    registry.set_alias(MODEL, "champion", 2)
    registry.add_history(MODEL, {"from": 1, "to": 2, "action": "promote"})

    # The history's `from`, unless the ledger says it is the champion the bot replaced.
    assert rollback(registry, ctx, 1) == "never_champion"
    v1, history = registry.version(MODEL, 1), registry.history(MODEL)
    assert code(rollback_refusal(ctx, v1, 1, 2, history, adopted=lambda: 1)) is None
    assert code(rollback_refusal(ctx, v1, 1, 2, history, adopted=lambda: 4)) == "never_champion"
    registry.add_history(MODEL, {"from": 2, "to": 1, "action": "rollback"})
    assert rollback(registry, ctx, 1) is None  # the bot made it champion once
    assert rollback(registry, ctx, 2) == "already_champion"
    assert rollback(registry, ctx, 3) == "toy"
    assert rollback(registry, ctx, 4) == "never_champion"
    assert rollback(registry, ctx, 9) == "unknown_version"
    registry.set_version_tag(MODEL, 4, CHAMPION_SINCE_TAG, "2025-01-01T00:00:00Z")
    assert rollback(registry, ctx, 4) is None  # was champion before the history was cut


def test_a_failed_registration_is_no_version_to_roll_back_to(tmp_path: Path):
    ctx, registry, _ = context(tmp_path)
    broken = registry.add_version(MODEL, status="FAILED_REGISTRATION")
    assert code(rollback_refusal(ctx, broken, 1, None, ())) == "unknown_version"


@pytest.mark.parametrize(
    ("stored", "counts"),
    [
        ({"from": 2, "to": "1"}, True),  # a version as a string of digits
        ({"to": 1}, True),
        ({"from": 1, "to": 2}, False),  # a `from` only: set by hand, not by the bot
        ({"from": None, "to": "one"}, False),  # nothing readable names v1
        ({"from": True, "to": 2}, False),  # a boolean is no version
    ],
)
def test_the_history_is_read_once_into_types(tmp_path: Path, stored: dict[str, Any], counts: bool):
    """A hand-edited history entry is read the same way by every rule (bot.registry.records)."""
    ctx, registry, _ = context(tmp_path)
    registry.add_version(MODEL)
    registry.add_version(MODEL)
    registry.set_alias(MODEL, "champion", 2)
    registry.add_history(MODEL, stored)
    [entry] = registry.history(MODEL)
    assert entry == HistoryEntry.parse(stored) and dict(entry.stored) == stored
    assert (rollback(registry, ctx, 1) is None) is counts
