"""Webhook signature and token checks (docs/design.md, "Webhooks"), against documented vectors
and MLflow's signer."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from bot.webhook_auth import (
    WebhookAuthError,
    check_github,
    check_gitlab,
    check_mlflow,
    sign_github,
    sign_mlflow,
)

# GitHub's documented test vector (docs: "Validating webhook deliveries").
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

MLFLOW_SECRET = "mlflow-hook-secret"
NOW = 1_750_000_000.0


def test_github_documented_vector_verifies() -> None:
    assert sign_github(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE
    check_github(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE)
    check_github(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE.upper().replace("SHA256=", "sha256="))


@pytest.mark.parametrize(
    ("secret", "body", "header", "reason"),
    [
        (GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE[:-1] + "0", "does not match"),
        (GITHUB_SECRET, b"Hello, World?", GITHUB_SIGNATURE, "does not match"),
        ("another secret", GITHUB_BODY, GITHUB_SIGNATURE, "does not match"),
        (GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE.removeprefix("sha256="), "does not match"),
        (GITHUB_SECRET, GITHUB_BODY, "sha1=" + "0" * 40, "does not match"),
        (GITHUB_SECRET, GITHUB_BODY, "sha256=ünïcödé", "does not match"),
        (GITHUB_SECRET, GITHUB_BODY, "", "missing"),
        (GITHUB_SECRET, GITHUB_BODY, None, "missing"),
        ("", GITHUB_BODY, GITHUB_SIGNATURE, "no webhook secret"),
    ],
)
def test_github_bad_signatures_fail(
    secret: str, body: bytes, header: str | None, reason: str
) -> None:
    with pytest.raises(WebhookAuthError, match=reason) as caught:
        check_github(secret, body, header)
    assert GITHUB_SECRET not in str(caught.value)
    assert GITHUB_SIGNATURE.removeprefix("sha256=") not in str(caught.value)


def test_gitlab_token_must_equal_the_secret() -> None:
    check_gitlab("gl-token-123", "gl-token-123")
    for header in ("gl-token-124", "gl-token-12", "GL-TOKEN-123", "", None, "gl-tökén"):
        with pytest.raises(WebhookAuthError) as caught:
            check_gitlab("gl-token-123", header)
        assert "gl-token-123" not in str(caught.value)
    with pytest.raises(WebhookAuthError, match="no webhook secret"):
        check_gitlab("", "")


def _reference_mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """Written out from MLflow's docs/source: v1,base64(HMAC-SHA256(id.timestamp.body))."""
    digest = hmac.new(
        secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_mlflow_signature_matches_the_reference_and_mlflows_own_signer() -> None:
    body = '{"entity": "model_version_alias", "action": "created", "data": {"name": "m"}}'
    expected = _reference_mlflow_signature(MLFLOW_SECRET, "d-1", "1750000000", body)
    assert sign_mlflow(MLFLOW_SECRET, "d-1", "1750000000", body.encode()) == expected
    delivery = pytest.importorskip("mlflow.webhooks.delivery")
    theirs = delivery._generate_hmac_signature(MLFLOW_SECRET, "d-1", "1750000000", body)
    check_mlflow(
        MLFLOW_SECRET,
        body.encode(),
        delivery_id="d-1",
        timestamp="1750000000",
        signature=theirs,
        now=NOW,
    )


def _mlflow(
    signature: str | None = None,
    *,
    body: bytes = b'{"x": 1}',
    delivery_id: str | None = "d-1",
    timestamp: str | None = str(int(NOW)),
    now: float = NOW,
) -> None:
    if signature is None:
        signature = sign_mlflow(MLFLOW_SECRET, delivery_id or "", timestamp or "", body)
    check_mlflow(
        MLFLOW_SECRET,
        body,
        delivery_id=delivery_id,
        timestamp=timestamp,
        signature=signature,
        now=now,
    )


def test_mlflow_valid_deliveries_pass() -> None:
    _mlflow()
    _mlflow(now=NOW + 299)  # delivered a little late
    _mlflow(now=NOW - 299)  # our clock a little behind
    good = sign_mlflow(MLFLOW_SECRET, "d-1", str(int(NOW)), b'{"x": 1}')
    _mlflow(f"v1,AAAA {good}")  # several signatures (secret rotation): one match is enough


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"now": NOW + 301}, "more than 300 s"),
        ({"now": NOW - 301}, "more than 300 s"),
        ({"signature": "v1,AAAA"}, "does not match"),
        ({"signature": "v2," + "A" * 44}, "does not match"),
        ({"signature": ""}, "missing X-MLflow-Signature"),
        ({"timestamp": "soon", "signature": "v1,x"}, "not a Unix time"),
        ({"timestamp": None, "signature": "v1,x"}, "missing"),
        ({"delivery_id": None, "signature": "v1,x"}, "missing"),
    ],
)
def test_mlflow_bad_deliveries_fail(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(WebhookAuthError, match=reason):
        _mlflow(**kwargs)  # type: ignore[arg-type]


def test_mlflow_signature_binds_the_delivery_id_timestamp_and_body() -> None:
    signature = sign_mlflow(MLFLOW_SECRET, "d-1", str(int(NOW)), b'{"x": 1}')
    with pytest.raises(WebhookAuthError):
        _mlflow(signature, delivery_id="d-2")
    with pytest.raises(WebhookAuthError):
        _mlflow(signature, timestamp=str(int(NOW) + 1))
    with pytest.raises(WebhookAuthError):
        _mlflow(signature, body=b'{"x": 2}')
