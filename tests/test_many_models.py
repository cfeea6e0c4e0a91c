"""Three models in one repository, served by one `serve`, one `poll` and `handle`, against the
real MLflow server and python-gitlab / PyGithub over `responses` fakes (docs/design.md, "Which
comments the bot acts on"). Model A is approved by a team, B by maria or a maintainer, C by a
maintainer; each is judged by its own policy only, and an edited marker never moves a command to
another model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import responses

from bot.config.model_set import load_models
from bot.intake.entry import serve_app
from bot.intake.poll import poll
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.threads.markers import read_request_marker
from tests.fakes.forges import FakeForge, make_fake
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.forge_world import (
    World,
    deliver,
    more_people,
    open_ticked_request,
    world_settings,
)

TEAM = {"gitlab": "ml-team/a-owners", "github": "octo-org/a-owners"}


@dataclass
class Models:
    """The repository's three models, one request thread each."""

    ctx: Context  # serves all three
    fake: FakeForge
    rsps: responses.RequestsMock
    threads: dict[str, int]  # model -> its request's number
    tmp_path: Path

    def world(self, model: str) -> World:
        """World's delivery helpers for one model's thread (handled through the shared ctx)."""
        return World(self.ctx, self.fake, self.rsps, self.threads[model], self.tmp_path)

    def champion(self, model: str) -> int | None:
        return self.ctx.registry.aliases(model).get("champion")

    def answers(self, model: str) -> list[str]:
        return self.world(model).answers()


def write_params(folder: Path, names: dict[str, str], platform: str) -> Path:
    """A's settings in its own file next to its pipeline, B's and C's inline."""
    (folder / "models" / "a").mkdir(parents=True)
    a, b, c = names["a"], names["b"], names["c"]
    (folder / "models" / "a" / "params.yaml").write_text(
        f"register_model: {{model_name: {a}}}\n"
        "promotion:\n"
        "  request: {labels: [model-promotion, model-a]}\n"
        f"  approvers: {{min_role: null, teams: [{TEAM[platform]}]}}\n",
        encoding="utf-8",
    )
    top = folder / "params.yaml"
    top.write_text(
        "promotion:\n  approvers: {min_role: maintainer}\n"
        "models:\n"
        "  - models/a/params.yaml\n"
        f"  - register_model: {{model_name: {b}}}\n"
        "    promotion: {approvers: {users: [maria]}}\n"
        f"  - register_model: {{model_name: {c}}}\n",
        encoding="utf-8",
    )
    return top


@contextmanager
def three_models(platform: str, tracking_uri: str, prefix: str, tmp_path: Path) -> Iterator[Models]:
    names = {key: f"{prefix}-{key}" for key in "abc"}
    top = write_params(tmp_path / "repo", names, platform)
    with more_people(), responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(tracking_uri)
        fake = make_fake(platform)
        fake.install(rsps)
        if isinstance(fake, FakeGitLab):
            fake.groups = {TEAM["gitlab"]: {"devon": 30}}
        else:
            assert isinstance(fake, FakeGitHub)
            fake.teams = {TEAM["github"]: {"devon": "active"}}
        models = load_models(top)
        ctx = Context(world_settings(fake, tracking_uri), models.models[0], models=models)
        threads = {}
        for one in ctx.each_model():  # `promotion-bot request --model NAME`, one per model
            threads[one.model] = open_ticked_request(one, fake, tracking_uri)
        rsps.calls.reset()
        made = Models(ctx, fake, rsps, threads, tmp_path)
        yield made
        assert fake.errors == []


@pytest.fixture(params=["gitlab", "github"])
def repo(request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path):
    with three_models(request.param, tracking_uri, model_name[:40], tmp_path) as made:
        yield made


def _names(repo: Models) -> tuple[str, str, str]:
    a, b, c = repo.ctx.model_names()
    return a, b, c


def test_each_model_has_its_own_request_recorded_in_its_registry(repo: Models) -> None:
    for model, number in repo.threads.items():
        body = repo.fake.body(number)
        marker = read_request_marker(body)
        assert marker is not None and (marker.model, marker.version) == (model, 1)
        url = repo.ctx.registry.version(model, 1).requested_in
        assert url.endswith(f"/{number}")
    assert len(set(repo.threads.values())) == 3
    a, b, _c = _names(repo)
    labels = {model: repo.fake._labels(repo.fake.threads[n]) for model, n in repo.threads.items()}
    assert labels[a] == ["model-promotion", "model-a"] and labels[b] == ["model-promotion"]


