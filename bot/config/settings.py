"""What is not params.yaml: where the registry and the forge are, secrets, and the lock.

Taken from the environment, then overridden by the command line (which wins); checked by
`Settings.validated` for the active platform only. Secrets never show in a repr or a log line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot import signing
from bot.config import checks as check
from bot.config import identity
from bot.config.ci_commit import CiCommit, from_ci_env
from bot.errors import ConfigError
from bot.urls import redact_url, url_secrets

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_LOCK_TTL = 30.0  # seconds a lease lives without being extended
# The MLflow experiment of the audit ledger, shared by every model of the registry.
DEFAULT_LEDGER_EXPERIMENT = "promotion-bot/ledger"


@dataclass(frozen=True)
class Secret:
    """A secret string that never shows itself in a repr, a log line or an f-string."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "***" if self.value else ""

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class Settings:
    """Everything that is not params.yaml: where the registry and the forge are, and secrets."""

    tracking_uri: str = DEFAULT_TRACKING_URI
    # False: neither MLFLOW_TRACKING_URI nor --tracking-uri named a registry, so tracking_uri is
    # the embedded default, which only the local platform (and `demo`) may use.
    registry_given: bool = True
    platform: str = "local"
    gitlab_url: str = "https://gitlab.com"
    gitlab_project: str = ""
    gitlab_token: Secret = Secret("")
    github_api_url: str = "https://api.github.com"
    github_repository: str = ""
    github_token: Secret = Secret("")
    # A GitHub App instead of a token: the bot then answers as `<slug>[bot]`.
    github_app_id: str = ""
    github_app_private_key: Secret = Secret("")
    github_app_installation_id: str = ""  # else looked up from the repository (one call)
    gitlab_webhook_secret: Secret = Secret("")
    github_webhook_secret: Secret = Secret("")
    mlflow_webhook_secret: Secret = Secret("")
    hook_secret: Secret = Secret("")
    # MLflow reads these itself; the bot holds them only to mask them in its output.
    mlflow_password: Secret = Secret("")
    mlflow_token: Secret = Secret("")
    requested_by: str = ""
    requested_by_id: str = ""  # the forge's user id of `requested_by`, when CI gives it
    local_dir: Path = Path(".promotion-bot")
    bot_username: str = ""  # optional override of the account name the forge reports
    pipeline_url: str = ""
    # The commit a CI job runs at (bot.config.ci_commit): what a forge deployment names.
    ci_commit: CiCommit = field(default_factory=CiCommit)
    # The shared lock and de-duplication store (Redis) of several replicas; "" = this machine's
    # file lock and this process's memory (docs/design.md, "Locking").
    lock_url: str = ""
    lock_ttl: float = DEFAULT_LOCK_TTL
    ledger_experiment: str = DEFAULT_LEDGER_EXPERIMENT  # docs/design.md, "The ledger"
    # A name for this bot, for processes that reach the registry by different URLs; "" = the
    # id is derived from the registry and the project (bot.config.identity).
    instance: str = ""
    # The bot's Ed25519 key (docs/security.md); the local platform makes its own when unset.
    signing_key: Secret = Secret("")
    # `serve` shows the status page at / only when set (docs/security.md, "The status page").
    status_password: Secret = Secret("")

    def __repr__(self) -> str:
        # Secrets show as Secret(); a credential inside a URL must not show either.
        shown = {
            key: redact_url(value) if key in _URL_FIELDS else value
            for key, value in vars(self).items()
        }
        fields = ", ".join(f"{key}={value!r}" for key, value in shown.items())
        return f"Settings({fields})"

    @property
    def instance_id(self) -> str:
        """This bot, (registry, forge project), as a short id: bot.config.identity."""
        if self.instance:
            return identity.short_id("named bot", self.instance)
        if self.platform == "gitlab":
            host, project = self.gitlab_url, self.gitlab_project
        elif self.platform == "github":
            host, project = self.github_api_url, self.github_repository
        else:
            host, project = "", identity.local_project(self.local_dir)
        return identity.instance_id(self.tracking_uri, self.platform, host, project)

    @property
    def registry_id(self) -> str:
        if self.instance:
            return identity.short_id("named registry", self.instance)
        return identity.registry_id(self.tracking_uri)

    def commit_ran_at(self) -> CiCommit | None:
        """The branch and commit this CI job runs at, when it is the configured project's own."""
        project = {"gitlab": self.gitlab_project, "github": self.github_repository}
        return self.ci_commit.of(self.platform, project.get(self.platform, ""))

    def secret_values(self) -> list[str]:
        """Every secret this run knows, for masking in logs and errors."""
        values = [value.value for value in vars(self).values() if isinstance(value, Secret)]
        for key in _URL_FIELDS:  # a user:password@ or ?private_token= in a URL, as written and sent
            values += url_secrets(getattr(self, key))
        return values

    def validated(self, env: Mapping[str, str] | None = None) -> Settings:
        """This, once every value the active platform uses is one it can use (else ConfigError)."""
        env = os.environ if env is None else env
        if not self.registry_given and self.platform != "local":
            # A registry made up inside a CI job would take the versions and the ledger with it.
            raise ConfigError(
                f"MLFLOW_TRACKING_URI: not set: on the {self.platform} platform the bot needs "
                "the team's registry (or --tracking-uri); only the local platform and `demo` "
                f"use an embedded {DEFAULT_TRACKING_URI}"
            )
        problems = [("tracking URI", check.tracking_uri(self.tracking_uri, env))]
        if self.platform == "gitlab":
            problems.append(("GITLAB_URL", check.http_url(self.gitlab_url)))
        if self.platform == "github":
            problems.append(("GITHUB_API_URL", check.http_url(self.github_api_url)))
            problems += self._github_app_problems()
        if self.lock_url:
            problems.append(("PROMOTION_BOT_LOCK_URL", check.redis_url(self.lock_url)))
        if self.platform == "local":
            problems.append(("PROMOTION_BOT_LOCAL_DIR", check.folder(self.local_dir)))
        problems.append(
            ("PROMOTION_BOT_LEDGER_EXPERIMENT", check.experiment_name(self.ledger_experiment))
        )
        for name, problem in problems:
            if problem:
                raise ConfigError(f"{name}: {problem}")
        if self.signing_key:
            signing.private_key(self.signing_key.value)  # a ConfigError naming the variable
        lock_folder(env)
        return self

    def require_signing_key(self) -> Settings:
        """This, when it can sign: on a forge there is no unsigned mode (docs/security.md)."""
        if self.platform != "local" and not self.signing_key:
            raise ConfigError(
                f"{signing.KEY_VARIABLE}: not set; on {self.platform} the bot signs every record "
                'it writes (`promotion-bot keygen`, README "Signing keys")'
            )
        return self

    def _github_app_problems(self) -> list[tuple[str, str]]:
        if not self.github_app_id:
            if self.github_app_private_key or self.github_app_installation_id:
                return [("GITHUB_APP_ID", "not set, but other GITHUB_APP_* variables are")]
            return []
        problems = [("GITHUB_APP_ID", check.digits(self.github_app_id))]
        if self.github_app_installation_id:
            problems.append(
                ("GITHUB_APP_INSTALLATION_ID", check.digits(self.github_app_installation_id))
            )
        key = self.github_app_private_key.value
        if not key:
            problems.append(("GITHUB_APP_PRIVATE_KEY", "not set (or GITHUB_APP_PRIVATE_KEY_PATH)"))
        elif "-----BEGIN" not in key or "PRIVATE KEY-----" not in key:
            problems.append(("GITHUB_APP_PRIVATE_KEY", "not a PEM private key"))
        return problems

    def with_overrides(self, **overrides: Any) -> Settings:
        """Apply command-line values (None means "not given")."""
        given = {key: value for key, value in overrides.items() if value is not None}
        for key in ("gitlab_token", "github_token"):
            if isinstance(given.get(key), str):
                given[key] = Secret(given[key])
        for key in ("gitlab_url", "github_api_url"):  # as from_env does
            if isinstance(given.get(key), str):
                given[key] = given[key].rstrip("/")
        if "tracking_uri" in given:
            given["registry_given"] = True
        if "local_dir" in given:
            given["local_dir"] = Path(given["local_dir"])
        if given.get("requested_by", self.requested_by) != self.requested_by:
            given.setdefault("requested_by_id", "")  # the environment's id is someone else's
        return replace(self, **given)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(*names: str, default: str = "") -> str:
            for name in names:
                if env.get(name):
                    return env[name]
            return default

        requester = _requester(env)
        return cls(
            tracking_uri=get("MLFLOW_TRACKING_URI", default=DEFAULT_TRACKING_URI),
            registry_given=bool(get("MLFLOW_TRACKING_URI")),
            platform=_detect_platform(env),
            gitlab_url=get("GITLAB_URL", "CI_SERVER_URL", default="https://gitlab.com").rstrip("/"),
            gitlab_project=get("GITLAB_PROJECT", "CI_PROJECT_ID"),
            gitlab_token=Secret(get("GITLAB_TOKEN")),
            github_api_url=get("GITHUB_API_URL", default="https://api.github.com").rstrip("/"),
            github_repository=get("GITHUB_REPOSITORY"),
            github_token=Secret(get("GITHUB_TOKEN")),
            github_app_id=get("GITHUB_APP_ID").strip(),
            github_app_private_key=Secret(_private_key(env)),
            github_app_installation_id=get("GITHUB_APP_INSTALLATION_ID").strip(),
            gitlab_webhook_secret=Secret(get("GITLAB_WEBHOOK_SECRET")),
            github_webhook_secret=Secret(get("GITHUB_WEBHOOK_SECRET")),
            mlflow_webhook_secret=Secret(get("MLFLOW_WEBHOOK_SECRET")),
            hook_secret=Secret(get("PROMOTION_BOT_HOOK_SECRET")),
            mlflow_password=Secret(get("MLFLOW_TRACKING_PASSWORD")),
            mlflow_token=Secret(get("MLFLOW_TRACKING_TOKEN")),
            requested_by=requester[0],
            requested_by_id=requester[1],
            local_dir=Path(get("PROMOTION_BOT_LOCAL_DIR", default=".promotion-bot")),
            bot_username=get("PROMOTION_BOT_USERNAME"),
            pipeline_url=_pipeline_url(env),
            ci_commit=from_ci_env(env),
            lock_url=get("PROMOTION_BOT_LOCK_URL").strip(),
            lock_ttl=_lock_ttl(get("PROMOTION_BOT_LOCK_TTL")),
            ledger_experiment=get(
                "PROMOTION_BOT_LEDGER_EXPERIMENT", default=DEFAULT_LEDGER_EXPERIMENT
            ),
            instance=get("PROMOTION_BOT_INSTANCE").strip(),
            signing_key=Secret(get(signing.KEY_VARIABLE)),
            status_password=Secret(get("PROMOTION_BOT_STATUS_PASSWORD")),
        )


