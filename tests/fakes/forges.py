"""Stateful GitLab and GitHub REST fakes on `responses`, shaped like tests/fixtures/{gitlab,github}.

Just enough of each API for promotion requests: issues (list, get, create, update), notes or
comments (list, create), reactions, the project role of a user, the bot's own user and GitLab's
/metadata. State is kept, so a body the bot updates is what it reads back next. This module has
the shared state and helpers; tests/fakes/gitlab.py and tests/fakes/github.py the two APIs. The
tests (tests/forge_world.py) and the benchmark (bench/roundtrips.py) use these same fakes.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

from bot.timestamps import parse_iso

BOT = "promotion-bot"
BOT_ID = 99
PEOPLE = {"maria": (18, 40), "dana": (27, 30)}  # username -> (user id, GitLab access level)
OUTSIDERS = {"olga": 31}  # accounts on the forge that are no members of the project
Reply = tuple[int, dict[str, str], str]
MAIN_HEAD = "7b5c3cc8be40ee161ae89a06bba6229da1032a0c"  # the default branch's newest commit


class Clock:
    """Timestamps one second apart and never behind the present, as a forge stamps what is
    posted now (`poll` reads from a cursor a little before the present). `set_back` stamps the
    past instead, for a setup that happened long ago, until `catch_up`."""

    def __init__(self) -> None:
        self._now = datetime.now(timezone.utc) - timedelta(hours=1)
        self._live = True

    def tick(self) -> str:
        self._now += timedelta(seconds=1)
        if self._live:
            self._now = max(self._now, datetime.now(timezone.utc))
        return self._now.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def set_back(self, hours: int) -> None:
        """Stamp from `hours` ago on (a long setup must not run into the present)."""
        self._now = datetime.now(timezone.utc) - timedelta(hours=hours)
        self._live = False

    def catch_up(self) -> None:
        """From now on, stamp at the present again."""
        self._live = True


def json_reply(status: int, data: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(data)


def params_of(request: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


def json_body(request: Any) -> dict[str, Any]:
    raw = request.body or b"{}"
    return dict(json.loads(raw.decode() if isinstance(raw, bytes) else raw))


class FakeForge:
    """Shared state: threads by number, comments by thread number."""

    platform = ""

    def __init__(self) -> None:
        self.clock = Clock()
        self.threads: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.errors: list[str] = []  # exceptions raised inside the fake's callbacks
        self._next_comment = 1000
        self.deployments: list[dict[str, Any]] = []  # as the forge received them
        self.environments: dict[str, dict[str, Any]] = {}  # GitLab: name -> environment
        # The repository: its branches' heads and the commits it has. A deployment must name
        # them (GitHub resolves `ref`; GitLab checks both `ref` and `sha`).
        self.branches: dict[str, str] = {"main": MAIN_HEAD}
        self.commits: set[str] = {MAIN_HEAD}
        self.refuse_deployments = 0  # an HTTP status to answer deployments with (403: no right)

    # --- what scenarios call -------------------------------------------------------------------
    def add_thread(self, title: str, body: str, labels: list[str], author: str = BOT) -> int:
        number = len(self.threads) + 1
        self.threads[number] = self._thread(number, title, body, labels, author)
        self.comments[number] = []
        return number

    def age(self, hours: int) -> None:
        """Everything so far happened `hours` earlier, and what comes next is stamped in the
        past too (until `clock.catch_up()`): a setup made long before the pass measured."""
        items = [*self.threads.values(), *(c for cs in self.comments.values() for c in cs)]
        for item in items:
            for key in ("created_at", "updated_at", "closed_at"):
                stamp = item.get(key)
                when = parse_iso(stamp) if isinstance(stamp, str) else None
                if when is not None:
                    shape = "%Y-%m-%dT%H:%M:%S.000Z" if "." in stamp else "%Y-%m-%dT%H:%M:%SZ"
                    item[key] = (when - timedelta(hours=hours)).strftime(shape)
        self.clock.set_back(hours)

    def add_comment(self, number: int, author: str, body: str) -> dict[str, Any]:
        self._next_comment += 1
        comment = self._comment(self._next_comment, number, author, body)
        self.comments[number].append(comment)
        self._touch(number)
        return comment

    def body(self, number: int) -> str:
        raise NotImplementedError

    def set_body(self, number: int, body: str) -> None:
        raise NotImplementedError

    def state(self, number: int) -> str:
        raise NotImplementedError

    def install(self, rsps: responses.RequestsMock) -> None:
        raise NotImplementedError

    # --- shared by both APIs -------------------------------------------------------------------
    def resolves(self, ref: str) -> bool:
        """Whether `ref` names a branch or a commit of the repository."""
        return ref in self.branches or ref in self.commits

    def _install(self, rsps: responses.RequestsMock, routes: list[tuple[str, str, Any]]) -> None:
        for method, pattern, handler in routes:
            regex = re.compile(pattern)
            rsps.add_callback(method, regex, callback=bind(regex, handler, self.errors))

    def _listing(
        self, request: Any, default_state: str, default_per_page: str, author_param: str
    ) -> Reply:
        """Threads in `state` carrying every label asked for (and by `author_param`'s author,
        when asked), newest first, one page."""
        query = params_of(request)
        state = query.get("state", default_state)
        wanted = set(filter(None, query.get("labels", "").split(",")))
        author = query.get(author_param, "")
        # GitHub's `since`, GitLab's `updated_after`: threads updated at or after the time.
        since = parse_iso(query.get("since") or query.get("updated_after") or "")
        items = [
            t
            for t in self.threads.values()
            if (state == "all" or t["state"] == state)
            and wanted <= set(self._labels(t))
            and (not author or self._author(t) == author)
            and (since is None or (parse_iso(t["updated_at"]) or since) >= since)
        ]
        items.sort(key=lambda t: t["created_at"], reverse=True)
        return json_reply(200, items[: int(query.get("per_page", default_per_page))])

    def _get(self, _r: Any, m: re.Match[str]) -> Reply:
        return json_reply(200, self.threads[int(m.group(1))])

    def _bot_comment(self, request: Any, m: re.Match[str]) -> Reply:
        return json_reply(201, self.add_comment(int(m.group(1)), BOT, json_body(request)["body"]))

    def _labels(self, thread: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def _author(self, thread: dict[str, Any]) -> str:
        user = thread.get("author") or thread.get("user") or {}
        return str(user.get("username") or user.get("login") or "")

    # --- per platform --------------------------------------------------------------------------
    def _thread(
        self, number: int, title: str, body: str, labels: list[str], author: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _comment(self, cid: int, number: int, author: str, body: str) -> dict[str, Any]:
        raise NotImplementedError

    def _touch(self, number: int) -> None:
        self.threads[number]["updated_at"] = self.clock.tick()


def user_id(username: str) -> int:
    if username in OUTSIDERS:
        return OUTSIDERS[username]
    return BOT_ID if username == BOT else PEOPLE.get(username, (500, 0))[0]


def bind(regex: re.Pattern[str], handler: Any, errors: list[str]) -> Any:
    """A `responses` callback; a fake that breaks is recorded (the bot may swallow the error,
    e.g. for reactions) so the run can fail loudly instead of counting a broken call."""

    def callback(request: Any) -> Reply:
        match = regex.match(str(request.url))
        try:
            assert match is not None
            return handler(request, match)  # type: ignore[no-any-return]
        except Exception as exc:
            errors.append(f"{request.method} {request.url}: {type(exc).__name__}: {exc}")
            raise

    return callback


def make_fake(platform: str) -> FakeForge:
    from tests.fakes.github import FakeGitHub
    from tests.fakes.gitlab import FakeGitLab

    return FakeGitLab() if platform == "gitlab" else FakeGitHub()
