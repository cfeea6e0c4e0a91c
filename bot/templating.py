"""Jinja environment: the packaged templates, overridable file by file from `templates_dir`.

A template is code that runs with the bot's environment, and what it renders goes into public
threads, where no log masking applies: templates render in Jinja's sandbox, which refuses
`__globals__`, `__init__` and the like (`cycler.__init__.__globals__.os.environ` reads tokens).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
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
        autoescape=False,  # Markdown, not HTML; people's text goes through `md`
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = escape_markdown
    env.filters["code"] = inline_code
    return env


def render(name: str, override_dir: str = "", **context: Any) -> str:
    try:
        return environment(override_dir).get_template(name).render(**context)
    except jinja2.TemplateError as exc:  # a broken or unsafe override: one line, no traceback
        where = f"{override_dir}/{name}" if override_dir else name
        raise ConfigError(f"template {where}: {type(exc).__name__}: {exc}") from None


def escape_markdown(value: object) -> str:
    """Neutralise text from people (reasons, usernames) so it cannot inject markup or markers."""
    text = str(value)
    for char in ("\\", "`", "*", "_", "[", "]", "<", ">", "|", "#"):
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def inline_code(value: object) -> str:
    """`value` as inline code, the fence widened past any backtick (quoted commands never run)."""
    text = str(value).replace("\n", " ")
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
