"""The webhook server under a bounded load from a second process on loopback.

2,000 deliveries from 50 concurrent senders, mostly chatter, every tenth a command, some
redelivered: no error, nothing lost, every command dispatched exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from bot.config.settings import Secret, Settings
from bot.intake.http_server import HttpServer
from bot.intake.wsgi import WebhookApp
from bot.threads.thread import CommentEvent

SECRET = "load-test-secret-not-real"
DELIVERIES = 2000
SENDERS = 50
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_two_thousand_deliveries_fifty_at_once_nothing_lost_nothing_twice() -> None:
    dispatched: Counter[str] = Counter()
    lock = threading.Lock()

    def dispatch(event: CommentEvent, _command: object) -> None:
        with lock:
            dispatched[event.comment_id] += 1

    app = WebhookApp(Settings(github_webhook_secret=Secret(SECRET)), dispatch, queue_size=5000)
    app.start()
    server = HttpServer(app, "127.0.0.1", 0, threads=8)
    port = server.addresses[0][1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sender = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.load_sender",
                str(port),
                str(DELIVERIES),
                str(SENDERS),
                SECRET,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        assert app.drain(60), "queued work was not finished"
        # the server still answers after the load
        health = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/healthz').status)",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert health.stdout.strip() == "200"
    finally:
        server.shutdown()
        thread.join(30)
        app.stop(30)

    result = json.loads(sender.stdout)
    print(f"\nload: {json.dumps(result | {'command_ids': len(result['command_ids'])})}")
    assert result["errors"] == []
    assert result["answered"] == result["sent"] == DELIVERIES
    assert set(result["statuses"]) <= {"200", "202"}, result["statuses"]
    assert set(dispatched) == set(result["command_ids"]), "a command was lost or invented"
    assert max(dispatched.values()) == 1, "a command was dispatched twice"
    assert result["statuses"]["202"] == len(result["command_ids"])
