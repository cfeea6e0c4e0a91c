"""The bot as a GitHub App: a JWT signed with the App's key, the installation token
exchange and its refresh after expiry, `<slug>[bot]` as the bot's login — all through PyGithub,
mocked at HTTP level with `responses`, asserting the requests sent.

The RSA key is generated here; the JWT each request carries is verified with its public key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import github.Auth as pygithub_auth
import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.ci.gate import gate
from bot.ci.register import register
from bot.ci.request import open_or_update_request
from bot.config.params import parse_params
from bot.config.settings import Secret, Settings
from bot.forges.github import GitHubForge
from bot.intake.entry import handle_event_file
from bot.intake.poll import poll
from bot.runtime.context import Context
from bot.threads.markers import answered_comment_ids
from tests.fakes.forges import json_body, json_reply
from tests.fakes.github import FakeGitHub
from tests.forge_fixtures import github, github_url
from tests.helpers import TEST_SIGNING_KEY, log_training_run
from tests.webhook_fixtures import load_webhook

APP_ID = "4242"
INSTALLATION = 61234567
LOGIN = "promotion-bot[bot]"  # app.json's slug, as GitHub names the App's account
REPOSITORY = "octo-org/models"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def app_settings(key: rsa.RSAPrivateKey, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "platform": "github",
        "github_repository": REPOSITORY,
        "github_app_id": APP_ID,
        "github_app_private_key": Secret(pem(key)),
        "signing_key": Secret(TEST_SIGNING_KEY),
        **changes,
    }
    return Settings(**values)


def token_reply(token: str, lifetime: timedelta) -> dict[str, Any]:
    expires = datetime.now(timezone.utc) + lifetime
    return github(
        "installation_token", token=token, expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def signed_by_the_app(call: Any, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The claims of the JWT a request carried, verified with the App's public key."""
    scheme, _, token = call.request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer", call.request.headers["Authorization"][:12]
    claims: dict[str, Any] = jwt.decode(token, key.public_key(), algorithms=["RS256"])
    return claims