PLATFORMS = ("gitlab", "github", "local")
_URL_FIELDS = ("tracking_uri", "gitlab_url", "github_api_url", "lock_url")


def _detect_platform(env: Mapping[str, str]) -> str:
    explicit = env.get("PROMOTION_BOT_PLATFORM", "").strip().lower()
    if explicit:
        if explicit not in PLATFORMS:
            raise ConfigError(
                f"PROMOTION_BOT_PLATFORM: unknown platform {explicit!r} (gitlab, github or local)"
            )
        return explicit
    if env.get("GITLAB_CI"):
        return "gitlab"
    if env.get("GITHUB_ACTIONS"):
        return "github"
    return "local"


def _requester(env: Mapping[str, str]) -> tuple[str, str]:
    """Who triggered training, and their forge user id: PROMOTION_BOT_REQUESTED_BY(_ID), else
    the CI user (GITLAB_USER_LOGIN/_ID, GITHUB_ACTOR/_ID). A login and an id only ever come in
    pairs: the CI user's id is not the id of someone named explicitly."""
    if env.get("PROMOTION_BOT_REQUESTED_BY") or env.get("PROMOTION_BOT_REQUESTED_BY_ID"):
        return env.get("PROMOTION_BOT_REQUESTED_BY", ""), env.get(
            "PROMOTION_BOT_REQUESTED_BY_ID", ""
        )
    for login, user_id in (
        ("GITLAB_USER_LOGIN", "GITLAB_USER_ID"),
        ("GITHUB_ACTOR", "GITHUB_ACTOR_ID"),
    ):
        if env.get(login):
            return env[login], env.get(user_id, "")
    return "", ""


