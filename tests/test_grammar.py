"""bot.commands.grammar: the comment grammar (docs/design.md, "Commands"), as a table and as
properties against an oracle."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.grammar import (
    MAX_REASON,
    MAX_VERSION,
    Command,
    Usage,
    parse_comment,
    read_comment,
)
from bot.threads.command_forms import format_command

BOT = "promotion-bot"

MISSING = Usage("rollback", "a version (or `previous`) is required: `/rollback 7`")
ONE_NUMBER = "the version must be one number, such as `7` or `v7`, or `previous`"
BAD = Usage("rollback", f"{ONE_NUMBER}: `/rollback 7`")
RANGE = Usage("rollback", f"the version must be between 1 and {MAX_VERSION}: `/rollback 7`")
MENTION_MISSING = Usage("rollback", f"a version (or `previous`) is required: `@{BOT} rollback 7`")
MENTION_BAD = Usage("rollback", f"{ONE_NUMBER}: `@{BOT} rollback 7`")
PREVIOUS = Command("rollback", previous=True)
ALONE = "stands alone on its line; the reason goes below it"
PROMOTE_WORDS = Usage("promote", f"`/promote` {ALONE}")
HELP_WORDS = Usage("help", f"`/help` {ALONE}")
MENTION_PROMOTE_WORDS = Usage("promote", f"`@{BOT} promote` {ALONE}")

PROMOTE = Command("promote")
HELP = Command("help")


def rollback(version: int, reason: str = "", form: str = "slash") -> Command:
    return Command("rollback", version=version, reason=reason, form=form)  # type: ignore[arg-type]


def mention(name: str, version: int | None = None, reason: str = "") -> Command:
    return Command(name, version=version, reason=reason, form="mention")  # type: ignore[arg-type]


CASES: list[tuple[str, str, str, Command | Usage | None]] = [
    # id, body, bot username, expected
    # --- valid slash commands
    ("promote", "/promote", BOT, PROMOTE),
    ("promote-trailing-spaces", "/promote   ", BOT, PROMOTE),
    ("promote-trailing-tab", "/promote\t", BOT, PROMOTE),
    ("promote-upper", "/PROMOTE", BOT, PROMOTE),
    ("promote-title", "/Promote", BOT, PROMOTE),
    ("promote-without-username", "/promote", "", PROMOTE),
    ("help", "/help", BOT, HELP),
    ("help-mixed-case", "/HeLp", BOT, HELP),
    ("rollback", "/rollback 7", BOT, rollback(7)),
    ("rollback-v", "/rollback v7", BOT, rollback(7)),
    ("rollback-V", "/rollback V7", BOT, rollback(7)),
    ("rollback-upper", "/ROLLBACK 12", BOT, rollback(12)),
    ("rollback-tabs", "/rollback\t7 \t", BOT, rollback(7)),
    ("rollback-leading-zeros", "/rollback 007", BOT, rollback(7)),
    ("rollback-max", "/rollback 2147483647", BOT, rollback(MAX_VERSION)),
    ("blank-lines-first", "\n\n  \n\t\n/promote", BOT, PROMOTE),
    ("three-space-indent", "   /promote", BOT, PROMOTE),
    (
        "reason",
        "/promote\nLooks good.\n\nChecked drift.  \n",
        BOT,
        Command("promote", reason="Looks good.\n\nChecked drift."),
    ),
    ("crlf", "/promote\r\nLooks good.\r\n", BOT, Command("promote", reason="Looks good.")),
    ("crlf-rollback", "/rollback 5\r\nv6 drifts\r\n", BOT, rollback(5, "v6 drifts")),
    ("cr-only", "/promote\rold editor", BOT, Command("promote", reason="old editor")),
    (
        "reason-keeps-markup",
        "/help\n> quoted\n`code`",
        BOT,
        Command("help", reason="> quoted\n`code`"),
    ),
    # --- mention form
    ("mention-promote", f"@{BOT} promote", BOT, mention("promote")),
    ("mention-case", "@Promotion-Bot PROMOTE", BOT, mention("promote")),
    (
        "mention-rollback",
        f"@{BOT} rollback v3\nbad calibration",
        BOT,
        mention("rollback", 3, "bad calibration"),
    ),
    ("mention-help", f"@{BOT} help", BOT, mention("help")),
    ("mention-spaces", f"  @{BOT}   promote \t", BOT, mention("promote")),
    ("mention-app-short", f"@{BOT} promote", f"{BOT}[bot]", mention("promote")),
    ("mention-app-full", f"@{BOT}[bot] promote", f"{BOT}[bot]", mention("promote")),
    ("mention-username-with-at", f"@{BOT} promote", f"@{BOT}", mention("promote")),
    # --- malformed rollback: answered with usage
    ("rollback-no-version", "/rollback", BOT, MISSING),
    ("rollback-only-spaces", "/rollback   \nreason", BOT, MISSING),
    ("rollback-word", "/rollback abc", BOT, BAD),
    ("rollback-injection", "/rollback 3; rm -rf /", BOT, BAD),
    ("rollback-huge", "/rollback 99999999999999999999", BOT, RANGE),
    ("rollback-just-over", "/rollback 2147483648", BOT, RANGE),
    ("rollback-zero", "/rollback 0", BOT, RANGE),
    ("rollback-v0", "/rollback v000", BOT, RANGE),
    ("rollback-negative", "/rollback -1", BOT, BAD),
    ("rollback-two-versions", "/rollback 7 8", BOT, BAD),
    ("rollback-v-alone", "/rollback v", BOT, BAD),
    ("rollback-semver", "/rollback 1.2.3", BOT, BAD),
    ("rollback-fullwidth-digit", "/rollback ７", BOT, BAD),
    ("rollback-arabic-digit", "/rollback ٧", BOT, BAD),
    ("rollback-backticks", "/rollback `7`", BOT, BAD),
    ("rollback-vv", "/rollback vv7", BOT, BAD),
    ("mention-rollback-no-version", f"@{BOT} rollback", BOT, MENTION_MISSING),
    # --- the champion before the current one, from the audit ledger
    ("rollback-previous", "/rollback previous", BOT, PREVIOUS),
    ("rollback-previous-upper", "/ROLLBACK Previous\t", BOT, PREVIOUS),
    (
        "rollback-previous-reason",
        "/rollback previous\nv6 drifts",
        BOT,
        Command("rollback", reason="v6 drifts", previous=True),
    ),
    (
        "mention-rollback-previous",
        f"@{BOT} rollback previous",
        BOT,
        Command("rollback", form="mention", previous=True),
    ),
    ("rollback-previous-and-more", "/rollback previous 7", BOT, BAD),
    ("rollback-prev", "/rollback prev", BOT, BAD),
    ("rollback-previous-glued", "/rollback previous7", BOT, BAD),
    ("rollback-previous-lookalike", "/rollback prevіous", BOT, BAD),  # Cyrillic і
    ("mention-rollback-bad", f"@{BOT} rollback seven", BOT, MENTION_BAD),
    # --- the command word, then words on its line: meant for the bot, answered with usage
    ("promote-please", "/promote please", BOT, PROMOTE_WORDS),
    ("promote-with-words", "/promote now please\nreason", BOT, PROMOTE_WORDS),
    ("promote-chatter", "/promote is blocked by the data review", BOT, PROMOTE_WORDS),
    ("promote-upper-words", "/PROMOTE please", BOT, PROMOTE_WORDS),
    ("promote-tab-words", "/promote\tplease", BOT, PROMOTE_WORDS),
    ("help-with-words", "/help me", BOT, HELP_WORDS),
    ("trailing-html-comment", "/promote <!-- x -->", BOT, PROMOTE_WORDS),
    ("mention-with-words", f"@{BOT} promote now", BOT, MENTION_PROMOTE_WORDS),
    ("mention-other-user-words", "@other-bot promote now", BOT, None),
    # --- ignored: empty, near misses, words around the command
    ("empty", "", BOT, None),
    ("whitespace-only", "   \n\t\n  \r\n", BOT, None),
    ("promoted", "/promoted", BOT, None),
    ("promote-dash", "/promote-now", BOT, None),
    ("helpdesk", "/helpdesk", BOT, None),
    ("words-before", "please /promote", BOT, None),
    ("space-after-slash", "/ promote", BOT, None),
    ("double-slash", "//promote", BOT, None),
    ("no-slash", "promote", BOT, None),
    ("not-first-line", "Looks good\n/promote", BOT, None),
    ("rollback-glued", "/rollback7", BOT, None),
    ("rollback-glued-v", "/rollbackv7", BOT, None),
    ("rollback-dash", "/rollback-7", BOT, None),
    ("other-command", "/approve", BOT, None),
    ("html-comment-first", "<!-- promotion-bot:answer comment=1 -->\n/promote", BOT, None),
    # --- code and quotes
    ("fenced-backticks", "```\n/promote\n```", BOT, None),
    ("fenced-tildes", "~~~\n/promote\n~~~", BOT, None),
    ("indented-4", "    /promote", BOT, None),
    ("indented-tab", "\t/promote", BOT, None),
    ("indented-mixed", " \t/promote", BOT, None),
    ("blockquote", "> /promote", BOT, None),
    ("blockquote-tight", ">/promote", BOT, None),
    ("inline-code", "`/promote`", BOT, None),
    ("inline-code-mention", f"`@{BOT} promote`", BOT, None),
    # --- unicode lookalikes and invisible characters
    ("fullwidth-slash", "／promote", BOT, None),
    ("cyrillic-o", "/prоmote", BOT, None),
    ("cyrillic-e", "/hеlp", BOT, None),
    ("kelvin-sign", "/rollbac\u212a 7", BOT, None),
    ("long-s-lookalike", "/help\u017f", BOT, None),
    ("zero-width-inside", "/pro\u200bmote", BOT, None),
    ("zero-width-before", "\u200b/promote", BOT, None),
    ("zero-width-after", "/promote\u200b", BOT, None),
    ("bom", "\ufeff/promote", BOT, None),
    ("nbsp-after", "/promote\u00a0", BOT, None),
    ("nul-after", "/promote\x00", BOT, None),
    ("nul-before", "\x00/promote", BOT, None),
    ("nul-in-version", "/rollback 7\x00", BOT, BAD),
    ("vertical-tab", "\x0b/promote", BOT, None),
    # A line of other Unicode spaces is not empty: the command is not on the first line.
    ("nbsp-line-first", "\u00a0\n/promote", BOT, None),
    ("form-feed-line-first", "\x0c\n/promote", BOT, None),
    # --- mention near misses
    ("mention-without-username", f"@{BOT} promote", "", None),
    ("mention-other-user", "@other-bot promote", BOT, None),
    ("mention-prefix-user", f"@{BOT}ty promote", BOT, None),
    ("mention-colon", f"@{BOT}: promote", BOT, None),
    ("mention-unknown-word", f"@{BOT} thanks!", BOT, None),
    ("mention-slash-word", f"@{BOT} /promote", BOT, None),
    ("mention-split-lines", f"@{BOT}\npromote", BOT, None),
    ("mention-no-space", f"@{BOT}promote", BOT, None),
    ("mention-kelvin-user", "@\u212abot promote", "kbot", None),
    ("mention-cyrillic-user", "@promotiоn-bot promote", BOT, None),
]


@pytest.mark.parametrize(
    ("body", "bot_username", "expected"),
    [pytest.param(body, user, expected, id=case_id) for case_id, body, user, expected in CASES],
)
def test_parse_comment_table(
    body: str, bot_username: str, expected: Command | Usage | None
) -> None:
    assert parse_comment(body, bot_username) == expected


def test_table_is_big_enough_and_ids_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 45


def test_reason_is_capped() -> None:
    result = parse_comment("/promote\n" + "a" * (MAX_REASON + 500) + "\nend")
    assert result == Command("promote", reason="a" * MAX_REASON)


def test_non_string_input_is_ignored() -> None:
    assert parse_comment(None) is None  # type: ignore[arg-type]
    assert parse_comment(b"/promote") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("\n" * 1_000_000 + "/promote", PROMOTE, id="1mb-blank-lines-first"),
        pytest.param(" \t" * 500_000, None, id="1mb-whitespace"),
        pytest.param(
            "/promote\n" + "x" * 1_000_000, Command("promote", reason="x" * 2000), id="1mb-reason"
        ),
        pytest.param("/promote" + " " * 1_000_000, PROMOTE, id="1mb-trailing-spaces"),
        pytest.param("/rollback " + "9" * 1_000_000, RANGE, id="1mb-version"),
        pytest.param("/rollback v" + "0" * 1_000_000 + "7", rollback(7), id="1mb-zeros"),
        pytest.param("a" * 1_000_000, None, id="1mb-one-word"),
        pytest.param("@" + "b" * 1_000_000 + " promote", None, id="1mb-username"),
        pytest.param("```\n" + "/promote\n" * 100_000, None, id="1mb-code-block"),
    ],
)
def test_one_megabyte_bodies_are_fast(body: str, expected: Command | Usage | None) -> None:
    started = time.perf_counter()
    assert parse_comment(body, BOT) == expected
    # Linear work on 1 MB is milliseconds; anything quadratic would take minutes.
    assert time.perf_counter() - started < 0.5


# --- format_command and usage_lines


def test_format_command() -> None:
    assert format_command("promote") == "/promote"
    assert format_command("rollback", version=6) == "/rollback 6"
    assert format_command("rollback", version=6, mention=True, bot=BOT) == f"@{BOT} rollback 6"
    assert format_command("help", mention=True, bot="@" + BOT) == f"@{BOT} help"
    assert format_command("help", mention=True, bot="") == "/help"


def test_formatted_commands_parse_back() -> None:
    for mention_form in (False, True):
        text = format_command("rollback", version=41, mention=mention_form, bot=BOT)
        assert parse_comment(text, BOT) == rollback(41, form="mention" if mention_form else "slash")


@pytest.mark.parametrize("slash_ok", [True, False])
def test_help_and_usage_answers_are_never_commands_themselves(slash_ok: bool) -> None:
    """The bot's own help must not trigger it (nor a GitLab quick action): commands in backticks."""
    from bot.templating import render
    from bot.threads.command_forms import command_lines

    lines = command_lines(BOT, slash_ok)
    assert [line["usage"] for line in lines] == (
        ["/promote", "/rollback <version>", "/help"]
        if slash_ok
        else [f"@{BOT} promote", "/rollback <version>", f"@{BOT} help"]
    )
    common = {"model": "m", "champion_alias": "champion", "candidate_alias": "candidate"}
    bodies = [
        render(
            "answer_usage.md.j2",
            command="/rollback",
            problem="a version is required",
            commands=lines,
            **common,
        ),
        render(
            "answer_help.md.j2",
            commands=lines,
            champion=1,
            candidate=2,
            version=2,
            approvals=0,
            required=1,
            **common,
        ),
    ]
    for body in bodies:
        assert parse_comment(body, BOT) is None
        assert not any(parse_comment(line, BOT) for line in body.splitlines())


