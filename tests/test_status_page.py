"""The status page's data and HTML (bot.reports.page, bot.reports.svg_trend): after a /promote, a
/rollback from an internal note and a gated candidate with its open request, against the real
MLflow server and the local forge. The browser test is tests/test_status_page_browser.py."""

from __future__ import annotations

import json
import re
from html import unescape

from mlflow import MlflowClient

from bot.ledger.store import now_ms
from bot.reports.drift_view import NEWEST
from bot.reports.page import link, page_data, page_json, render_html
from bot.reports.svg_trend import Point, trend_svg
from tests.promotion_env import Playground, counted

SCRIPT = "<script>alert(1)</script>"


def _history(pg: Playground) -> tuple[int, int, int, str]:
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", f"/promote\nGood enough {SCRIPT}")
    second = pg.train(0.55)
    thread = pg.open_request(second)
    pg.comment(thread, "olga", "/promote")
    pg.comment(thread, "maria", f"/rollback {first}\nsecret incident details", internal=True)
    third = pg.train(0.5)
    request = pg.open_request(third)
    return first, second, third, request.url


def test_the_page_shows_champion_candidate_gates_drift_changes_and_trend(pg: Playground):
    first, second, third, _ = _history(pg)
    page = page_data(pg.ctx, now_ms())
    (model,) = page.models
    assert (model.model, model.champion, model.error) == (pg.model, first, "")
    assert model.approved_by == "maria (maintainer)"
    assert model.drifted is False and "as the audit ledger records it" in model.drift
    assert model.entry_url.startswith(pg.ctx.registry.ui_base() + "/#/experiments/")
    assert model.thread_url.startswith("file://") is False
    assert model.candidate == third
    assert model.candidate_request is not None and model.candidate_request.version == third
    assert model.gates[0].name == "regression" and model.gates[0].passed
    assert [(c.action, c.to_version) for c in model.changes] == [
        ("rollback", first),
        ("promote", second),
        ("promote", first),
    ]
    # The internal note's reason is not in the ledger, so not on the page: only where it is.
    assert model.changes[0].reason.startswith("(internal note) ")
    assert [p.version for p in model.trend] == [first, second, third]
    assert [p.champion for p in model.trend] == [True, False, False]

    html = render_html(page)
    assert "secret incident details" not in html and "secret incident" not in page_json(page)
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html  # the page runs nothing
    assert re.search(rf'class="champion">.*v{first}<', html)
    assert html.count("<circle") == 3 and '<meta name="viewport"' in html
    assert json.loads(page_json(page))["models"][0]["champion"] == first


def test_the_page_is_built_from_a_bounded_number_of_ledger_reads(pg: Playground):
    """However long the history, a page reads the newest entries once: the drift state's and
    the last changes' (the whole chain only when they cannot decide, tests/test_drift_view.py)."""
    _history(pg)
    ctx, registry = counted(pg)
    assert page_data(ctx, now_ms()).models[0].champion is not None
    assert registry.searches == [NEWEST]


def test_the_page_says_which_check_it_shows(pg: Playground):
    first, *_ = _history(pg)
    page = page_data(pg.ctx, now_ms())
    (model,) = page.models
    assert (model.check_scope, model.checked_entries) == ("newest", 3)
    html = unescape(render_html(page))
    assert "the newest 3 ledger entries: signed, each following the one before" in html
    assert "up to the head the bot signed; older ones: <code>promotion-bot verify</code>" in html
    assert "not walked for this page: <code>promotion-bot verify</code> walks it" in html
    assert "`" not in html.split("<body>")[-1]  # quoted commands are code, not backticks
    shown = json.loads(page_json(page))["models"][0]
    assert (shown["check_scope"], shown["checked_entries"]) == ("newest", 3)

    # The newest entry extended by hand: the page walks the whole chain, and says so.
    newest = pg.ledger()[0]
    MlflowClient(tracking_uri=pg.ctx.settings.tracking_uri).log_param(
        newest.ledger_run, "to.2", "2"
    )
    page = page_data(pg.ctx, now_ms())
    (model,) = page.models
    assert (model.check_scope, model.checked_entries, model.drifted) == ("chain", 3, True)
    html = unescape(render_html(page))
    assert "the whole chain (3 entries), as <code>promotion-bot verify</code> walks it" in html
    assert f"ledger run {newest.ledger_run}" in html and "walked for this page (3 entries)" in html
    assert model.champion == first


def test_a_model_that_cannot_be_read_is_one_line_and_the_page_stands(pg: Playground):
    page = page_data(pg.ctx, now_ms())  # no such registered model yet
    assert page.models[0].error.startswith("could not be read")
    assert "could not be read (NotFoundError)" in unescape(render_html(page))


def test_links_are_http_and_never_carry_a_credential():
    assert link("https://gitlab.example/ml/models/-/issues/3") != ""
    assert link("javascript:alert(1)") == ""
    assert link("https://oauth2:tok@gitlab.example/x") == ""
    assert link("https://mlflow.example/?private_token=abc") == ""


def test_the_trend_is_drawn_from_numbers_only():
    svg = trend_svg('loss"><script>', [Point(1, 0.6), Point(2, 0.5, True), Point(3, float("nan"))])
    assert "<script>" not in svg and "&quot;&gt;&lt;script&gt;" in svg
    assert svg.count("<circle") == 2 and 'fill="#1a7f37"' in svg
    assert trend_svg("loss", [Point(1, 0.5)]) == ""


def test_poll_writes_the_page_when_asked(pg: Playground):
    first, *_ = _history(pg)
    result = pg.cli("poll", "--report", "site/index.html")
    assert result.exit_code == 0, result.output
    page = (pg.root / "site" / "index.html").read_text(encoding="utf-8")
    assert re.search(rf'class="champion">.*v{first}<', page)
    assert pg.cli("poll", "--report", "").exit_code == 0  # the GitLab template's default
