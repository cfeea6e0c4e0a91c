"""Webhook authenticity checks, done on the raw body before anything parses it (docs/design.md,
"Webhooks"); and the same HMAC for the signed `post_promote_hook` call.

- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`.
- GitLab: no HMAC; `X-Gitlab-Token` carries the configured secret verbatim.
- MLflow 3 (`mlflow/webhooks/delivery.py`, Standard Webhooks style): `X-MLflow-Signature:
  v1,<base64 HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}")>`, with the id and the Unix
  timestamp (seconds) in `X-MLflow-Delivery-Id` and `X-MLflow-Timestamp`. The timestamp must be
  within 5 minutes of our clock, so a captured delivery cannot be replayed later.

Every comparison is constant-time on exact bytes: a header's raw bytes (WSGI hands headers over
decoded as latin-1, so `.encode("latin-1")` gives them back unchanged) against the secret's UTF-8
bytes. Nothing is replaced or normalised on either side, so no two different secrets compare
equal; a header str latin-1 cannot encode did not come off the wire and matches nothing. The
reasons raised are fit for a log line: they never contain a secret or a signature value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

GITHUB_PREFIX = "sha256="
MLFLOW_VERSION = "v1"
MLFLOW_TOLERANCE_SECONDS = 300


class WebhookAuthError(Exception):
    """The delivery is not authentic (→ 401). The message is safe to log."""


def header_bytes(value: str) -> bytes | None:
    """The raw bytes of a WSGI header value; None when `value` cannot have come off the wire."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _equal(expected: bytes, given: bytes | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given)


def sign_github(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return GITHUB_PREFIX + digest


def check_github(secret: str, body: bytes, header: str | None) -> None:
    if not secret:
        raise WebhookAuthError("no webhook secret configured")
    if not header:
        raise WebhookAuthError("missing X-Hub-Signature-256 header")
    expected = sign_github(secret, body).encode("ascii")
    given = header_bytes(header)
    # GitHub sends lowercase hex; accept uppercase too (bytes.lower() touches ASCII letters only).
    if not _equal(expected, None if given is None else given.lower()):
        raise WebhookAuthError("X-Hub-Signature-256 does not match the body")


def check_gitlab(secret: str, header: str | None) -> None:
    if not secret:
        raise WebhookAuthError("no webhook secret configured")
    if not header:
        raise WebhookAuthError("missing X-Gitlab-Token header")
    if not _equal(secret.encode("utf-8"), header_bytes(header)):
        raise WebhookAuthError("X-Gitlab-Token does not match the secret")


def sign_mlflow(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """What MLflow sends (its ids and timestamps are ASCII, so UTF-8 is their wire form)."""
    return _mlflow_signature(secret, delivery_id.encode(), timestamp.encode(), body).decode()


def _mlflow_signature(secret: str, delivery_id: bytes, timestamp: bytes, body: bytes) -> bytes:
    signed = delivery_id + b"." + timestamp + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return MLFLOW_VERSION.encode() + b"," + base64.b64encode(digest)


def check_mlflow(
    secret: str,
    body: bytes,
    *,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
    tolerance: int = MLFLOW_TOLERANCE_SECONDS,
) -> None:
    if not secret:
        raise WebhookAuthError("no webhook secret configured")
    if not signature:
        raise WebhookAuthError("missing X-MLflow-Signature header")
    if not delivery_id or not timestamp:
        raise WebhookAuthError("missing X-MLflow-Delivery-Id or X-MLflow-Timestamp header")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise WebhookAuthError("X-MLflow-Timestamp is not a Unix time in seconds")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise WebhookAuthError(f"X-MLflow-Timestamp is more than {tolerance} s from our clock")
    raw_id, raw_signature = header_bytes(delivery_id), header_bytes(signature)
    if raw_id is None or raw_signature is None:
        raise WebhookAuthError("X-MLflow-Signature does not match the delivery")
    # Signed over the id's bytes as they arrived, not over a re-encoding of them.
    expected = _mlflow_signature(secret, raw_id, timestamp.encode("ascii"), body)
    # Standard Webhooks allows several space-separated signatures (secret rotation).
    candidates = [part for part in raw_signature.split(b" ") if part]
    # Compare with every candidate (no early exit), so timing says nothing about which matched.
    matched = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matched):
        raise WebhookAuthError("X-MLflow-Signature does not match the delivery")