def route(call: Any) -> str:
    path = re.sub(r"^https://api\.github\.com(:443)?", "", call.request.url).split("?")[0]
    return f"{call.request.method} {path}"


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[timedelta]]:
    """Move PyGithub's clock (the one it decides a token's expiry by) forward."""
    offset = [timedelta(0)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + offset[0]

    monkeypatch.setattr(pygithub_auth, "datetime", Clock)
    yield offset


def test_the_token_is_exchanged_with_a_signed_jwt_and_refreshed_before_and_after_expiry(
    rsps: responses.RequestsMock, key: rsa.RSAPrivateKey, later: list[timedelta]
) -> None:
    rsps.get(github_url(f"/repos/{REPOSITORY}/installation"), json=github("installation"))
    exchange = github_url(f"/app/installations/{INSTALLATION}/access_tokens")
    for token in ("ghs_first", "ghs_second", "ghs_third"):  # each valid one hour from now
        rsps.post(exchange, json=token_reply(token, timedelta(hours=1)), status=201)
    rsps.get(github_url(f"/repos/{REPOSITORY}/issues/7"), json=github("issue", number=7))
    rsps.get(github_url("/app"), json=github("app"))

    forge = GitHubForge.from_settings(app_settings(key))  # no installation id: looked up
    forge.get_thread("issue", "7")
    later[0] = timedelta(minutes=59, seconds=30)  # 30 s left: still used
    forge.get_thread("issue", "7")
    later[0] = timedelta(minutes=59, seconds=50)  # 10 s left: PyGithub renews under 20 s
    forge.get_thread("issue", "7")
    later[0] = timedelta(hours=2)  # the second token expired an hour ago
    forge.get_thread("issue", "7")
    assert forge.bot_username() == LOGIN
    assert forge.bot_username() == LOGIN  # asked once

    calls = list(rsps.calls)
    issue, token = (
        f"GET /repos/{REPOSITORY}/issues/7",
        f"POST /app/installations/{INSTALLATION}/access_tokens",
    )
    assert [route(call) for call in calls] == [
        f"GET /repos/{REPOSITORY}/installation",
        token,
        issue,
        issue,
        token,
        issue,
        token,
        issue,
        "GET /app",
    ]
    now = datetime.now(timezone.utc).timestamp()
    for call in (calls[0], calls[1], calls[4], calls[6], calls[8]):  # the App's own: its JWT
        claims = signed_by_the_app(call, key)
        assert claims["iss"] == APP_ID
        assert claims["iat"] <= now and 0 < claims["exp"] - claims["iat"] <= 600
    sent = [call.request.headers["Authorization"] for call in calls if route(call) == issue]
    assert sent == ["token ghs_first", "token ghs_first", "token ghs_second", "token ghs_third"]


def test_a_configured_installation_id_saves_the_lookup(
    rsps: responses.RequestsMock, key: rsa.RSAPrivateKey
) -> None:
    rsps.post(
        github_url("/app/installations/777/access_tokens"),
        json=token_reply("ghs_777", timedelta(hours=1)),
        status=201,
    )
    rsps.get(github_url(f"/repos/{REPOSITORY}/issues/7"), json=github("issue", number=7))
    forge = GitHubForge.from_settings(
        app_settings(key, github_app_installation_id="777", bot_username="named-bot[bot]")
    )
    forge.get_thread("issue", "7")
    assert forge.bot_username() == "named-bot[bot]"  # PROMOTION_BOT_USERNAME: no GET /app
    assert [route(call) for call in rsps.calls] == [
        "POST /app/installations/777/access_tokens",
        f"GET /repos/{REPOSITORY}/issues/7",
    ]


def test_a_key_github_does_not_know_is_one_clear_error(
    rsps: responses.RequestsMock, key: rsa.RSAPrivateKey
) -> None:
    from bot.errors import ForgeAuthError

    rsps.get(
        github_url(f"/repos/{REPOSITORY}/installation"),
        json=github("bad_credentials_401"),
        status=401,
    )
    with pytest.raises(ForgeAuthError) as raised:
        GitHubForge.from_settings(app_settings(key))
    message = str(raised.value)
    assert "GITHUB_APP_ID" in message and "BEGIN" not in message


# --- the App in a whole run: it answers as `<slug>[bot]` and ignores its own comments ---------


class AppGitHub(FakeGitHub):
    """The GitHub fake, with the App's endpoints and the App's account writing for the bot."""

    tokens = 0

    def add_thread(self, title: str, body: str, labels: list[str], author: str = LOGIN) -> int:
        return super().add_thread(title, body, labels, author)

    def _bot_comment(self, request: Any, m: re.Match[str]) -> Any:
        assert request.headers["Authorization"].startswith("token ghs_")
        return json_reply(201, self.add_comment(int(m.group(1)), LOGIN, json_body(request)["body"]))

    def _token(self, _request: Any, _m: re.Match[str]) -> Any:
        self.tokens += 1
        return json_reply(201, token_reply(f"ghs_app_{self.tokens}", timedelta(hours=1)))

    def install(self, rsps: responses.RequestsMock) -> None:
        super().install(rsps)
        host = re.escape(self.api) + r"(?::443)?"
        self._install(
            rsps,
            [
                ("POST", rf"{host}/app/installations/{INSTALLATION}/access_tokens$", self._token),
                ("GET", rf"{host}/app$", lambda _r, _m: json_reply(200, github("app"))),
            ],
        )


def test_the_app_answers_as_slug_bot_and_ignores_its_own_comments(
    key: rsa.RSAPrivateKey, tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    fake = AppGitHub()
    settings = app_settings(
        key,
        tracking_uri=tracking_uri,
        github_app_installation_id=str(INSTALLATION),
        requested_by="dana",
    )
    params = parse_params({"register_model": {"model_name": model_name}}, "test")
    ctx = Context(settings=settings, params=params)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(tracking_uri)
        fake.install(rsps)
        run_id = log_training_run(tracking_uri, {"final.logloss": 0.6})
        version = register(ctx, run_id=run_id, alias="smoke").version.version
        gate(ctx, version=version)
        number = int(open_or_update_request(ctx).number)
        fake.set_body(number, fake.body(number).replace("- [ ]", "- [x]"))
        assert fake.threads[number]["user"]["login"] == LOGIN
        body = fake.body(number)  # the mention form shown is the App's slug, which the bot takes
        assert "@promotion-bot promote" in body and "@promotion-bot[bot]" not in body

        command = fake.add_comment(number, "maria", "@promotion-bot promote")
        assert handle(ctx, tmp_path, event(number, command)).status == "changed"
        # The App's own comment (here its answer, re-sent as a command would be) is never one.
        own = fake.add_comment(number, LOGIN, "/promote")
        assert handle(ctx, tmp_path, event(number, own, login=LOGIN)).status == "ignored"
        result = poll(ctx)
        posted = re.compile(r".*/issues/\d+/comments$")
        writes = [
            c for c in rsps.calls if c.request.method == "POST" and posted.match(c.request.url)
        ]

    assert ctx.registry.aliases(model_name)["champion"] == version
    answers = [c["body"] for c in fake.comments[number] if c["user"]["login"] == LOGIN]
    assert answered_comment_ids(answers) == {str(command["id"])}
    assert result.threads == 1 and result.outcomes == []  # poll sees the App's answer as its own
    assert len(writes) == 1  # the one answer
    assert fake.tokens == 1  # one installation token for the whole run


def event(number: int, comment: dict[str, Any], login: str = "maria") -> dict[str, Any]:
    data = load_webhook("github_issue_comment_issue")
    data["issue"]["number"] = number
    data["comment"].update(id=comment["id"], body=comment["body"])
    user = comment["user"]  # the author as the fake forge keeps it (the handler checks the id)
    data["comment"]["user"].update(
        login=login, id=user["id"], type="Bot" if login == LOGIN else "User"
    )
    data["repository"].update(full_name=REPOSITORY)
    return data


def handle(ctx: Context, folder: Path, payload: dict[str, Any]) -> Any:
    import json
    import uuid

    path = folder / f"event-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return handle_event_file(ctx, "issue_comment", str(path))


def test_a_key_that_only_looks_like_a_pem_is_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pasted key cut short: the command says which variable, not `unexpected InvalidKeyError`,
    and nothing of the value shows."""
    from click.testing import CliRunner

    from bot.cli import cli

    (tmp_path / "params.yaml").write_text("register_model: {model_name: churn}\n")
    monkeypatch.chdir(tmp_path)
    cut = "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretkeymaterial\n-----END RSA PRIVATE KEY-----\n"
    env = {
        "PROMOTION_BOT_PLATFORM": "github",
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_APP_ID": APP_ID,
        "GITHUB_APP_INSTALLATION_ID": str(INSTALLATION),
        "GITHUB_APP_PRIVATE_KEY": cut,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    result = CliRunner().invoke(cli, ["poll"], env=env)
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.lower().startswith("error: github_app_private_key: not a private key"), line
    assert "secretkeymaterial" not in result.output and "unexpected" not in result.output
