"""The status page in a real browser (headless Chromium, as tests/chart_browser.py drives it):
three models with champions, the page written by `report --html` and served by `serve` at /
behind basic auth. Chromium finds every model's champion in the DOM, logs no console error, and
asks no host but 127.0.0.1 for anything (every other name resolves to nothing, and the network
log lists every URL it requested). `serve`'s route is checked for its auth and headers too.

`UPDATE_STATUS_PNG=1 pytest tests/test_status_page_browser.py` rewrites docs/status-page.png (a
phone-width screenshot of the served page) from the same run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner

from bot.cli import cli
from bot.config.model_set import load_models
from bot.config.settings import Secret
from bot.intake.entry import serve_app
from bot.intake.http_server import HttpServer
from bot.runtime.context import Context
from tests.chart_browser import FLAGS, chromium
from tests.promotion_env import Playground, make_context

PASSWORD = "correct horse battery staple"
# Every name resolves to nothing but the loopback address `serve` listens on.
BROWSER = [f for f in FLAGS if not f.startswith("--host-resolver-rules")]
BROWSER.append("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
# Chromium's network traffic annotations (hashes of their stable names) of what a page makes it
# fetch: the navigation, a resource the document loads (image, style, script, font), its favicon.
# The browser's own background services (time, updates, accounts) carry other annotations: they
# are Chromium's traffic, not the page's.
PAGE_TRAFFIC = {63171670, 101845102, 112189210}
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "status-page.png"


@dataclass
class Models:
    names: list[str]
    champions: dict[str, int]
    params: Path
    ctx: Context


@pytest.fixture
def models(tracking_uri: str, model_name: str, tmp_path: Path) -> Models:
    test = model_name.split("-")[0]  # unique on the session's server
    names = [f"{suffix}-{test}" for suffix in ("fraud", "churn", "ranker")]
    champions = {}
    for index, name in enumerate(names):
        pg = Playground(make_context(tracking_uri, name, tmp_path), tmp_path)
        pg.setup_people()
        for step in range(3 + index):
            version = pg.train(0.6 - 0.02 * step - 0.01 * index)
            if step < 2 + index:
                pg.comment(pg.open_request(version), "maria", "/promote")
        champions[name] = pg.champion() or 0
        if index == 1:
            pg.open_request(version)  # the candidate's request stays open
    params = tmp_path / "models.yaml"
    params.write_text(
        "models:\n" + "".join(f"  - register_model: {{model_name: {n}}}\n" for n in names)
    )
    settings = make_context(tracking_uri, names[0], tmp_path).settings.with_overrides(
        status_password=Secret(PASSWORD)
    )
    served = load_models(params)
    ctx = Context(settings=settings, params=served.models[0], models=served)
    return Models(names, champions, params, ctx)


def browse(url: str, folder: Path, *extra: str) -> tuple[str, list[str], str]:
    """The DOM Chromium built, every URL it requested (from its net log), and its console."""
    netlog = folder / f"net-{len(list(folder.glob('net-*')))}.json"
    command = [
        chromium(),
        *BROWSER,
        f"--user-data-dir={folder / 'profile'}",
        f"--log-net-log={netlog}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, _requested(netlog), done.stderr


def _requested(netlog: Path) -> list[str]:
    """The URLs the page made Chromium request, from the net log's request events."""
    events = json.loads(netlog.read_text(encoding="utf-8"))["events"]
    return sorted(
        {
            params["url"]
            for event in events
            if (params := event.get("params") or {}).get("traffic_annotation") in PAGE_TRAFFIC
            and "url" in params
        }
    )


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]


def _hosts(urls: list[str]) -> set[str]:
    return {urlsplit(u).hostname or "" for u in urls if not u.startswith(("data:", "about:"))}


@pytest.fixture
def served(models: Models) -> Iterator[str]:
    app = serve_app(models.ctx)
    server = HttpServer(app, "127.0.0.1", 0)
    app.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"grace": 2}, daemon=True)
    thread.start()
    host, port = server.addresses[0]
    yield f"http://{host}:{port}"
    server.shutdown()
    thread.join(10)
    app.stop(5)


