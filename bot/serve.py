"""`serve`: the webhook app under waitress, stopped gracefully on SIGTERM/SIGINT.

waitress's own `serve()` only stops on KeyboardInterrupt and then cancels requests in flight.
Here the event loop runs one tick at a time, so a signal (or another thread) can ask for a stop:
the listeners close first (no new connections), requests in flight get their answers, then the
app's workers finish the work already queued.
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

from bot.server import MAX_BODY, WEBHOOK_ROUTES

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.server import WebhookApp

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2  # how soon the loop notices a stop request
_SERVER = {"delivery_id": "", "platform": ""}  # server-wide log lines: no delivery


class HttpServer:
    """waitress on a loop we drive, so it can be stopped from a signal handler or a thread."""

    def __init__(self, app: WebhookApp, host: str, port: int, threads: int = 4) -> None:
        self._map: dict[int, Any] = {}
        self._server = create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=max(1, threads),
            # waitress answers 413 itself, before buffering a huge body; the app checks again.
            max_request_body_size=MAX_BODY,
            channel_timeout=60,
            ident="promotion-bot",
        )
        self._stop = threading.Event()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        listeners = [d for d in self._map.values() if isinstance(d, BaseWSGIServer)]
        return [(str(d.effective_host), int(d.effective_port)) for d in listeners]

    def serve_forever(self, grace: float = 10.0) -> None:
        while not self._stop.is_set():
            wasyncore.loop(timeout=TICK_SECONDS, map=self._map, use_poll=True, count=1)
        self._close(grace)

    def shutdown(self) -> None:
        """Ask the loop to stop; safe from a signal handler (a flag, then a byte down a pipe)."""
        self._stop.set()
        for listener in list(self._map.values()):
            if isinstance(listener, BaseWSGIServer):
                with contextlib.suppress(OSError):
                    listener.pull_trigger()  # wake the loop now rather than at the next tick

    def _close(self, grace: float) -> None:
        for listener in [d for d in self._map.values() if isinstance(d, BaseWSGIServer)]:
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


def run_server(
    settings: Settings,
    host: str,
    port: int,
    app: WebhookApp,
    *,
    threads: int = 4,
    stop_timeout: float = 60.0,
) -> None:
    """Serve until SIGTERM or SIGINT, then finish the work in hand and return."""
    server = HttpServer(app, host, port, threads=min(max(threads, 4), 8))
    log_route_warnings(settings, app)
    app.start()
    restore = _on_stop_signals(server.shutdown)
    listening = ", ".join(f"http://{h}:{p}" for h, p in server.addresses)
    log.info("promotion-bot webhook server listening on %s", listening, extra=_SERVER)
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
    for route, platform in WEBHOOK_ROUTES.items():
        extra = {**_SERVER, "platform": platform}
        if not app.allows(platform):
            if app.configured(platform):
                log.warning(
                    "%s_WEBHOOK_SECRET is set, but this bot serves %s: %s answers 404",
                    platform.upper(),
                    settings.platform,
                    route,
                    extra=extra,
                )
        elif not app.configured(platform):
            log.warning(
                "%s_WEBHOOK_SECRET is not set: %s refuses every delivery",
                platform.upper(),
                route,
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
