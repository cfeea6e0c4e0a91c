"""`request` (docs/design.md, "The promotion request") against a real MLflow server and the local
forge in a temp folder.

Golden files live in tests/golden/; `UPDATE_GOLDEN=1 pytest tests/test_request.py` rewrites them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bot.ci.request import open_or_update_request, write_ci_outputs
from bot.ci.request_body import WAITING, RequestData, Side, render_request_body
from bot.ci.trend import Trend, TrendPoint
from bot.config.params import parse_params
from bot.config.settings import Settings
from bot.errors import BotError
from bot.forges.local import LocalForge
from bot.registry.tags import REQUESTED_BY_TAG
from bot.registry.versions import RunInfo, VersionInfo, binding_value, requester_tags
from bot.runtime.context import Context
from bot.runtime.request_threads import find_requests, refresh_status
from bot.threads.markers import parse_request_marker, read_section, read_ticks
from bot.threads.thread import Thread
from tests.helpers import log_training_run

GOLDEN = Path(__file__).parent / "golden"
MODEL = "soccer-match-outcome"


def assert_golden(name: str, text: str) -> None:
    # The bot's id hashes the forge's folder, a new temp dir each run.
    text = re.sub(r" bot=[0-9a-f]{12} -->", " bot=BOT -->", text, count=1)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"differs from {path} (UPDATE_GOLDEN=1)"


def make_ctx(tmp_path: Path, tracking_uri: str, model: str, **promotion: Any) -> Context:
    params = parse_params({"register_model": {"model_name": model}, "promotion": promotion})
    settings = Settings(
        tracking_uri=tracking_uri,
        platform="local",
        local_dir=tmp_path / "forge",
        requested_by="dana",
    )
    return Context(settings=settings, params=params)


def seal(ctx: Context, model: str, version: int, name: str = "dana") -> str:
    """The requester `request` records, sealed (docs/security.md): `name|<kid>:<sig>`."""
    return requester_tags(ctx.keys, model, version, name, "")[REQUESTED_BY_TAG]


def bound(ctx: Context, model: str, version: int, url: str) -> str:
    """The binding `request` records, sealed (docs/security.md): `url|<kid>:<sig>`."""
    return binding_value(ctx.keys, model, version, url)


def forge_of(ctx: Context) -> LocalForge:
    forge = ctx.forge
    assert isinstance(forge, LocalForge)
    return forge


def new_version(
    ctx: Context,
    metrics: dict[str, float],
    alias: str | None = "candidate",
    registered_as: str = "smoke",
    tags: dict[str, str] | None = None,
) -> VersionInfo:
    """What `register` + `gate` leave behind: a tagged version, optionally under an alias."""
    registry = ctx.registry
    run_id = log_training_run(ctx.settings.tracking_uri, metrics, tags=tags)
    registry.ensure_model(ctx.model)
    version = registry.create_version(ctx.model, f"runs:/{run_id}/model", run_id)
    registry.set_version_tag(ctx.model, version.version, "promotion.registered_as", registered_as)
    if alias:
        registry.set_alias(ctx.model, alias, version.version)
    return registry.version(ctx.model, version.version)


def marker_of(body: str) -> dict[str, str]:
    fields = parse_request_marker(body)
    assert fields is not None, "no request marker"
    return fields


def snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- golden bodies, rendered from fixed values ------------------------------------------------


def _fixed_side(version: int, run_id: str, metrics: dict[str, float], urls: bool) -> Side:
    base = "http://mlflow.example.com"
    return Side(
        version=VersionInfo(MODEL, version, run_id, tags={"promotion.registered_as": "smoke"}),
        run=RunInfo(run_id, "3", metrics=metrics, tags={"git_sha": "0a1b2c3"}),
        run_url=f"{base}/#/experiments/3/runs/{run_id}" if urls else "",
        version_url=f"{base}/#/models/{MODEL}/versions/{version}" if urls else "",
    )


CANDIDATE_METRICS = {"final.logloss": 0.6123, "final.accuracy": 0.561, "final.brier": 0.2012}
CHAMPION_METRICS = {"final.logloss": 0.6301, "final.accuracy": 0.549, "train.seconds": 41.0}
MANY = {f"fold{i}.logloss": 0.6 + i / 100 for i in range(9)} | {"final.logloss": 0.61}
TREND = Trend(
    "final.logloss",
    False,
    (
        TrendPoint(3, 0.6412),
        TrendPoint(4, 0.6388),
        TrendPoint(5, 0.6301, "champion"),
        TrendPoint(6, 0.6354),
        TrendPoint(7, 0.6123, "candidate"),
    ),
)

GOLDEN_CASES: dict[str, dict[str, Any]] = {
    "issue_with_champion.md": dict(
        kind="issue",
        slash=True,
        champion=True,
        urls=True,
        promotion={
            "approvers": {"users": ["alice", "bob"]},
            "gates": {
                "thresholds": {"final.accuracy": {"min": 0.55}, "final.brier": {"max": 0.2}},
                "required_tags": ["git_sha", "data_version"],
            },
        },
        requested_by="dana",
        pipeline_url="https://gitlab.example.com/ml/soccer/-/jobs/4242",
        ticks={"metrics": True, "contract": True},
        candidate=CANDIDATE_METRICS,
        trend=TREND,
    ),
    "issue_first_champion.md": dict(
        kind="issue",
        slash=True,
        champion=False,
        urls=False,  # a sqlite registry has no UI: plain text instead of links
        promotion={},
        requested_by="",
        pipeline_url="",
        ticks={},
        candidate=CANDIDATE_METRICS,
    ),
    "merge_request_slash_eaten.md": dict(
        kind="merge_request",
        slash=False,
        champion=True,
        urls=True,
        promotion={
            "request": {"kind": "merge_request"},
            "approvers": {
                "min_role": "owner",
                "required_approvals": 2,
                "require_platform_approval": True,
            },
        },
        requested_by="dana",
        pipeline_url="",
        ticks={},
        candidate=CANDIDATE_METRICS,
    ),
    "merge_request_first_champion_slash_eaten.md": dict(
        kind="merge_request",
        slash=False,
        champion=False,
        urls=True,
        promotion={"request": {"kind": "merge_request", "merge_on_promote": False}},
        requested_by="dana",
        pipeline_url="",
        ticks={},
        candidate=CANDIDATE_METRICS,
    ),
    "issue_many_metrics.md": dict(
        kind="issue",
        slash=True,
        champion=True,
        urls=True,
        promotion={"checklist": [], "approvers": {"allow_self_approval": True}},
        requested_by="dana",
        pipeline_url="",
        ticks={},
        candidate=MANY,
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_body_matches_golden(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = GOLDEN_CASES[name]
    params = parse_params({"register_model": {"model_name": MODEL}, "promotion": case["promotion"]})
    ctx = Context(settings=Settings(local_dir=tmp_path / "forge"), params=params)
    if not case["slash"]:  # GitLab EE: `/promote` is a quick action
        monkeypatch.setattr(ctx.forge, "slash_promote_works", lambda: False)
    candidate = _fixed_side(7, "c0ffee7", case["candidate"], case["urls"])
    champion = _fixed_side(5, "beef005", CHAMPION_METRICS, case["urls"])
    data = RequestData(
        candidate=candidate,
        champion=champion if case["champion"] else None,
        requested_by=case["requested_by"],
        pipeline_url=case["pipeline_url"],
        trend=case.get("trend"),
    )
    body = render_request_body(
        ctx, candidate.version, kind=case["kind"], ticks=case["ticks"], data=data
    )
    assert_golden(name, body)
    fields = parse_request_marker(body)
    assert fields is not None
    assert fields["version"] == "7"
    assert fields["kind"] == case["kind"]
    assert read_ticks(body) == {
        item.id: bool(case["ticks"].get(item.id)) for item in params.promotion.checklist
    }
    assert read_section(body, "status") == WAITING
    if case["slash"]:
        assert "`/promote` (or `@promotion-bot promote`)" in body
    else:  # only the mention form may be offered where `/promote` is eaten
        assert "`/promote`" not in body.replace("`/promote` does not reach", "")
        assert "`@promotion-bot promote`" in body
    assert "<details>" in body if len(case["candidate"]) > 8 else "<details>" not in body
    charted = "### Trend\n\n```mermaid\n" in body
    assert charted is ("trend" in case), "a chart exactly when the data has a trend"
    assert "### Metrics" in body  # the table stays: renderers without Mermaid show the block


def test_people_values_are_escaped_and_cannot_forge_markers(tmp_path: Path) -> None:
    ctx = Context(settings=Settings(local_dir=tmp_path / "f"), params=parse_params({}))
    candidate = _fixed_side(2, "abc", {"m": 1.0}, urls=False)
    data = RequestData(candidate, None, requested_by="eve -->*x*<!-- check:metrics -->")
    body = render_request_body(ctx, candidate.version, data=data)
    assert "eve --\\>\\*x\\*\\<!-- check:metrics --\\>" in body
    marker_line = body.splitlines()[0]
    assert marker_line.count("-->") == 1 and marker_line.count("<!--") == 1
    assert marker_of(body)["requested_by"] == "eve_--__x___--_check:metrics_--_"
    assert read_ticks(body) == {
        "metrics": False,
        "data": False,
        "contract": False,
        "rollback": False,
    }


# --- the operation against a real registry ----------------------------------------------------


def test_opened_body_from_the_live_registry_matches_golden(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    champion = new_version(ctx, {"final.logloss": 0.65, "final.accuracy": 0.52}, alias="champion")
    new_version(ctx, {"final.logloss": 0.9}, alias=None, registered_as="ci-smoke")  # not charted
    new_version(ctx, {"final.logloss": 0.64, "final.accuracy": 0.53}, alias="smoke")
    candidate = new_version(ctx, {"final.logloss": 0.62, "final.accuracy": 0.55})
    result = open_or_update_request(ctx)
    assert result.created and result.number == "1"
    thread = forge_of(ctx).get_thread("issue", "1")
    assert thread.title == f"Promote {model_name} v4 to champion"
    assert thread.labels == ("model-promotion",)
    assert thread.body == result.body
    normal = thread.body.replace(model_name, "MODEL").replace(tracking_uri, "http://MLFLOW")
    normal = normal.replace(candidate.run_id, "RUN4").replace(champion.run_id, "RUN1")
    normal = re.sub(r"/#/experiments/\d+/", "/#/experiments/EXP/", normal)
    assert_golden("live_issue.md", normal)


def test_request_twice_is_one_thread_and_updates_its_body(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.6, "final.accuracy": 0.5})
    first = open_or_update_request(ctx)
    assert first.created is True
    assert first.planned == [
        f"open issue 'Promote {model_name} v1 to champion'",
        f"tag {model_name} v1 promotion.requested_in={bound(ctx, model_name, 1, first.url)}",
        f"tag {model_name} v1 promotion.requested_by={seal(ctx, model_name, 1)}",
    ]
    tags = ctx.registry.version(model_name, 1).tags
    assert tags["promotion.requested_in"] == bound(ctx, model_name, 1, first.url)
    assert ctx.registry.version(model_name, 1).requested_by == "dana"
    again = open_or_update_request(ctx)
    assert (again.created, again.number, again.url) == (False, first.number, first.url)
    assert again.planned == []  # nothing changed: no write at all
    stricter = make_ctx(
        tmp_path, tracking_uri, model_name, gates={"thresholds": {"final.accuracy": {"min": 0.6}}}
    )
    third = open_or_update_request(stricter)
    assert third.planned == ["update the body of #1"]
    assert third.number == first.number
    threads = forge_of(ctx).find_threads([], state="all")
    assert [t.number for t in threads] == ["1"]
    assert "❌ `threshold:final.accuracy:min`: `final.accuracy` 0.5 >= 0.6" in threads[0].body
    assert "**1 of 2 hard gates fail:**" in threads[0].body


def test_human_ticks_and_status_survive_a_re_render(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.6})
    opened = open_or_update_request(ctx)
    forge = forge_of(ctx)
    thread = forge.get_thread("issue", opened.number)
    edited = (
        thread.body.replace("- [ ] Metrics", "- [x] Metrics")
        .replace("- [ ] Training data", "- [X] Training data")
        .replace("- [ ] Model contract", "* [x] Model contract")
    )
    forge.update_body(thread, edited)  # what a person ticking boxes in the web UI does
    refresh_status(ctx, thread, "Approved by alice (1 of 2).")
    assert read_ticks(forge.get_thread("issue", "1").body)["contract"] is True

    stricter = make_ctx(tmp_path, tracking_uri, model_name, gates={"required_tags": ["git_sha"]})
    result = open_or_update_request(stricter)
    assert result.planned == ["update the body of #1"]
    body = forge.get_thread("issue", "1").body
    assert "run tag `git_sha` is missing" in body
    assert read_ticks(body) == {"metrics": True, "data": True, "contract": True, "rollback": False}
    assert "- [x] Model contract unchanged" in body  # re-rendered in the canonical form
    assert read_section(body, "status") == "Approved by alice (1 of 2)."
    assert WAITING not in body


def test_requested_by_of_the_training_is_kept_when_someone_else_re_runs(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.6})
    open_or_update_request(ctx)
    other = Context(
        settings=Settings(
            tracking_uri=tracking_uri, local_dir=tmp_path / "forge", requested_by="eve"
        ),
        params=parse_params(
            {
                "register_model": {"model_name": model_name},
                "promotion": {"gates": {"required_tags": ["x"]}},
            }
        ),
    )
    assert open_or_update_request(other).planned == ["update the body of #1"]
    fields = parse_request_marker(forge_of(ctx).get_thread("issue", "1").body)
    assert fields is not None and fields["requested_by"] == "dana"


def test_newer_candidate_supersedes_the_older_request(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    forge = forge_of(ctx)
    new_version(ctx, {"final.logloss": 0.6})
    old = open_or_update_request(ctx)
    # a person's issue quoting a request body is not the bot's: never closed
    quoted = forge.open_issue(
        "copy", forge.get_thread("issue", old.number).body, ["model-promotion"]
    )
    raw = json.loads((forge.root / "threads" / f"{quoted.number}.json").read_text())
    (forge.root / "threads" / f"{quoted.number}.json").write_text(
        json.dumps(raw | {"author": "mallory"})
    )
    new_version(ctx, {"final.logloss": 0.59})
    new = open_or_update_request(ctx)
    assert new.created and new.number == "3"
    assert new.superseded == ["1"]
    assert new.planned == [
        f"open issue 'Promote {model_name} v2 to champion'",
        f"tag {model_name} v2 promotion.requested_in={bound(ctx, model_name, 2, new.url)}",
        f"tag {model_name} v2 promotion.requested_by={seal(ctx, model_name, 2)}",
        "comment on #1 (superseded)",
        "close #1 (superseded)",
    ]
    old_thread = forge.get_thread("issue", "1")
    assert old_thread.state == "closed"
    (comment,) = forge.list_comments(old_thread)
    assert comment.author == "promotion-bot"
    assert f"v2 is now the `@candidate`, see [#3]({new.url})" in comment.body
    assert "request for v1 is closed" in comment.body
    assert forge.get_thread("issue", quoted.number).state == "open"
    assert [t.number for t in find_requests(ctx)] == ["3"]


def test_merge_request_kind_commits_the_record_on_a_branch_and_opens_an_mr(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name, request={"kind": "merge_request"})
    version = new_version(ctx, {"final.logloss": 0.6, "final.accuracy": 0.51})
    result = open_or_update_request(ctx)
    branch = f"promotion/{model_name}/v1"
    path = f"promotions/{model_name}.json"
    assert result.planned == [
        f"create branch {branch} from main and commit {path}",
        f"open merge request 'Promote {model_name} v1 to champion' ({branch} -> main)",
        f"tag {model_name} v1 promotion.requested_in={bound(ctx, model_name, 1, result.url)}",
        f"tag {model_name} v1 promotion.requested_by={seal(ctx, model_name, 1)}",
        # the commit the bot made: the only one /promote merges
        f"tag {model_name} v1 promotion.request_head={forge_of(ctx).commits()[0]['id']}",
    ]
    forge = forge_of(ctx)
    record = json.loads(forge.branch_file(branch, path).read_text())
    assert record.pop("requested_at").endswith("Z")
    assert record == {
        "model": model_name,
        "version": 1,
        "run_id": version.run_id,
        "metrics": {"final.accuracy": 0.51, "final.logloss": 0.6},
        "requested_by": "dana",
    }
    assert forge.commits()[0]["branch"] == branch
    assert forge.commits()[0]["message"] == f"Request promotion of {model_name} v1"
    mr = forge.get_thread("merge_request", result.number)
    assert mr.kind == "merge_request"
    raw = json.loads((forge.root / "threads" / f"{mr.number}.json").read_text())
    assert (raw["source_branch"], raw["target_branch"]) == (branch, "main")
    assert f"adds `{path}`" in mr.body
    assert marker_of(mr.body)["kind"] == "merge_request"
    again = open_or_update_request(ctx)
    assert again.planned == [] and len(forge.commits()) == 1


def test_dry_run_writes_nothing_and_lists_the_calls(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.6})
    fresh = open_or_update_request(ctx, dry_run=True)
    assert not (tmp_path / "forge").exists()  # not even the folder or its lock file
    assert fresh.dry_run and fresh.created and fresh.url == "" and fresh.number == ""
    assert "version=1" in fresh.body
    open_or_update_request(ctx)
    new_version(ctx, {"final.logloss": 0.58})
    before = snapshot(tmp_path / "forge")
    result = open_or_update_request(ctx, dry_run=True)
    assert snapshot(tmp_path / "forge") == before
    assert result.planned == [
        f"open issue 'Promote {model_name} v2 to champion'",
        f"tag {model_name} v2 promotion.requested_in=<the new request's URL>|<the bot's signature>",
        f"tag {model_name} v2 promotion.requested_by=dana|<the bot's signature>",
        "comment on #1 (superseded)",
        "close #1 (superseded)",
    ]
    assert marker_of(result.body)["version"] == "2"
    assert "promotion.requested_in" not in ctx.registry.version(model_name, 2).tags
    mr_ctx = make_ctx(tmp_path, tracking_uri, model_name, request={"kind": "merge_request"})
    planned = open_or_update_request(mr_ctx, dry_run=True).planned
    assert planned[0] == (
        f"create branch promotion/{model_name}/v2 from main and commit promotions/{model_name}.json"
    )
    assert snapshot(tmp_path / "forge") == before


def test_a_ci_smoke_version_is_refused(tmp_path: Path, tracking_uri: str, model_name: str) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.9}, registered_as="ci-smoke")
    with pytest.raises(BotError, match=r"v1 was registered as ci-smoke: a toy model is never"):
        open_or_update_request(ctx)
    with pytest.raises(BotError, match="ci-smoke"):
        open_or_update_request(ctx, version=1)
    assert not (tmp_path / "forge").exists()


def test_no_candidate_is_a_clear_error(tmp_path: Path, tracking_uri: str, model_name: str) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    with pytest.raises(BotError, match=rf"{model_name} has no @candidate version"):
        open_or_update_request(ctx)  # the model does not even exist yet
    new_version(ctx, {"final.logloss": 0.6}, alias="smoke")
    with pytest.raises(BotError, match="has no @candidate version"):
        open_or_update_request(ctx)


def test_an_explicit_version_must_be_the_candidate(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.6})
    new_version(ctx, {"final.logloss": 0.7}, alias="smoke")
    with pytest.raises(BotError, match=r"v2 is not the @candidate \(v1 is\)"):
        open_or_update_request(ctx, version=2)
    assert open_or_update_request(ctx, version=1).created is True


def test_a_candidate_that_already_is_champion_needs_no_request(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    version = new_version(ctx, {"final.logloss": 0.6})
    ctx.registry.set_alias(model_name, "champion", version.version)
    result = open_or_update_request(ctx)
    assert (result.url, result.created, result.planned) == ("", False, [])
    assert "already is @champion" in result.message
    assert not (tmp_path / "forge").exists()


def test_refresh_status_keeps_ticks_made_after_the_thread_was_read(tmp_path: Path) -> None:
    ctx = Context(settings=Settings(local_dir=tmp_path / "f"), params=parse_params({}))
    forge = forge_of(ctx)
    candidate = _fixed_side(2, "abc", {"m": 1.0}, urls=False)
    body = render_request_body(ctx, candidate.version, data=RequestData(candidate, None))
    stale: Thread = forge.open_issue("t", body, [])
    forge.update_body(stale, body.replace("- [ ] Metrics", "- [x] Metrics"))
    new_body = refresh_status(ctx, stale, "✅ Promoted by alice: champion v1 → v2.").body
    stored = forge.get_thread("issue", stale.number).body
    assert stored == new_body
    assert read_section(stored, "status") == "✅ Promoted by alice: champion v1 → v2."
    assert read_ticks(stored)["metrics"] is True


def test_write_ci_outputs(tmp_path: Path) -> None:
    output = tmp_path / "gh-output"
    output.write_text("earlier=1\n")
    written = write_ci_outputs("https://x/issues/3", "3", {"GITHUB_OUTPUT": str(output)})
    assert written == [output]
    assert output.read_text() == "earlier=1\nrequest_url=https://x/issues/3\nrequest_number=3\n"
    written = write_ci_outputs("https://g/-/issues/4\n", "4", {"GITLAB_CI": "true"})
    assert written == [Path("promotion.env")]
    assert (tmp_path / "promotion.env").read_text() == (
        "PROMOTION_REQUEST_URL=https://g/-/issues/4\nPROMOTION_REQUEST_NUMBER=4\n"
    )
    assert write_ci_outputs("u", "1", {}) == []


def test_an_edited_marker_neither_gets_a_thread_adopted_nor_a_request_closed(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    """Someone edits model A's request marker to name model B's next version, then B's routine
    `request` runs; then to name B's older version. Only the registry says which thread is a
    version's request: B opens its own request and closes only B's."""
    a = make_ctx(tmp_path, tracking_uri, f"{model_name}-a")
    b = make_ctx(tmp_path, tracking_uri, f"{model_name}-b")
    new_version(a, {"final.logloss": 0.6})
    a_request = open_or_update_request(a)
    new_version(b, {"final.logloss": 0.6})
    b_first = open_or_update_request(b)
    forge = forge_of(a)
    a_thread = forge.get_thread("issue", a_request.number)
    forged = re.sub(r"model=\S+ version=1", f"model={b.model} version=2", a_thread.body)
    assert forged != a_thread.body
    forge.update_body(a_thread, forged)

    new_version(b, {"final.logloss": 0.55})
    b_second = open_or_update_request(b)
    assert b_second.created and b_second.number not in (a_request.number, b_first.number)
    assert b_second.superseded == [b_first.number]
    a_thread = forge.get_thread("issue", a_request.number)
    assert (a_thread.state, a_thread.body) == ("open", forged), "A's thread was not taken over"
    assert b.registry.version(b.model, 2).requested_in == b_second.url

    forge.update_body(
        a_thread, forged.replace(f"model={b.model} version=2", f"model={b.model} version=1")
    )
    again = open_or_update_request(b)
    assert (again.created, again.number, again.superseded) == (False, b_second.number, [])
    assert forge.get_thread("issue", a_request.number).state == "open"
    assert not forge.list_comments(a_thread), "nothing was said in A's thread either"


def run_request_cli(tmp_path: Path, env: dict[str, str], *args: str) -> Any:
    from click.testing import CliRunner

    from bot.cli import cli

    return CliRunner().invoke(cli, ["--params", str(tmp_path / "params.yaml"), *args], env=env)


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_dry_run_needs_no_forge_credentials_and_renders_the_body_offline(
    tmp_path: Path, tracking_uri: str, model_name: str, platform: str
) -> None:
    """`request --dry-run` on a laptop: no forge token, no forge reachable. The body is rendered
    as for a new request, and the run says what it could not check."""
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.6})
    (tmp_path / "params.yaml").write_text(f"register_model: {{model_name: {model_name}}}\n")
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PROMOTION_BOT_PLATFORM": platform,
        "PROMOTION_BOT_REQUESTED_BY": "dana",
        # where a token would be used, nothing listens
        "GITLAB_URL": "http://127.0.0.1:9",
        "CI_PROJECT_PATH": "ml/models",
        "GITHUB_API_URL": "http://127.0.0.1:9",
        "GITHUB_REPOSITORY": "octo-org/models",
        "GITLAB_TOKEN": "",
        "GITHUB_TOKEN": "",
    }
    result = run_request_cli(tmp_path, env, "request", "--dry-run")

    assert result.exit_code == 0, result.output
    assert marker_of(result.output)["version"] == "1"
    assert f"would call:\n  open issue 'Promote {model_name} v1 to champion'" in result.output
    assert "not read in this dry run" in result.output  # says what it could not check
    assert "promotion.requested_in" not in ctx.registry.version(model_name, 1).tags


def test_dry_run_says_nothing_to_do_when_the_request_is_up_to_date(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    ctx = make_ctx(tmp_path, tracking_uri, model_name)
    new_version(ctx, {"final.logloss": 0.6})
    open_or_update_request(ctx)
    (tmp_path / "params.yaml").write_text(f"register_model: {{model_name: {model_name}}}\n")
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PROMOTION_BOT_PLATFORM": "local",
        "PROMOTION_BOT_LOCAL_DIR": str(tmp_path / "forge"),
        "PROMOTION_BOT_REQUESTED_BY": "dana",
        # The local platform's own key, as `make_ctx`'s bot signed with (not the tests' key).
        "PROMOTION_BOT_SIGNING_KEY": "",
    }
    before = snapshot(tmp_path / "forge")

    result = run_request_cli(tmp_path, env, "request", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"nothing to do: the request for {model_name} v1 is up to date (#1)"
    )
    assert "would call:" not in result.output
    assert snapshot(tmp_path / "forge") == before
    assert not (tmp_path / "promotion.env").exists() and not Path("promotion.env").exists()