# --- properties against an independent oracle

ORACLE_USER = r" {0,3}(?:/|@(?P<user>\S+)[ \t]+)"
ORACLE_COMMAND = re.compile(
    ORACLE_USER + r"(?:(?P<simple>promote|help)|rollback[ \t]+[vV]?(?P<version>[0-9]+))[ \t]*",
    re.IGNORECASE | re.ASCII,
)
ORACLE_ROLLBACK = re.compile(
    ORACLE_USER + r"rollback(?:[ \t].*)?", re.IGNORECASE | re.ASCII | re.DOTALL
)
# `/promote please`, `/help me`: the word alone is a command, words after it a usage answer.
ORACLE_WORDS = re.compile(
    ORACLE_USER + r"(?:promote|help)[ \t].*", re.IGNORECASE | re.ASCII | re.DOTALL
)


def oracle(body: str, bot: str) -> tuple[str, ...] | None:
    """(name, version, reason, form) for a command, ("usage",) or None: the grammar of
    docs/design.md, "Commands", by regex."""
    parts = re.split(r"(\r\n|\r|\n)", body)
    lines = parts[::2]
    index = next((i for i, line in enumerate(lines) if line.strip(" \t")), None)
    if index is None:
        return None
    line = lines[index]
    reason = "".join(parts[2 * index + 2 :]).strip()[:MAX_REASON]
    for pattern in (ORACLE_COMMAND, ORACLE_ROLLBACK, ORACLE_WORDS):
        match = pattern.fullmatch(line)
        if match is None:
            continue
        user = match.group("user")
        if user is not None and not (bot and user.isascii() and user.lower() == bot.lower()):
            return None
        form = "slash" if user is None else "mention"
        if pattern is not ORACLE_COMMAND:
            return ("usage",)
        if match.group("simple"):
            return (match.group("simple").lower(), "", reason, form)
        digits = match.group("version").lstrip("0")
        if not digits or len(digits) > 10 or int(digits) > MAX_VERSION:
            return ("usage",)
        return ("rollback", digits, reason, form)
    return None


