"""The request binding (`promotion.requested_in`: which thread is a version's request) is evidence
only when the bot sealed it (docs/security.md, "The registry writer"): each attack is made with
MLflow's own client against a real registry, as anyone who can write to it would."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bot.ci.request import open_or_update_request
from bot.registry.tags import REQUESTED_IN_TAG
from bot.registry.versions import binding_value
from bot.runtime.request_threads import find_requests
from bot.threads.thread import Thread
from tests.promotion_env import Playground, client, make_context


def bind(pg: Playground, version: int, value: str) -> None:
    """The registry writer's edit of the binding."""
    client(pg).set_model_version_tag(pg.model, str(version), REQUESTED_IN_TAG, value)


def binding(pg: Playground, version: int) -> str:
    return pg.ctx.registry.version(pg.model, version).tags[REQUESTED_IN_TAG]


def seal_of(value: str) -> str:
    return value.rpartition("|")[2]


def refused_as_unsigned(pg: Playground, thread: Thread) -> None:
    outcome, _event = pg.comment(thread, "maria", "/promote")
    assert (outcome.status, outcome.detail) == ("refused", "request_unsigned")
    answer = pg.answers(thread)[-1].body
    assert "the registry's record of this request was not written by promotion-bot" in answer
    assert "Run `promotion-bot request` again" in answer
    assert pg.champion() is None and pg.alias("candidate") is not None


def test_a_binding_pointed_at_another_thread_moves_nothing(pg: Playground) -> None:
    """A thread of the bot whose marker names v2, but which is not v2's request: pointing v2's
    binding at it, by hand or with the seal of another version's binding, makes no request."""
    first = pg.train(0.6)
    pg.open_request(first)
    second = pg.train(0.58)
    other = pg.open_request(second, record=False)  # v2's request is not this thread
    copied = seal_of(binding(pg, first))

    for forged in (other.url, f"{other.url}|{copied}"):
        bind(pg, second, forged)
        assert pg.ctx.registry.versions_requested_in(pg.model, other.url) == []
        assert pg.ctx.registry.models_requested_in([pg.model], other.url) == []
        refused_as_unsigned(pg, other)


def test_request_binds_a_binding_it_did_not_seal_again(pg: Playground) -> None:
    """A binding written before bindings were signed (the URL alone), in a request whose marker
    was written before ids: commands are refused, saying so, until `request` binds it again."""
    version = pg.train(0.6)
    thread = pg.open_request(version)
    legacy = re.sub(r" bot=[0-9a-f]{12}", "", pg.thread(thread).body)
    pg.forge.update_body(thread, legacy)
    bind(pg, version, thread.url)
    refused_as_unsigned(pg, thread)

    again = open_or_update_request(pg.ctx)
    assert (again.created, again.url) == (False, thread.url)  # the same thread, bound again
    tagged = f"tag {pg.model} v{version} {REQUESTED_IN_TAG}={thread.url}|{pg.ctx.keys.own}:"
    assert any(line.startswith(tagged) for line in again.planned)
    info = pg.ctx.registry.version(pg.model, version)
    assert info.requested_in == thread.url and not info.request_binding_problem(pg.ctx.keys)
    assert f"bot={pg.ctx.settings.instance_id}" in pg.thread(thread).body
    assert open_or_update_request(pg.ctx).planned == []  # a sealed binding stays as it is
    assert pg.comment(thread, "olga", "/promote")[0].status == "changed"


def test_request_does_not_take_over_the_thread_a_forged_binding_names(pg: Playground) -> None:
    """v2's binding pointed at v1's request: `request` for v2 neither adopts v1's thread (its
    marker names v1) nor closes it, and opens v2's own request."""
    first = pg.train(0.6)
    first_thread = pg.open_request(first)
    second = pg.train(0.58)
    bind(pg, second, f"{first_thread.url}|{seal_of(binding(pg, first))}")

    result = open_or_update_request(pg.ctx)
    assert result.created and result.url != first_thread.url
    assert result.superseded == [first_thread.number]  # closed because v1's binding names it
    assert f"version={first}" in pg.thread(first_thread).body  # not rewritten as v2's request
    assert pg.ctx.registry.version(pg.model, second).requested_in == result.url


def test_a_like_wildcard_confuses_no_url_and_a_bad_seal_is_logged_without_it(
    pg: Playground, caplog: pytest.LogCaptureFixture
) -> None:
    """The search matches `LIKE '<url>|%'`, where `_` matches any character: a version bound,
    with a good seal, to a look-alike URL is no binding of this one. A bad seal is named in the
    log by model and version, never quoted."""
    url = "https://gitlab.example.com/ml/soc_er/-/issues/1"
    look_alike = url.replace("soc_er", "socXer")
    first, second, third = pg.train(0.6), pg.train(0.59), pg.train(0.58)
    keys = pg.ctx.keys
    bind(pg, first, binding_value(keys, pg.model, first, look_alike))
    bind(pg, second, binding_value(keys, pg.model, second, url))
    bad = seal_of(binding_value(keys, pg.model, first, url))  # v1's seal for this URL
    bind(pg, third, f"{url}|{bad}")
    registry = pg.ctx.registry
    found = MlflowClient(pg.ctx.settings.tracking_uri).search_model_versions(
        f"name='{pg.model}' and tags.`{REQUESTED_IN_TAG}` LIKE '{url}|%'"
    )
    assert sorted(int(mv.version) for mv in found) == [first, second, third]  # what MLflow says

    with caplog.at_level(logging.WARNING, logger="bot.registry.client"):
        assert registry.versions_requested_in(pg.model, url) == [second]
    [warning] = [r.getMessage() for r in caplog.records if r.name == "bot.registry.client"]
    assert registry.versions_requested_in(pg.model, look_alike) == [first]
    assert registry.models_requested_in([pg.model, "another"], url) == [pg.model]
    assert f"{pg.model} v{third} names {url}" in warning
    assert bad not in warning and bad.partition(":")[2] not in warning


# --- two registries, one project ---------------------------------------------------------------


def test_a_forged_binding_adopts_no_thread_of_another_bot(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """Production's registry writer points production's v1 at staging's request (staging: a
    second registry serving the same project): production neither counts it among its
    requests, nor takes it over, nor acts in it."""
    production = Playground(make_context(tracking_uri, model_name, tmp_path), tmp_path)
    staging_uri = f"sqlite:///{tmp_path / 'staging.db'}"
    staging = Playground(make_context(staging_uri, model_name, tmp_path), tmp_path)
    production.setup_people()
    production.train(0.6)
    ours = open_or_update_request(production.ctx)
    staging.train(0.7)
    theirs = staging.forge.get_thread("issue", open_or_update_request(staging.ctx).number)
    copied = seal_of(binding(production, 1))

    for forged in (theirs.url, f"{theirs.url}|{copied}"):
        bind(production, 1, forged)
        listed = [t.url for t in find_requests(production.ctx)]
        assert theirs.url not in listed and ours.url in listed
        outcome, _ = production.comment(theirs, "maria", "/promote")
        assert (outcome.status, outcome.detail) == ("ignored", "a request of another bot")
    again = open_or_update_request(production.ctx)
    assert again.created and again.url not in (theirs.url, ours.url)  # staging's is not taken
    assert production.thread(theirs).body == theirs.body and not production.answers(theirs)
    assert production.champion() is None
