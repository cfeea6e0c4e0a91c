"""The command line's shared options (bot/config/cli_options.py) and its failures as the script
prints them (`bot.cli.main`, docs/design.md, "Command line"): -v and --log-format before or
after the command, errors as JSON lines with `--log-format json`, the forge's options shown only
by the commands that talk to the forge, `promotion-bot` alone, and the two `--version`s.

Run through the installed script's entry point in this process (tests/helpers.py, run_main),
as a user runs it, except the help pages, which click renders the same either way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import __version__
from bot.cli import cli
from tests.helpers import log_training_run, run_main

FORGE_OPTIONS = ("--platform", "--gitlab-url", "--project", "--github-api-url", "--repo",
                 "--local-dir")  # fmt: skip
TALK_TO_THE_FORGE = ("request", "handle", "poll", "serve", "comment", "status")
REGISTRY_ONLY = ("register", "gate", "history", "verify")


def help_of(command: str) -> str:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def options_in(help_text: str) -> set[str]:
    return {word.rstrip(",") for word in help_text.split() if word.startswith("--")}


@pytest.fixture
def broken_params(tmp_path: Path) -> Path:
    """A params.yaml that fails as soon as a command reads it (before any service is asked)."""
    path = tmp_path / "params.yaml"
    path.write_text("promote_model:\n  tolerance: abc\n", encoding="utf-8")
    return path


Run = tuple[pytest.MonkeyPatch, pytest.CaptureFixture[str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    return monkeypatch, capsys


BROKEN = "params.yaml: promote_model.tolerance: Input should be a valid number"


# --- promotion-bot alone ---------------------------------------------------------------------


def test_no_command_prints_the_help_as_click_does(run: Run) -> None:
    code, out, err = run_main(*run)
    assert (code, out) == (2, "")  # click's convention: no command is a usage error
    assert err.startswith("Usage: promotion-bot [OPTIONS] COMMAND [ARGS]...\n")
    assert "error:" not in err.lower() and "Commands:\n" in err and "  verify " in err


# --- -v and --log-format, before or after the command ----------------------------------------


@pytest.mark.parametrize(
    "argv", [["-v", "gate"], ["gate", "-v"], ["gate", "--verbose"]], ids=" ".join
)
@pytest.mark.usefixtures("broken_params")
def test_verbose_before_or_after_the_command_shows_the_traceback(run: Run, argv: list[str]):
    code, out, err = run_main(*run, *argv)
    assert (code, out) == (1, "")
    assert "Traceback (most recent call last)" in err and "ConfigError" in err
    assert err.splitlines()[-1] == f"error: {BROKEN}"


@pytest.mark.usefixtures("broken_params")
def test_without_verbose_an_error_is_one_line(run: Run) -> None:
    assert run_main(*run, "gate") == (1, "", f"error: {BROKEN}\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-format", "json", "gate"],
        ["gate", "--log-format", "json"],
        ["gate", "--log-format=json"],
    ],
    ids=" ".join,
)
@pytest.mark.usefixtures("broken_params")
def test_log_format_json_makes_the_error_a_json_line(run: Run, argv: list[str]) -> None:
    code, out, err = run_main(*run, *argv)
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    error = json.loads(line)
    assert error.pop("time")
    assert error == {
        "level": "error",
        "logger": "promotion-bot",
        "message": BROKEN,
        "exit_code": 1,
    }


@pytest.mark.usefixtures("broken_params")
def test_json_with_verbose_carries_the_traceback_in_the_line(run: Run) -> None:
    code, _, err = run_main(*run, "gate", "-v", "--log-format", "json")
    assert code == 1
    error = json.loads(err.splitlines()[-1])
    assert error["message"] == BROKEN and "Traceback" in error["traceback"]
    assert all(line.startswith("{") for line in err.splitlines())  # nothing in plain text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--log-format", "json", "gate", "--bogus"], "No such option '--bogus'"),
        (["gate", "--log-format", "json", "--bogus"], "No such option '--bogus'"),
        (["--log-format", "json", "nosuchcommand"], "No such command 'nosuchcommand'"),
        (
            ["history", "--log-format", "json", "--since", "1d", "--until", "2d"],
            "--since ",
        ),
    ],
    ids=" ".join,
)
def test_a_usage_error_is_a_json_line_too(run: Run, argv: list[str], message: str) -> None:
    code, out, err = run_main(*run, *argv)
    assert (code, out) == (2, "")
    [line] = err.splitlines()
    error = json.loads(line)
    assert error["level"] == "error" and error["exit_code"] == 2
    assert error["message"].startswith(message)


@pytest.mark.usefixtures("broken_params")
def test_an_inverted_range_is_one_error_line(run: Run) -> None:
    """`history --since` after `--until` matches nothing: a mistake, said before anything is
    read (here a broken params.yaml would be the error otherwise)."""
    code, out, err = run_main(*run, "history", "--since", "2026-12-08", "--until", "2026-12-01")
    assert (code, out) == (2, "")
    assert err == (
        "error: --since 2026-12-08T00:00:00.000Z is after --until 2026-12-01T00:00:00.000Z: "
        "nothing can lie between them (swap the two?) (see 'promotion-bot history --help')\n"
    )


# --- which options each command shows --------------------------------------------------------


@pytest.mark.parametrize("command", TALK_TO_THE_FORGE)
def test_a_command_that_talks_to_the_forge_shows_its_options(command: str) -> None:
    shown = options_in(help_of(command))
    assert set(FORGE_OPTIONS) <= shown
    assert {"--params", "--tracking-uri", "--model", "--verbose", "--log-format"} <= shown


@pytest.mark.parametrize("command", REGISTRY_ONLY)
def test_a_command_that_never_asks_the_forge_shows_none_of_its_options(command: str) -> None:
    shown = options_in(help_of(command))
    assert shown.isdisjoint(FORGE_OPTIONS), sorted(shown & set(FORGE_OPTIONS))
    assert {"--params", "--tracking-uri", "--model", "--verbose", "--log-format"} <= shown


@pytest.mark.parametrize(
    "command", [c for c in (*TALK_TO_THE_FORGE, *REGISTRY_ONLY) if c not in ("register", "request")]
)
def test_who_requested_is_an_option_of_register_and_request_alone(command: str) -> None:
    assert "--requested-by" in options_in(help_of("register"))
    assert "--requested-by" in options_in(help_of("request"))
    assert "--requested-by" not in options_in(help_of(command))


def test_the_forge_options_are_still_accepted_where_they_are_not_shown(run: Run) -> None:
    """One set of options for every command, as one environment serves them all: `history`
    takes `--platform` and `--repo` (and ignores them) instead of failing a uniform CI script."""
    code, _, err = run_main(
        *run, "history", "--platform", "github", "--repo", "a/b", "--since", "2d", "--until", "3d"
    )
    assert code == 2 and "--since " in err and "No such option" not in err


# --- the bot's --version and a command's --version N -----------------------------------------


def test_the_bots_version_stands_before_the_command(run: Run) -> None:
    assert run_main(*run, "--version") == (0, f"promotion-bot, version {__version__}\n", "")


@pytest.mark.parametrize("command", ["gate", "request"])
def test_a_commands_version_without_a_number_says_which_version_is_which(
    run: Run, command: str
) -> None:
    code, out, err = run_main(*run, command, "--version")
    assert (code, out) == (2, "")
    assert err == (
        f"error: Invalid value for '--version': give the model version: promotion-bot {command} "
        f"--version N (the bot's own version: promotion-bot --version) "
        f"(see 'promotion-bot {command} --help')\n"
    )


@pytest.mark.parametrize("value", ["0", "x", "1.5", "²"])
def test_a_model_version_is_a_positive_number(run: Run, value: str) -> None:
    code, _, err = run_main(*run, "gate", "--version", value)
    assert code == 2 and f"{value!r} is no version number (1, 2, ...)" in err


def test_gate_version_n_gates_that_model_version(
    run: Run, tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    (tmp_path / "params.yaml").write_text(f"register_model:\n  model_name: {model_name}\n")
    uri = ("--tracking-uri", tracking_uri)
    for logloss in (0.6, 0.5):
        run_id = log_training_run(tracking_uri, {"final.logloss": logloss})
        assert run_main(*run, "register", "--run-id", run_id, *uri)[0] == 0
    code, out, err = run_main(*run, "gate", "--version", "1", *uri)
    assert code == 0, err
    assert out.startswith(f"PASS {model_name} v1: final.logloss 0.6 vs candidate none")