def as_tuple(result: Command | Usage | None) -> tuple[str, ...] | None:
    if result is None:
        return None
    if isinstance(result, Usage):
        assert result.name in ("rollback", "promote", "help") and result.problem
        return ("usage",)
    version = "" if result.version is None else str(result.version)
    return (result.name, version, result.reason, result.form)


FRAGMENTS = [
    "/", "/", "@", BOT, "Promotion-BOT", "other", "promote", "PROMOTE", "rollback", "RollBack",
    "help", "v", "V", "7", "0", "42", "2147483647", "2147483648", " ", " ", "   ", "    ", "\t",
    "\n", "\r\n", "\r", "`", "```", ">", "-", "d", ";", "\u200b", "\x00", "\uff0f", "\u212a",
    "\u043e", "\u00a0", "\x0b", "reason", "Looks good.",
]  # fmt: skip

fragment_soup = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=2)), max_size=14
).map("".join)

grammar_like = st.builds(
    lambda blank, indent, prefix, word, args, trail, sep, reason: (
        blank + indent + prefix + word + args + trail + sep + reason
    ),
    st.sampled_from(["", "\n", " \n\t\r\n"]),
    st.sampled_from(["", " ", "   ", "    ", "\t"]),
    st.sampled_from(["/", f"@{BOT} ", f"@{BOT.upper()}\t", "@other ", "", "／"]),
    st.sampled_from(["promote", "Rollback", "HELP", "promoted", "rollbac\u212a", "prоmote"]),
    st.one_of(
        st.just(""),
        st.builds(
            lambda sp, v, n: sp + v + n,
            st.sampled_from([" ", "\t", "", "  "]),
            st.sampled_from(["", "v", "V", "-"]),
            st.one_of(st.integers(0, 2**32).map(str), st.sampled_from(["x", "7 8", "٧", "0007"])),
        ),
    ),
    st.sampled_from(["", " ", "\t", "\u200b", "x"]),
    st.sampled_from(["", "\n", "\r\n", "\r"]),
    st.text(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(st.text(st.characters(exclude_categories=())), st.text(max_size=20))
def test_never_raises(body: str, bot_username: str) -> None:
    result = parse_comment(body, bot_username)
    assert result is None or isinstance(result, Command | Usage)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(fragment_soup, grammar_like), st.sampled_from([BOT, "", "PROMOTION-BOT"]))
def test_matches_oracle(body: str, bot_username: str) -> None:
    assert as_tuple(parse_comment(body, bot_username)) == oracle(body, bot_username)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "/promote",
            "/help",
            "/rollback 3",
            "/rollback v12",
            f"@{BOT} promote",
            f"@{BOT} rollback 9",
        ]
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.text(st.characters(exclude_categories=()), max_size=2500),
)
def test_reason_is_preserved(command: str, separator: str, reason: str) -> None:
    result = parse_comment(command + separator + reason, BOT)
    assert isinstance(result, Command)
    assert result.reason == reason.strip()[:MAX_REASON]
    assert parse_comment(command, BOT) == Command(
        result.name, version=result.version, form=result.form
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/promote", True),
        ("/rollback", True),  # a usage answer is still an answer
        ("@some-bot promote\nreason", True),
        ("@other[bot] rollback v3", True),
        ("  \n/help", True),
        ("LGTM, ship it", False),
        ("> /promote", False),
        ("`/promote`", False),
        ("@someone thanks!", False),
        ("", False),
    ],
)
def test_read_comment_keeps_a_mention_of_any_name(body: str, expected: bool) -> None:
    assert (read_comment(body) is not None) is expected


@given(st.one_of(fragment_soup, grammar_like), st.sampled_from([BOT, "", "PROMOTION-BOT", "x"]))
def test_reading_before_the_name_is_known_never_drops_a_command(body: str, bot_username: str):
    """The network-free reading runs before the bot's name is known: it must keep every
    command, and it is the command the bot's name then accepts."""
    parsed = parse_comment(body, bot_username)
    if parsed is not None:
        assert read_comment(body) == parsed
