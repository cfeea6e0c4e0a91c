"""The README's "Try it without a forge" block, run as a newcomer pastes it: in a fresh folder
with the repository's params.yaml and scripts/, through bash and the installed `promotion-bot`.

Its comments are promises: the first `/promote` is refused for the checklist, the second makes
v1 champion, and `history` and `status` show it. A block that stops keeping them (a missing
variable once left every `/promote` refused) fails here, not in a newcomer's terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_block(section: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)\n```", body, re.DOTALL)
    assert match, f"no bash block under '## {section}'"
    return match.group(1)


@pytest.mark.slow
def test_try_it_without_a_forge_does_what_its_comments_say(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    # The interpreter running the tests is the one with the bot installed (`python`, too).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])

    done = subprocess.run(
        ["bash", "-e", "-c", readme_block("Try it without a forge")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    first, second = out.index("refused: checklist"), out.index("changed: no champion -> v1")
    assert first < second
    assert re.search(r"promote\s+none -> v1\s+by maria \(maintainer\)", out), out[-2000:]
    assert re.search(r"@champion\s+v1\b", out)
    assert "champion: as the audit ledger records it" in out
