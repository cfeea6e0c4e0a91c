"""Count HTTP round trips, per service, and remember which bot code made each one.

Every HTTP client involved (MLflow's REST client, python-gitlab, PyGithub) sends through
`requests.Session.send`, above the transport adapter that `responses` patches. Wrapping it counts
mocked forge calls and real MLflow calls alike, including each retry a session makes itself.
"""

from __future__ import annotations

import re
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

BOT_DIR = Path(__file__).resolve().parent.parent / "bot"
_NUMBER = re.compile(r"/\d+(?=/|$)")
_GITLAB_PROJECT = re.compile(r"^/api/v4/projects/[^/]+")
_GITHUB_REPO = re.compile(r"^/repos/[^/]+/[^/]+")
_MLFLOW_CLIENT = str(Path("mlflow") / "tracking" / "client.py")


@dataclass(frozen=True)
class Call:
    service: str  # mlflow | gitlab | github | other
    method: str
    path: str  # without query; numbers as :n, project/repo prefix dropped
    site: str  # the bot frames that made the call, outermost first
    mlflow: str = ""  # MlflowClient methods on the stack (shows calls MLflow adds on its own)


@dataclass
class HttpLog:
    """Installed once; records only inside `measure()`."""

    services: dict[str, str] = field(default_factory=dict)  # URL prefix -> service name
    calls: list[Call] = field(default_factory=list)
    _active: bool = False
    _original: Callable[..., Any] | None = None

    def install(self) -> None:
        if self._original is not None:
            return
        original = requests.Session.send
        log = self

        def send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
            if log._active:
                log.calls.append(log._call(request.method or "GET", str(request.url)))
            return original(session, request, **kwargs)

        self._original = original
        requests.Session.send = send  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            requests.Session.send = self._original  # type: ignore[method-assign]
            self._original = None

    @contextmanager
    def measure(self) -> Iterator[list[Call]]:
        """Collect the calls made inside the block into the yielded list."""
        start = len(self.calls)
        self._active = True
        taken: list[Call] = []
        try:
            yield taken
        finally:
            self._active = False
            taken.extend(self.calls[start:])

    def _call(self, method: str, url: str) -> Call:
        service = next(
            (name for prefix, name in self.services.items() if url.startswith(prefix)), "other"
        )
        inner = mlflow_site() if service == "mlflow" else ""
        return Call(service, method.upper(), short_path(service, url), bot_site(), inner)


def short_path(service: str, url: str) -> str:
    path = urlsplit(url).path  # still quoted: a GitLab project path is one segment
    if service == "gitlab":
        path = _GITLAB_PROJECT.sub("/projects/:p", path)
    elif service == "github":
        path = _GITHUB_REPO.sub("/repos/:o/:r", path)
    return _NUMBER.sub("/:n", unquote(path))


def bot_site() -> str:
    """`module.function:line` of every bot frame on the stack, outermost first."""
    frames = []
    for frame in traceback.extract_stack():
        file = Path(frame.filename)
        if BOT_DIR not in file.parents:
            continue
        module = file.relative_to(BOT_DIR).with_suffix("").as_posix().replace("/", ".")
        if module.startswith("forges._"):
            continue  # retry plumbing: the adapter frame above it names the operation
        frames.append(f"{module}.{frame.name}:{frame.lineno}")
    return " > ".join(frames)


def mlflow_site() -> str:
    """The `MlflowClient` methods on the stack, outermost first (e.g. `set_registered_model_alias
    > _raise_if_prompt > get_registered_model`: a read MLflow makes before every write)."""
    names = [
        frame.name for frame in traceback.extract_stack() if frame.filename.endswith(_MLFLOW_CLIENT)
    ]
    return " > ".join(names)


def count(calls: list[Call]) -> dict[str, int]:
    return dict(Counter(call.service for call in calls))


def summary(calls: list[Call]) -> list[dict[str, str]]:
    """Each call as a row for results.json: service, `METHOD path`, and the innermost bot sites."""
    rows = []
    for call in calls:
        row = {"service": call.service, "call": f"{call.method} {call.path}"}
        row["site"] = short_site(call.site)
        if call.mlflow:
            row["mlflow_client"] = call.mlflow
        rows.append(row)
    return rows


def short_site(site: str, depth: int = 3) -> str:
    """The last `depth` modules of a site: the innermost frame of each caller module and the
    outermost (public) frame of the module that made the call, e.g.
    `handler._handle_locked:87 > change.recover_pending:129 > registry.pending:219`."""
    runs: list[list[str]] = []
    for frame in site.split(" > ") if site else []:
        module = frame.rsplit(".", 1)[0]
        if runs and runs[-1][0].rsplit(".", 1)[0] == module:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    kept = [run[-1] for run in runs[:-1]] + ([runs[-1][0]] if runs else [])
    return " > ".join(kept[-depth:])
