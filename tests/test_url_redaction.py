"""Every URL the bot logs goes through one redaction (docs/security.md, "What the bot writes"):
GITLAB_URL, GITHUB_API_URL, the tracking URI and the post_promote_hook URL, credentials in userinfo
or query.

The log records are read raw (before the CLI's masking filter): the URLs must be redacted where
they are logged, not only masked on the way out. The CLI's output is checked as well.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import responses

from bot.commands.post_promote_hook import call_hook
from bot.config.settings import Settings
from bot.logs import RedactSecrets
from bot.urls import redact_url, redact_urls_in, url_secrets
from tests import test_secrets
from tests.mlflow_server import free_port
from tests.promotion_env import MakePlayground
from tests.test_secrets import invoke

# The fixtures of test_secrets: its environment of secrets, raw log records, the registry.
env, raw_logs, reachable = (test_secrets.env, test_secrets.raw_logs, test_secrets.reachable)

CREDENTIALS = {
    "gitlab-user": "glpat-InUrl-1f2e3d4c",
    "github-user": "ghs_InUrl_9a8b7c6d",
    "github-query": "ghs_Query_5e4d3c2b",
    "mlflow-query": "mlf-Query-7a6b5c4d",
    "hook-user": "hook-Pw-3c2b1a0f",
    "hook-query": "hook-Tok-8e7f6a5b",
}


def assert_no_credentials(*texts: str) -> None:
    for text in texts:
        for value in CREDENTIALS.values():
            assert value not in text, f"a URL credential leaked: {value}"


@pytest.fixture(autouse=True)
def _no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.forges._retry.sleep", lambda _seconds: None)


@pytest.mark.usefixtures("reachable")
def test_gitlab_url_with_a_token_in_its_userinfo(
    raw_logs: pytest.LogCaptureFixture,
    rsps: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMOTION_BOT_PLATFORM", "gitlab")
    monkeypatch.setenv("GITLAB_URL", f"https://oauth2:{CREDENTIALS['gitlab-user']}@gitlab.example")
    rsps.get(re.compile(r"https://([^/]*@)?gitlab\.example/api/v4/.*"), status=503)

    code, output = invoke("-vv", "status")

    assert code == 0 and "open requests: unavailable" in output
    logged = [r.getMessage() for r in raw_logs.records]
    assert "GitLab at https://***@gitlab.example, project ml-team/soccer-model" in logged
    retries = [m for m in logged if "got HTTP 503; retry" in m]
    assert retries and all("https://***@gitlab.example/api/v4/" in m for m in retries), logged
    assert_no_credentials(output, raw_logs.text)


@pytest.mark.usefixtures("reachable")
def test_github_api_url_with_credentials_in_userinfo_and_query(
    raw_logs: pytest.LogCaptureFixture,
    rsps: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMOTION_BOT_PLATFORM", "github")
    monkeypatch.setenv(
        "GITHUB_API_URL",
        f"https://x:{CREDENTIALS['github-user']}@ghe.example/api/v3"
        f"?access_token={CREDENTIALS['github-query']}",
    )
    rsps.get(re.compile(r"https://ghe\.example(:443)?/.*"), status=503, json={"message": "down"})

    code, output = invoke("-vv", "--log-format", "json", "status")

    assert code == 0 and "unavailable (ForgeError)" in output
    logged = [r.getMessage() for r in raw_logs.records]
    shown = "GitHub API at https://***@ghe.example/api/v3?access_token=***, repository"
    assert any(m.startswith(shown) for m in logged), logged
    assert_no_credentials(output, raw_logs.text)


@pytest.mark.usefixtures("env")
def test_tracking_uri_with_credentials_in_userinfo_and_query(
    raw_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens: the failure is logged and shown with the URI
    uri = f"http://ci-bot:{test_secrets.PASSWORD}@127.0.0.1:{port}/?token={CREDENTIALS['mlflow-query']}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    code, output = invoke("-v", "history")

    shown = f"http://***@127.0.0.1:{port}/?token=***"
    assert code == 1 and f"the registry at {shown} is unreachable" in output
    assert f"registry at {shown}" in [r.getMessage() for r in raw_logs.records]
    assert_no_credentials(output, raw_logs.text)
    test_secrets.assert_clean(output, raw_logs.text)


def test_hook_url_with_credentials_in_userinfo_and_query(
    make_pg: MakePlayground, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    port = free_port()
    url = (
        f"http://hooks:{CREDENTIALS['hook-user']}@127.0.0.1:{port}/notify"
        f"?token={CREDENTIALS['hook-query']}&team=ml"
    )
    pg = make_pg(post_promote_hook=url)
    thread = pg.open_request(pg.train(0.6))

    outcome, _ = pg.comment(thread, "maria", "/promote")

    assert outcome.status == "changed" and pg.champion() is not None  # the hook's failure aside
    failures = [r.getMessage() for r in caplog.records if "post_promote_hook" in r.getMessage()]
    shown = f"post_promote_hook http://***@127.0.0.1:{port}/notify?token=***&team=ml attempt"
    assert len(failures) == 3 and all(m.startswith(shown) for m in failures), failures
    answers = "\n".join(c.body for c in pg.answers(thread))
    assert "post_promote_hook` failed (ConnectionError)" in answers
    assert_no_credentials(caplog.text, answers)


def test_call_hook_logs_the_url_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot")
    url = f"https://u:{CREDENTIALS['hook-user']}@127.0.0.1:{free_port()}/x?sig=abc&key=k1"
    problem = call_hook(url, {"model": "m"}, attempts=2, sleep=lambda _s: None)
    assert problem == "ConnectionError"
    assert [r.getMessage().split(" attempt")[0] for r in caplog.records] == [
        f"post_promote_hook {redact_url(url)}"
    ] * 2
    assert "sig=***&key=***" in caplog.text
    assert_no_credentials(caplog.text)


# --- the masking list and the one redaction ------------------------------------------------


def test_url_credentials_and_mlflow_variables_are_masked_in_log_lines() -> None:
    settings = Settings.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://ci:pw-Track-1a2b@mlflow:5000",
            "GITLAB_URL": f"https://oauth2:{CREDENTIALS['gitlab-user']}@gitlab.example",
            "GITHUB_API_URL": f"https://ghe.example/api/v3?access_token={CREDENTIALS['github-query']}",
            "MLFLOW_TRACKING_PASSWORD": "mlf-Password-5c6d",
            "MLFLOW_TRACKING_TOKEN": "mlf-Token-7e8f",
        }
    )
    values = {value for value in settings.secret_values() if value}
    assert {
        "pw-Track-1a2b",
        CREDENTIALS["gitlab-user"],
        CREDENTIALS["github-query"],
        "mlf-Password-5c6d",
        "mlf-Token-7e8f",
    } <= values
    redactor = RedactSecrets(values)
    record = logging.LogRecord(
        "bot.x", logging.ERROR, __file__, 1, "%s", ("sent mlf-Token-7e8f to mlflow",), None
    )
    assert redactor.filter(record) and record.getMessage() == "sent *** to mlflow"
    for text in (repr(settings), str(settings)):
        assert not any(value in text for value in values), text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://oauth2:glpat-x@gitlab.example/api", "https://***@gitlab.example/api"),
        ("https://TOKEN@ghe.example/api/v3", "https://***@ghe.example/api/v3"),
        ("http://h/p?private_token=a&x=1", "http://h/p?private_token=***&x=1"),
        ("http://h/p?Access_Token=a;key=b#f", "http://h/p?Access_Token=***;key=***#f"),
        ("http://h/p?sig=&keys=1&token=", "http://h/p?sig=&keys=1&token="),
        ("http://[::1]:5000/x?signature=s", "http://[::1]:5000/x?signature=***"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("http://[broken/x?token=t", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert not any(secret in shown for secret in url_secrets(url) if len(secret) > 1)


def test_urls_inside_library_messages_are_redacted() -> None:
    message = (
        "HTTPSConnectionPool(host='gitlab.example', port=443): Max retries exceeded with url: "
        "/api/v4/projects?private_token=s3cr3t (see https://u:pw@proxy.example/?key=k)"
    )
    assert redact_urls_in(message) == (
        "HTTPSConnectionPool(host='gitlab.example', port=443): Max retries exceeded with url: "
        "/api/v4/projects?private_token=*** (see https://***@proxy.example/?key=***)"
    )


def test_settings_check_messages_show_urls_redacted(tmp_path: Path) -> None:
    from bot.errors import ConfigError

    env = {"PROMOTION_BOT_PLATFORM": "gitlab", "GITLAB_URL": "gitlab://oauth2:glpat-q@x"}
    env["MLFLOW_TRACKING_URI"] = "http://mlflow:5000"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env).validated(env)
    assert str(caught.value) == "GITLAB_URL: 'gitlab://***@x' is not an http(s) URL with a host"


# --- a password holding / ? # --------------------------------------------------------------------

PASSWORD = "s3cr/et+X"


@pytest.mark.parametrize("sep", ["/", "?", "#", "@", ":"])
def test_a_password_with_a_delimiter_is_masked_whole(sep: str) -> None:
    url = f"http://alice:abc{sep}def@registry.example.com:5000/api"
    assert redact_url(url) == "http://***@registry.example.com:5000/api"
    assert f"abc{sep}def" in url_secrets(url)
    assert redact_urls_in(f"failed: {url} (timeout)") == (
        "failed: http://***@registry.example.com:5000/api (timeout)"
    )


@pytest.mark.parametrize("variable", ["MLFLOW_TRACKING_URI", "GITLAB_URL"])
def test_a_credential_url_the_startup_check_refuses_is_not_printed(
    variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.helpers import run_main

    monkeypatch.setenv("PROMOTION_BOT_PLATFORM", "gitlab")
    monkeypatch.setenv("GITLAB_PROJECT", "1")
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-unrelated")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    monkeypatch.setenv(variable, f"https://alice:{PASSWORD}@host.example.com")
    code, out, err = run_main(monkeypatch, capsys, "poll")
    assert code == 1
    assert PASSWORD not in out + err and "s3cr" not in out + err, (out + err).strip()
    assert "***@host.example.com" in err
