"""Bounded retries and error translation shared by the GitLab and GitHub adapters.

Both client libraries can retry on their own, but without a cap on the wait (a primary rate
limit can ask for an hour) and with sleeps tests cannot see. The adapters switch those off and
use `RetryPolicy` instead: at most `attempts` calls, waits honouring Retry-After up to
`max_wait`, and a failure that would need a longer wait is reported at once.

Tests avoid real sleeps by passing `RetryPolicy(sleeper=...)` to an adapter, or by patching
the module-level `bot.forges._retry.sleep`.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from bot.errors import ForgeAuthError, ForgeError, ForgeNotFoundError
from bot.urls import redact_url, redact_urls_in

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MAX_WAIT_SECONDS = 60.0  # GitHub asks for "at least one minute" after a secondary rate limit
DEFAULT_TIMEOUT = 15.0
# A 5xx on a POST may have been applied; retrying it could post a comment or open a request twice.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_MAX_MESSAGE = 300


def sleep(seconds: float) -> None:
    """The pause between attempts (module-level so tests can patch it)."""
    time.sleep(seconds)


def header(headers: Mapping[str, Any] | None, name: str) -> str:
    """Case-insensitive header lookup over a requests or PyGithub (lower-cased) mapping."""
    if not headers:
        return ""
    lowered = name.lower()
    for key, value in headers.items():
        if str(key).lower() == lowered:
            return str(value)
    return ""


def is_rate_limited(status: int | None, headers: Mapping[str, Any] | None, message: str) -> bool:
    """429 anywhere; 403 when GitHub says it is a primary or secondary rate limit."""
    if status == 429:
        return True
    if status != 403:
        return False
    if header(headers, "retry-after") or header(headers, "x-ratelimit-remaining") == "0":
        return True
    lowered = message.lower()
    return "rate limit" in lowered or "abuse detection" in lowered


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    value = header(headers, "retry-after").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:  # Retry-After may also be an HTTP date
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(parsed.timestamp() - time.time(), 0.0)


def suggested_wait(
    status: int | None, headers: Mapping[str, Any] | None, attempt: int, backoff: float
) -> float:
    """What the forge asks for: Retry-After, else the rate-limit reset time, else a backoff."""
    after = _retry_after(headers)
    if after is not None:
        return after
    reset = header(headers, "x-ratelimit-reset") or header(headers, "ratelimit-reset")
    if header(headers, "x-ratelimit-remaining") == "0" and reset.isascii() and reset.isdigit():
        return max(int(reset) - time.time(), 0.0) + 1.0
    if status == 403:  # secondary limit without Retry-After: GitHub says wait at least a minute
        return 60.0
    return backoff * 2 ** (attempt - 1)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = MAX_ATTEMPTS
    max_wait: float = MAX_WAIT_SECONDS
    backoff: float = 1.0
    sleeper: Callable[[float], None] | None = None  # None: the module-level `sleep`

    def delay(
        self,
        attempt: int,
        status: int | None,
        headers: Mapping[str, Any] | None = None,
        message: str = "",
        *,
        idempotent: bool = True,
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when this failure is final."""
        if attempt >= self.attempts or status is None:
            return None
        if not is_rate_limited(status, headers, message) and not (status >= 500 and idempotent):
            return None
        wait = suggested_wait(status, headers, attempt, self.backoff)
        if wait > self.max_wait:
            log.warning(
                "HTTP %s asks to wait %.0f s, more than the %.0f s cap; giving up",
                status,
                wait,
                self.max_wait,
            )
            return None
        return wait

    def network_delay(self, attempt: int, *, idempotent: bool) -> float | None:
        """Connection errors and timeouts: retried like a 5xx."""
        if attempt >= self.attempts or not idempotent:
            return None
        return self.backoff * 2 ** (attempt - 1)

    def pause(self, seconds: float) -> None:
        (self.sleeper or sleep)(seconds)


class RetryingSession(requests.Session):
    """A requests session that retries 429/5xx itself (used under python-gitlab)."""

    def __init__(self, policy: RetryPolicy | None = None, label: str = "forge") -> None:
        super().__init__()
        self.policy = policy or RetryPolicy()
        self.label = label

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        idempotent = method.upper() in IDEMPOTENT_METHODS
        attempt = 1
        while True:
            try:
                response = super().request(method, url, *args, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                wait = self.policy.network_delay(attempt, idempotent=idempotent)
                if wait is None:
                    raise
                reason = type(exc).__name__
            else:
                wait = self.policy.delay(
                    attempt, response.status_code, response.headers, idempotent=idempotent
                )
                if wait is None:
                    return response
                reason = f"HTTP {response.status_code}"
                response.close()
            log.warning(
                "%s: %s %s got %s; retry %d of %d in %.1f s",
                self.label,
                method.upper(),
                _path(url),
                reason,
                attempt,
                self.policy.attempts - 1,
                wait,
            )
            self.policy.pause(wait)
            attempt += 1


def _path(url: str) -> str:
    """The URL without its query string (a query can carry private search terms) or userinfo."""
    return redact_url(url.split("?", 1)[0])


def one_line(text: str, secrets: Iterable[str] = ()) -> str:
    """A forge message fit for one error line: no secrets, no newlines, bounded length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = redact_urls_in(text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def http_error(
    forge: str,
    operation: str,
    status: int | None,
    message: str,
    *,
    headers: Mapping[str, Any] | None = None,
    secrets: Iterable[str] = (),
    hints: Mapping[int, str] | None = None,
) -> ForgeError:
    """The BotError for a failed call: auth (401/403), not found (404) or generic."""
    text = one_line(message, secrets) or "no message"
    line = f"{forge}: {operation} failed (HTTP {status}): {text}"
    if is_rate_limited(status, headers, message):
        wait = suggested_wait(status, headers, 1, 1.0)
        return ForgeError(f"{line} (rate limited; try again in {wait:.0f} s)")
    hint = (hints or {}).get(status or 0, "")
    if hint:
        line = f"{line} ({hint})"
    if status in (401, 403):
        return ForgeAuthError(line)
    if status == 404:
        return ForgeNotFoundError(line)
    return ForgeError(line)


def network_error(
    forge: str, operation: str, exc: BaseException, secrets: Iterable[str] = ()
) -> ForgeError:
    detail = one_line(str(exc), secrets)
    return ForgeError(
        f"{forge}: {operation} failed: cannot reach the server ({type(exc).__name__}: {detail})"
    )