def _once_built(served: str, seconds: float = 60) -> requests.Response:
    deadline = time.monotonic() + seconds
    while True:
        answer = requests.get(f"{served}/", auth=("anyone", PASSWORD), timeout=60)
        if "Models and their champions" in answer.text or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def _champions_in(dom: str) -> dict[str, str]:
    sections = re.findall(r"<h2>([^<]+)</h2>.*?class=\"champion\">(.*?)</dd>", dom, re.DOTALL)
    return {name: re.sub(r"<[^>]+>", "", champion) for name, champion in sections}


def test_the_file_form_in_chromium(models: Models, tmp_path: Path) -> None:
    page = tmp_path / "status.html"
    data = tmp_path / "status.json"
    connection = ["--params", str(models.params), "--platform", "local"]
    connection += ["--local-dir", str(models.ctx.settings.local_dir)]
    connection += ["--tracking-uri", models.ctx.settings.tracking_uri]
    command = ["report", "--html", str(page), "--json", str(data), *connection]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert [m["champion"] for m in json.loads(data.read_text())["models"]] == [
        models.champions[n] for n in models.names
    ]
    dom, urls, stderr = browse(page.as_uri(), tmp_path, "--dump-dom")
    assert _champions_in(dom) == {n: f"v{models.champions[n]}" for n in models.names}
    assert _console_errors(stderr) == []
    assert _hosts(urls) == set(), urls  # a file: not even a request for itself
    assert dom.count("<svg") == 3


def test_the_serve_form_in_chromium_behind_basic_auth(
    models: Models, served: str, tmp_path: Path
) -> None:
    assert requests.get(f"{served}/", timeout=30).status_code == 401
    wrong = requests.get(f"{served}/", auth=("anyone", "wrong"), timeout=30)
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic ")
    right = requests.get(f"{served}/", auth=("anyone", PASSWORD), timeout=60)
    assert right.status_code == 200, right.text
    if "Models and their champions" not in right.text:  # `serve` builds it in the background
        assert '<meta http-equiv="refresh"' in right.text, right.text
        right = _once_built(served)
    assert right.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert PASSWORD not in right.text

    host = urlsplit(served).netloc
    url = f"http://viewer:{PASSWORD.replace(' ', '%20')}@{host}/"
    dom, urls, stderr = browse(url, tmp_path, "--dump-dom")
    assert _champions_in(dom) == {n: f"v{models.champions[n]}" for n in models.names}
    assert _console_errors(stderr) == []
    assert _hosts(urls) == {"127.0.0.1"}, urls
    shot = SCREENSHOT if os.environ.get("UPDATE_STATUS_PNG") else tmp_path / "status.png"
    browse(url, tmp_path, f"--screenshot={shot}", "--window-size=420,1400")
    assert shot.stat().st_size > 10_000


def test_a_page_that_reaches_out_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a page with an outside image and style is seen asking."""
    page = tmp_path / "leaky.html"
    page.write_text(
        '<!doctype html><img src="https://tracker.example/p.png">'
        '<link rel="stylesheet" href="http://cdn.example/s.css">'
    )
    _, urls, _ = browse(page.as_uri(), tmp_path, "--dump-dom")
    assert _hosts(urls) == {"tracker.example", "cdn.example"}


def test_serve_shows_no_page_without_a_password(models: Models, tmp_path: Path) -> None:
    settings = models.ctx.settings.with_overrides(status_password=Secret(""))
    ctx = Context(settings=settings, params=models.ctx.params, models=models.ctx.models)
    app = serve_app(ctx)
    status: list[str] = []
    body = app({"PATH_INFO": "/", "REQUEST_METHOD": "GET"}, lambda s, h: status.append(s))
    assert status == ["404 Not Found"] and b"champion" not in b"".join(body)