def test_commands_interleaved_over_serve_handle_and_poll_each_judged_by_its_model(
    repo: Models,
) -> None:
    a, b, c = _names(repo)
    wa, wb, wc = repo.world(a), repo.world(b), repo.world(c)
    app = serve_app(repo.ctx, retry_delays=(0.01, 0.01))
    app.start()
    event = wa.event_name
    try:
        # serve: devon (a developer, in A's team) promotes A; maria asks C for help
        served = [
            wa.post(wa.number, "/promote", author="devon"),
            wc.post(wc.number, "/help", author="maria"),
        ]
        statuses = [deliver(app, repo.fake.platform, payload, event) for payload in served]
        # handle, meanwhile: devon on B is refused (B's policy: maria or a maintainer)
        handled = [wb.post(wb.number, "/promote", author="devon")]
        refused = wb.handle(handled[0])
        assert app.drain(30)
        assert [status for status, _ in statuses] == [202, 202]
        assert (refused.status, refused.detail) == ("refused", "not_eligible")
        handled.append(wb.post(wb.number, "/promote", author="maria"))
        assert wb.handle(handled[-1]).status == "changed"
        assert (repo.champion(a), repo.champion(b), repo.champion(c)) == (1, 1, None)

        # one poll answers commands on all three: C promoted by a maintainer, A refused to
        # maria (A is the team's), B's help
        polled = [
            repo.fake.add_comment(wc.number, "maria", "/promote"),
            repo.fake.add_comment(wa.number, "maria", "/rollback 1"),
            repo.fake.add_comment(wb.number, "dana", "/help"),
        ]
        result = poll(repo.ctx)
        outcomes = dict(result.outcomes)
        assert result.failures == []
        assert [str(outcomes[str(c["id"])]).split(":")[0] for c in polled] == [
            "changed",
            "refused",
            "help",
        ]
        assert outcomes[str(polled[1]["id"])].detail == "not_eligible"
        assert (repo.champion(a), repo.champion(b), repo.champion(c)) == (1, 1, 1)

        # every redelivery is a duplicate: serve's memory, the handler's answer marker, poll
        again = [deliver(app, repo.fake.platform, payload, event) for payload in served]
        assert [answer for _status, answer in again] == [{"status": "duplicate"}] * 2
        assert [wb.handle(payload).status for payload in handled] == ["duplicate"] * 2
        assert [wa.handle(payload).status for payload in served] == ["duplicate"] * 2
        assert poll(repo.ctx).outcomes == []
    finally:
        assert app.stop(10)

    # one answer per command, in its own thread, and nothing else written to other threads
    assert len(repo.answers(a)) == 2 and len(repo.answers(b)) == 3 and len(repo.answers(c)) == 2
    for model, history_len in ((a, 1), (b, 1), (c, 1)):
        assert len(repo.ctx.registry.history(model)) == history_len
        [entry] = repo.ctx.registry.history(model)
        assert entry.request_url.endswith(f"/{repo.threads[model]}")


def test_a_marker_edited_to_another_model_moves_nothing_there(repo: Models) -> None:
    """B's request, its marker edited to name C (whose v1 is a candidate with its own request):
    maria, eligible for both, comments /promote there. C's registry does not name this thread,
    B's does: the answer says the description is damaged, and no champion moves."""
    _a, b, c = _names(repo)
    wb = repo.world(b)
    body = repo.fake.body(wb.number)
    repo.fake.set_body(wb.number, body.replace(f"model={b} ", f"model={c} "))
    assert read_request_marker(repo.fake.body(wb.number)).model == c  # type: ignore[union-attr]

    outcome = wb.handle(wb.post(wb.number, "/promote", author="maria"))

    assert outcome.status == "damaged", outcome
    assert (repo.champion(b), repo.champion(c)) == (None, None)
    [answer] = repo.answers(b)
    assert "damaged" in answer.lower()
    assert repo.answers(c) == []
    # poll the same, and a /promote in C's own thread still works for C alone
    repo.fake.add_comment(wb.number, "olga", "/promote")
    repo.fake.add_comment(repo.threads[c], "olga", "/promote")
    statuses = sorted(outcome.status for _, outcome in poll(repo.ctx).outcomes)
    assert statuses == ["changed", "damaged"]
    assert (repo.champion(b), repo.champion(c)) == (None, 1)
    [entry] = repo.ctx.registry.history(c)
    assert entry.request_url.endswith(f"/{repo.threads[c]}")


def test_a_marker_naming_a_model_this_bot_does_not_serve_is_answered_as_damaged(
    repo: Models,
) -> None:
    a, _b, _c = _names(repo)
    wa = repo.world(a)
    repo.fake.set_body(wa.number, re.sub(r"model=\S+", "model=unknown", repo.fake.body(wa.number)))
    outcome: Outcome = wa.handle(wa.post(wa.number, "/promote", author="devon"))
    assert outcome.status == "damaged" and repo.champion(a) is None


