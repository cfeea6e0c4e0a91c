"""Faults around a champion change: the registry failing, the forge failing, the hook failing.

Every test asserts the end state: the aliases in the real registry, the history entries, the
pending intent, and the answers in the thread. Registry faults come from `RegistryProxy`, a tiny
HTTP server between the bot and the real MLflow server that forwards every call except the ones
a rule picks, which it answers 503, drops, or leaves hanging.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from bot.commands.handler import handle_comment
from bot.commands.post_promote_hook import SIGNATURE_HEADER
from bot.config.settings import Secret
from bot.errors import ForgeError, RegistryError
from bot.forges.local import LocalForge
from bot.intake.poll import poll
from bot.ledger.entry import LedgerEntry
from bot.registry.records import Outcome
from bot.runtime.context import Context
from bot.threads.markers import answered_comment_ids
from bot.threads.thread import Thread
from bot.webhook_auth import sign_github
from tests.mlflow_server import free_port
from tests.promotion_env import Playground, make_context

API = "/api/2.0/mlflow"
HOOK_SECRET = "hook-secret-7f3a9c"
REGISTRY_PASSWORD = "reg-pw-51c3e0"  # in the proxy's URI: must never reach a thread


# --- a registry that fails on demand ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fault:
    status: int = 503  # 0: drop the connection without an answer
    hang: float = 0.0  # seconds to stall before failing (a registry that stopped answering)
    retry_after: str = ""


@dataclasses.dataclass(frozen=True)
class Call:
    method: str
    path: str
    payload: dict[str, Any]


Rule = Callable[[Call], "Fault | None"]


class RegistryProxy:
    """Forwards to the real MLflow server; `rule(call)` returning a Fault fails that call."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rule: Rule = lambda call: None
        self.calls: list[Call] = []
        self.failed: list[Call] = []
        self.released = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://bot:{REGISTRY_PASSWORD}@127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                payload = json.loads(raw) if raw else dict(parse_qsl(parts.query))
                call = Call(self.command, parts.path, payload)
                proxy.calls.append(call)
                fault = proxy.rule(call)
                if fault is not None:
                    proxy.failed.append(call)
                    self._fail(fault)
                    return
                answer = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=raw,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                    timeout=30,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def _fail(self, fault: Fault) -> None:
                if fault.hang:
                    proxy.released.wait(fault.hang)
                if not fault.status:
                    self.close_connection = True  # no answer at all
                    return
                body = json.dumps(
                    {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "registry overloaded"}
                ).encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if fault.retry_after:
                    self.send_header("Retry-After", fault.retry_after)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        return Handler


def on(method: str, endpoint: str, fault: Fault, **match: str) -> Rule:
    """Fail `method API/endpoint` calls whose payload has the `match` values (e.g. key=...)."""

    def rule(call: Call) -> Fault | None:
        if call.method != method or call.path != f"{API}/{endpoint}":
            return None
        if any(call.payload.get(key) != value for key, value in match.items()):
            return None
        return fault

    return rule


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def proxy(tracking_uri: str) -> Iterator[RegistryProxy]:
    stub = RegistryProxy(tracking_uri)
    yield stub
    stub.close()


def via(pg: Playground, tracking_uri: str, **settings: Any) -> Context:
    """The playground's forge and params, with another registry URI or settings."""
    changed = dataclasses.replace(pg.ctx.settings, tracking_uri=tracking_uri, **settings)
    return Context(settings=changed, params=pg.ctx.params)


def command(pg: Playground, thread: Thread, author: str, body: str) -> Any:
    posted = pg.forge.add_comment(thread.number, author, body)
    return pg.event(thread, posted)


def timed(func: Callable[[], Outcome]) -> tuple[Outcome | BaseException, float]:
    """Run `func` in a thread and give up waiting after 30 s (a hang must fail, not block)."""
    box: list[Outcome | BaseException] = []

    def target() -> None:
        try:
            box.append(func())
        except BaseException as exc:
            box.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout=30)
    elapsed = time.monotonic() - started
    assert box, f"the handler still runs after {elapsed:.0f}s"
    return box[0], elapsed


