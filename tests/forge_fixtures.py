"""Forge REST fixtures (tests/fixtures/{gitlab,github}/*.json) and URL helpers for `responses`.

The JSON files follow the shapes of real GitLab/GitHub responses (trimmed): GitLab's API docs
examples and a 2025 gitlab.com MR; GitHub's 2022 octokit recordings, webhook objects and
PyGithub replay data.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _load(platform: str, name: str) -> Any:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text(encoding="utf-8"))


def fixture(platform: str, name: str, **changes: Any) -> Any:
    """A fresh copy of a fixture; keyword arguments replace top-level keys of an object."""
    data = copy.deepcopy(_load(platform, name))
    if changes:
        data.update(changes)
    return data


def gitlab(name: str, **changes: Any) -> Any:
    return fixture("gitlab", name, **changes)


def github(name: str, **changes: Any) -> Any:
    return fixture("github", name, **changes)


def github_url(path: str, api_url: str = "https://api.github.com") -> re.Pattern[str]:
    """Match PyGithub's URLs: it adds an explicit :443, and may add a query string."""
    parts = urlsplit(api_url)
    prefix = parts.path.rstrip("/")
    return re.compile(
        re.escape(f"{parts.scheme}://{parts.hostname}")
        + r"(:443)?"
        + re.escape(prefix + path)
        + r"(\?.*)?$"
    )


def body_of(call: Any) -> Any:
    """The JSON body a recorded request sent."""
    raw = call.request.body
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def query_of(call: Any) -> dict[str, str]:
    """The query string of a recorded request, as a flat dict."""
    return {key: value for key, value in call.request.params.items()}