def test_poll_lists_every_models_requests_in_one_call(repo: Models) -> None:
    result = poll(repo.ctx)
    assert (result.threads, result.outcomes, result.failures) == (3, [], [])
    urls = [str(call.request.url) for call in repo.rsps.calls]
    listings = [u for u in urls if re.search(r"/issues(\?|$)", u)]
    comments = [u for u in urls if re.search(r"/(notes|comments)(\?|$)", u)]
    assert (len(listings), len(comments), len(urls)) == (1, 3, 4)
    assert "labels=model-promotion" in listings[0]  # the label all three carry
    assert "model-a" not in listings[0]


def test_serve_reports_a_hand_moved_champion_of_any_model_to_that_model(repo: Models) -> None:
    from bot.commands.external_change import AliasChange

    a, b, c = _names(repo)
    repo.ctx.registry.set_alias(b, "champion", 1)  # by hand, in the MLflow UI
    app = serve_app(repo.ctx)
    report = app._on_alias_change  # the route's job, without signing a delivery
    assert report is not None
    outcome = report(AliasChange(model=b, alias="champion", version=1))
    assert outcome.status == "reported"  # type: ignore[union-attr]
    [answer] = repo.answers(b)
    assert b in answer and "champion" in answer
    assert repo.answers(a) == repo.answers(c) == []
    unknown = report(AliasChange(model="not-served", alias="champion", version=1))
    assert unknown.status == "ignored"  # type: ignore[union-attr]


# --- the command line with several models -------------------------------------------------------


def _cli(tmp_path: Path, tracking_uri: str, *args: str, env: dict[str, str] | None = None) -> Any:
    from click.testing import CliRunner

    from bot.cli import cli

    connection = ["--platform", "local", "--local-dir", str(tmp_path / "forge")]
    connection += ["--tracking-uri", tracking_uri]
    return CliRunner().invoke(
        cli, ["--params", str(tmp_path / "params.yaml"), *args, *connection], env=env
    )


def test_the_cli_acts_on_one_model_when_told_which_and_shows_them_all(
    tmp_path: Path, tracking_uri: str, model_name: str
) -> None:
    from tests.helpers import log_training_run

    a, b = f"{model_name[:40]}-a", f"{model_name[:40]}-b"
    (tmp_path / "params.yaml").write_text(
        f"models:\n  - register_model: {{model_name: {a}}}\n"
        f"  - register_model: {{model_name: {b}}}\n",
        encoding="utf-8",
    )
    run_id = log_training_run(tracking_uri, {"final.logloss": 0.5})

    refused = _cli(tmp_path, tracking_uri, "register", "--run-id", run_id)
    assert refused.exit_code == 1
    assert refused.output.endswith(
        f"configures 2 models ({a}, {b}): choose one with --model NAME (or PROMOTION_BOT_MODEL)\n"
    )
    unknown = _cli(tmp_path, tracking_uri, "gate", "--model", "nope")
    assert unknown.exit_code == 1 and f"no model 'nope' in {tmp_path / 'params.yaml'}" in (
        unknown.output
    )

    done = _cli(tmp_path, tracking_uri, "register", "--run-id", run_id, "--model", b)
    assert (done.exit_code, done.stdout) == (0, f"{b} v1 @smoke\n")
    by_env = _cli(tmp_path, tracking_uri, "gate", env={"PROMOTION_BOT_MODEL": b})
    assert by_env.exit_code == 0 and by_env.stdout.startswith(f"PASS {b} v1")

    shown = _cli(tmp_path, tracking_uri, "status", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert [(m["model"], [r["alias"] for r in m["aliases"]]) for m in data["models"]] == [
        (a, []),
        (b, ["candidate", "smoke"]),
    ]
    one = json.loads(_cli(tmp_path, tracking_uri, "status", "--json", "--model", b).stdout)
    assert [m["model"] for m in one["models"]] == [b]  # one model: the same shape, a list of one
    history = _cli(tmp_path, tracking_uri, "history")
    # One ledger for every model: `history` lists the changes of every model in the tracking
    # server's ledger in one table; these two have none yet (other tests' models may).
    assert history.exit_code == 0, history.output
    assert not [line for line in history.stdout.splitlines() if a in line or b in line]
    mine = _cli(tmp_path, tracking_uri, "history", "--model", b)
    assert mine.stdout == "no champion changes recorded\n"
