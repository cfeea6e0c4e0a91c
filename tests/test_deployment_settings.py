"""The settings of a production deployment: the shared lock and the GitHub App.

A value that cannot work is one error naming its variable, at start-up; the Redis password and
the App's private key never show in a repr, an error or a log line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.locking import model_lock
from bot.config.settings import DEFAULT_LOCK_TTL, Settings
from bot.errors import ConfigError, LockUnavailable
from bot.runtime.context import Context

KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecretkeymaterial\n-----END RSA PRIVATE KEY-----\n"
GITHUB = {
    "PROMOTION_BOT_PLATFORM": "github",
    "GITHUB_REPOSITORY": "octo-org/models",
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
}

REFUSED = [
    ({"PROMOTION_BOT_LOCK_URL": "ftp://cache:6379"}, "PROMOTION_BOT_LOCK_URL: 'ftp://cache:6379'"),
    ({"PROMOTION_BOT_LOCK_URL": "redis://"}, "is not a redis://, rediss:// or unix:// URL"),
    ({"PROMOTION_BOT_LOCK_URL": "redis://:pw@cache:port"}, "'redis://***@cache:port' is not a URL"),
    ({"PROMOTION_BOT_LOCK_TTL": "0"}, "PROMOTION_BOT_LOCK_TTL: '0' is not a number of seconds"),
    ({"PROMOTION_BOT_LOCK_TTL": "nan"}, "PROMOTION_BOT_LOCK_TTL: 'nan'"),
    ({"PROMOTION_BOT_LOCK_TTL": "30s"}, "PROMOTION_BOT_LOCK_TTL: '30s'"),
    (
        {**GITHUB, "GITHUB_APP_ID": "my-app", "GITHUB_APP_PRIVATE_KEY": KEY},
        "GITHUB_APP_ID: 'my-app'",
    ),
    ({**GITHUB, "GITHUB_APP_ID": "4242"}, "GITHUB_APP_PRIVATE_KEY: not set"),
    ({**GITHUB, "GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": "hunter2"}, "not a PEM"),
    ({**GITHUB, "GITHUB_APP_PRIVATE_KEY": KEY}, "GITHUB_APP_ID: not set, but other"),
    (
        {
            **GITHUB,
            "GITHUB_APP_ID": "4242",
            "GITHUB_APP_PRIVATE_KEY": KEY,
            "GITHUB_APP_INSTALLATION_ID": "x",
        },
        "GITHUB_APP_INSTALLATION_ID: 'x' is not a number",
    ),
    (
        {**GITHUB, "GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY_PATH": "missing.pem"},
        "GITHUB_APP_PRIVATE_KEY_PATH: cannot read missing.pem (No such file or directory)",
    ),
]


@pytest.mark.parametrize(("env", "expected"), REFUSED, ids=[e for _, e in REFUSED])
def test_values_that_cannot_work_are_refused_naming_the_variable(
    env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env).validated(env)
    assert expected in str(caught.value)
    assert "pw" not in str(caught.value) and "secretkeymaterial" not in str(caught.value)


def test_usable_values_pass(tmp_path: Path) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(KEY, encoding="utf-8")
    env = {
        **GITHUB,
        "PROMOTION_BOT_LOCK_URL": "rediss://bot:pw@cache.internal:6380/2",
        "PROMOTION_BOT_LOCK_TTL": "45",
        "GITHUB_APP_ID": "4242",
        "GITHUB_APP_PRIVATE_KEY_PATH": str(key_file),
        "GITHUB_APP_INSTALLATION_ID": "61234567",
    }
    settings = Settings.from_env(env).validated(env)
    assert settings.lock_ttl == 45.0 and settings.github_app_private_key.value == KEY
    assert Settings.from_env({}).lock_ttl == DEFAULT_LOCK_TTL and not Settings.from_env({}).lock_url
    one_line = {**GITHUB, "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": KEY.replace("\n", "\\n")}
    assert Settings.from_env(one_line).validated(one_line).github_app_private_key.value == KEY


def test_the_redis_password_and_the_app_key_never_show() -> None:
    env = {**GITHUB, "PROMOTION_BOT_LOCK_URL": "redis://:r3dis-pw-9f@127.0.0.1:1/0"}
    env |= {"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": KEY, "GITHUB_TOKEN": ""}
    settings = Settings.from_env(env)
    assert "r3dis-pw-9f" not in repr(settings) and "secretkeymaterial" not in repr(settings)
    assert {"r3dis-pw-9f", KEY} <= set(settings.secret_values())

    # The lock service down (nothing listens on port 1): the error names it, without the password.
    ctx = Context(settings=settings)
    with pytest.raises(LockUnavailable) as caught, model_lock(ctx):
        pass
    message = str(caught.value)
    assert "the lock service at redis://***@127.0.0.1:1/0 could not be reached" in message
    assert "r3dis-pw-9f" not in message
