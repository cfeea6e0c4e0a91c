"""`serve`'s GET /: the status page, behind HTTP basic auth, built at most every few seconds
(docs/operations.md, "The status page"; docs/security.md, "The status page").

`serve` faces the internet for webhooks, so the page is off unless PROMOTION_BOT_STATUS_PASSWORD
is set. The password alone decides (any user name): it is compared as bytes, in constant time.
The page is built in the request thread from the registry and the forge; one build serves every
request for `ttl` seconds, and requests that arrive during a build wait for it instead of
starting their own, so the route cannot be used to hammer MLflow or the forge.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "private, no-store"),
)
CHALLENGE = ("WWW-Authenticate", 'Basic realm="promotion-bot", charset="UTF-8"')
TTL_SECONDS = 5.0


def authorized(environ: Mapping[str, Any], password: bytes) -> bool:
    """Whether the request's basic credentials carry `password` (any user name)."""
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not password:
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, colon, given = decoded.partition(b":")
    return bool(colon) and hmac.compare_digest(given, password)


class CachedPage:
    """The page's HTML, rebuilt when older than `ttl` seconds; one build at a time."""

    def __init__(
        self,
        build: Callable[[], str],
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._build = build
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._page: bytes = b""
        self._built_at = float("-inf")
        self.builds = 0

    def get(self) -> bytes:
        with self._lock:
            if self._clock() - self._built_at >= self._ttl:
                self._page = self._build().encode("utf-8")
                self._built_at = self._clock()
                self.builds += 1
            return self._page
