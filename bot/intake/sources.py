"""The webhook sources `serve` takes, as one table: a source is its route, the setting that holds
its secret, the header that names a delivery, how a delivery is verified and how its payload is
parsed. A new source is one more entry; nothing else asks which source a delivery came from.

Verification reads the raw body and headers before anything parses them (`bot.webhook_auth`).
See docs/design.md, "Webhooks".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from bot import webhook_auth
from bot.commands.external_change import AliasChange
from bot.intake.payloads import (
    PayloadError,
    github_comment_event,
    gitlab_comment_event,
    parse_alias_change,
)
from bot.threads.thread import CommentEvent

if TYPE_CHECKING:
    from bot.config.settings import Settings

Event = CommentEvent | AliasChange


class Headers:
    """Request headers by their HTTP name, from a WSGI environ."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str) -> str:
        key = "HTTP_" + name.upper().replace("-", "_")
        # HTTP's optional whitespace only: str.strip() would also eat bytes such as 0xA0 (the
        # last byte of "à" in UTF-8) off a secret's raw bytes, decoded as latin-1.
        return str(self._environ.get(key, "")).strip(" \t")


@dataclass(frozen=True)
class Source:
    """One webhook source. A forge's name is its platform (`PROMOTION_BOT_PLATFORM`)."""

    name: str
    route: str
    variable: str  # the environment variable holding its secret, named in warnings
    secret: Callable[[Settings], str]
    delivery_header: str  # names a delivery, the same on the source's own retries
    verify: Callable[[str, bytes, Headers], None]  # raises WebhookAuthError
    parse: Callable[[object, Headers, str], Event | None]  # payload, headers, delivery id
    forge: bool = True  # False: taken whatever forge the bot serves
    log_header: str = ""  # names a delivery in the logs when `delivery_header` is missing

    def delivery_id(self, headers: Headers) -> str:
        found = headers.get(self.delivery_header)
        return found or (headers.get(self.log_header) if self.log_header else "")


def _verify_gitlab(secret: str, _body: bytes, headers: Headers) -> None:
    webhook_auth.check_gitlab(secret, headers.get("X-Gitlab-Token"))


def _verify_github(secret: str, body: bytes, headers: Headers) -> None:
    webhook_auth.check_github(secret, body, headers.get("X-Hub-Signature-256"))


def _verify_mlflow(secret: str, body: bytes, headers: Headers) -> None:
    webhook_auth.check_mlflow(
        secret,
        body,
        delivery_id=headers.get("X-MLflow-Delivery-Id"),
        timestamp=headers.get("X-MLflow-Timestamp"),
        signature=headers.get("X-MLflow-Signature"),
    )


def _parse_gitlab(payload: object, headers: Headers, delivery: str) -> Event | None:
    event = headers.get("X-Gitlab-Event")
    if not event:
        raise PayloadError("missing X-Gitlab-Event header")
    return gitlab_comment_event(event, payload, delivery)


def _parse_github(payload: object, headers: Headers, delivery: str) -> Event | None:
    event = headers.get("X-GitHub-Event")
    if not event:
        raise PayloadError("missing X-GitHub-Event header")
    return github_comment_event(event, payload, delivery)


def _parse_mlflow(payload: object, _headers: Headers, delivery: str) -> Event | None:
    return parse_alias_change(payload, delivery)


SOURCES: tuple[Source, ...] = (
    Source(
        name="gitlab",
        route="/webhooks/gitlab",
        variable="GITLAB_WEBHOOK_SECRET",
        secret=lambda settings: settings.gitlab_webhook_secret.value,
        delivery_header="Idempotency-Key",  # the same on GitLab's retries and manual resends
        verify=_verify_gitlab,
        parse=_parse_gitlab,
        log_header="X-Gitlab-Webhook-UUID",
    ),
    Source(
        name="github",
        route="/webhooks/github",
        variable="GITHUB_WEBHOOK_SECRET",
        secret=lambda settings: settings.github_webhook_secret.value,
        delivery_header="X-GitHub-Delivery",  # the same on redeliveries
        verify=_verify_github,
        parse=_parse_github,
    ),
    Source(
        name="mlflow",
        route="/webhooks/mlflow",
        variable="MLFLOW_WEBHOOK_SECRET",
        secret=lambda settings: settings.mlflow_webhook_secret.value,
        delivery_header="X-MLflow-Delivery-Id",  # the same on MLflow's HTTP retries
        verify=_verify_mlflow,
        parse=_parse_mlflow,
        forge=False,  # the registry's own events: open whatever forge the bot serves
    ),
)
BY_ROUTE = {source.route: source for source in SOURCES}


def decode(body: bytes, content_type: str) -> object:
    """JSON, or GitHub's other content type: a form with the JSON in its `payload` field."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8"), max_num_fields=10)
        if "payload" not in fields:
            raise PayloadError("form body without a payload field")
        return json.loads(fields["payload"][0])
    return json.loads(body.decode("utf-8"))
