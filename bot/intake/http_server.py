"""`serve`'s HTTP server: the webhook app under waitress, stopped gracefully on SIGTERM/SIGINT.

waitress's own `serve()` only stops on KeyboardInterrupt and then cancels requests in flight.
Here the event loop runs one tick at a time, so a signal (or another thread) can ask for a stop:
the listeners close first (no new connections), requests in flight get their answers, then the
app's workers finish the work already queued.

Driving the loop also bounds what a client that never authenticates can hold. waitress reads a
whole request before the app sees it, so the secret cannot be checked early; its own
`channel_timeout` only counts silence (a byte every few seconds defeats it) and past
`connection_limit` it stops accepting, /healthz included. So between ticks a sweep closes every
connection that has not delivered a whole request within REQUEST_DEADLINE seconds, and, when
more than MAX_CONNECTIONS are open, the ones that have waited longest: a new connection always
finds room, and a request that arrives whole (every forge's does) is never the one closed.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

from bot.errors import ConfigError
from bot.intake.sources import SOURCES
from bot.intake.wsgi import MAX_BODY

if TYPE_CHECKING:
    from bot.config.settings import Settings
    from bot.intake.wsgi import WebhookApp

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2  # how soon the loop notices a stop request
REQUEST_DEADLINE = 10.0  # seconds for a whole request (headers and body); forges take ms
MAX_CONNECTIONS = 200  # open at once after a sweep; the longest-waiting ones are closed
SWEEP_SECONDS = 0.25
MAX_HEADERS = 64 * 1024  # forges send a few KiB of headers
REPORT_SECONDS = 60.0  # at most one log line a minute about closed connections
_SERVER = {"delivery_id": "", "platform": ""}  # server-wide log lines: no delivery


class _Channel(HTTPChannel):
    """waitress's connection, knowing since when it has been waiting for a whole request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_since = time.monotonic()

    def received(self, data: bytes) -> bool:
        taken = bool(super().received(data))
        if self.request is None:  # every byte so far made whole requests: a new wait begins
            self.waiting_since = time.monotonic()
        return taken


class HttpServer:
    """waitress on a loop we drive, so it can be stopped from a signal handler or a thread."""

    def __init__(
        self,
        app: WebhookApp,
        host: str,
        port: int,
        threads: int = 4,
        *,
        request_deadline: float = REQUEST_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._map: dict[int, Any] = {}
        self._server = create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=max(1, threads),
            # waitress answers 413 itself, before buffering a huge body; the app checks again.
            # It refuses a body *at* the limit, so the limit is one byte past ours.
            max_request_body_size=MAX_BODY + 1,
            max_request_header_size=MAX_HEADERS,
            channel_timeout=request_deadline,
            # The hard cap between two sweeps; the sweep keeps it from ever being reached.
            connection_limit=max_connections + 100,
            ident="promotion-bot",
        )
        for listener in self._listeners():
            listener.channel_class = _Channel
        self._deadline = request_deadline
        self._max_connections = max_connections
        self._next_sweep = 0.0
        self._closed = 0  # connections closed since the last report
        self._reported = -REPORT_SECONDS
        self._stop = threading.Event()

    def _listeners(self) -> list[BaseWSGIServer]:
        return [d for d in self._map.values() if isinstance(d, BaseWSGIServer)]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(str(d.effective_host), int(d.effective_port)) for d in self._listeners()]

    def serve_forever(self, grace: float = 10.0) -> None:
        while not self._stop.is_set():
            wasyncore.loop(timeout=TICK_SECONDS, map=self._map, use_poll=True, count=1)
            now = time.monotonic()
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_SECONDS
                self._report(now, self.sweep(now))
        self._close(grace)

    def sweep(self, now: float) -> int:
        """Close overdue connections, then the longest-waiting past MAX_CONNECTIONS; how many."""
        channels = [d for d in self._map.values() if isinstance(d, _Channel) and not d.will_close]
        waiting = [c for c in channels if not c.requests]  # not being answered right now
        closing = [c for c in waiting if now - c.waiting_since > self._deadline]
        excess = len(channels) - len(closing) - self._max_connections
        if excess > 0:
            rest = sorted((c for c in waiting if c not in closing), key=lambda c: c.waiting_since)
            closing += rest[:excess]
        for channel in closing:
            channel.will_close = True  # the loop closes it on its next pass (waitress's way)
        return len(closing)

    def _report(self, now: float, closed: int) -> None:
        self._closed += closed
        if self._closed and now - self._reported >= REPORT_SECONDS:
            log.warning(
                "closed %d connection(s) that sent no whole request within %g s, or waited "
                "longest while over %d were open",
                self._closed,
                self._deadline,
                self._max_connections,
                extra=_SERVER,
            )
            self._closed, self._reported = 0, now

    def shutdown(self) -> None:
        """Ask the loop to stop; safe from a signal handler (a flag, then a byte down a pipe)."""
        self._stop.set()
        for listener in self._listeners():
            with contextlib.suppress(OSError):
                listener.pull_trigger()  # wake the loop now rather than at the next tick

    def _close(self, grace: float) -> None:
        for listener in self._listeners():
            # Only the listening socket: BaseWSGIServer.close() would also close the trigger
            # that request threads use to wake the loop for their answers.
            wasyncore.dispatcher.close(listener)
        deadline = time.monotonic() + grace
        while self._busy() and time.monotonic() < deadline:
            wasyncore.loop(timeout=0.05, map=self._map, use_poll=True, count=1)
        if self._busy():
            log.warning("closing with requests still in flight after %.0f s", grace, extra=_SERVER)
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._map, ignore_all=True)

    def _busy(self) -> bool:
        return any(
            isinstance(d, HTTPChannel) and (d.requests or d.total_outbufs_len)
            for d in list(self._map.values())
        )


