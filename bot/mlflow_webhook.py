"""MLflow registry webhooks: champion alias changes made outside the bot (SPEC §7).

MLflow 3 (`mlflow/webhooks/delivery.py`) POSTs an envelope
`{"entity": "model_version_alias", "action": "created" | "deleted", "timestamp": <ISO 8601>,
"data": {"name": ..., "alias": ..., "version": "7"}}` (no `version` on `deleted`; the version is a
string) whenever an alias is set or removed through the tracking server. The bot's own
`/promote` and `/rollback` trigger it too, so a change is reported only when the bot's audit
record (or its in-flight intent) does not account for it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from bot.commands import format_command
from bot.errors import NotFoundError
from bot.events import PayloadError
from bot.models import Thread
from bot.outcome import Outcome
from bot.timestamps import parse_iso

if TYPE_CHECKING:
    from bot.context import Context

log = logging.getLogger(__name__)

ALIAS_ENTITY = "model_version_alias"
TEMPLATE = "answer_external_change.md.j2"
# An entry the bot recorded this long before MLflow's event still explains it: the worker may
# read the history after the bot has already moved on to a newer version.
OWN_CHANGE_WINDOW = timedelta(minutes=10)
_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")


@dataclass(frozen=True)
class AliasChange:
    model: str
    alias: str
    version: int | None  # None: the alias was deleted
    delivery_id: str = ""
    action: Literal["created", "deleted"] = "created"
    at: str = ""  # the envelope's timestamp (ISO 8601), "" if absent


def parse_alias_change(payload: object, delivery_id: str = "") -> AliasChange | None:
    """A model alias set or deleted, else None (other entities, prompts are `prompt_alias`)."""
    if not isinstance(payload, dict):
        raise PayloadError("missing or malformed payload (expected an object)")
    entity, action = payload.get("entity"), payload.get("action")
    if not isinstance(entity, str) or not isinstance(action, str):
        raise PayloadError("missing or malformed entity/action (expected strings)")
    if entity != ALIAS_ENTITY or action not in ("created", "deleted"):
        return None
    data = payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("missing or malformed data (expected an object)")
    name, alias = data.get("name"), data.get("alias")
    if not isinstance(name, str) or not name or not isinstance(alias, str) or not alias:
        raise PayloadError("missing or malformed data.name/data.alias (expected strings)")
    version = _version(data.get("version")) if action == "created" else None
    at = payload.get("timestamp")
    return AliasChange(
        model=name,
        alias=alias,
        version=version,
        delivery_id=delivery_id,
        action="created" if action == "created" else "deleted",
        at=at if isinstance(at, str) else "",
    )


def _version(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise PayloadError("missing or malformed data.version (expected a positive integer)")


def report_external_change(ctx: Context, change: AliasChange) -> Outcome:
    """Warn in the model's latest request thread about a champion move the bot did not make."""
    extra = {"delivery_id": change.delivery_id, "platform": "mlflow", "model": change.model}
    if change.model != ctx.model or change.alias != ctx.params.promotion.champion_alias:
        return Outcome("ignored", "not this bot's model or alias")
    if change.version is not None and _made_by_bot(ctx, change):
        log.info("alias change to v%s is the bot's own", change.version, extra=extra)
        return Outcome("ignored", "the bot's own change")
    thread = _latest_request(ctx, change.model)
    if thread is None:
        log.warning(
            "external %s change has no request thread to report to", change.alias, extra=extra
        )
        return Outcome("ignored", "no request thread")
    marker = f"<!-- promotion-bot:external delivery={_SAFE.sub('_', change.delivery_id) or '_'} -->"
    bot = ctx.forge.bot_username().lower()
    if change.delivery_id and any(
        c.author.lower() == bot and marker in c.body for c in ctx.forge.list_comments(thread)
    ):
        return Outcome("duplicate", "already reported")
    last = _last_recorded(ctx.registry.history(change.model))
    body = ctx.render(
        TEMPLATE,
        model=change.model,
        alias=change.alias,
        version=change.version,
        last=last,
        rollback_command=format_command("rollback", version=last["to"]) if last else "",
    )
    ctx.forge.post_comment(thread, f"{body.rstrip()}\n\n{marker}\n")
    log.warning("reported an external %s change in %s", change.alias, thread.url, extra=extra)
    return Outcome("reported", thread.url)


def _last_recorded(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest readable history entry, with the fields the template shows."""
    for entry in reversed(history):
        try:
            version = int(entry["to"])
        except (KeyError, TypeError, ValueError):
            continue
        return {"to": version, "actor": str(entry.get("actor", "")), "at": str(entry.get("at", ""))}
    return None


def _made_by_bot(ctx: Context, change: AliasChange) -> bool:
    # MLflow fires between the bot's intent record and its history entry, so check both.
    try:
        pending = ctx.registry.pending(change.model)
    except NotFoundError:
        return False
    if pending is not None and _same_version(pending.get("to"), change.version):
        return True
    history = ctx.registry.history(change.model)
    if history and _same_version(history[-1].get("to"), change.version):
        return True  # also a re-set to the version already recorded: nothing moved
    event_time = parse_iso(change.at) or datetime.now(timezone.utc)
    for entry in reversed(history):
        recorded = parse_iso(str(entry.get("at", "")))
        if recorded is None or event_time - recorded > OWN_CHANGE_WINDOW:
            break
        if _same_version(entry.get("to"), change.version):
            return True
    return False


def _same_version(recorded: Any, version: int | None) -> bool:
    try:
        return version is not None and int(recorded) == version
    except (TypeError, ValueError):
        return False


def _latest_request(ctx: Context, model: str) -> Thread | None:
    """The newest request the bot opened: a person's issue quoting a marker gets no report."""
    from bot.request import find_requests  # pydantic, jinja: kept out of the server's import

    found = find_requests(ctx, model, state="all")  # newest first
    return found[0] if found else None
