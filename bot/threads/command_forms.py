"""The commands as people type them: `/rollback 7`, or `@bot rollback 7` where the forge eats the
slash form (docs/design.md, "Commands"). The request body, the answers and the external-change
report show commands from here; `bot.commands.grammar` parses them back.
"""

from __future__ import annotations

# Argument placeholder and description of each command, for `/help` and usage answers.
USAGE: dict[str, tuple[str, str]] = {
    "promote": (
        "",
        "approve this request; its version becomes champion once enough eligible approvers agree",
    ),
    "rollback": (
        "<version>",
        "make an earlier version champion again (`7` or `v7`, or `previous`: the champion "
        "before the current one); works on any request of the model",
    ),
    "help": ("", "show these commands and the state of this request"),
}


def format_command(
    name: str, *, version: int | None = None, mention: bool = False, bot: str = ""
) -> str:
    """The command as a user types it: `/rollback 7`, or `@bot rollback 7` in mention form."""
    text = name if version is None else f"{name} {version}"
    username = (bot or "").strip().lstrip("@")
    # A GitHub App's account is `<slug>[bot]`; people mention an App by its slug (the grammar
    # takes both forms).
    username = username.removesuffix("[bot]") or username
    if mention and username:
        return f"@{username} {text}"
    return f"/{text}"


def command_lines(bot: str, slash_ok: bool) -> list[dict[str, str]]:
    """The commands in the form that works on this forge (GitLab EE eats `/promote`, `/help`
    is safe but kept in one form; `/rollback` is no quick action anywhere)."""
    rows = []
    for name, (arg, text) in USAGE.items():
        mention = not slash_ok and name != "rollback"
        usage = format_command(name, mention=mention, bot=bot)
        rows.append({"usage": f"{usage} {arg}".strip(), "text": text})
    return rows


def request_commands(bot: str, slash_ok: bool, champion_version: int | None) -> dict[str, str]:
    """The commands the request body shows, in the form that reaches the bot on this platform."""
    target = str(champion_version) if champion_version is not None else "<version>"
    mention = format_command("promote", mention=True, bot=bot)
    return {
        "promote": format_command("promote", mention=not slash_ok, bot=bot),
        "promote_alt": mention if slash_ok else "",
        # `/rollback` is no quick action anywhere, so it works on every platform.
        "rollback": f"/rollback {target}",
        "rollback_alt": f"{format_command('rollback', mention=True, bot=bot)} {target}",
        "help": format_command("help", mention=not slash_ok, bot=bot),
    }
