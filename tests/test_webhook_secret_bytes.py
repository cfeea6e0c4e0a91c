"""Webhook secrets are compared as exact bytes on every route, over real HTTP
(docs/security.md, "Webhook routes").

Before: the GitLab token and the secret were encoded with `errors="replace"`, so every character
outside latin-1 became `?` and a token of as many `?` passed for a Cyrillic secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import pytest

from bot.config.settings import Secret, Settings
from bot.webhook_auth import (
    WebhookAuthError,
    check_github,
    check_gitlab,
    check_mlflow,
    sign_github,
)
from tests import test_http_server
from tests.test_http_server import Served
from tests.webhook_fixtures import raw_webhook

serve = test_http_server.serve  # the fixture: waitress on loopback around the real WSGI app

# Non-ASCII secrets: Cyrillic, an emoji (4 UTF-8 bytes), and "à", whose UTF-8 ends in 0xA0 —
# a byte str.strip() would eat once the header is decoded as latin-1.
SECRETS = ["секрет-вебхука", "🔑-hook-secret-🔑", "voilà"]
PROJECT = "ml-team/soccer-model"  # the fixtures' project and repository


def _settings(secret: str) -> Settings:
    return Settings(
        gitlab_project=PROJECT,
        github_repository=PROJECT,
        gitlab_webhook_secret=Secret(secret),
        github_webhook_secret=Secret(secret),
        mlflow_webhook_secret=Secret(secret),
    )


def _replaced(secret: str) -> str:
    """The secret as the old code saw it: every character outside latin-1 became '?'."""
    return secret.encode("latin-1", errors="replace").decode("latin-1")


def _latin1_key_signature(secret: str, body: bytes) -> str:
    """Signed with the secret's latin-1 bytes ('?' for what latin-1 lacks) instead of UTF-8."""
    key = secret.encode("latin-1", errors="replace")
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _gitlab(served: Served, token: bytes) -> int:
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Note Hook",
        "Idempotency-Key": str(uuid.uuid4()),
        "X-Gitlab-Token": token,  # bytes: sent on the wire as they are
    }
    return served.post("/webhooks/gitlab", raw_webhook("gitlab_note_issue"), headers).status_code  # type: ignore[arg-type]


def _github(served: Served, signature: Callable[[bytes], str]) -> int:
    body = raw_webhook("github_issue_comment_pr")
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature(body),
    }
    return served.post("/webhooks/github", body, headers).status_code


def _mlflow(served: Served, signature: Callable[[str, str, str], str]) -> int:
    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": "soccer-match-outcome", "alias": "champion", "version": "3"},
        }
    )
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": signature(delivery, stamp, body),
    }
    return served.post("/webhooks/mlflow", body.encode(), headers).status_code


@pytest.mark.parametrize("secret", SECRETS)
def test_gitlab_token_must_be_the_secrets_exact_utf8_bytes(
    serve: Callable[..., Served], secret: str
) -> None:
    served = serve(_settings(secret))
    question_marks = _replaced(secret).encode("latin-1")
    assert _gitlab(served, question_marks) == 401  # the look-alike attack of the issue
    assert _gitlab(served, b"?" * len(secret.encode())) == 401
    assert _gitlab(served, secret.encode("utf-8")[:-1]) == 401
    assert _gitlab(served, secret.encode("utf-8") + b"x") == 401
    assert _gitlab(served, secret.encode("utf-8")) == 202
    assert served.app.drain(5)
    assert len(served.dispatch.calls) == 1


@pytest.mark.parametrize("secret", SECRETS)
def test_github_signature_with_a_non_ascii_secret(
    serve: Callable[..., Served], secret: str
) -> None:
    served = serve(_settings(secret))
    assert _github(served, lambda body: _latin1_key_signature(secret, body)) == 401
    assert _github(served, lambda body: sign_github(secret, body)) == 202
    assert served.app.drain(5)
    assert len(served.dispatch.calls) == 1


@pytest.mark.parametrize("secret", SECRETS)
def test_mlflow_signature_with_a_non_ascii_secret(
    serve: Callable[..., Served], secret: str
) -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature  # MLflow's own signer

    served = serve(_settings(secret))
    latin1 = secret.encode("latin-1", errors="replace").decode("utf-8", errors="replace")
    assert _mlflow(served, lambda d, t, b: _generate_hmac_signature(latin1, d, t, b)) == 401
    assert _mlflow(served, lambda d, t, b: _generate_hmac_signature(secret, d, t, b)) == 202
    assert served.app.drain(5)
    assert len(served.alias.calls) == 1


def test_a_header_that_cannot_be_raw_bytes_is_a_mismatch_not_a_crash() -> None:
    """WSGI headers are latin-1 str; a str outside latin-1 cannot have come off the wire."""
    secret = "секрет"
    with pytest.raises(WebhookAuthError, match="does not match"):
        check_gitlab(secret, secret)  # the secret as text, not as its UTF-8 bytes in latin-1
    with pytest.raises(WebhookAuthError, match="does not match"):
        check_github(secret, b"{}", "sha256=ж")
    with pytest.raises(WebhookAuthError, match="does not match"):
        check_mlflow(secret, b"{}", delivery_id="ж", timestamp="1", signature="v1,x", now=1)
    check_gitlab(secret, secret.encode().decode("latin-1"))  # as WSGI hands the right token over
