"""docs/cli.md is current: its help pages as scripts/cli_reference.py renders them from the click
commands, its JSON shapes as the commands print them.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest

from bot.cli import cli
from bot.ledger.drift import ChampionCheck
from bot.ledger.entry import FIELDS, Approver
from bot.logs import error_output
from bot.reports.audit import Verification, render_at, verifications_json
from bot.reports.status import status_json
from tests.test_status import APPROVED, DRIFTED

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cli.md"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "scripts" / "cli_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = load_script()


def test_docs_cli_md_is_current() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert REFERENCE.rendered(current, cli) == current, (
        "docs/cli.md is not current: run `python scripts/cli_reference.py`"
    )


def test_every_command_has_its_page() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        assert f"### `promotion-bot {name}`" in text
        assert f"Usage: promotion-bot {name} [OPTIONS]" in text
        assert f"](#promotion-bot-{name}): " in text  # listed in the index, with its anchor
        assert command.help and command.help.split()[0] in text


def test_a_new_command_appears_and_a_hidden_one_does_not() -> None:
    """The generator covers whatever commands the group has, nested groups included."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    def tool() -> None:
        """A tool."""

    @tool.command()
    @click.option("--key-file", help="Where the key goes.")
    def keygen(key_file: str) -> None:
        """Make a key.

        More about it."""

    @tool.group()
    def nested() -> None:
        """Commands under one."""

    @nested.command()
    def inner() -> None:
        """Inside."""

    @tool.command(hidden=True)
    def secret() -> None:
        """Not for the reference."""

    shown = REFERENCE.reference(tool, prog="tool")
    assert "- [`tool keygen`](#tool-keygen): Make a key.\n" in shown
    assert "### `tool keygen`\n\n```text\nUsage: tool keygen [OPTIONS]\n" in shown
    assert "--key-file TEXT  Where the key goes." in shown
    assert "### `tool nested inner`" in shown and "Usage: tool nested inner [OPTIONS]" in shown
    assert "secret" not in shown


def test_check_says_how_to_update_a_stale_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "docs" / "cli.md"
    stale.parent.mkdir()
    stale.write_text(f"# x\n\n{REFERENCE.BEGIN}\nold text\n{REFERENCE.END}\n", encoding="utf-8")
    monkeypatch.setattr(REFERENCE, "ROOT", tmp_path)
    monkeypatch.setattr(REFERENCE, "DOC", stale)

    assert REFERENCE.main(["--check"]) == 1
    assert capsys.readouterr().err == (
        "docs/cli.md is not current: run `python scripts/cli_reference.py`\n"
    )
    assert REFERENCE.main([]) == 0  # rewritten in place, the text around it kept
    fresh = stale.read_text(encoding="utf-8")
    assert fresh.startswith(f"# x\n\n{REFERENCE.BEGIN}\n\n- [`promotion-bot comment`]")
    assert "old text" not in fresh and fresh.endswith(f"{REFERENCE.END}\n")
    assert REFERENCE.main(["--check"]) == 0


def test_a_page_without_its_markers_is_refused() -> None:
    with pytest.raises(SystemExit, match="needs one"):
        REFERENCE.rendered("# no markers\n", cli)


# --- the JSON shapes the page documents ------------------------------------------------------


def shape(value: Any) -> Any:
    """Keys and value types, a list by its first item: what a script depends on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def documented(heading: str, fence: str = "json") -> str:
    """The first fenced block of `fence` after `heading` in docs/cli.md."""
    section = DOC.read_text(encoding="utf-8").split(f"\n{heading}", 1)[1]
    found = re.search(rf"```{fence}\n(.*?)\n```", section, re.DOTALL)
    assert found, heading
    return found.group(1)


def test_status_json_is_as_documented() -> None:
    doc = json.loads(documented("### `status --json`"))
    assert shape(doc) == shape(json.loads(status_json([DRIFTED])))


def test_verify_json_is_as_documented() -> None:
    result = Verification(ChampionCheck("churn", 2, last=APPROVED, approved=APPROVED))
    doc = json.loads(documented("### `verify --format json`"))
    assert shape(doc) == shape(json.loads(verifications_json([result])))


def test_history_json_is_as_documented() -> None:
    fields = documented("### `history --format json`", fence="text")
    assert [name.strip() for name in fields.replace("\n", " ").split(",")] == list(FIELDS)
    keys = re.search(r"`approvers` is a list\s+of `\{(.*?)\}`", DOC.read_text(encoding="utf-8"))
    assert keys is not None
    stored = Approver("maria", "1", "maintainer").stored()
    assert [key.strip().strip('"') for key in keys.group(1).split(",")] == list(stored)
    at = json.loads(documented("### `history --format json`").replace("…", ""))
    assert list(at) == list(json.loads(render_at("churn", 0, APPROVED, "json")))


def test_the_error_line_is_as_documented() -> None:
    doc = json.loads(documented("**Errors.**", fence="json").strip())
    line = json.loads(error_output("params.yaml: broken", "json", 1))
    assert shape(doc) == shape(line)