def _private_key(env: Mapping[str, str]) -> str:
    """GITHUB_APP_PRIVATE_KEY, else the file GITHUB_APP_PRIVATE_KEY_PATH names."""
    if env.get("GITHUB_APP_PRIVATE_KEY"):
        return env["GITHUB_APP_PRIVATE_KEY"].replace("\\n", "\n")  # one-line CI variables
    path = env.get("GITHUB_APP_PRIVATE_KEY_PATH", "")
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"GITHUB_APP_PRIVATE_KEY_PATH: cannot read {path} ({reason})") from None


def _lock_ttl(value: str) -> float:
    if not value:
        return DEFAULT_LOCK_TTL
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 1.0 <= seconds <= 3600.0:  # also refuses nan
        raise ConfigError(f"PROMOTION_BOT_LOCK_TTL: {value!r} is not a number of seconds (1-3600)")
    return seconds


def _pipeline_url(env: Mapping[str, str]) -> str:
    if env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL"):
        return env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL", "")
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return ""


def lock_folder(env: Mapping[str, str] | None = None) -> Path:
    """PROMOTION_BOT_LOCK_DIR (default the system temp dir); a file there is a ConfigError."""
    env = os.environ if env is None else env
    folder = Path(env.get("PROMOTION_BOT_LOCK_DIR") or tempfile.gettempdir())
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"PROMOTION_BOT_LOCK_DIR: {folder} is a file, not a folder")
    return folder
