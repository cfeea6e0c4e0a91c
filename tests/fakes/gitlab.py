"""The GitLab REST API (v4) fake: issues, notes, award emoji, members, /user, /metadata."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import responses

from tests.fakes.forges import (
    BOT,
    OUTSIDERS,
    PEOPLE,
    FakeForge,
    Reply,
    json_body,
    json_reply,
    params_of,
    user_id,
)
from tests.forge_fixtures import gitlab


class FakeGitLab(FakeForge):
    platform = "gitlab"
    base = "https://gitlab.example.com"
    project = "ml-team/soccer"

    def __init__(self) -> None:
        super().__init__()
        # Group path -> {username: access level}; a subgroup inherits its ancestors' members.
        self.groups: dict[str, dict[str, int]] = {}
        self.failing_groups: set[str] = set()  # answered 500: the lookup fails

    @property
    def api(self) -> str:
        return f"{self.base}/api/v4"

    @property
    def prefix(self) -> str:
        return f"{self.api}/projects/ml-team%2Fsoccer"

    def body(self, number: int) -> str:
        return str(self.threads[number]["description"])

    def set_body(self, number: int, body: str) -> None:
        self.threads[number]["description"] = body

    def state(self, number: int) -> str:
        return str(self.threads[number]["state"])

    def _thread(
        self, number: int, title: str, body: str, labels: list[str], author: str
    ) -> dict[str, Any]:
        stamp = self.clock.tick()
        return gitlab(
            "issue",
            id=5000 + number,
            iid=number,
            title=title,
            description=body,
            labels=labels,
            state="opened",
            author={"id": user_id(author), "username": author, "name": author, "state": "active"},
            created_at=stamp,
            updated_at=stamp,
            web_url=f"{self.base}/{self.project}/-/issues/{number}",
            user_notes_count=0,
        )

    def _comment(self, cid: int, number: int, author: str, body: str) -> dict[str, Any]:
        self.threads[number]["user_notes_count"] += 1
        return gitlab(
            "note",
            id=cid,
            body=body,
            author={"id": user_id(author), "username": author, "name": author, "state": "active"},
            created_at=(stamp := self.clock.tick()),
            updated_at=stamp,  # a new note: GitLab sets both (ms apart)
            noteable_type="Issue",
            noteable_iid=number,
            system=False,
        )

    def install(self, rsps: responses.RequestsMock) -> None:
        p, api = re.escape(self.prefix), re.escape(self.api)
        q = r"(\?.*)?$"
        routes = [
            ("GET", rf"{api}/user{q}", lambda r, m: json_reply(200, gitlab("user", username=BOT))),
            ("GET", rf"{api}/metadata{q}", lambda r, m: json_reply(200, gitlab("metadata"))),
            ("GET", rf"{api}/users{q}", self._users),
            ("GET", rf"{p}/issues{q}", self._list),
            ("GET", rf"{p}/merge_requests{q}", lambda r, m: json_reply(200, [])),
            ("POST", rf"{p}/issues{q}", self._create),
            ("GET", rf"{p}/issues/(\d+){q}", self._get),
            ("PUT", rf"{p}/issues/(\d+){q}", self._update),
            ("GET", rf"{p}/issues/(\d+)/notes{q}", self._notes),
            ("POST", rf"{p}/issues/(\d+)/notes{q}", self._bot_comment),
            ("POST", rf"{p}/issues/(\d+)/notes/(\d+)/award_emoji{q}", self._award),
            ("GET", rf"{p}/members/all/(\d+){q}", self._member),
            ("GET", rf"{api}/groups/([^/?]+)/members/all/(\d+){q}", self._group_member),
            ("GET", rf"{p}{q}", self._project),
            ("GET", rf"{p}/repository/branches/([^/?]+){q}", self._branch),
            ("PUT", rf"{p}/environments/(\d+){q}", self._set_environment),
            ("POST", rf"{p}/deployments{q}", self._deploy),
        ]
        self._install(rsps, routes)

    def _users(self, request: Any, _m: re.Match[str]) -> Reply:
        name = params_of(request).get("username", "")
        found = [gitlab("users")[0] | {"id": user_id(name), "username": name}]
        return json_reply(200, found if name in PEOPLE or name in OUTSIDERS else [])

    def _project(self, _r: Any, _m: re.Match[str]) -> Reply:
        default = next(iter(self.branches))
        project = {"id": 3, "path_with_namespace": self.project, "default_branch": default}
        return json_reply(200, project)

    def _branch(self, _r: Any, m: re.Match[str]) -> Reply:
        name = unquote(m.group(1))
        if name not in self.branches:
            return json_reply(404, {"message": "404 Branch Not Found"})
        branch = gitlab("branch") | {"name": name, "default": name == next(iter(self.branches))}
        return json_reply(200, branch | {"commit": branch["commit"] | {"id": self.branches[name]}})

    def _set_environment(self, request: Any, m: re.Match[str]) -> Reply:
        found = next(e for e in self.environments.values() if e["id"] == int(m.group(1)))
        found.update(json_body(request))
        return json_reply(200, found)

    def _deploy(self, request: Any, _m: re.Match[str]) -> Reply:
        """As GitLab: both the ref and the commit must exist; the environment is found or
        created by its name, and the answer carries it (id, name, external_url)."""
        data = json_body(request)
        if self.refuse_deployments:
            return json_reply(self.refuse_deployments, {"message": "403 Forbidden"})
        if not self.resolves(data["ref"]):
            return json_reply(400, {"message": {"ref": ["The branch or tag does not exist"]}})
        if data["sha"] not in self.commits:
            return json_reply(400, {"message": {"sha": ["The commit does not exist"]}})
        name = data["environment"]
        environment = self.environments.setdefault(
            name,
            gitlab("environment")
            | {
                "id": 100 + len(self.environments),
                "name": name,
                "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()),
                "external_url": None,
            },
        )
        self.deployments.append(data | {"id": len(self.deployments) + 1})
        shown = {key: environment[key] for key in ("id", "name", "slug", "external_url")}
        made = gitlab(
            "deployment",
            id=len(self.deployments),
            iid=len(self.deployments),
            ref=data["ref"],
            sha=data["sha"],
            status=data["status"],
            environment=shown,
        )
        return json_reply(201, made)

    def _list(self, request: Any, _m: re.Match[str]) -> Reply:
        return self._listing(request, "opened", "20", "author_username")

    def _labels(self, thread: dict[str, Any]) -> list[str]:
        return list(thread["labels"])

    def _create(self, request: Any, _m: re.Match[str]) -> Reply:
        data = json_body(request)
        labels = [x for x in str(data.get("labels", "")).split(",") if x]
        number = self.add_thread(data["title"], data["description"], labels)
        # GitLab drops, without an error, the ids of people who cannot see the project.
        members = {uid: name for name, (uid, level) in PEOPLE.items() if level > 0}
        self.threads[number]["assignees"] = [
            gitlab("users")[0] | {"id": uid, "username": members[uid]}
            for uid in data.get("assignee_ids") or []
            if uid in members
        ]
        return json_reply(201, self.threads[number])

    def _update(self, request: Any, m: re.Match[str]) -> Reply:
        number, data = int(m.group(1)), json_body(request)
        thread = self.threads[number]
        if "description" in data:
            thread["description"] = data["description"]
        if data.get("state_event") == "close":
            thread["state"], thread["closed_at"] = "closed", self.clock.tick()
        self._touch(number)
        return json_reply(200, thread)

    def _notes(self, request: Any, m: re.Match[str]) -> Reply:
        notes = sorted(self.comments[int(m.group(1))], key=lambda n: (n["created_at"], n["id"]))
        return json_reply(200, notes[::-1] if params_of(request).get("sort") == "desc" else notes)

    def _award(self, request: Any, _m: re.Match[str]) -> Reply:
        award = gitlab("award_emoji")
        award["name"] = json_body(request).get("name", "")  # `name` is also fixture()'s parameter
        return json_reply(201, award)

    def _member(self, _r: Any, m: re.Match[str]) -> Reply:
        by_id = {uid: (name, level) for name, (uid, level) in PEOPLE.items()}
        found = by_id.get(int(m.group(1)))
        if found is None:
            return json_reply(404, {"message": "404 Not found"})
        name, level = found
        return json_reply(
            200, gitlab("member", id=int(m.group(1)), username=name, access_level=level)
        )

    def _group_member(self, _r: Any, m: re.Match[str]) -> Reply:
        """`members/all` of a group: direct members and those of every ancestor group."""
        path, uid = unquote(m.group(1)), int(m.group(2))
        if path in self.failing_groups:
            return json_reply(500, {"message": "500 Internal Server Error"})
        if path not in self.groups:
            return json_reply(404, gitlab("group_not_found_404"))
        name = next((n for n in [*PEOPLE, *OUTSIDERS] if user_id(n) == uid), None)
        ancestors = [g for g in self.groups if path == g or path.startswith(f"{g}/")]
        levels = [self.groups[g][name] for g in ancestors if name in self.groups[g]]
        if name is None or not levels:
            return json_reply(404, {"message": "404 Not found"})
        return json_reply(200, gitlab("member", id=uid, username=name, access_level=max(levels)))