def answer_ids(pg: Playground, thread: Thread) -> list[str]:
    bodies = [a.body for a in pg.answers(thread)]
    assert not any(REGISTRY_PASSWORD in body for body in bodies)
    return [cid for body in bodies for cid in answered_comment_ids([body])]


def assert_promoted_once(pg: Playground, thread: Thread, version: int, comment_id: str) -> None:
    assert pg.champion() == version
    [entry] = pg.history()
    assert (entry["to"], entry["comment_id"]) == (version, comment_id)
    assert pg.ctx.registry.pending(pg.model) is None
    [recorded] = pg.ledger()
    assert (recorded.to_version, recorded.comment_id) == (version, comment_id)
    assert "RUNNING" not in [run.status for run in pg.ledger_runs()]
    changed = [a for a in pg.answers(thread) if f"comment={comment_id} " in a.body]
    assert len(changed) == 1 and "is now `champion`" in changed[0].body
    assert answer_ids(pg, thread).count(comment_id) == 1


# --- 1. the registry fails during /promote ---------------------------------------------------

BEFORE_THE_ALIAS = {
    "version read 503": on("GET", "model-versions/get", Fault()),
    "intent write 503": on("POST", "registered-models/set-tag", Fault(), key="promotion.pending"),
    "ledger run 503": on("POST", "runs/create", Fault()),
    "ledger entry 503": on("POST", "runs/log-batch", Fault()),
    "alias write 503": on("POST", "registered-models/alias", Fault()),
    "alias write dropped": on("POST", "registered-models/alias", Fault(status=0)),
    "alias write hangs": on("POST", "registered-models/alias", Fault(status=0, hang=5)),
}