def listen(app: WebhookApp, host: str, port: int, threads: int = 4) -> HttpServer:
    """The server bound to host:port, or a ConfigError saying why it cannot be."""
    try:
        return HttpServer(app, host, port, threads=threads)
    except ValueError:  # waitress: a host it cannot parse or resolve
        raise ConfigError(f"--host {host!r}: not a host name or address this machine has") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {base_url(host, port)}: {reason}") from None


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(
    settings: Settings,
    host: str,
    port: int,
    app: WebhookApp,
    *,
    threads: int = 4,
    stop_timeout: float = 60.0,
    announce: Callable[[list[str]], object] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then finish the work in hand and return.

    `announce` gets the URLs listened on, once they are bound (a busy port fails before it).
    """
    server = listen(app, host, port, threads=min(max(threads, 4), 8))
    log_route_warnings(settings, app)
    app.start()
    restore = _on_stop_signals(server.shutdown)
    urls = [base_url(h, p) for h, p in server.addresses]
    log.info("promotion-bot webhook server listening on %s", ", ".join(urls), extra=_SERVER)
    if announce is not None:
        announce(urls)
    try:
        server.serve_forever()
    finally:
        restore()
        log.info("stopping: finishing the queued work (up to %.0f s)", stop_timeout, extra=_SERVER)
        if not app.stop(stop_timeout):
            log.warning("stopped before all queued work was finished", extra=_SERVER)
        log.info("stopped", extra=_SERVER)


def log_route_warnings(settings: Settings, app: WebhookApp) -> None:
    """Say at start-up which routes will refuse everything, and which secrets are set in vain."""
    for source in SOURCES:
        extra = {**_SERVER, "platform": source.name}
        if not app.allows(source.name):
            if app.configured(source.name):
                log.warning(
                    "%s is set, but this bot serves %s: %s answers 404",
                    source.variable,
                    settings.platform,
                    source.route,
                    extra=extra,
                )
        elif not app.configured(source.name):
            log.warning(
                "%s is not set: %s refuses every delivery",
                source.variable,
                source.route,
                extra=extra,
            )


def _on_stop_signals(stop: Callable[[], None]) -> Callable[[], None]:
    """Route SIGTERM and SIGINT to `stop`; returns a function putting the old handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals can only be handled in the main thread (tests)

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop()  # a flag and a wake-up byte: nothing that takes a lock

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
