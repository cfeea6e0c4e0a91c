"""What the bot writes from outside values (a marker, a tag, a run, a person) is inert: one
escaping function (`md`) and one code-span function (`code`), used by the templates and by the
Python that builds text, tried with hostile values through the real rendering path.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from bot.ci.request import open_or_update_request
from bot.templating import escape_markdown, inline_code
from bot.threads.markers import read_section
from tests.promotion_env import MakePlayground

HOSTILE = [
    "[click](https://evil.example/login)",
    "![x](https://evil.example/pixel.png)",
    "@all please look",
    "&#64;all",
    "<!-- promotion-bot:answer comment=1 -->",
    "x --> <!-- promotion-bot:status -->",
    "/close",
    "ok\n/label ~hotfix\n/merge",
    "ok\r/unassign",
    "ok\u2028/close",
    "see www.evil.example or https://evil.example",
    "`code` **bold** _em_ | cell | # head",
    "<img src=x onerror=alert(1)>",
]
# A link, image, HTML comment or raw tag needs these unescaped; a mention or autolink these.
_LIVE_MARKUP = re.compile(r"(?<!\\)(\]\(|<!--|<[a-z!/]|`)")
_MENTION_OR_LINK = re.compile(r"@\w|://|www\.", re.IGNORECASE)


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_text_is_one_line_of_plain_text(value: str) -> None:
    text = escape_markdown(value)
    assert len(text.splitlines()) == 1
    assert not text.startswith("/"), "a GitLab quick action"
    assert not _LIVE_MARKUP.search(text)
    assert not _MENTION_OR_LINK.search(text)
    assert "&#" not in text, "an entity could spell `@`"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_code_span_holds_any_value_on_one_line(value: str) -> None:
    span = inline_code(value)
    assert len(span.splitlines()) == 1
    fence = re.match(r"`+", span)
    assert fence is not None and span.endswith(fence.group(0))
    inner = span[len(fence.group(0)) : -len(fence.group(0))]
    assert fence.group(0) not in inner, "the value cannot close its code span"


def test_a_registered_as_tag_stays_inside_its_code_span_in_the_request_body(
    make_pg: MakePlayground,
) -> None:
    """Someone sets the version's `promotion.registered_as` tag to break out of its code span,
    fake a status section and add a quick action; `request` renders the body from it."""
    pg = make_pg()
    pg.setup_people()
    version = pg.train(0.6)
    value = "smoke` <!-- /promotion-bot:status -->\n/close\n@all [click](https://evil.example)"
    pg.ctx.registry.set_version_tag(pg.model, version, "promotion.registered_as", value)
    body = open_or_update_request(pg.ctx).body
    assert f"(registered as {inline_code(value)})" in body
    assert not [line for line in body.splitlines() if line.startswith("/")]
    assert body.count("<!-- promotion-bot:status -->") == 1
    assert read_section(body, "status") is not None and "evil" not in read_section(body, "status")


def test_a_marker_edited_to_carry_a_link_and_a_mention_is_not_echoed_live(
    make_pg: MakePlayground, tmp_path: Path
) -> None:
    """The request's marker is edited to name a "model" that is a link and `@all`: the
    "description is damaged" answer quotes it inert."""
    pg = make_pg()
    pg.setup_people()
    pg.ctx.settings = replace(pg.ctx.settings, requested_by="dana")
    thread = pg.open_request(pg.train(0.6))
    forged = re.sub(r"model=\S+", "model=[click](https://evil.example/@all)", thread.body)
    pg.forge.update_body(thread, forged)
    outcome, _ = pg.comment(thread, "maria", "/promote")
    assert outcome.status == "damaged"
    [answer] = [c.body for c in pg.answers(thread)]
    assert "it names another model" in answer
    assert not re.search(r"(?<!\\)\]\(", answer), "a live link"
    assert "://" not in answer and "@all" not in answer
    assert pg.champion() is None


def test_code_spans_on_the_page_add_only_their_own_tags() -> None:
    """The status page sets `quoted` parts of its lines as code; the text around them and in
    them is escaped, whoever wrote it (a key id, a tag's name from the registry)."""
    from bot.templating import code_spans

    shown = str(code_spans('run `promotion-bot verify` <img src=x onerror=1> `<b>&"`'))
    assert shown == (
        "run <code>promotion-bot verify</code> &lt;img src=x onerror=1&gt; "
        "<code>&lt;b&gt;&amp;&#34;</code>"
    )
    assert str(code_spans("a ` lone backtick")) == "a ` lone backtick"
