"""Hidden HTML-comment markers the bot writes into bodies and comments, and reads back.

They survive Markdown rendering on both forges, so the thread itself carries the state:
- request:  <!-- promotion-bot:request model=m version=7 run=abc requested_by=dana kind=issue
                bot=0123456789ab -->  (`bot`: whose request, bot.config.identity; docs/design.md,
                "Markers")
- answer:   <!-- promotion-bot:answer comment=123 -->
- check:    - [ ] text <!-- check:metrics -->
- sections: <!-- promotion-bot:status -->...<!-- /promotion-bot:status -->
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REQUEST_RE = re.compile(r"<!--\s*promotion-bot:request\s+([^>]*?)\s*-->")
_ANSWER_RE = re.compile(r"<!--\s*promotion-bot:answer\s+comment=([^\s>]+)\s*-->")
_PAIR_RE = re.compile(r"([a-z_]+)=(\S+)")
_CHECK_RE = re.compile(
    r"^[ \t]*[-*+][ \t]+\[([ xX])\][^\n]*?<!--\s*check:([A-Za-z0-9_.-]+)\s*-->", re.MULTILINE
)
_SAFE_VALUE = re.compile(r"[^A-Za-z0-9_.:/@+-]")


def _clean(value: object) -> str:
    """Marker values are single tokens: anything else is replaced, so a marker cannot be forged."""
    return _SAFE_VALUE.sub("_", str(value)) or "_"


def marker_token(value: object) -> str:
    """`value` as a marker holds it: two models whose names read the same here are ambiguous."""
    return _clean(value)


def request_marker(**fields: object) -> str:
    pairs = " ".join(f"{key}={_clean(value)}" for key, value in fields.items() if value != "")
    return f"<!-- promotion-bot:request {pairs} -->"


def parse_request_marker(body: str) -> dict[str, str] | None:
    """The fields of the first request marker in `body`, or None if there is none."""
    match = _REQUEST_RE.search(body or "")
    if not match:
        return None
    return dict(_PAIR_RE.findall(match.group(1)))


@dataclass(frozen=True)
class RequestMarker:
    """A request marker as read back: where to look, never evidence (a description is editable).

    `problem` says why the marker cannot be used (a person edited it, or it was cut); then
    `version` is 0 and the request is answered as damaged, never acted on.
    """

    model: str
    version: int
    requested_by: str = ""
    problem: str = ""
    bot: str = ""  # the id of the bot that wrote it; "" in requests written before ids


_MAX_VERSION_DIGITS = 10


def read_request_marker(body: str) -> RequestMarker | None:
    """The first request marker in `body`, checked; None if there is none."""
    fields = parse_request_marker(body)
    if fields is None:
        return None
    model = fields.get("model", "")
    value = fields.get("version", "")
    # isdigit() alone accepts "²" and other digits int() refuses.
    readable = value.isascii() and value.isdigit() and len(value) <= _MAX_VERSION_DIGITS
    version = int(value) if readable else 0
    problem = ""
    if not model:
        problem = "it names no model"
    elif not value:
        problem = "it names no version"
    elif version <= 0:
        problem = "its version is not a version number"
    return RequestMarker(
        model=model,
        version=0 if problem else version,
        requested_by=fields.get("requested_by", ""),
        problem=problem,
        bot=fields.get("bot", ""),
    )


def answer_marker(comment_id: str) -> str:
    return f"<!-- promotion-bot:answer comment={_clean(comment_id)} -->"


def answered_comment_ids(bodies: list[str]) -> set[str]:
    """Ids of the comments already answered, from the bot's own comment bodies."""
    found: set[str] = set()
    for body in bodies:
        found.update(_ANSWER_RE.findall(body or ""))
    return found


def check_marker(item_id: str) -> str:
    return f"<!-- check:{_clean(item_id)} -->"


def read_ticks(body: str) -> dict[str, bool]:
    """check id -> ticked, from task-list items (`- [x]`, `- [X]`, `* [x]`) carrying a marker."""
    return {item: mark in "xX" for mark, item in _CHECK_RE.findall(body or "")}


def section(name: str, content: str) -> str:
    return f"<!-- promotion-bot:{name} -->\n{content.strip()}\n<!-- /promotion-bot:{name} -->"


def replace_section(body: str, name: str, content: str) -> str:
    """Replace the named section's content, or append the section if the body has none."""
    pattern = re.compile(
        rf"<!-- promotion-bot:{re.escape(name)} -->.*?<!-- /promotion-bot:{re.escape(name)} -->",
        re.DOTALL,
    )
    new = section(name, content)
    if pattern.search(body):
        return pattern.sub(lambda _m: new, body, count=1)
    return f"{body.rstrip()}\n\n{new}\n"


def read_section(body: str, name: str) -> str | None:
    """The content of a `section`, or None when the body has none."""
    tag = re.escape(name)
    pattern = rf"<!-- promotion-bot:{tag} -->\n?(.*?)\n?<!-- /promotion-bot:{tag} -->"
    match = re.search(pattern, body or "", re.DOTALL)
    return match.group(1).strip() if match else None


def approval_marker(version: int, username: str) -> str:
    """Display only: nothing reads it back. Approvals are the registry's (promotion.approvals),
    since anything posting as the bot's account could write this."""
    return f"<!-- promotion-bot:approval version={int(version)} by={_clean(username)} -->"
