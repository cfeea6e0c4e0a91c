"""`serve`'s GET /: the status page, behind HTTP basic auth, built in the background
(docs/operations.md, "The status page"; docs/security.md, "The status page").

`serve` faces the internet for webhooks, so the page is off unless PROMOTION_BOT_STATUS_PASSWORD
is set. The password alone decides (any user name): it is compared as bytes, in constant time,
and a client that keeps sending wrong ones is slowed down (`FailedLogins`): a few tries, then
one every few seconds, answered 429 with Retry-After in between.

A viewer never waits for a build (`BackgroundPage`): the page is built on a thread of its own,
one build at a time, and each request gets the last page built, at once. A request that finds
it older than `ttl` seconds asks for a new build, so however often the page is asked for, the
registry and the forge are read at most once per `ttl`. Before the very first build is done,
the answer is a short page that reloads itself (a `<meta>` refresh: the page runs no script).
After a build, the same thread does the slower upkeep (`serve` walks the ledger chains,
bot.reports.chain_walks), so a walk never holds up a viewer either.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

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
REFRESH_SECONDS = 2
PLACEHOLDER = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>promotion-bot: models</title></head>\n"
    "<body><p>{message}</p></body></html>\n"
)
BUILDING = "The status page is being built; this page reloads in a moment."
NOT_BUILT = "The status page could not be built yet (see the bot's log); trying again."


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


# --- failed attempts -------------------------------------------------------------------------
BURST = 5  # wrong passwords a client may send at once
REFILL_SECONDS = 20.0  # then one more per this long
MAX_CLIENTS = 10_000  # clients remembered; the longest untouched is forgotten first


def client_of(environ: Mapping[str, Any]) -> str:
    """Who is trying: the peer's address (behind a proxy, the proxy's: limit there too), an
    IPv6 address by its /64, the block one machine is usually given."""
    address = str(environ.get("REMOTE_ADDR", ""))
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class FailedLogins:
    """A small token bucket of wrong passwords per client: `burst` at once, then one per
    `refill` seconds. A client whose bucket is empty is not asked for its password at all
    (a right one would tell a guesser it is right), until a token is back."""

    def __init__(
        self,
        burst: int = BURST,
        refill: float = REFILL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._burst = float(burst)
        self._refill = refill
        self._clock = clock
        self._max = max_clients
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def wait(self, client: str) -> float:
        """Seconds before `client` may try a password again (0: now)."""
        with self._lock:
            tokens = self._tokens(client)
        return 0.0 if tokens >= 1 else (1 - tokens) * self._refill

    def failed(self, client: str) -> None:
        """`client` sent a wrong password."""
        with self._lock:
            tokens = max(0.0, self._tokens(client) - 1)
            self._buckets[client] = (tokens, self._clock())
            self._buckets.move_to_end(client)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)

    def _tokens(self, client: str) -> float:
        found = self._buckets.get(client)
        if found is None:
            return self._burst
        tokens, when = found
        return min(self._burst, tokens + (self._clock() - when) / self._refill)


def retry_after(seconds: float) -> tuple[str, str]:
    return ("Retry-After", str(max(1, math.ceil(seconds))))


# --- the page, built in the background -------------------------------------------------------
class BackgroundPage:
    """The page's HTML, built on a thread of its own when the last one is older than `ttl`
    seconds; `get` never waits for a build. `upkeep` runs on the same thread after each build
    (it is told when to stop early); when it answers something true, the page is built again
    at once, so what it found shows."""

    def __init__(
        self,
        build: Callable[[], str],
        upkeep: Callable[[Callable[[], bool]], object] | None = None,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._build = build
        self._upkeep = upkeep
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._page: bytes = b""
        self._failed = False
        self._built_at = float("-inf")
        self._asked = False  # a build is asked for or running
        self.builds = 0

    def start(self) -> None:
        """Start the thread and the first build (once)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="status-page", daemon=True)
            self._asked = True
        self._wake.set()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def get(self) -> bytes:
        """The last page built, or the page that says it is being built; a new build is asked
        for when it is older than `ttl`."""
        self.start()
        with self._lock:
            page, stale = self._page, self._clock() - self._built_at >= self._ttl
            if stale and not self._asked:
                self._asked = True
                self._wake.set()
            failed = self._failed
        if page:
            return page
        message = NOT_BUILT if failed else BUILDING
        return PLACEHOLDER.format(message=message).encode("utf-8")

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return
            self._build_once()
            if self._upkeep is not None and not self._stopping.is_set() and self._upkept():
                self._build_once()  # what the upkeep found shows without waiting for a viewer

    def _upkept(self) -> bool:
        """Run the upkeep; whether it changed what the page shows (a true answer)."""
        assert self._upkeep is not None
        try:
            return bool(self._upkeep(self._stopping.is_set))
        except Exception:  # the next build's upkeep tries again
            log.exception("status page: upkeep failed")
            return False

    def _build_once(self) -> None:
        started = self._clock()  # a page is as old as what it read, not as its end
        try:
            page = self._build().encode("utf-8")
        except Exception:  # the last page stays; the next request after `ttl` asks again
            log.exception("status page: the build failed")
            page = b""
        with self._lock:
            if page:
                self._page = page
                self.builds += 1
            self._failed = not page
            self._built_at = started
            self._asked = False
