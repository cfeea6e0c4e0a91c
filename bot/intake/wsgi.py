"""`serve`'s WSGI application: verify, parse, bind, de-duplicate, queue, answer.

A request thread only checks and queues, then answers (forges retry slow hooks and GitLab
disables hooks that keep failing); worker threads do the work after the answer has gone out.
Checks for a POST, in order: the route is one this bot serves (404: the comment route of the
configured forge, and MLflow's), a secret is configured for the route (403), the body is at most
1 MiB (413), the signature or token is valid (401), the JSON parses and has the fields the event
needs (400), the event comes from the configured project and needs work (200), it was not
taken already (200 duplicate), the queue has room (503). A job that still fails after its
retries is forgotten, so a manual redelivery is taken again (after `on_give_up`, where `serve`
answers a command the registry or lock service was down for). What differs per source is one
entry of `bot.intake.sources`. GET /healthz, /readyz and /metrics say how the app is. Plain
WSGI: Flask would cost a second of import for a handful of routes. See docs/design.md,
"Webhooks" and "Metrics and readiness".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from bot.commands.admission import Ignored, admit
from bot.commands.external_change import AliasChange
from bot.commands.grammar import Command, Usage
from bot.forges.project_binding import Binding
from bot.intake.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.intake.metrics import MeteredRun, Metrics
from bot.intake.payloads import PayloadError
from bot.intake.sources import BY_ROUTE, SOURCES, Headers, Source, decode
from bot.intake.status_route import (
    CHALLENGE,
    HEADERS,
    BackgroundPage,
    FailedLogins,
    authorized,
    client_of,
    retry_after,
)
from bot.intake.workers import RETRY_DELAYS, Job, KeyMemory, RecentKeys, WorkerPool
from bot.threads.thread import CommentEvent
from bot.webhook_auth import WebhookAuthError

if TYPE_CHECKING:
    from bot.config.settings import Settings
    from bot.intake.readiness import Readiness

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
RETRY_AFTER_SECONDS = 30

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    text: bytes | None = None  # sent as is (GET /metrics) instead of `body` as JSON
    content_type: str = "application/json"


GiveUp = Callable[[CommentEvent, Sequence[BaseException]], object]


class WebhookApp:
    """The WSGI callable; owns the worker pool and the de-duplication memory.

    `allowed_platforms` names the forges whose comment route is open (None: every route); the
    MLflow route is always open. A comment from another forge would be read against this forge's
    issue numbers and user ids, so its route answers 404 whatever secret is set. `binding` (the
    forge and project `serve` works for) answers a comment from any other project 200 ignored
    before it is queued; the handler checks the same again for every delivery path.
    """

    def __init__(
        self,
        settings: Settings,
        dispatch: Callable[[CommentEvent, Command | Usage], object],
        on_alias_change: Callable[[AliasChange], object] | None = None,
        *,
        champion_alias: str | Iterable[str] = "champion",
        workers: int = 2,
        queue_size: int = 1000,
        dedup_size: int = 10_000,
        allowed_platforms: Iterable[str] | None = None,
        binding: Binding | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], object] = time.sleep,
        seen: KeyMemory | None = None,
        on_give_up: GiveUp | None = None,
        readiness: Readiness | None = None,
        status_page: Callable[[], str] | None = None,
        status_upkeep: Callable[[Callable[[], bool]], object] | None = None,
        failed_logins: FailedLogins | None = None,
    ) -> None:
        self._binding = binding
        # GET /: the status page, only with a password (bot.intake.status_route): built in the
        # background (`status_upkeep` after each build), wrong passwords slowed down.
        self._status_password = settings.status_password.value.encode("utf-8")
        self._page = (
            BackgroundPage(status_page, status_upkeep)
            if status_page and self._status_password
            else None
        )
        self._failed_logins = failed_logins or FailedLogins()
        self._secrets = {source.name: source.secret(settings) for source in SOURCES}
        names = {source.name for source in SOURCES}
        always = {source.name for source in SOURCES if not source.forge}
        allowed = names if allowed_platforms is None else names & set(allowed_platforms)
        self._allowed = frozenset(allowed | always)
        self._dispatch = dispatch
        self._on_alias_change = on_alias_change
        aliases = (champion_alias,) if isinstance(champion_alias, str) else champion_alias
        self._champion_aliases = frozenset(aliases)  # one per model: they may differ
        self.pool = WorkerPool(workers, queue_size, retry_delays=retry_delays, sleep=sleep)
        self.seen: KeyMemory = RecentKeys(dedup_size) if seen is None else seen
        # After a comment job's last attempt: `serve` answers there when a service was down.
        self._on_give_up = on_give_up
        self._readiness = readiness
        self.metrics = Metrics(lambda: self.pool.queued)

    # --- lifecycle (the worker pool) --------------------------------------------------------------
    def start(self) -> None:
        self.pool.start()
        if self._page is not None:
            self._page.start()  # the first build, before the first viewer

    def stop(self, timeout: float = 30.0) -> bool:
        """Graceful: new deliveries get 503, queued work is finished. True if all of it was."""
        if self._page is not None:
            self._page.stop(min(timeout, 2.0))  # it only reads: a daemon thread
        return self.pool.stop(timeout)

    def drain(self, timeout: float = 30.0) -> bool:
        return self.pool.drain(timeout)

    def configured(self, platform: str) -> bool:
        return bool(self._secrets.get(platform))

    def allows(self, platform: str) -> bool:
        return platform in self._allowed

    # --- WSGI -------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self._route(environ)
        except Exception:
            source = BY_ROUTE.get(environ.get("PATH_INFO", ""))
            log.exception("unexpected error answering a request", extra=_extra(source, environ))
            response = Response(500, {"error": "internal error"})
            if source is not None:
                self.metrics.delivery(source.name, 500, response.body)
        payload = response.text if response.text is not None else json.dumps(response.body).encode()
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(payload))),
            *response.headers,
        ]
        status = HTTPStatus(response.status)
        start_response(f"{status.value} {status.phrase}", headers)
        return [payload]

    def _route(self, environ: dict[str, Any]) -> Response:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        status = {"/healthz": self._health, "/readyz": self._ready, "/metrics": self._metrics}
        if path in status:
            if method != "GET":
                return Response(405, {"error": "method not allowed"}, (("Allow", "GET"),))
            return status[path]()
        if path == "/" and self._page is not None:
            return self._status_page(method, environ)
        source = BY_ROUTE.get(path.rstrip("/"))
        if source is None:
            return Response(404, {"error": "not found"})
        response = self._delivery(source, method, environ)
        self.metrics.delivery(source.name, response.status, response.body)
        return response

    def _delivery(self, source: Source, method: str, environ: dict[str, Any]) -> Response:
        if source.name not in self._allowed:
            log.warning(
                "refused: this bot takes no %s deliveries",
                source.name,
                extra=_extra(source, environ),
            )
            return Response(
                404, {"error": f"not found: this bot takes no {source.name} deliveries"}
            )
        if method != "POST":
            return Response(405, {"error": "method not allowed"}, (("Allow", "POST"),))
        return self._webhook(source, environ)

    def _health(self) -> Response:
        queued = self.pool.queued
        if self.pool.healthy:
            return Response(200, {"status": "ok", "queued": queued})
        return Response(503, {"status": "unavailable", "queued": queued})

    def _ready(self) -> Response:
        """Components by name only: an error message could carry a URL (see the log instead)."""
        checks = self._readiness.report() if self._readiness is not None else {}
        if not self.pool.healthy:
            checks["workers"] = False
        failed = sorted(name for name, ok in checks.items() if not ok)
        if failed:
            return Response(503, {"status": "unready", "failed": failed, "checks": checks})
        return Response(200, {"status": "ready", "checks": checks})

    def _metrics(self) -> Response:
        return Response(200, {}, text=self.metrics.render(), content_type=METRICS_CONTENT_TYPE)

    def _status_page(self, method: str, environ: dict[str, Any]) -> Response:
        assert self._page is not None
        if method != "GET":
            return Response(405, {"error": "method not allowed"}, (("Allow", "GET"),))
        client = client_of(environ)
        wait = self._failed_logins.wait(client)
        if wait > 0:  # not even a right password is looked at until then
            return Response(429, {"error": "too many wrong passwords"}, (retry_after(wait),))
        if not authorized(environ, self._status_password):
            if environ.get("HTTP_AUTHORIZATION"):  # a browser's first ask carries none
                self._failed_logins.failed(client)
            return Response(401, {"error": "unauthorized"}, (CHALLENGE,))
        page = self._page.get()
        return Response(200, {}, HEADERS, text=page, content_type="text/html; charset=utf-8")

    # --- one delivery -----------------------------------------------------------------------------
    def _webhook(self, source: Source, environ: dict[str, Any]) -> Response:
        received = time.monotonic()
        extra = _extra(source, environ)
        secret = self._secrets[source.name]
        if not secret:
            log.warning("refused: no %s webhook secret configured", source.name, extra=extra)
            return Response(403, {"error": "webhook secret not configured"})
        body = _read_body(environ)
        if body is None:
            log.warning("refused: body over %d bytes", MAX_BODY, extra=extra)
            return Response(413, {"error": f"body over {MAX_BODY} bytes"})
        headers = Headers(environ)
        try:
            source.verify(secret, body, headers)
        except WebhookAuthError as exc:
            log.warning("rejected: %s", exc, extra=extra)
            return Response(401, {"error": str(exc)})
        try:
            payload = decode(body, environ.get("CONTENT_TYPE", ""))
            item = source.parse(payload, headers, headers.get(source.delivery_header))
        except (PayloadError, ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, PayloadError) else "malformed JSON body"
            log.warning("bad payload: %s", reason, extra=extra)
            return Response(400, {"error": reason})
        if isinstance(item, CommentEvent):
            return self._comment(item, extra, received)
        if isinstance(item, AliasChange):
            return self._alias_change(item, extra, received)
        return _ignored("event needs no work", extra)

    def _comment(self, event: CommentEvent, extra: dict[str, str], received: float) -> Response:
        admitted = admit(event)  # the one reading of the text: it travels with the job
        if isinstance(admitted, Ignored):
            return _ignored(admitted.reason, extra)
        # After the check above: a group webhook's chatter from other projects is routine,
        # a command-shaped comment from one is worth a warning.
        unbound = self._binding.refusal(event) if self._binding is not None else None
        if unbound is not None:
            log.warning("ignored: %s", unbound, extra=extra)
            return Response(200, {"status": "ignored", "reason": unbound})
        keys = [f"{event.platform}:comment:{event.comment_id}"]
        if event.delivery_id:
            keys.append(f"{event.platform}:delivery:{event.delivery_id}")
        what = f"comment {event.comment_id} on {event.thread_kind} #{event.thread_number}"
        command = admitted.name
        dispatch = self._dispatch
        job = MeteredRun(
            self.metrics, event.platform, received, lambda: dispatch(event, admitted), command
        )

        def give_up() -> None:
            self.metrics.command(command, "failed")
            if self._on_give_up is not None:
                self._on_give_up(event, tuple(job.failures))

        # One thread's commands one at a time, without holding the workers other models need.
        lane = f"{event.platform}:{event.thread_kind}:{event.thread_number}"
        return self._enqueue(Job(what, job.run, extra, lane=lane), keys, give_up)

    def _alias_change(
        self, change: AliasChange, extra: dict[str, str], received: float
    ) -> Response:
        if change.alias not in self._champion_aliases:
            return _ignored(f"alias {change.alias!r} is not the champion alias", extra)
        if self._on_alias_change is None:
            return _ignored("alias changes are not reported", extra)
        report = self._on_alias_change
        what = f"{change.alias} change of {change.model}"
        keys = [f"mlflow:delivery:{change.delivery_id}"] if change.delivery_id else []
        job = MeteredRun(self.metrics, "mlflow", received, lambda: report(change))
        return self._enqueue(Job(what, job.run, extra, lane=f"mlflow:{change.model}"), keys)

    def _enqueue(
        self, job: Job, keys: list[str], give_up: Callable[[], object] | None = None
    ) -> Response:
        def forget() -> None:
            # Failed for good (after the pool's retries). Answer first, if there is an answer to
            # give, then forget the delivery, so a redelivery is taken (and finds the answer).
            try:
                if give_up is not None:
                    give_up()
            finally:
                self.seen.release(keys)

        job = replace(job, on_give_up=forget)
        if not self.seen.claim(keys):
            log.info("duplicate: %s", job.what, extra=job.extra)
            return Response(200, {"status": "duplicate"})
        if not self.pool.submit(job):
            self.seen.release(keys)  # the forge's retry must not look like a duplicate
            log.error("busy: cannot queue %s", job.what, extra=job.extra)
            return Response(
                503, {"error": "busy, retry later"}, (("Retry-After", str(RETRY_AFTER_SECONDS)),)
            )
        log.info("queued %s", job.what, extra=job.extra)
        return Response(202, {"status": "accepted"})


def _extra(source: Source | None, environ: dict[str, Any]) -> dict[str, str]:
    if source is None:
        return {"delivery_id": "", "platform": ""}
    delivery = source.delivery_id(Headers(environ))
    return {"delivery_id": delivery[:100], "platform": source.name}


def _ignored(reason: str, extra: dict[str, str]) -> Response:
    log.info("ignored: %s", reason, extra=extra)
    return Response(200, {"status": "ignored", "reason": reason})


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The raw body, or None when it is over MAX_BODY (decided without reading it if possible)."""
    raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
    if raw_length.isascii() and raw_length.isdigit():
        length = int(raw_length)
        if length > MAX_BODY:
            return None
    elif environ.get("wsgi.input_terminated"):
        length = MAX_BODY + 1  # no usable length, but the server marks the end of the body
    else:
        length = 0  # PEP 3333: without a length, reading could block forever
    # Read one byte past the limit, whatever the header said, so a lying length is caught too.
    body = environ["wsgi.input"].read(min(length, MAX_BODY + 1)) if length else b""
    return None if len(body) > MAX_BODY else body