@pytest.mark.parametrize("fault", list(BEFORE_THE_ALIAS))
def test_registry_failing_before_the_alias_moves_is_answered_and_can_be_repeated(
    pg: Playground, proxy: RegistryProxy, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # the hanging write gives up fast
    version = pg.train(0.6)
    thread = pg.open_request(version)
    proxy.rule = BEFORE_THE_ALIAS[fault]
    event = command(pg, thread, "maria", "/promote")

    outcome, elapsed = timed(lambda: handle_comment(via(pg, proxy.url), event))

    assert proxy.failed, "the fault was never hit"
    assert isinstance(outcome, Outcome) and outcome.status == "error", outcome
    assert elapsed < 30
    assert pg.champion() is None and pg.history() == []
    [answer] = pg.answers(thread)
    assert f"comment={event.comment_id} " in answer.body
    assert "failed" in answer.body and "unchanged" in answer.body
    assert "Comment the command again" in answer.body
    # The thread says what failed, not where it is or what the server said (the log does).
    assert "the model registry failed" in answer.body
    assert f":{urlsplit(proxy.url).port}" not in answer.body and "127.0.0.1" not in answer.body
    assert REGISTRY_PASSWORD not in answer.body

    # The registry is back and the approver repeats the command: one change, one record.
    proxy.rule = lambda call: None
    again = command(pg, thread, "maria", "/promote")
    assert handle_comment(via(pg, proxy.url), again).status == "changed"
    assert_promoted_once(pg, thread, version, again.comment_id)
    assert answer_ids(pg, thread) == [event.comment_id, again.comment_id]
    # The first attempt's run, when its entry landed, was abandoned by the bot (signed) when the
    # repeat found its alias unmoved: out of the chain, so `verify` passes.
    attempts = [LedgerEntry.from_run(run, pg.ctx.keys) for run in pg.ledger_runs()]
    failed = [entry for entry in attempts if entry is not None and not entry.finished]
    assert all(entry.status == "FAILED" and entry.abandoned for entry in failed)
    assert len(failed) == (1 if fault.startswith("alias") else 0)
    assert pg.cli("verify").exit_code == 0


def test_retry_after_from_a_failing_registry_does_not_stall_the_bot(
    pg: Playground, proxy: RegistryProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bot's own retry settings (the suite's are shorter), against a 503 asking for 10 min.
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    version = pg.train(0.6)
    thread = pg.open_request(version)
    proxy.rule = on("POST", "registered-models/alias", Fault(retry_after="600"))
    event = command(pg, thread, "maria", "/promote")

    outcome, elapsed = timed(lambda: handle_comment(via(pg, proxy.url), event))

    assert isinstance(outcome, Outcome) and outcome.status == "error", outcome
    assert len(proxy.failed) == 3, "MLflow retries a 503 twice (the bot's bounded default)"
    assert elapsed < 10
    assert pg.champion() is None and pg.history() == []
    assert "Comment the command again" in pg.answers(thread)[0].body


AFTER_THE_ALIAS = {
    "version tag 503": on("POST", "model-versions/set-tag", Fault()),
    "history write 503": on("POST", "registered-models/set-tag", Fault(), key="promotion.history"),
    "history write dropped": on(
        "POST", "registered-models/set-tag", Fault(status=0), key="promotion.history"
    ),
    "ledger commit 503": on("POST", "runs/update", Fault()),
}


@pytest.mark.parametrize("fault", list(AFTER_THE_ALIAS))
def test_registry_failing_after_the_alias_moved_is_finished_by_the_next_pass(
    pg: Playground, proxy: RegistryProxy, fault: str
) -> None:
    version = pg.train(0.6)
    thread = pg.open_request(version)
    proxy.rule = AFTER_THE_ALIAS[fault]
    event = command(pg, thread, "maria", "/promote")

    outcome, _elapsed = timed(lambda: handle_comment(via(pg, proxy.url), event))

    # The alias moved: no "unchanged" answer; the intent says what to finish.
    assert isinstance(outcome, RegistryError), outcome
    assert pg.champion() == version
    assert pg.answers(thread) == []
    pending = pg.ctx.registry.pending(pg.model)
    recorded = [h["comment_id"] for h in pg.history()]
    assert recorded == [event.comment_id] or (pending and pending.comment_id) == event.comment_id

    proxy.rule = lambda call: None
    result = poll(via(pg, proxy.url))
    assert [(cid, o.status) for cid, o in result.outcomes] == [(event.comment_id, "recovered")]
    assert_promoted_once(pg, thread, version, event.comment_id)
    assert pg.thread(thread).state == "closed"


def test_registry_unreachable_from_the_start_claims_nothing_and_poll_catches_up(
    pg: Playground,
) -> None:
    version = pg.train(0.6)
    thread = pg.open_request(version)
    event = command(pg, thread, "maria", "/promote")
    down = via(pg, f"http://alice:pw-9d1e@127.0.0.1:{free_port()}")

    outcome, elapsed = timed(lambda: handle_comment(down, event))

    # It cannot read the intent or the history, so it cannot tell what already happened: it
    # answers nothing rather than something possibly false, and fails loudly.
    assert isinstance(outcome, RegistryError), outcome
    assert "unreachable" in str(outcome) and "pw-9d1e" not in str(outcome)
    assert elapsed < 30
    assert pg.answers(thread) == []
    assert pg.champion() is None and pg.history() == []
    # `poll` with the registry still down: the command is answered "not carried out, repeat
    # it" once (docs/design.md, "When a service is down"), and the run fails.
    failed = poll(down)
    assert len(failed.failures) == 1 and failed.outcomes == []
    assert "answered: repeat the command" in failed.failures[0]
    assert "unreachable" in " ".join(
        failed.check_failures
    )  # the champion check: the poll fails too
    [answer] = pg.answers(thread)
    assert "was not carried out" in answer.body and "pw-9d1e" not in answer.body

    assert poll(pg.ctx).outcomes == []  # answered: the registry back, nothing is redone
    again = command(pg, thread, "maria", "/promote")
    result = poll(pg.ctx)
    assert [o.status for _cid, o in result.outcomes] == ["changed"]
    assert_promoted_once(pg, thread, version, again.comment_id)


# --- 2. the forge fails on the answer after the change ---------------------------------------


def flaky_post(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[str]:
    """LocalForge.post_comment fails its first `failures` calls as a forge at its limit would."""
    real = LocalForge.post_comment
    seen: list[str] = []

    def post(self: LocalForge, thread: Thread, body: str, **options: Any) -> Any:
        seen.append(body)
        if len(seen) <= failures:
            raise ForgeError("local forge: 429 Too Many Requests (rate limited)")
        return real(self, thread, body, **options)

    monkeypatch.setattr(LocalForge, "post_comment", post)
    return seen


@pytest.mark.parametrize("failures", [1, 99], ids=["one-429", "forge-down"])
def test_forge_failing_on_the_answer_keeps_the_change_and_answers_on_the_next_pass(
    pg: Playground, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    version = pg.train(0.58)
    thread = pg.open_request(version)
    event = command(pg, thread, "olga", "/promote\nBetter logloss.")
    posts = flaky_post(monkeypatch, failures)

    with pytest.raises(ForgeError):
        handle_comment(pg.ctx, event)

    # Not a word claiming the champion is unchanged: the change stands and is recorded.
    assert len(posts) == 1 and "is now `champion`" in posts[0]
    assert pg.champion() == version
    assert [h["to"] for h in pg.history()] == [first, version]
    assert pg.ctx.registry.pending(pg.model) is None
    assert pg.answers(thread) == []

    monkeypatch.undo()
    result = poll(pg.ctx)
    assert [(cid, o.status) for cid, o in result.outcomes] == [(event.comment_id, "recovered")]
    assert [h["to"] for h in pg.history()] == [first, version]
    [answer] = pg.answers(thread)
    assert f"comment={event.comment_id} " in answer.body and f"from | v{first}" in answer.body
    assert "unchanged" not in answer.body
    assert handle_comment(pg.ctx, event).status == "duplicate"
    assert poll(pg.ctx).outcomes == []


def test_forge_failing_on_a_refusal_does_not_turn_it_into_an_error_answer(
    pg: Playground, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = pg.open_request(pg.train(0.6))
    pg.forge.close(thread)
    event = command(pg, thread, "maria", "/promote")
    flaky_post(monkeypatch, failures=1)

    with pytest.raises(ForgeError):
        handle_comment(pg.ctx, event)
    assert pg.answers(thread) == []

    monkeypatch.undo()
    assert handle_comment(pg.ctx, event).status == "refused"
    [answer] = pg.answers(thread)
    assert "refused" in answer.body and "this request is closed" in answer.body
    assert pg.champion() is None and pg.history() == []


def test_forge_failing_on_the_request_status_still_answers_once(
    pg: Playground, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = pg.train(0.6)
    thread = pg.open_request(version)

    def down(self: LocalForge, *args: Any) -> None:
        raise ForgeError("local forge: 502 Bad Gateway")

    monkeypatch.setattr(LocalForge, "update_body", down)
    monkeypatch.setattr(LocalForge, "close", down)
    monkeypatch.setattr(LocalForge, "update_and_close", down)  # the one write of both
    outcome, event = pg.comment(thread, "maria", "/promote")

    assert outcome.status == "changed"
    assert_promoted_once(pg, thread, version, event.comment_id)
    assert pg.thread(thread).state == "open"  # the follow-ups failed, the change stands


# --- 4. post_promote_hook --------------------------------------------------------------------


class HookServer:
    """A serving endpoint on 127.0.0.1 that records POSTs and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.received.append((dict(self.headers.items()), raw))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/deploy"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The hook's pauses between attempts, recorded instead of slept."""
    from bot.commands import post_promote_hook

    recorded: list[float] = []
    monkeypatch.setattr(
        post_promote_hook,
        "call_hook",
        functools.partial(post_promote_hook.call_hook, sleep=recorded.append),
    )
    return recorded


def hooked(pg: Playground, url: str, secret: str = HOOK_SECRET) -> Context:
    promotion = {"post_promote_hook": url}
    ctx = make_context(pg.ctx.settings.tracking_uri, pg.model, pg.root, promotion)
    settings = dataclasses.replace(ctx.settings, hook_secret=Secret(secret))
    return Context(settings=settings, params=ctx.params)


def test_a_change_left_in_flight_gets_its_hook_from_the_pass_that_finishes_it(
    pg: Playground, proxy: RegistryProxy, waits: list[float]
) -> None:
    """The history write fails after the alias moved: that pass never reached its answer, so
    never the hook. The next pass finishes the intent, answers, and calls the hook once; a later
    pass over the same comment calls it no more."""
    hook = HookServer()
    try:
        version = pg.train(0.6)
        thread = pg.open_request(version)
        proxy.rule = AFTER_THE_ALIAS["history write 503"]
        event = command(pg, thread, "maria", "/promote")
        through_proxy = hooked(pg, hook.url)
        through_proxy.settings = dataclasses.replace(through_proxy.settings, tracking_uri=proxy.url)
        failed, _elapsed = timed(lambda: handle_comment(through_proxy, event))
        assert isinstance(failed, RegistryError) and hook.received == []
        assert pg.champion() == version and pg.answers(thread) == []

        proxy.rule = lambda call: None
        assert handle_comment(hooked(pg, hook.url), event).status == "recovered"
        assert handle_comment(hooked(pg, hook.url), event).status == "duplicate"
    finally:
        hook.close()
    [(_headers, raw)] = hook.received
    assert json.loads(raw)["to"] == version


@pytest.mark.parametrize("secret", [HOOK_SECRET, ""], ids=["signed", "unsigned"])
def test_hook_receives_one_signed_post_per_change(
    pg: Playground, waits: list[float], secret: str
) -> None:
    hook = HookServer()
    try:
        first = pg.train(0.6)
        pg.comment(pg.open_request(first), "maria", "/promote")
        version = pg.train(0.58)
        thread = pg.open_request(version)
        event = command(pg, thread, "olga", "/promote")
        assert handle_comment(hooked(pg, hook.url, secret), event).status == "changed"
    finally:
        hook.close()

    [(headers, raw)] = hook.received
    assert json.loads(raw) == {
        "model": pg.model,
        "from": first,
        "to": version,
        "actor": "olga",
        "action": "promote",
        "request_url": thread.url,
    }
    assert headers["Content-Type"] == "application/json"
    if secret:
        assert headers[SIGNATURE_HEADER] == sign_github(HOOK_SECRET, raw)
    else:
        assert SIGNATURE_HEADER not in headers
    assert waits == []
    assert answer_ids(pg, thread) == [event.comment_id]
    assert len(pg.answers(thread)) == 1  # no failure report


@pytest.mark.parametrize(
    ("status", "attempts", "problem"),
    [(500, 3, "HTTP 500"), (404, 1, "HTTP 404"), (None, 3, "ConnectionError")],
    ids=["hook-500", "hook-404", "hook-down"],
)
def test_failing_hook_is_reported_and_the_change_stands(
    pg: Playground, waits: list[float], status: int | None, attempts: int, problem: str
) -> None:
    hook = HookServer(status or 200)
    url = hook.url if status else f"http://127.0.0.1:{free_port()}/deploy"
    try:
        version = pg.train(0.6)
        thread = pg.open_request(version)
        event = command(pg, thread, "maria", "/promote")
        outcome = handle_comment(hooked(pg, url), event)
    finally:
        hook.close()

    assert outcome.status == "changed"
    assert len(hook.received) == (attempts if status else 0)
    assert waits == [0.5, 1.0][: attempts - 1]
    assert_promoted_once(pg, thread, version, event.comment_id)
    answer, report = pg.answers(thread)
    assert "is now `champion`" in answer.body
    assert "post_promote_hook" in report.body and problem in report.body
    assert "stands" in report.body and HOOK_SECRET not in report.body
    assert answered_comment_ids([report.body]) == set()  # the one answer is the change's
    assert handle_comment(hooked(pg, url), event).status == "duplicate"
    assert len(hook.received) == (attempts if status else 0)  # no second call on a redelivery
