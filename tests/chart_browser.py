"""Render Mermaid text the way GitHub and GitLab do, in a real browser: Debian's Chromium, headless,
loading the `mermaid` npm package pinned in tests/render/ (installed by .ci/run with `npm ci`).
Nothing is fetched at test time: the page and the library are local files, and host names
resolve to nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import pytest

RENDER_DIR = Path(__file__).resolve().parent / "render"
MERMAID_JS = RENDER_DIR / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
CHROMIUM_HINT = "apt-get install -y chromium   (.ci/run does this)"
MERMAID_HINT = f"cd {RENDER_DIR} && npm ci --no-audit --no-fund   (.ci/run does this)"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="{script}"></script></head>
<body style="margin:0;background:#fff"><div id="chart"></div><pre id="error"></pre>
<script>
mermaid.initialize({{startOnLoad: false}});
mermaid.render("trend", {text}).then(
  (out) => {{ document.getElementById("chart").innerHTML = out.svg; }},
  (err) => {{ document.getElementById("error").textContent = String((err && err.message) || err); }}
);
</script></body></html>
"""
# Headless, no sandbox (root in CI), and nothing that reaches out: no sync, no component
# updates, no background networking, every host name resolving to nothing.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=15000",
]


@dataclass(frozen=True)
class Rendered:
    svg: str  # the <svg> Mermaid produced ("" when it failed)
    error: str  # Mermaid's error message ("" when it rendered)

    def line_points(self) -> list[tuple[float, float]]:
        """The vertices of the chart's line (Mermaid draws it as one `M x,y L x,y ...` path)."""
        found = re.search(r'class="line-plot-0"[^>]*>\s*<path d="([^"]+)"', self.svg)
        if found is None:
            return []
        pairs = re.findall(r"[ML]\s*(-?[\d.]+)[ ,](-?[\d.]+)", found.group(1))
        return [(float(x), float(y)) for x, y in pairs]

    def texts(self) -> list[str]:
        return [unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", self.svg)]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(f"chromium is not on PATH: {CHROMIUM_HINT}")
    return found


def mermaid_script() -> Path:
    if not MERMAID_JS.is_file():
        pytest.fail(f"the mermaid package is not installed: {MERMAID_HINT}")
    return MERMAID_JS


def render(text: str, folder: Path, screenshot: Path | None = None) -> Rendered:
    """Render `text` in headless Chromium; optionally also save a PNG of the page."""
    page = folder / "chart.html"
    script = mermaid_script().as_uri()
    page.write_text(PAGE.format(script=script, text=json.dumps(text)), encoding="utf-8")
    dom = _chromium(folder, "--dump-dom", page)
    if screenshot is not None:
        _chromium(folder, f"--screenshot={screenshot}", page, "--window-size=760,540")
    chart = re.search(r'<div id="chart">(.*?)</div><pre id="error">', dom, re.DOTALL)
    error = re.search(r'<pre id="error">(.*?)</pre>', dom, re.DOTALL)
    assert chart is not None and error is not None, f"the page did not load:\n{dom[:2000]}"
    return Rendered(svg=chart.group(1).strip(), error=unescape(error.group(1)).strip())


def _chromium(folder: Path, action: str, page: Path, *extra: str) -> str:
    profile = folder / "chromium-profile"
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, action, page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout
