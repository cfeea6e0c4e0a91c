"""The real `serve` stack (bot.intake.http_server.run_server: waitress, the WSGI app, its worker
pool) on 127.0.0.1, with a no-op dispatch, for the webhook load test. Runs in its own process so
the load generator does not share its interpreter lock.

Usage: python bench/webhook_server.py PORT STATS.json [--bare]  (GITHUB_WEBHOOK_SECRET: env)

`--bare`: the same server, threads and worker pool, but every POST is answered 202 at once,
without the app (no verify, parse or queue): the floor the bot's answer times are compared with.

Stops on SIGTERM like `promotion-bot serve`; then writes the time the app itself spent on each
request (verify, parse, filter, queue: what happens before the answer) to STATS.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

from bot.config.settings import Secret, Settings
from bot.intake.http_server import run_server
from bot.intake.wsgi import StartResponse, WebhookApp
from bot.logs import configure
from bot.threads.thread import CommentEvent


class TimedApp:
    """The WebhookApp, with the time spent in its WSGI call recorded (run_server needs its
    start/stop/configured methods, so this forwards everything else)."""

    def __init__(self, app: WebhookApp, bare: bool = False) -> None:
        self._app = app
        self._bare = bare
        self.seconds: list[float] = []
        self.dispatched = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            if self._bare and environ.get("REQUEST_METHOD") == "POST":
                start_response("202 Accepted", [("Content-Type", "text/plain")])
                return [b"accepted\n"]
            return self._app(environ, start_response)
        finally:
            self.seconds.append(time.perf_counter() - started)


def main() -> None:
    port, stats_path = int(sys.argv[1]), sys.argv[2]
    bare = "--bare" in sys.argv[3:]
    configure(0, "text")  # as `promotion-bot serve` without -v: warnings and errors only
    settings = Settings(github_webhook_secret=Secret(os.environ["GITHUB_WEBHOOK_SECRET"]))
    timed: TimedApp

    def dispatch(_event: CommentEvent, _command: object) -> None:
        timed.dispatched += 1

    timed = TimedApp(WebhookApp(settings, dispatch), bare=bare)
    run_server(settings, "127.0.0.1", port, timed)  # type: ignore[arg-type]
    with open(stats_path, "w", encoding="utf-8") as out:
        json.dump({"app_seconds": timed.seconds, "dispatched": timed.dispatched}, out)


if __name__ == "__main__":
    main()
