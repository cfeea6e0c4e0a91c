"""Comment commands (docs/design.md, "Commands"): a pure parser, comment text in,
Command | Usage | None out.

Grammar, checked against the FIRST NON-EMPTY line of a comment only (lines end at \\n, \\r\\n or
\\r; a line holding only spaces and tabs is empty):

    line     := indent ( "/" word | "@" username sp word ) args? trailing
    indent   := 0 to 3 spaces          (4 spaces or a tab make a Markdown code block)
    word     := promote | rollback | help        (ASCII, case-insensitive)
    args     := sp ( version | "previous" )   (rollback only; "previous" in any case)
    version  := ["v" | "V"] digits     (1 .. 2**31 - 1)
    sp       := one or more spaces or tabs; trailing := optional spaces or tabs

Decisions, all on the strict side because a champion change must never come from chatter:
- `/promote` and `/help` must stand alone on their line: `/promote now please`, `/help me` and
  `/promote-now` are ignored silently (people write "/promote is blocked by ..." in discussion).
  The reason goes on the following lines.
- `/rollback` with a missing or malformed version is clearly meant for the bot, so it gets a
  `Usage` answer instead of silence: `/rollback`, `/rollback abc`, `/rollback 7 8`, `/rollback 0`.
  `/rollback previous` names the champion before the current one, which the handler reads
  from the audit ledger.
- Only ASCII counts: fullwidth slashes, Cyrillic lookalikes, the Kelvin sign (which
  `re.IGNORECASE` would otherwise fold to "k"), zero-width characters and NUL bytes all make the
  line a non-command. Code blocks, quotes and inline code never match because the line must start
  with `/` or `@` after at most 3 spaces.
- The mention form needs the bot's username (compared case-insensitively); for a GitHub App login
  `name[bot]`, `@name` is accepted too, since that is how people mention an app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.threads.command_forms import format_command

CommandName = Literal["promote", "rollback", "help"]
CommandForm = Literal["slash", "mention"]

COMMANDS: tuple[CommandName, ...] = ("promote", "rollback", "help")
MAX_REASON = 2000
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class Command:
    name: CommandName
    version: int | None = None  # rollback only
    reason: str = ""  # the lines after the first, stripped, at most MAX_REASON characters
    form: CommandForm = "slash"
    previous: bool = False  # `/rollback previous`: the version comes from the ledger


@dataclass(frozen=True)
class Usage:
    """Looks like one of our commands but is malformed: the bot answers with usage."""

    name: str  # "rollback"
    problem: str  # Markdown, never echoes the commenter's text


_CONTENT = re.compile(r"[^ \t\r\n]")
_EOL = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(
    r" {0,3}(?:/|@(?P<user>[A-Za-z0-9_.\-\[\]]+)[ \t]+)(?P<word>[A-Za-z]+)(?P<rest>.*)",
    re.ASCII | re.DOTALL,
)
_VERSION = re.compile(r"[vV]?([0-9]+)", re.ASCII)
_BLANKS = " \t"


def parse_comment(body: str, bot_username: str = "") -> Command | Usage | None:
    """The command in `body`, a Usage answer for a malformed one, or None to ignore the comment."""
    if not isinstance(body, str):
        return None
    first = _CONTENT.search(body)
    if first is None:
        return None
    start = max(body.rfind("\n", 0, first.start()), body.rfind("\r", 0, first.start())) + 1
    eol = _EOL.search(body, first.start())
    line = body[start : eol.start()] if eol else body[start:]
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    form: CommandForm = "slash"
    if match.group("user") is not None:
        if not _is_bot(match.group("user"), bot_username):
            return None
        form = "mention"
    word = match.group("word").lower()
    rest = match.group("rest")
    if word not in COMMANDS or (rest and rest[0] not in _BLANKS):
        return None  # /promoted, /promote-now, /rollback7, /helpdesk
    args = rest.strip(_BLANKS)
    reason = _reason(body, eol.end() if eol else len(body))
    if word == "rollback":
        return _rollback(args, reason, form, bot_username)
    if args:
        return None  # strict: `/promote now please` is conversation, not a command
    return Command(name="promote" if word == "promote" else "help", reason=reason, form=form)


def _is_bot(mentioned: str, bot_username: str) -> bool:
    names = _bot_names(bot_username)
    return bool(names) and mentioned.lower() in names


def _bot_names(bot_username: str) -> set[str]:
    name = (bot_username or "").strip().lstrip("@").lower()
    if not name or not name.isascii():
        return set()
    names = {name}
    if name.endswith("[bot]") and len(name) > len("[bot]"):
        names.add(name[: -len("[bot]")])
    return names


def _reason(body: str, start: int) -> str:
    return body[start:].strip()[:MAX_REASON]


def _rollback(args: str, reason: str, form: CommandForm, bot_username: str) -> Command | Usage:
    example = format_command("rollback", version=7, mention=form == "mention", bot=bot_username)
    if not args:
        return Usage("rollback", f"a version (or `previous`) is required: `{example}`")
    if args.isascii() and args.lower() == "previous":
        return Command(name="rollback", reason=reason, form=form, previous=True)
    match = _VERSION.fullmatch(args)
    if match is None:
        return Usage(
            "rollback",
            f"the version must be one number, such as `7` or `v7`, or `previous`: `{example}`",
        )
    # Length first: int() of a huge digit string is slow and, past 4300 digits, an error.
    digits = match.group(1).lstrip("0")
    if not digits or len(digits) > len(str(MAX_VERSION)) or int(digits) > MAX_VERSION:
        return Usage("rollback", f"the version must be between 1 and {MAX_VERSION}: `{example}`")
    return Command(name="rollback", version=int(digits), reason=reason, form=form)


_ANY_MENTION = re.compile(r" {0,3}@([A-Za-z0-9_.\-\[\]]+)[ \t]")


def may_be_command(body: str) -> bool:
    """Could this comment be a command for *some* bot username? Network-free, for filtering.

    The webhook server and the handler use it to drop chatter before any forge client is built;
    the handler then decides for real with the bot's own username.
    """
    return _any_bot_command(body) is not None


def command_word(body: str) -> str:
    """ "promote", "rollback" or "help" for a comment `may_be_command` admits, else "" (labels)."""
    parsed = _any_bot_command(body)
    if parsed is None:
        return ""
    return parsed.name


def _any_bot_command(body: str) -> Command | Usage | None:
    first = next((line for line in _EOL.split(body) if line.strip(" \t")), "")
    mention = _ANY_MENTION.match(first)
    return parse_comment(body, mention.group(1) if mention else "")
