"""Round trips per operation: MLflow (a real `mlflow server`) and the forge (GitLab, GitHub fakes).

Each operation runs in a fresh `Context`, as one CLI process (`request`, `handle`, `poll`) would:
the registry and forge clients are built on first use. Setup (runs, versions, threads) is not
counted. Every measured operation is checked for its expected outcome, so a count can never come
from a run that silently did less work.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import responses

from bench.counting import Call, HttpLog, count, summary
from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import open_or_update_request
from bot.ci.request_body import render_request_body
from bot.commands.change import move_champion
from bot.commands.handler import handle_comment
from bot.config.ci_commit import CiCommit
from bot.config.model_set import ModelSet
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.intake.poll import poll
from bot.registry.records import Change
from bot.registry.tags import REQUESTED_IN_TAG
from bot.registry.versions import binding_value, requester_tags
from bot.runtime.context import Context
from bot.threads.markers import answer_marker
from bot.threads.thread import CommentEvent, ProjectRef
from bot.timestamps import utc_now_iso
from tests.fakes.forges import BOT, MAIN_HEAD, PEOPLE, FakeForge, make_fake
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.helpers import TEST_SIGNING_KEY

PLATFORMS = ("gitlab", "github")
OPEN_REQUESTS = 50
MANY_OPEN = 500  # poll_idle_500, poll_one_new
MODELS, REQUESTS_PER_MODEL = 10, 5  # poll_models_idle: one repository, ten models
OPERATIONS = (
    "request",
    "request_notify",
    "promote",
    "rollback",
    "promote_outside_ci",
    "poll_full_read",
    "poll_idle_1",
    "poll_idle",
    "poll_idle_500",
    "poll_one_new",
    "poll_models_idle",
)
HISTORY = 3  # versions between the champion (v1) and the candidate: the request's trend chart
APPROVERS = ("maria", "dana")  # request_notify: dana triggered the training, maria is notified

# The fewest round trips each operation needs, and why (docs/design.md, "The change"), with the
# default params: issue kind, approvers by role, required_approvals 1, checklist required,
# close_on_promote, deployments on. Each command runs as in a CI job of the forge's project
# (the commit it runs at is known), but `promote_outside_ci` (`serve`, or a run outside CI).
_PROMOTE_MLFLOW = (
    "1 registered model (aliases + tags: pending intent, history cache for exactly-once, the "
    "ledger's experiment id), "
    "1 the request's version (run id, toy tag), 1 the champion's version (its run id), "
    "2 runs (metrics for the gates), 1 re-read of the champion right before the move (the "
    "'from' version must be what it is at that moment, not when the command arrived), "
    "1 write intent (signed), 2 begin the ledger run (create it RUNNING, log the entry's params, "
    "signed: MLflow takes params in no other call), 1 set alias, 1 read back, 1 commit the "
    "ledger run (FINISHED), 3 version tags (MLflow has no batch call for them), 1 history tag "
    "(the recent cache, signed, with the head of the model's chain that the next entry names: no "
    "search of the ledger; holding the entry marks the intent done, so the intent is no longer "
    "deleted), 1 handled-id tag after the answer (promotion.handled: people can delete the "
    "answer, so the registry remembers that the comment was handled), 1 the forge deployment's "
    "id as a tag of the ledger run (the run's signed params were written before it existed)"
)
_DEPLOYMENT = {
    "gitlab": "POST /deployments (GitLab finds or creates the environment by name; the answer "
    "holds its id), PUT /environments/:id (its external URL, the version's page)",
    "github": "POST /deployments (ref: the known commit), POST .../statuses (state, "
    "environment_url, log_url)",
}
MINIMUM: dict[str, dict[str, Any]] = {
    "request": {
        "mlflow": 9,
        "gitlab": 3,
        "github": 2,
        "why": {
            "mlflow": "1 registered model (aliases), 2 versions (candidate: run id + tags; "
            "champion: run id), 2 runs (metrics of both for the table and the gates), "
            "1 search for the newest versions and 1 search for their runs (the trend chart; "
            "the candidate's and champion's runs are not read twice), "
            "2 version tags: the request thread (promotion.requested_in, the registry's record "
            "of which thread is the version's request, the bot's seal in the same value) and, "
            "since `register` ran without PROMOTION_BOT_REQUESTED_BY here, who asked "
            "(promotion.requested_by, the bot's seal in the same value); MLflow has no batch "
            "call for them, and a re-run writes none",
            "gitlab": "list open requests of the configured kind (issues or merge requests); "
            "GET /metadata (EE or not decides the /promote form shown); open the issue",
            "github": "list open requests (the issues endpoint includes PRs); open the issue",
        },
    },
    "request_notify": {
        "mlflow": 9,
        "gitlab": 4,
        "github": 2,
        "why": {
            "mlflow": "as request",
            "gitlab": "as request, plus GET /users?username= for the one approver notified "
            "(its id for assignee_ids; the requester is never notified): one per name",
            "github": "as request: the assignees travel with the issue",
        },
    },
    "promote": {
        "mlflow": 18,
        "gitlab": 7,
        "github": 7,
        "why": {
            "mlflow": _PROMOTE_MLFLOW,
            "forge": "read the thread (ticks, marker), list its comments (exactly-once check, "
            "approvals), read the actor's role (approvers by min_role: a listed name must be a "
            "member too), post the answer, update the status and close the issue in one "
            "PATCH/PUT, then the deployment (GitLab: "
            + _DEPLOYMENT["gitlab"]
            + "; GitHub: "
            + _DEPLOYMENT["github"]
            + "). The measured count adds the reaction on the command and the re-read of "
            "the body before the write (ticks made during the pass survive it)",
        },
    },
    "rollback": {
        "mlflow": 15,
        "gitlab": 7,
        "github": 7,
        "why": {
            "mlflow": "1 registered model (aliases + tags), 1 the target version (exists, toy "
            "tag), 1 re-read of the champion before the move, 1 write intent, 2 begin the "
            "ledger run, 1 set alias, 1 read back, 1 commit the "
            "ledger run, 3 version tags, 1 history tag, 1 handled-id tag, 1 deployment tag",
            "forge": "read the thread, list its comments, read the actor's role, post the "
            "answer, update the status (no close: rollbacks happen on done requests), the "
            "deployment's two calls",
        },
    },
    "promote_outside_ci": {
        "mlflow": 18,
        "gitlab": 9,
        "github": 8,
        "why": {
            "mlflow": "as promote",
            "forge": "as promote, and what no CI job says: the default branch, once per process "
            "(GitHub GET /repos/:o/:r: its ref then names the branch; GitLab GET /projects/:id), "
            "and on GitLab its head for each deployment (GET /repository/branches/:name: "
            "GitLab wants the commit)",
        },
    },
    "poll_full_read": {
        "mlflow": 2,
        "gitlab": 1 + OPEN_REQUESTS,
        "github": 1 + OPEN_REQUESTS,
        "why": {
            "mlflow": "1 registered model: the champion against the records, and the cursor "
            "(none yet); 1 tag write: the new cursor, signed",
            "forge": f"no cursor: 1 listing of the configured request kind, then the comments "
            f"of each of the {OPEN_REQUESTS} open requests",
        },
    },
    **{
        op: {
            "mlflow": 2,
            "gitlab": 1,
            "github": 1,
            "why": {
                "mlflow": "1 registered model (the champion check; the cursor comes with it), "
                "1 tag write: the cursor moves to this pass's start less the overlap",
                "forge": f"1 listing of the requests updated since the cursor (GitLab "
                f"`updated_after`, GitHub `since`): none, whatever the {n} open requests",
            },
        }
        for op, n in (
            ("poll_idle_1", 1),
            ("poll_idle", OPEN_REQUESTS),
            ("poll_idle_500", MANY_OPEN),
        )
    },
    "poll_models_idle": {
        "mlflow": MODELS + 1,
        "gitlab": 1,
        "github": 1,
        "why": {
            "mlflow": "one champion check per model, and the cursor's write",
            "forge": f"one listing for all {MODELS} models of the requests updated since the "
            f"cursor (by the label they share): none of the {MODELS * REQUESTS_PER_MODEL}",
        },
    },
    "poll_one_new": {
        "mlflow": 20,
        "gitlab": 2 + 7,
        "github": 2 + 7,
        "why": {
            "mlflow": "the champion check (1), then as /promote, then the cursor's write (1)",
            "forge": f"1 listing (the one request updated among {MANY_OPEN}), its comments (1), "
            "then /promote's own calls but the thread read: its comments under the lock, the "
            "role, the answer, the status and close (one write; the reaction and the re-read "
            "of the body are not minimal), the deployment's two calls",
        },
    },
}


@dataclass
class Bench:
    log: HttpLog
    tracking_uri: str
    root: Path

    def params(self, model: str, approvers: tuple[str, ...] = ()) -> Any:
        promotion = {"approvers": {"users": list(approvers)}}
        return parse_params({"register_model": {"model_name": model}, "promotion": promotion})

    def settings(self, fake: FakeForge, with_username: bool, in_ci: bool = True) -> Settings:
        """As a CI job of the fake's project runs the bot (`in_ci`: the commit it runs at is
        known, bot.config.ci_commit), else as `serve` does."""
        project = fake.project if isinstance(fake, FakeGitLab) else getattr(fake, "repo", "")
        ran = CiCommit(fake.platform, (project,), "main", MAIN_HEAD) if in_ci else CiCommit()
        common: dict[str, Any] = {
            "tracking_uri": self.tracking_uri,
            "platform": fake.platform,
            "bot_username": BOT if with_username else "",
            "requested_by": "dana",
            "ci_commit": ran,
        }
        if isinstance(fake, FakeGitLab):
            common.update(
                gitlab_url=fake.base,
                gitlab_project=fake.project,
                gitlab_token=Secret("glpat-bench-not-a-token"),
            )
        elif isinstance(fake, FakeGitHub):
            common.update(
                github_api_url=fake.api,
                github_repository=fake.repo,
                github_token=Secret("ghp_bench_not_a_token"),
            )
        return Settings(**common, signing_key=Secret(TEST_SIGNING_KEY))

    def context(
        self,
        fake: FakeForge,
        model: str,
        with_username: bool,
        approvers: tuple[str, ...] = (),
        in_ci: bool = True,
    ) -> Context:
        settings = self.settings(fake, with_username, in_ci)
        return Context(settings=settings, params=self.params(model, approvers))

    def setup_model(self, model: str, history: int = 0) -> None:
        """v1 champion (logloss 0.60), `history` versions that each passed the gate, and the
        candidate (0.55, v2 without history): a /promote of it passes every gate."""
        settings = Settings(
            tracking_uri=self.tracking_uri,
            local_dir=self.root / "local",
            signing_key=Secret(TEST_SIGNING_KEY),
        )
        ctx = Context(settings=settings, params=self.params(model))
        with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints a "View run" link
            self._train(ctx, model, history)

    def _train(self, ctx: Context, model: str, history: int) -> None:
        for logloss in (0.60, *(0.59 - n / 100 for n in range(history)), 0.55):
            run_id = ctx.registry.log_run(
                "bench", {"final.logloss": logloss, "final.accuracy": 0.7}, {"git_sha": "abc"}
            )
            version = register(ctx, run_id=run_id, alias="smoke").version.version
            gate(ctx, version=version)
        # v1 became champion through the bot (recorded), so `/rollback 1` may return to it.
        first = Change(model, None, 1, "maria", "promote", "", "", "", utc_now_iso())
        alias = ctx.params.promotion.champion_alias
        move_champion(ctx.registry, alias, first, ledger=ctx.ledger)

    def measure(self, op: Callable[[], Any]) -> tuple[Any, list[Call]]:
        with self.log.measure() as calls:
            result = op()
        return result, calls


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _command(fake: FakeForge, word: str) -> str:
    # GitLab EE eats a note that is only `/promote`: people use the mention form there.
    if word == "promote" and fake.platform == "gitlab":
        return f"@{BOT} promote"
    return f"/{word}"


def _event(fake: FakeForge, number: int, comment: dict[str, Any]) -> CommentEvent:
    """What the webhook payload of `comment` parses to (the configured project's)."""
    author = comment.get("author") or comment.get("user") or {}
    project = fake.project if isinstance(fake, FakeGitLab) else getattr(fake, "repo", "")
    return CommentEvent(
        platform=fake.platform,
        project=ProjectRef(path=project),
        thread_kind="issue",
        thread_number=str(number),
        comment_id=str(comment["id"]),
        author=author.get("username") or author.get("login", ""),
        author_id=str(author.get("id", "")),
        body=comment["body"],
        created_at=comment["created_at"],
    )


def _assignees(fake: FakeForge, number: int) -> list[str]:
    people = fake.threads[number].get("assignees") or []
    return [person.get("username") or person.get("login") for person in people]


def _tick(fake: FakeForge, number: int) -> None:
    fake.set_body(number, fake.body(number).replace("- [ ]", "- [x]"))


def _expect(what: str, got: object, wanted: object) -> None:
    if got != wanted:
        raise RuntimeError(f"{what}: expected {wanted!r}, got {got!r}")


def run_platform(bench: Bench, platform: str, with_username: bool) -> dict[str, list[Call]]:
    """Every operation on one forge; returns the calls of each."""
    fake = make_fake(platform)
    # Thousands of setup stamps, one second apart, must stay in the past: `poll` reads from
    # its cursor, a little before the present (the new comment is stamped now).
    fake.clock.set_back(hours=6)
    out: dict[str, list[Call]] = {}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(bench.tracking_uri)
        fake.install(rsps)
        out.update(_request_promote_rollback(bench, fake, with_username))
        # Before `_poll`: its last step moves the fake's clock to the present.
        out.update(_poll_models(bench, fake, with_username))
        out.update(_poll(bench, fake, with_username))
    if fake.errors:
        raise RuntimeError(f"the {platform} fake failed: {fake.errors}")
    return out


def _request_promote_rollback(
    bench: Bench, fake: FakeForge, with_username: bool
) -> dict[str, list[Call]]:
    notified = _unique(f"bench-notify-{fake.platform}")
    bench.setup_model(notified, history=HISTORY)
    out = {}
    result, out["request_notify"] = bench.measure(
        lambda: open_or_update_request(bench.context(fake, notified, with_username, APPROVERS))
    )
    _expect("request_notify not notified", result.not_notified, [])
    _expect("request_notify assignees", _assignees(fake, int(result.number)), ["maria"])
    model = _unique(f"bench-{fake.platform}")
    bench.setup_model(model, history=HISTORY)
    result, out["request"] = bench.measure(
        lambda: open_or_update_request(bench.context(fake, model, with_username))
    )
    _expect("request", result.created, True)
    _expect("request's chart", 'x-axis ["v1 champion", "v2", "v3"' in result.body, True)
    number = int(result.number)
    _tick(fake, number)  # an approver ticks the checklist
    comment = fake.add_comment(number, "maria", _command(fake, "promote"))
    outcome, out["promote"] = bench.measure(
        lambda: handle_comment(
            bench.context(fake, model, with_username), _event(fake, number, comment)
        )
    )
    _expect("/promote", outcome.status, "changed")
    _expect("issue state after /promote", fake.state(number), "closed")
    comment = fake.add_comment(number, "maria", "/rollback 1")
    outcome, out["rollback"] = bench.measure(
        lambda: handle_comment(
            bench.context(fake, model, with_username), _event(fake, number, comment)
        )
    )
    _expect("/rollback", outcome.status, "changed")
    _expect("deployments of /promote and /rollback", len(fake.deployments), 2)
    out["promote_outside_ci"] = _promote_outside_ci(bench, fake, with_username)
    return out


def _promote_outside_ci(bench: Bench, fake: FakeForge, with_username: bool) -> list[Call]:
    """A /promote in a fresh process that knows no commit (`serve`): its request opened and
    ticked as a CI job would (not counted)."""
    model = _unique(f"bench-serve-{fake.platform}")
    bench.setup_model(model, history=HISTORY)
    number = int(open_or_update_request(bench.context(fake, model, with_username)).number)
    _tick(fake, number)
    comment = fake.add_comment(number, "maria", _command(fake, "promote"))
    made = len(fake.deployments)
    outcome, calls = bench.measure(
        lambda: handle_comment(
            bench.context(fake, model, with_username, in_ci=False), _event(fake, number, comment)
        )
    )
    _expect("/promote outside CI", outcome.status, "changed")
    _expect("its deployment", len(fake.deployments), made + 1)
    return calls


def _open_requests(bench: Bench, fake: FakeForge, count: int) -> tuple[str, list[int]]:
    """A model with `count` open requests (setup: not counted), each with chatter and an
    answered /help, stamped an hour ago by the fake's clock."""
    model = _unique(f"bench-poll-{fake.platform}-{count}")
    bench.setup_model(model)
    ctx = bench.context(fake, model, with_username=True)
    body = render_request_body(ctx, ctx.registry.version(model, 2)).replace("- [ ]", "- [x]")
    title, labels = f"Promote {model} v2 to champion", list(ctx.params.promotion.request.labels)
    numbers = []
    for _ in range(count):
        number = fake.add_thread(title, body, labels)
        fake.add_comment(number, "dana", "Metrics look fine to me; data version checked.")
        asked = fake.add_comment(number, "maria", "/help")
        fake.add_comment(number, BOT, f"Commands: ...\n\n{answer_marker(str(asked['id']))}\n")
        numbers.append(number)
    return model, numbers


def _poll(bench: Bench, fake: FakeForge, with_username: bool) -> dict[str, list[Call]]:
    """An idle `poll` after a full read (its cursor set) with 1, OPEN_REQUESTS and MANY_OPEN
    open requests; the full read itself with OPEN_REQUESTS; then one /promote posted now on the
    oldest of the MANY_OPEN."""
    out = {}
    for opened, op in (
        (1, "poll_idle_1"),
        (OPEN_REQUESTS, "poll_idle"),
        (MANY_OPEN, "poll_idle_500"),
    ):
        model, numbers = _open_requests(bench, fake, opened)

        def run(model: str = model) -> Any:
            return poll(bench.context(fake, model, with_username))

        if opened == OPEN_REQUESTS:  # no cursor yet: every request is read
            result, out["poll_full_read"] = bench.measure(run)
            _expect("poll (full read) why", result.full_read, "no cursor yet")
            _expect("poll (full read) threads", result.threads, OPEN_REQUESTS)
        else:
            run()  # the full read that sets the cursor (not counted)
        result, out[op] = bench.measure(run)
        _expect(f"{op} full read", result.full_read, "")
        _expect(f"{op} threads", result.threads, 0)
        _expect(f"{op} commands", len(result.outcomes), 0)
    # The request `promotion-bot request` would have recorded for v2 (setup: not counted).
    ctx = bench.context(fake, model, with_username=True)
    thread = fake.threads[numbers[0]]
    url = thread.get("web_url") or thread["html_url"]
    binding = binding_value(ctx.keys, model, 2, url)
    ctx.registry.set_version_tag(model, 2, REQUESTED_IN_TAG, binding)
    for key, value in requester_tags(ctx.keys, model, 2, "dana", "").items():
        ctx.registry.set_version_tag(model, 2, key, value)
    fake.clock.catch_up()  # posted now, as the forge stamps it
    fake.add_comment(numbers[0], "maria", _command(fake, "promote"))
    result, out["poll_one_new"] = bench.measure(run)
    _expect("poll (one new) outcomes", [o.status for _, o in result.outcomes], ["changed"])
    _expect("poll (one new) deployed", fake.deployments[-1]["environment"], f"model/{model}")
    return out


def _poll_models(bench: Bench, fake: FakeForge, with_username: bool) -> dict[str, list[Call]]:
    """MODELS models in one params.yaml, REQUESTS_PER_MODEL open requests each (chatter and an
    answered /help): one poll for all of them, nothing new."""
    names = [_unique(f"bench-models-{fake.platform}-{n}") for n in range(MODELS)]
    models = ModelSet(tuple(bench.params(name) for name in names), declared=True)
    for name in names:  # setup: not counted
        bench.setup_model(name)
        ctx = bench.context(fake, name, with_username=True)
        body = render_request_body(ctx, ctx.registry.version(name, 2)).replace("- [ ]", "- [x]")
        for _ in range(REQUESTS_PER_MODEL):
            number = fake.add_thread(f"Promote {name} v2 to champion", body, ["model-promotion"])
            fake.add_comment(number, "dana", "Metrics look fine to me.")
            asked = fake.add_comment(number, "maria", "/help")
            fake.add_comment(number, BOT, f"Commands: ...\n\n{answer_marker(str(asked['id']))}\n")

    def run() -> Any:
        settings = bench.settings(fake, with_username)
        return poll(Context(settings, models.models[0], models=models))

    run()  # the full read that sets the cursor (not counted)
    result, calls = bench.measure(run)
    _expect("poll (10 models) full read", result.full_read, "")
    _expect("poll (10 models) threads", result.threads, 0)
    _expect("poll (10 models) commands", len(result.outcomes), 0)
    return {"poll_models_idle": calls}


def run_all(bench: Bench) -> dict[str, Any]:
    """Counts per platform and operation, with and without PROMOTION_BOT_USERNAME."""
    results: dict[str, Any] = {
        "open_requests": OPEN_REQUESTS,
        "models": {"count": MODELS, "open_requests_each": REQUESTS_PER_MODEL},
        "people": {name: {"id": uid, "gitlab_level": lvl} for name, (uid, lvl) in PEOPLE.items()},
        "platforms": {},
    }
    for platform in PLATFORMS:
        named = run_platform(bench, platform, with_username=True)
        unnamed = run_platform(bench, platform, with_username=False)
        ops = {}
        for op in OPERATIONS:
            counts = count(named[op])
            minimum = MINIMUM[op]
            ops[op] = {
                "mlflow": counts.get("mlflow", 0),
                "forge": counts.get(platform, 0),
                "other": counts.get("other", 0),
                "forge_without_username": count(unnamed[op]).get(platform, 0),
                "forge_deployment": sum(
                    call.service == platform and "record_deployment" in call.site
                    for call in named[op]
                ),
                "mlflow_without_username": count(unnamed[op]).get("mlflow", 0),
                "minimum": {"mlflow": minimum["mlflow"], "forge": minimum[platform]},
                "calls": summary(named[op]),
            }
        results["platforms"][platform] = ops
    results["minimum_why"] = {op: MINIMUM[op]["why"] for op in OPERATIONS}
    return results
