"""`promotion-bot demo`: the whole story on an embedded registry, in its own folder only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.mlflow  # an embedded registry, in a subprocess
def test_demo_tells_the_whole_story_and_writes_only_into_its_folder(tmp_path: Path) -> None:
    cwd = tmp_path / "project"
    cwd.mkdir()
    folder = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--dir", str(folder)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "refused: not_eligible" in out  # sam, a reporter
    assert "refused: checklist" in out
    assert "changed: no champion -> v1" in out
    assert "changed: v1 -> v3" in out and "changed: v3 -> v1" in out  # promote, then rollback
    assert "gate: failed, candidate unchanged" in out  # training 2 was worse
    assert list(cwd.iterdir()) == []  # nothing in the user's project
    threads = sorted((folder / "forge" / "threads").glob("*.json"))
    assert len(threads) == 2
    second = json.loads(threads[1].read_text())
    assert second["state"] == "closed"
    assert "traceback" not in result.stderr.lower()
