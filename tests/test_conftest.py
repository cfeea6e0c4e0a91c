"""tests/conftest.py marks every test that needs MLflow, so `-m "not slow and not mlflow"` is a
fast run that starts no `mlflow server`.

Checked on the real suite, collected (never run) in a separate pytest process: the marks must be
there before `-m` deselects, which only a real collection shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collected(*args: str) -> set[str]:
    """The node ids a collection-only run selects."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {line for line in done.stdout.splitlines() if line.startswith("tests/")}


def test_tests_using_the_mlflow_server_are_marked_and_pure_ones_are_not() -> None:
    files = ["tests/test_handler.py", "tests/test_teams.py", "tests/test_mlflow_webhook.py"]
    selected = collected("-m", "mlflow", *files, "tests/test_markers.py")
    expected = {
        # through pg -> make_pg -> tracking_uri -> mlflow_server
        "tests/test_handler.py::"
        "test_promote_makes_the_candidate_champion_with_one_answer_and_one_record",
        # through a fixture of the test module that asks for tracking_uri
        "tests/test_teams.py::test_a_team_member_promotes[gitlab]",
        "tests/test_mlflow_webhook.py::"
        "test_an_external_change_is_reported_once_in_the_latest_request",
        # its own server, marked by hand
        "tests/test_mlflow_webhook.py::test_mlflow_delivers_a_signed_alias_event_we_accept",
    }
    assert expected <= selected
    pure = [name for name in selected if "test_parse_alias_change" in name]
    assert pure == [] and not any(name.startswith("tests/test_markers.py") for name in selected)
