"""A GitHub App as the bot's identity: GITHUB_APP_ID, its private key, and the installation on
the repository (GITHUB_APP_INSTALLATION_ID, else looked up: one call per process).

Everything goes through PyGithub's own App support. `Auth.AppAuth` signs a JWT (RS256, issued
60 s in the past for clock skew, valid 5 minutes) for the App's own endpoints; `Auth.
AppInstallationAuth` exchanges it for an installation token (`POST /app/installations/{id}/
access_tokens`, valid one hour) on first use and asks for a new one whenever the token it holds
has less than 20 s left (`AppInstallationAuth.token` / `_is_expired` in PyGithub's Auth.py), so a
long-running `serve` never sends an expired token. The bot's login is then `<slug>[bot]`
(`GET /app`), unless PROMOTION_BOT_USERNAME names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from github import Auth, Github, GithubIntegration

from bot.errors import ConfigError
from bot.forges._github_support import build_client, call
from bot.forges._retry import DEFAULT_TIMEOUT, RetryPolicy

if TYPE_CHECKING:
    from bot.config.settings import Settings

HINTS = {
    401: "check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (the App's current key)",
    403: "check the App's permissions (issues, pull requests, contents: write; metadata: read)",
    404: "check that the App is installed on the repository (or GITHUB_APP_INSTALLATION_ID)",
}


def app_client(
    settings: Settings, repository: str, retry: RetryPolicy | None = None
) -> tuple[Github, GitHubApp]:
    """The repository's client authenticated as the App's installation, and the App."""
    key = settings.github_app_private_key.value
    app = GitHubApp(
        settings.github_api_url, settings.github_app_id, key, retry=retry, secrets=[key]
    )
    auth = app.installation_auth(repository, settings.github_app_installation_id)
    return build_client(settings.github_api_url, auth), app


class GitHubApp:
    def __init__(
        self,
        api_url: str,
        app_id: str,
        private_key: str,
        *,
        retry: RetryPolicy | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        check_private_key(private_key)
        self._auth = Auth.AppAuth(int(app_id), private_key)
        self._retry = retry or RetryPolicy()
        self._secrets = [s for s in secrets if s]
        # The App's own endpoints (GET /app, the installation lookup), signed with the JWT.
        self._integration = GithubIntegration(
            base_url=api_url.rstrip("/"),
            auth=self._auth,
            timeout=int(DEFAULT_TIMEOUT),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )

    def installation_auth(self, repository: str, installation_id: str = "") -> Auth.Auth:
        """The installation's token auth, refreshed by PyGithub before it expires."""
        number = int(installation_id) if installation_id else self._installation_of(repository)
        return self._auth.get_installation_auth(number)

    def bot_login(self) -> str:
        app = call(
            self._retry,
            "look up the App (GET /app)",
            self._integration.get_app,
            secrets=self._secrets,
            hints=HINTS,
        )
        return f"{app.slug}[bot]"

    def _installation_of(self, repository: str) -> int:
        owner, name = repository.split("/", 1)
        installation = call(
            self._retry,
            f"find the App's installation on {repository}",
            lambda: self._integration.get_repo_installation(owner, name),
            secrets=self._secrets,
            hints=HINTS,
        )
        return int(installation.id)


def check_private_key(private_key: str) -> None:
    """Load the key once here: PyGithub only parses it when it first signs a JWT, deep inside a
    request, where a key that merely looks like a PEM surfaces as an unexpected InvalidKeyError.
    The error names the variable and never the value (docs/security.md)."""
    try:
        load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            "GITHUB_APP_PRIVATE_KEY: not a private key that can be read (PEM, unencrypted): "
            "paste the whole .pem file GitHub generated for the App"
        ) from None
