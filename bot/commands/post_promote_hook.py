"""`post_promote_hook`: tell serving about a champion change; failures are reported in the thread
(docs/design.md, "The change").
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from bot.urls import redact_url
from bot.webhook_auth import sign_github

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Promotion-Bot-Signature"


def call_hook(
    url: str,
    payload: dict[str, Any],
    secret: str = "",
    attempts: int = 3,
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """POST the change; None on success, else a short reason (no secret in it)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "promotion-bot"}
    if secret:
        # Signed as GitHub signs its webhooks, so a receiver can reuse a GitHub verifier.
        headers[SIGNATURE_HEADER] = sign_github(secret, body)
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(url, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}"
        else:
            if response.status_code < 300:
                return None
            problem = f"HTTP {response.status_code}"
            if 400 <= response.status_code < 500 and response.status_code != 429:
                break  # the hook refused the call: repeating it will not help
        log.warning(
            "post_promote_hook %s attempt %d/%d failed: %s",
            redact_url(url),
            attempt,
            attempts,
            problem,
        )
        if attempt < attempts:
            sleep(0.5 * 2 ** (attempt - 1))
    return problem
