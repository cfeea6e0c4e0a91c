"""Comment commands (docs/design.md, "Commands"): a pure parser, comment text in,
Command | Usage | None out. `bot.commands.admission` calls it once per delivered comment.

Grammar, checked against the FIRST NON-EMPTY line of a comment only (lines end at \\n, \\r\\n or
\\r; a line holding only spaces and tabs is empty):

    line     := indent ( "/" word | "@" username sp word ) args? trailing
    indent   := 0 to 3 spaces          (4 spaces or a tab make a Markdown code block)
    word     := promote | rollback | help        (ASCII, case-insensitive)
    args     := sp ( version | "previous" )   (rollback only; "previous" in any case)
    version  := ["v" | "V"] digits     (1 .. 2**31 - 1)
    sp       := one or more spaces or tabs; trailing := optional spaces or tabs

Decisions, all on the strict side because a champion change must never come from chatter:
- `/promote` and `/help` must stand alone on their line, the reason on the following lines. A
  line that starts with the command word and goes on (`/promote please`, `/help me`,
  `/promote is blocked by ...`) is never a command, but it is answered with usage: silence left
  people waiting, and the answer changes nothing. `/promote-now` and `/promoted` are other words,
  ignored silently.
- `/rollback` with a missing or malformed version is clearly meant for the bot, so it gets a
  `Usage` answer instead of silence: `/rollback`, `/rollback abc`, `/rollback 7 8`, `/rollback 0`.
  `/rollback previous` names the champion before the current one, which the handler reads
  from the audit ledger.
- Only ASCII counts: fullwidth slashes, Cyrillic lookalikes, the Kelvin sign (which
  `re.IGNORECASE` would otherwise fold to "k"), zero-width characters and NUL bytes all make the
  line a non-command. Code blocks, quotes and inline code never match because the line must start
  with `/` or `@` after at most 3 spaces.
- The mention form needs the bot's username (compared case-insensitively); for a GitHub App login
  `name[bot]`, `@name` is accepted too, since that is how people mention an app. `read_comment`
  reads a mention of any name and keeps the name (`to`), so the text is read once before the
  bot's name is known (the webhook's answer path has no network); `addressed_to` then decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
    # The username a mention names, as typed ("" for the slash form): where the command was
    # sent, not what it asks, so it takes no part in equality.
    to: str = field(default="", compare=False)


@dataclass(frozen=True)
class Usage:
    """Looks like one of our commands but is malformed: the bot answers with usage."""

    name: str  # the command word: "rollback", "promote" or "help"
    problem: str  # Markdown, never echoes the commenter's text
    to: str = field(default="", compare=False)  # as in Command


_CONTENT = re.compile(r"[^ \t\r\n]")
_EOL = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(
    r" {0,3}(?:/|@(?P<user>[A-Za-z0-9_.\-\[\]]+)[ \t]+)(?P<word>[A-Za-z]+)(?P<rest>.*)",
    re.ASCII | re.DOTALL,
)
_VERSION = re.compile(r"[vV]?([0-9]+)", re.ASCII)
_BLANKS = " \t"


def parse_comment(body: str, bot_username: str = "") -> Command | Usage | None:
    """The command in `body` for the bot `bot_username`, a Usage answer for a malformed one, or
    None to ignore the comment."""
    parsed = read_comment(body)
    return parsed if parsed is not None and addressed_to(parsed, bot_username) else None


def read_comment(body: str) -> Command | Usage | None:
    """The command in `body`, whatever name a mention form names (see `addressed_to`)."""
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
    to = match.group("user") or ""
    form: CommandForm = "mention" if to else "slash"
    word = match.group("word").lower()
    rest = match.group("rest")
    if word not in COMMANDS or (rest and rest[0] not in _BLANKS):
        return None  # /promoted, /promote-now, /rollback7, /helpdesk
    args = rest.strip(_BLANKS)
    reason = _reason(body, eol.end() if eol else len(body))
    if word == "rollback":
        return _rollback(args, reason, form, to)
    if args:
        # Meant for the bot but not a command: answered with usage, never acted on.
        example = format_command(word, mention=form == "mention", bot=to)
        return Usage(word, f"`{example}` stands alone on its line; the reason goes below it", to)
    return Command(name="promote" if word == "promote" else "help", reason=reason, form=form, to=to)


def addressed_to(parsed: Command | Usage, bot_username: str) -> bool:
    """Is `parsed` for the bot `bot_username`: the slash form always, a mention when it names
    the bot (any letter case; `@name` for a GitHub App's `name[bot]`)."""
    if not parsed.to:
        return True
    names = _bot_names(bot_username)
    return bool(names) and parsed.to.lower() in names


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


def _rollback(args: str, reason: str, form: CommandForm, to: str) -> Command | Usage:
    # The example repeats the name the mention used (the bot's, once `addressed_to` agrees).
    example = format_command("rollback", version=7, mention=form == "mention", bot=to)
    if not args:
        return Usage("rollback", f"a version (or `previous`) is required: `{example}`", to)
    if args.isascii() and args.lower() == "previous":
        return Command(name="rollback", reason=reason, form=form, previous=True, to=to)
    match = _VERSION.fullmatch(args)
    if match is None:
        return Usage(
            "rollback",
            f"the version must be one number, such as `7` or `v7`, or `previous`: `{example}`",
            to,
        )
    # Length first: int() of a huge digit string is slow and, past 4300 digits, an error.
    digits = match.group(1).lstrip("0")
    if not digits or len(digits) > len(str(MAX_VERSION)) or int(digits) > MAX_VERSION:
        return Usage(
            "rollback", f"the version must be between 1 and {MAX_VERSION}: `{example}`", to
        )
    return Command(name="rollback", version=int(digits), reason=reason, form=form, to=to)
