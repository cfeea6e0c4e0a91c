"""`--help` and `--version` start fast: no MLflow, no forge clients, no pydantic (docs/design.md,
"Command line")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot import __version__

HEAVY = ("mlflow", "github", "gitlab", "pydantic")

# Runs the real entry point and, at interpreter exit (after main()'s sys.exit), reports which
# heavy top-level packages were imported.
PROBE = """
import atexit, json, sys
HEAVY = {heavy!r}
def report():
    loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set(HEAVY))
    sys.stderr.write("LOADED=" + json.dumps(loaded) + "\\n")
atexit.register(report)
from bot.cli import main
sys.argv = ["promotion-bot", *{argv!r}]
main()
"""


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def loaded(stderr: str) -> list[str]:
    [line] = [line for line in stderr.splitlines() if line.startswith("LOADED=")]
    return list(json.loads(line.removeprefix("LOADED=")))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--version"],
        ["register", "--help"],
        ["gate", "--help"],
        ["history", "--help"],
        ["import-ledger", "--help"],
        ["status", "-v", "--log-format", "json", "--help"],
    ],
    ids=" ".join,
)
def test_help_and_version_do_not_import_heavy_packages(argv: list[str]):
    done = python("-c", PROBE.format(heavy=HEAVY, argv=argv))
    assert done.returncode == 0, done.stderr
    assert loaded(done.stderr) == []
    if argv == ["--version"]:
        assert done.stdout == f"promotion-bot, version {__version__}\n"
    else:
        assert done.stdout.startswith("Usage: promotion-bot")


def test_no_command_prints_the_help_without_heavy_imports():
    done = python("-c", PROBE.format(heavy=HEAVY, argv=[]))
    assert done.returncode == 2  # click's convention for a missing command
    assert done.stderr.startswith("Usage: promotion-bot") and "error:" not in done.stderr
    assert loaded(done.stderr) == []


def test_the_probe_would_see_a_heavy_import():
    """The check above can fail: a command that runs reads params.yaml, with pydantic."""
    done = python("-c", PROBE.format(heavy=HEAVY, argv=["status", "--params", "missing.yaml"]))
    assert done.returncode == 1
    assert "pydantic" in loaded(done.stderr)


def imported_by(stderr: str) -> set[str]:
    """Top-level package names from `-X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            names.add(name.split(".")[0])
    return names


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_python_m_bot_help_starts_without_heavy_imports(flag: str):
    done = python("-X", "importtime", "-m", "bot", flag)
    assert done.returncode == 0, done.stderr[-2000:]
    names = imported_by(done.stderr)
    assert "click" in names and "bot" in names  # the import log was read
    assert names.isdisjoint(HEAVY), sorted(names & set(HEAVY))
    if flag == "--help":
        for command in ("register", "gate", "status", "history", "demo"):
            assert command in done.stdout
