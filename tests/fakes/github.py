"""The GitHub REST API fake: issues (PRs share the endpoint), comments, reactions, roles."""

from __future__ import annotations

import re
from typing import Any

import responses

from tests.fakes.forges import BOT, FakeForge, Reply, json_body, json_reply, user_id
from tests.forge_fixtures import github

GITHUB_ROLES = {"maria": "maintain", "dana": "write"}
CODE = {"code": "invalid"}


class FakeGitHub(FakeForge):
    platform = "github"
    api = "https://api.github.com"
    repo = "octo-org/models"

    def __init__(self) -> None:
        super().__init__()
        self.teams: dict[str, dict[str, str]] = {}  # "org/slug" -> {login: state}
        self.failing_teams: set[str] = set()  # answered 403: the token may not read the team

    def body(self, number: int) -> str:
        return str(self.threads[number]["body"])

    def set_body(self, number: int, body: str) -> None:
        self.threads[number]["body"] = body

    def state(self, number: int) -> str:
        return str(self.threads[number]["state"])

    def _user(self, login: str) -> dict[str, Any]:
        user = dict(github("issue")["user"])
        user.update(login=login, id=user_id(login), type="Bot" if login == BOT else "User")
        return user

    def _thread(
        self, number: int, title: str, body: str, labels: list[str], author: str
    ) -> dict[str, Any]:
        stamp = self.clock.tick()[:19] + "Z"
        label = github("issue")["labels"][0]
        return github(
            "issue",
            url=f"{self.api}/repos/{self.repo}/issues/{number}",
            html_url=f"https://github.com/{self.repo}/issues/{number}",
            id=7000 + number,
            number=number,
            title=title,
            body=body,
            user=self._user(author),
            labels=[label | {"name": name} for name in labels],
            state="open",
            comments=0,
            created_at=stamp,
            updated_at=stamp,
        )

    def _comment(self, cid: int, number: int, author: str, body: str) -> dict[str, Any]:
        self.threads[number]["comments"] += 1
        return github(
            "comment",
            id=cid,
            url=f"{self.api}/repos/{self.repo}/issues/comments/{cid}",
            html_url=f"https://github.com/{self.repo}/issues/{number}#issuecomment-{cid}",
            issue_url=f"{self.api}/repos/{self.repo}/issues/{number}",
            user=self._user(author),
            body=body,
            created_at=(stamp := self.clock.tick()[:19] + "Z"),
            updated_at=stamp,  # a new comment: GitHub sets both to the same time
        )

    def _touch(self, number: int) -> None:
        self.threads[number]["updated_at"] = self.clock.tick()[:19] + "Z"

    def install(self, rsps: responses.RequestsMock) -> None:
        # PyGithub writes the port (:443) into its URLs.
        host = re.escape("https://api.github.com") + r"(?::443)?"
        r = host + re.escape(f"/repos/{self.repo}")
        q = r"(\?.*)?$"
        routes = [
            ("GET", rf"{host}/user{q}", lambda _r, _m: json_reply(200, github("user", login=BOT))),
            ("GET", rf"{r}/issues{q}", self._list),
            ("POST", rf"{r}/issues{q}", self._create),
            ("POST", rf"{r}/issues/(\d+)/assignees{q}", self._assign),
            ("GET", rf"{r}/issues/(\d+){q}", self._get),
            ("PATCH", rf"{r}/issues/(\d+){q}", self._update),
            ("GET", rf"{r}/issues/(\d+)/comments{q}", self._list_comments),
            ("POST", rf"{r}/issues/(\d+)/comments{q}", self._bot_comment),
            ("POST", rf"{r}/issues/comments/(\d+)/reactions{q}", self._reaction),
            ("GET", rf"{r}/collaborators/([^/?]+)/permission{q}", self._permission),
            ("GET", rf"{host}/orgs/([^/]+)/teams/([^/]+)/memberships/([^/?]+){q}", self._team),
            ("GET", rf"{r}{q}", self._repository),
            ("POST", rf"{r}/deployments{q}", self._deploy),
            ("POST", rf"{r}/deployments/(\d+)/statuses{q}", self._deployment_status),
        ]
        self._install(rsps, routes)

    def _repository(self, _r: Any, _m: re.Match[str]) -> Reply:
        return json_reply(200, github("repository", default_branch=next(iter(self.branches))))

    def _deploy(self, request: Any, _m: re.Match[str]) -> Reply:
        data = json_body(request)
        if self.refuse_deployments:
            return json_reply(self.refuse_deployments, github("not_accessible_403"))
        if not self.resolves(data["ref"]):  # GitHub's answer to a ref it cannot resolve
            return json_reply(422, {"message": f"No ref found for: {data['ref']}"})
        number = len(self.deployments) + 1
        self.deployments.append({**data, "id": number, "statuses": []})
        url = f"{self.api}/repos/{self.repo}/deployments/{number}"
        made = github("deployment", id=number, ref=data["ref"], environment=data["environment"])
        return json_reply(201, made | {"url": url, "statuses_url": f"{url}/statuses"})

    def _deployment_status(self, request: Any, m: re.Match[str]) -> Reply:
        data = json_body(request)
        self.deployments[int(m.group(1)) - 1]["statuses"].append(data)
        return json_reply(201, github("deployment_status", state=data["state"]))

    def _list(self, request: Any, _m: re.Match[str]) -> Reply:
        return self._listing(request, "open", "30", "creator")

    def _labels(self, thread: dict[str, Any]) -> list[str]:
        return [label["name"] for label in thread["labels"]]

    def _create(self, request: Any, _m: re.Match[str]) -> Reply:
        data = json_body(request)
        outsiders = [name for name in data.get("assignees", []) if name not in GITHUB_ROLES]
        if outsiders:  # GitHub refuses the whole issue when one assignee is no collaborator
            error = {"value": outsiders[0], "resource": "Issue", "field": "assignees"}
            return json_reply(422, github("validation_error_422", errors=[error | CODE]))
        number = self.add_thread(data["title"], data.get("body", ""), list(data.get("labels", [])))
        self.threads[number]["assignees"] = [self._user(n) for n in data.get("assignees", [])]
        return json_reply(201, self.threads[number])

    def _assign(self, request: Any, m: re.Match[str]) -> Reply:
        """Add assignees: GitHub leaves out those who cannot be assigned, without an error."""
        thread = self.threads[int(m.group(1))]
        have = {user["login"] for user in thread["assignees"]}
        for name in json_body(request).get("assignees", []):
            if name in GITHUB_ROLES and name not in have:
                thread["assignees"].append(self._user(name))
        return json_reply(201, thread)

    def _update(self, request: Any, m: re.Match[str]) -> Reply:
        number, data = int(m.group(1)), json_body(request)
        thread = self.threads[number]
        if "body" in data:
            thread["body"] = data["body"]
        if data.get("state") == "closed":
            thread["state"], thread["closed_at"] = "closed", self.clock.tick()[:19] + "Z"
        self._touch(number)
        return json_reply(200, thread)

    def _list_comments(self, _r: Any, m: re.Match[str]) -> Reply:
        return json_reply(200, self.comments[int(m.group(1))])

    def _reaction(self, request: Any, _m: re.Match[str]) -> Reply:
        content = json_body(request).get("content", "")
        return json_reply(201, github("reaction", content=content, user=self._user(BOT)))

    def _permission(self, _r: Any, m: re.Match[str]) -> Reply:
        login = m.group(1)
        role = GITHUB_ROLES.get(login)
        if role is None:
            return json_reply(404, github("not_found_404"))
        legacy = "admin" if role == "maintain" else role
        data = github("collaborator_permission", permission=legacy, role_name=role)
        data["user"] = self._user(login)
        return json_reply(200, data)

    def _team(self, _r: Any, m: re.Match[str]) -> Reply:
        """A team membership: 404 for a non-member and for a team the token cannot see."""
        team, login = f"{m.group(1)}/{m.group(2)}", m.group(3)
        if team in self.failing_teams:
            return json_reply(403, github("not_accessible_403"))
        state = self.teams.get(team, {}).get(login)
        if state is None:
            return json_reply(404, github("not_found_404"))
        return json_reply(200, github("team_membership", state=state))
