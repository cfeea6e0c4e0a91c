"""Jinja environment: the packaged templates, overridable file by file from `templates_dir`.

A template is code that runs with the bot's environment, and what it renders goes into public
threads, where no log masking applies: templates render in Jinja's sandbox, which refuses
`__globals__`, `__init__` and the like (`cycler.__init__.__globals__.os.environ` reads tokens).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from jinja2.sandbox import SandboxedEnvironment

from bot.errors import ConfigError


def packaged_templates() -> Path:
    """Templates inside an installed wheel (bot/templates), else the repo's top-level templates/."""
    here = Path(__file__).resolve().parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


def environment(override_dir: str = "") -> SandboxedEnvironment:
    """The environment for `override_dir` as it is now (a folder created later is seen)."""
    folder = Path(override_dir) if override_dir else None
    return _environment(str(folder.resolve()) if folder and folder.is_dir() else "")


@lru_cache(maxsize=16)
def _environment(override_dir: str) -> SandboxedEnvironment:
    search = [override_dir] if override_dir else []
    search.append(str(packaged_templates()))
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown, not HTML; outside text goes through `md` or `code`
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = escape_markdown
    env.filters["code"] = inline_code
    return env


@lru_cache(maxsize=1)
def html_environment() -> SandboxedEnvironment:
    """For HTML pages (the status page): autoescape on, so every value is text, never markup;
    the packaged templates only, sandboxed like the rest (docs/security.md, "The status page")."""
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(packaged_templates())),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["code_spans"] = code_spans
    return env


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(value: object) -> markupsafe.Markup:
    """Text for an HTML page, escaped whole, then each `quoted` part (a command, a tag) set as
    <code>: only the tags this adds are markup, whoever wrote the text."""
    parts = _CODE_SPAN.split(str(value))  # text, code, text, code, ..., text
    shown = markupsafe.Markup("")
    for index, part in enumerate(parts):
        code = index % 2 == 1
        shown += markupsafe.Markup("<code>{}</code>").format(part) if code else part
    return shown


def render(name: str, override_dir: str = "", **context: Any) -> str:
    try:
        return environment(override_dir).get_template(name).render(**context)
    except jinja2.TemplateError as exc:  # a broken or unsafe override: one line, no traceback
        where = f"{override_dir}/{name}" if override_dir else name
        raise ConfigError(f"template {where}: {type(exc).__name__}: {exc}") from None


# Backslash escapes stop emphasis, code spans, links and images, HTML (and so `<!--` markers),
# table cells, headings, entities (`&#64;` would make an `@`) and strikethrough.
_ESCAPED = frozenset("\\`*_[]<>|#&~")
_INVISIBLE = "\u200b"  # a zero-width space: shown as nothing, but no renderer links across it
# Autolinks (`https://`, `www.`) are found in the rendered text, after backslash escapes are
# gone: only a character between their parts stops them.
_AUTOLINK = re.compile(r"(?i)(:)(//)|\b(www)(\.)")


def escape_markdown(value: object) -> str:
    """Text from outside the bot (a person, a marker, a registry tag, a run) made inert in
    Markdown on both forges: one line; no markup, link, image, HTML comment or marker; no
    `@mention` (`@all` included: the bot must not ping anyone in someone else's words); and no
    GitLab quick action, which is a line starting with `/` (docs/security.md, "What the bot
    writes")."""
    text = " ".join(str(value).splitlines())
    text = "".join("\\" + char if char in _ESCAPED else char for char in text)
    text = text.replace("@", "@" + _INVISIBLE)
    text = _AUTOLINK.sub(lambda m: _INVISIBLE.join(part for part in m.groups() if part), text)
    return "\\" + text if text.startswith("/") else text


def inline_code(value: object) -> str:
    """`value` as inline code, the fence widened past any backtick (quoted commands never run).
    Nothing inside a code span is markup, a mention or a quick action; the value stays on one
    line (any line break, `\\r` and U+2028 included)."""
    text = " ".join(str(value).splitlines())
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
