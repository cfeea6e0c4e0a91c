"""A promotion world on a real forge adapter: the real MLflow registry, python-gitlab or PyGithub
talking to the stateful GitLab/GitHub fakes (tests/fakes/) over `responses`, a request opened
by the real `promotion-bot request`. Deliveries go in as the forge would send them (webhook payloads
shaped like tests/fixtures/webhooks), through `serve`'s WSGI app, `handle`'s event file or `poll`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import responses

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import open_or_update_request
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.intake.entry import handle_event_file, serve_app
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.webhook_auth import sign_github
from tests.fakes.forges import BOT, PEOPLE, FakeForge, make_fake
from tests.fakes.github import GITHUB_ROLES, FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.helpers import TEST_SIGNING_KEY, log_training_run
from tests.webhook_fixtures import load_webhook

WEBHOOK_SECRET = "group-wide-webhook-secret"
# Another project of the same group (GitLab) or organisation (GitHub), under the same secret.
FOREIGN_GITLAB = {"id": 9917, "path_with_namespace": "ml-team/other-model"}
FOREIGN_GITHUB = {"id": 55501234, "full_name": "ml-team/other-model"}
GITHUB_IDS = {"maria": 18, "dana": 27}
# More people while a world lives: username -> (user id, GitLab access level, GitHub role).
MORE_PEOPLE = {
    "olga": (31, 40, "maintain"),
    "mallory": (66, 40, "maintain"),
    "devon": (41, 30, "write"),
}


@dataclass
class World:
    ctx: Context
    fake: FakeForge
    rsps: responses.RequestsMock
    number: int  # the request thread `promotion-bot request` opened for v1
    tmp_path: Path
    _comment_ids: Iterator[int] = field(default_factory=lambda: iter(range(90_001, 10**9)))

    @property
    def platform(self) -> str:
        return self.fake.platform

    @property
    def model(self) -> str:
        return self.ctx.model

    def champion(self) -> int | None:
        return self.ctx.registry.aliases(self.model).get("champion")

    def answers(self, number: int | None = None) -> list[str]:
        thread = self.fake.comments[number or self.number]
        return [c["body"] for c in thread if _author(c) == BOT]

    def comment_ids(self, number: int, author: str) -> set[str]:
        return {str(c["id"]) for c in self.fake.comments[number] if _author(c) == author}

    def writes(self) -> list[str]:
        """Every write call made to the forge (the fake's reads do not change anything)."""
        return [
            f"{call.request.method} {call.request.url}"
            for call in self.rsps.calls
            if call.request.method in ("POST", "PUT", "PATCH")
            and "127.0.0.1" not in str(call.request.url)
        ]

    def our_project(self) -> dict[str, Any]:
        if isinstance(self.fake, FakeGitLab):
            return {"id": 4242, "path_with_namespace": self.fake.project}
        assert isinstance(self.fake, FakeGitHub)
        return {"id": 77001, "full_name": self.fake.repo}

    # --- deliveries ------------------------------------------------------------------------------
    def payload(
        self,
        body: str,
        project: dict[str, Any] | None = None,
        author: str = "maria",
        *,
        number: int | None = None,
        comment_id: int | None = None,
    ) -> dict[str, Any]:
        """A new comment on thread `number` (default: the request) of `project` (default: ours),
        as the hook sends it."""
        project = self.our_project() if project is None else project
        number = self.number if number is None else number
        comment_id = next(self._comment_ids) if comment_id is None else comment_id
        if self.platform == "gitlab":
            data = load_webhook("gitlab_note_issue")
            data["issue"]["iid"] = number
            data["object_attributes"].update(id=comment_id, note=body, action="create")
            data["user"].update(id=PEOPLE.get(author, (500, 0))[0], username=author)
            data["project"].update(project)
            data["project_id"] = project.get("id")
            return data
        data = load_webhook("github_issue_comment_issue")
        data["issue"]["number"] = number
        data["comment"].update(id=comment_id, body=body)
        data["comment"]["user"].update(login=author, id=GITHUB_IDS.get(author, 500))
        data["repository"].update(project)
        return data

    def post(
        self,
        number: int,
        body: str,
        author: str = "maria",
        project: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`author` comments on thread `number`: the forge keeps the comment (the handler and
        `poll` read it there) and this is the webhook payload it sends for it."""
        comment = self.fake.add_comment(number, author, body)
        comment_id = int(comment["id"])
        return self.payload(body, project, author, number=number, comment_id=comment_id)

    @property
    def event_name(self) -> str:
        return "Note Hook" if self.platform == "gitlab" else "issue_comment"

    def handle(self, payload: dict[str, Any], event_name: str = "") -> Outcome:
        """`promotion-bot handle --event-name ... --event-file ...`."""
        path = self.tmp_path / f"event-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        return handle_event_file(self.ctx, event_name or self.event_name, str(path))

    def serve(
        self, payload: dict[str, Any], event_name: str = "", **app_options: Any
    ) -> tuple[int, dict[str, Any]]:
        """One delivery to `serve`'s app; its workers finish the job before this returns.

        `app_options` go to the WebhookApp (e.g. `retry_delays`, `sleep`)."""
        app = serve_app(self.ctx, **app_options)
        app.start()
        try:
            status, answer = deliver(app, self.platform, payload, event_name or self.event_name)
            assert app.drain(30)
        finally:
            app.stop(5)
        return status, answer


def deliver(app: Any, platform: str, payload: dict[str, Any], event: str) -> tuple[int, Any]:
    """A signed POST to the WSGI app, as GitLab or GitHub sends it."""
    body = json.dumps(payload).encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/webhooks/{platform}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if platform == "gitlab":
        environ.update(HTTP_X_GITLAB_EVENT=event, HTTP_X_GITLAB_TOKEN=WEBHOOK_SECRET)
        environ["HTTP_IDEMPOTENCY_KEY"] = uuid.uuid4().hex
    else:
        environ.update(HTTP_X_GITHUB_EVENT=event, HTTP_X_GITHUB_DELIVERY=uuid.uuid4().hex)
        environ["HTTP_X_HUB_SIGNATURE_256"] = sign_github(WEBHOOK_SECRET, body)
    seen: list[str] = []
    chunks = app(environ, lambda status, _headers: seen.append(status))
    return int(seen[0].split()[0]), json.loads(b"".join(chunks))


def world_settings(fake: FakeForge, tracking_uri: str) -> Settings:
    common: dict[str, Any] = {
        "tracking_uri": tracking_uri,
        "platform": fake.platform,
        "bot_username": BOT,
        "requested_by": "dana",
        "signing_key": Secret(TEST_SIGNING_KEY),
    }
    if isinstance(fake, FakeGitLab):
        common.update(
            gitlab_url=fake.base,
            gitlab_project=fake.project,
            gitlab_token=Secret("glpat-test-not-a-token"),
            gitlab_webhook_secret=Secret(WEBHOOK_SECRET),
        )
    else:
        assert isinstance(fake, FakeGitHub)
        common.update(
            github_api_url=fake.api,
            github_repository=fake.repo,
            github_token=Secret("ghp_test_not_a_token"),
            github_webhook_secret=Secret(WEBHOOK_SECRET),
        )
    return Settings(**common)


@contextmanager
def more_people() -> Iterator[None]:
    """The people of both fakes include MORE_PEOPLE while this lasts."""
    saved_people, saved_roles = dict(PEOPLE), dict(GITHUB_ROLES)
    PEOPLE.update({name: (uid, level) for name, (uid, level, _role) in MORE_PEOPLE.items()})
    GITHUB_ROLES.update({name: role for name, (_uid, _level, role) in MORE_PEOPLE.items()})
    GITHUB_IDS.update({name: uid for name, (uid, _level, _role) in MORE_PEOPLE.items()})
    try:
        yield
    finally:
        PEOPLE.clear()
        PEOPLE.update(saved_people)
        GITHUB_ROLES.clear()
        GITHUB_ROLES.update(saved_roles)
        for name in MORE_PEOPLE:
            GITHUB_IDS.pop(name, None)


def open_ticked_request(ctx: Context, fake: FakeForge, tracking_uri: str) -> int:
    """v1 trained, registered, gated (the candidate), its request opened by `request` and its
    checklist ticked: the thread's number."""
    run_id = log_training_run(tracking_uri, {"final.logloss": 0.6, "final.accuracy": 0.7})
    version = register(ctx, run_id=run_id, alias="smoke").version.version
    gate(ctx, version=version)
    number = int(open_or_update_request(ctx).number)
    fake.set_body(number, fake.body(number).replace("- [ ]", "- [x]"))
    return number


@contextmanager
def make_world(
    platform: str,
    tracking_uri: str,
    model: str,
    tmp_path: Path,
    promotion: dict[str, Any] | None = None,
    **settings: Any,
) -> Iterator[World]:
    """v1 trained, gated (the candidate), its request opened by `request` and ticked.

    `promotion`: params.yaml's promotion section; `settings`: Settings fields to override
    (e.g. `requested_by`). The people of both fakes include MORE_PEOPLE while the world lives.
    """
    with more_people(), responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(tracking_uri)
        fake = make_fake(platform)
        fake.install(rsps)
        params = parse_params(
            {"register_model": {"model_name": model}, "promotion": promotion or {}}, "test"
        )
        base = world_settings(fake, tracking_uri)
        ctx = Context(settings=dataclasses.replace(base, **settings), params=params)
        number = open_ticked_request(ctx, fake, tracking_uri)
        rsps.calls.reset()
        yield World(ctx, fake, rsps, number, tmp_path)
        assert fake.errors == []


def _author(comment: dict[str, Any]) -> str:
    user = comment.get("author") or comment.get("user") or {}
    return str(user.get("username") or user.get("login") or "")
