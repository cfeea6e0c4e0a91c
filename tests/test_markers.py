"""bot.threads.markers, fast and pure: the hidden markers the bot writes and reads back
(docs/design.md, "Markers")."""

from __future__ import annotations

import pytest

from bot.threads.markers import (
    answer_marker,
    answered_comment_ids,
    approval_marker,
    check_marker,
    parse_request_marker,
    read_request_marker,
    read_section,
    read_ticks,
    replace_section,
    request_marker,
    section,
)


def test_a_request_marker_round_trips_and_skips_empty_fields():
    marker = request_marker(model="churn", version=7, run="abc", requested_by="", kind="issue")
    assert marker == "<!-- promotion-bot:request model=churn version=7 run=abc kind=issue -->"
    body = f"# Promote\n\ntext\n{marker}\n{request_marker(model='other', version=1)}"
    assert parse_request_marker(body) == {
        "model": "churn",
        "version": "7",
        "run": "abc",
        "kind": "issue",
    }  # the first marker counts
    assert parse_request_marker("no marker here") is None


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("dana smith", "dana_smith"),  # a space would start another field
        ("x --> <!-- promotion-bot:answer comment=1", "x_--____--_promotion-bot:answer_comment_1"),
        ("ok@host:1/a.b+c-d", "ok@host:1/a.b+c-d"),
        ("dänа", "d_n_"),  # only ASCII: no look-alikes
    ],
)
def test_marker_values_are_single_tokens_so_no_marker_can_be_forged(value: str, cleaned: str):
    marker = request_marker(model="m", version=1, requested_by=value)
    assert marker.count("-->") == 1 and marker.count("<!--") == 1
    assert parse_request_marker(marker) == {"model": "m", "version": "1", "requested_by": cleaned}
    assert answer_marker(value) == f"<!-- promotion-bot:answer comment={cleaned} -->"


@pytest.mark.parametrize(
    ("fields", "version", "problem"),
    [
        ("model=churn version=7", 7, ""),
        ("model=churn version=abc", 0, "its version is not a version number"),
        ("model=churn version=²", 0, "its version is not a version number"),
        ("model=churn version=0", 0, "its version is not a version number"),
        ("model=churn version=12345678901", 0, "its version is not a version number"),
        ("model=churn", 0, "it names no version"),
        ("version=7", 0, "it names no model"),
    ],
)
def test_a_damaged_request_marker_says_why_and_names_no_version(
    fields: str, version: int, problem: str
):
    marker = read_request_marker(f"<!-- promotion-bot:request {fields} -->")
    assert marker is not None and (marker.version, marker.problem) == (version, problem)


def test_answers_name_the_comments_they_answer():
    bodies = [f"Done.\n\n{answer_marker('123')}\n", "chatter", f"{answer_marker('45 6')}"]
    assert answered_comment_ids(bodies) == {"123", "45_6"}
    assert answered_comment_ids([]) == set()


def test_ticks_are_read_from_task_list_items_with_a_check_marker():
    body = "\n".join(
        [
            f"- [x] Metrics {check_marker('metrics')}",
            f"  * [X] Data {check_marker('data')}",
            f"+ [ ] Contract {check_marker('contract')}",
            f"[x] not a list item {check_marker('rollback')}",
            f"    - [x] code block indentation still a list item {check_marker('deep')}",
            "- [x] no marker",
        ]
    )
    assert read_ticks(body) == {"metrics": True, "data": True, "contract": False, "deep": True}
    assert read_ticks("") == {}


def test_sections_are_replaced_in_place_or_appended():
    body = f"intro\n\n{section('status', 'Waiting')}\n\nfooter"
    assert read_section(body, "status") == "Waiting"
    replaced = replace_section(body, "status", "✅ Promoted")
    assert replaced == f"intro\n\n{section('status', '✅ Promoted')}\n\nfooter"
    appended = replace_section("intro\n", "status", "new")
    assert appended == f"intro\n\n{section('status', 'new')}\n"
    assert read_section("intro", "status") is None


def test_the_approval_marker_is_display_only_and_cannot_be_broken_out_of():
    """Nothing reads it back (approvals are the registry's); a name cannot end the comment."""
    marker = approval_marker(7, "olga --> <b>")
    assert marker.startswith("<!-- promotion-bot:approval version=7 by=olga")
    assert marker.count("-->") == 1 and marker.endswith(" -->")
