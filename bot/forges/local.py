"""The `local` forge: requests and comments as JSON files in a folder (docs/design.md, "The local
platform and the demo").

How people try the bot without GitLab or GitHub, and what the demo and most tests run on.
Layout under the folder (settings.local_dir, default `.promotion-bot/`):

- `local.json`: counters (`next_thread`, `next_comment`), member `roles`, the `commits` log;
- `threads/<number>.json`: one thread with its comments;
- `branches/<branch>/<path>`: files committed by `commit_file`.

Several processes may use one folder at once (the CLI `comment` command next to `poll`, the
server's worker threads): every read-modify-write holds an exclusive `flock` on `.lock`, and
every file is replaced atomically, so readers never take the lock and never see half a file.
Reads never create anything, so a `--dry-run` leaves a fresh folder untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import ForgeError, ForgeNotFoundError
from bot.forges.base import ALL_KINDS, ROLE_LEVELS, Deployment, Forge, role_level
from bot.threads.thread import NOBODY, Comment, ProjectRef, Recipients, Thread, ThreadKind
from bot.timestamps import parse_iso

if TYPE_CHECKING:
    from bot.config.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BOT = "promotion-bot"
_MARKER_RE = re.compile(r"[ \t]*<!--.*?-->", re.DOTALL)
_STATE_FILTERS = {"open": {"open"}, "closed": {"closed", "merged"}, "all": None}


def utc_now() -> str:
    """ISO 8601 with milliseconds and `Z`, the shape GitLab reports (sortable as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def readable(body: str) -> str:
    """A body as a person reads it in a terminal: hidden markers dropped."""
    lines = [line.rstrip() for line in _MARKER_RE.sub("", body).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class LocalForge(Forge):
    """A forge whose threads are files; implements `bot.forges.base.Forge`."""

    platform = "local"

    def __init__(
        self,
        root: str | Path,
        bot_name: str = "",
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        # Absolute once, so thread URLs stay the same whatever the working directory later is.
        self.root = Path(root).expanduser().resolve()
        self._bot = bot_name or DEFAULT_BOT
        self._echo = echo
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, echo: Callable[[str], None] | None = None
    ) -> LocalForge:
        return cls(settings.local_dir, bot_name=settings.bot_username, echo=echo)

    # --- identity and capabilities -------------------------------------------------------
    def bot_username(self) -> str:
        return self._bot

    def slash_promote_works(self) -> bool:
        return True  # nothing here eats `/promote`

    def project_ref(self) -> ProjectRef:
        return ProjectRef(path=self.root.as_posix())

    def ping(self) -> None:
        if not self.root.is_dir():
            raise ForgeError(f"local forge: {self.root} is not a folder")

    # --- requests --------------------------------------------------------------------------
    def find_threads(
        self,
        labels: Sequence[str],
        state: str = "open",
        kinds: Sequence[ThreadKind] = ALL_KINDS,
        author: str = "",
        since: str = "",
    ) -> list[Thread]:
        if state not in _STATE_FILTERS:
            raise ForgeError(f"local forge: unknown thread state filter {state!r}")
        wanted = _STATE_FILTERS[state]
        found = []
        for data in self._all_threads():
            if wanted is not None and data["state"] not in wanted:
                continue
            if data["kind"] not in kinds:
                continue
            if author and data.get("author", "").lower() != author.lower():
                continue
            if since and not _updated_since(data, since):
                continue
            if all(label in data.get("labels", []) for label in labels):
                found.append(self._thread(data))
        return sorted(found, key=lambda thread: int(thread.number), reverse=True)

    def get_thread(self, kind: ThreadKind, number: str) -> Thread:
        """Numbers are unique across kinds here, so `kind` is only a hint (the CLI has none)."""
        return self._thread(self._read_thread(number))

    def open_issue(
        self, title: str, body: str, labels: Sequence[str], recipients: Recipients = NOBODY
    ) -> Thread:
        people = {"assignees": self._members(recipients.assignees)}
        thread = self._open("issue", title, body, labels, people)
        self._say(
            f"=== new issue #{thread.number}: {title} ===\n{thread.url}{_people(thread)}\n\n"
            f"{readable(body)}"
        )
        return thread

    def open_merge_request(
        self,
        title: str,
        body: str,
        labels: Sequence[str],
        source_branch: str,
        target_branch: str,
        recipients: Recipients = NOBODY,
    ) -> Thread:
        if not self._branch_dir(source_branch).is_dir():
            raise ForgeError(f"local forge: source branch {source_branch!r} does not exist")
        extra = {
            "source_branch": source_branch,
            "target_branch": target_branch,
            "assignees": self._members(recipients.assignees),
            "reviewers": self._members(recipients.reviewers),
        }
        thread = self._open("merge_request", title, body, labels, extra)
        self._say(
            f"=== new merge request #{thread.number} ({source_branch} -> {target_branch}): "
            f"{title} ===\n{thread.url}{_people(thread)}\n\n{readable(body)}"
        )
        return thread

    def _members(self, names: Sequence[str]) -> list[str]:
        """Like a forge, only people with a role can be assigned (teams are GitHub's)."""
        roles = self._read_meta().get("roles", {})
        return [name for name in names if role_level(roles.get(name.lower(), "none")) > 0]

    def update_body(self, thread: Thread, body: str) -> None:
        with self._locked():
            data = self._read_thread(thread.number)
            data["body"] = body
            self._touch_and_write(data)

    def close(self, thread: Thread) -> None:
        with self._locked():
            data = self._read_thread(thread.number)
            if data["state"] == "open":
                data["state"] = "closed"
                self._touch_and_write(data)

    def update_and_close(self, thread: Thread, body: str) -> None:
        with self._locked():
            data = self._read_thread(thread.number)
            data["body"] = body
            if data["state"] == "open":
                data["state"] = "closed"
            self._touch_and_write(data)

    def merge(self, thread: Thread, *, sha: str) -> None:
        with self._locked():
            data = self._read_thread(thread.number)
            if data["kind"] != "merge_request":
                raise ForgeError(f"local forge: #{thread.number} is an issue, not a merge request")
            if data["state"] != "open":
                raise ForgeError(f"local forge: #{thread.number} is {data['state']}, not open")
            head = self._head(data["source_branch"])
            if not sha or head != sha:
                raise ForgeError(f"local forge: the head of #{thread.number} is not {sha!r}")
            source = self._branch_dir(data["source_branch"])
            if source.is_dir():  # bring the committed record onto the target branch
                shutil.copytree(source, self._branch_dir(data["target_branch"]), dirs_exist_ok=True)
            data["state"] = "merged"
            self._touch_and_write(data)

    def is_approved(self, thread: Thread) -> bool:
        return bool(self._read_thread(thread.number).get("approved_by"))

    def approve(self, number: str, username: str) -> None:
        """Record a platform approval (what a reviewer's "Approve" button does on a forge)."""
        with self._locked():
            data = self._read_thread(number)
            approvers = data.setdefault("approved_by", [])
            if username not in approvers:
                approvers.append(username)
                self._touch_and_write(data)

    def commit_file(
        self, branch: str, from_ref: str, path: str, content: str, message: str
    ) -> None:
        relative = _safe_relative(path, "path")
        with self._locked():
            target = self._branch_dir(branch)
            if not target.is_dir():
                origin = self._branch_dir(from_ref)
                if origin.is_dir():
                    shutil.copytree(origin, target)
                else:  # a fresh folder has no `main` yet: branch from nothing
                    target.mkdir(parents=True)
            file = target / relative
            file.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(file, content)
            meta = self._read_meta()
            commits = meta.setdefault("commits", [])
            at = self._clock()
            # A commit id as a forge has one: the head an MR is merged at.
            made = f"{len(commits)}\0{branch}\0{path}\0{message}\0{at}\0{content}"
            commit_id = hashlib.sha1(made.encode(), usedforsecurity=False).hexdigest()
            commits.append(
                {"branch": branch, "path": path, "message": message, "at": at, "id": commit_id}
            )
            self._write_meta(meta)

    def branch_file(self, branch: str, path: str) -> Path:
        """Where `commit_file` put `path` on `branch` (for people and tests)."""
        return self._branch_dir(branch) / _safe_relative(path, "path")

    def commits(self) -> list[dict[str, str]]:
        return list(self._read_meta().get("commits", []))

    def _head(self, branch: str) -> str:
        """The last commit on `branch` ("" before any)."""
        made = [c for c in self.commits() if c.get("branch") == branch]
        return str(made[-1].get("id", "")) if made else ""

    # --- comments --------------------------------------------------------------------------
    def list_comments(self, thread: Thread, since: str = "") -> list[Comment]:
        comments = [_comment(raw) for raw in self._read_thread(thread.number)["comments"]]
        if since:
            cutoff = parse_iso(since)
            if cutoff is not None:
                comments = [c for c in comments if (parse_iso(c.created_at) or cutoff) >= cutoff]
        return comments

    def post_comment(self, thread: Thread, body: str, *, internal: bool = False) -> Comment:
        comment = self.add_comment(thread.number, self._bot, body, internal=internal)
        shown = " (internal)" if internal else ""
        self._say(f"--- {self._bot} on #{thread.number}{shown} ---\n{readable(body)}")
        return comment

    def add_comment(
        self, number: str, author: str, body: str, *, internal: bool = False
    ) -> Comment:
        """A comment by anyone (the CLI `comment` command's human); not echoed."""
        with self._locked():
            data = self._read_thread(number)
            meta = self._read_meta()
            comment_id = int(meta.get("next_comment", 1))
            meta["next_comment"] = comment_id + 1
            raw: dict[str, Any] = {
                "id": str(comment_id),
                "author": author,
                "body": body,
                "created_at": self._clock(),
            }
            if internal:
                raw["internal"] = True
            data["comments"].append(raw)
            # The counter is written first: a crash in between wastes an id, never reuses one.
            self._write_meta(meta)
            self._touch_and_write(data)
        return _comment(raw)

    def comment_url(self, thread: Thread, comment_id: str) -> str:
        return f"{thread.url}#comment-{comment_id}"

    def react(self, thread: Thread, comment_id: str, reaction: str) -> None:
        with self._locked():
            data = self._read_thread(thread.number)
            for raw in data["comments"]:
                if raw["id"] == str(comment_id):
                    reactions = raw.setdefault("reactions", [])
                    if reaction not in reactions:
                        reactions.append(reaction)
                        _atomic_write(self._thread_path(thread.number), _dump(data))
                    return
        log.debug("local forge: no comment %s on #%s to react to", comment_id, thread.number)

    # --- deployments -------------------------------------------------------------------------
    def record_deployment(self, deployment: Deployment) -> str:
        """Kept in local.json's `deployments`, oldest first, as a forge's history lists them."""
        with self._locked():
            meta = self._read_meta()
            made = meta.setdefault("deployments", [])
            number = str(len(made) + 1)
            made.append(
                {
                    "id": number,
                    "environment": deployment.environment,
                    "version": deployment.version,
                    "state": deployment.state,
                    "description": deployment.description,
                    "payload": deployment.payload(),
                    "environment_url": deployment.environment_url,
                    "log_url": deployment.log_url,
                    "at": self._clock(),
                }
            )
            self._write_meta(meta)
        return number

    def deployments(self) -> list[dict[str, Any]]:
        return list(self._read_meta().get("deployments", []))

    # --- people ----------------------------------------------------------------------------
    def access_level(self, username: str, user_id: str = "") -> int:
        role = self._read_meta().get("roles", {}).get(username.lower(), "none")
        return role_level(role)

    def team_member(self, team: str, username: str, user_id: str = "") -> bool:
        """local.json's `teams` ({"org/team": [names]}); members of a parent count, as on GitLab."""
        teams = self._read_meta().get("teams", {})
        return any(
            username.lower() in {name.lower() for name in names}
            for group, names in teams.items()
            if team == group or team.startswith(f"{group}/")
        )

    def set_role(self, username: str, role: str) -> None:
        """Make `username` a member with `role` (a GitLab or GitHub role name, or "none")."""
        if role.strip().lower() not in ROLE_LEVELS:
            known = ", ".join(sorted(ROLE_LEVELS))
            raise ForgeError(f"local forge: unknown role {role!r} (one of: {known})")
        with self._locked():
            meta = self._read_meta()
            meta.setdefault("roles", {})[username.lower()] = role.strip().lower()
            self._write_meta(meta)

    def roles(self) -> dict[str, str]:
        return dict(self._read_meta().get("roles", {}))

    # --- storage -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _open(
        self,
        kind: ThreadKind,
        title: str,
        body: str,
        labels: Sequence[str],
        extra: dict[str, Any],
    ) -> Thread:
        with self._locked():
            meta = self._read_meta()
            number = int(meta.get("next_thread", 1))
            meta["next_thread"] = number + 1
            now = self._clock()
            data: dict[str, Any] = {
                "kind": kind,
                "number": str(number),
                "title": title,
                "body": body,
                "state": "open",
                "author": self._bot,
                "labels": list(labels),
                "created_at": now,
                "updated_at": now,
                "approved_by": [],
                "comments": [],
                **extra,
            }
            self._write_meta(meta)
            self._thread_path(str(number)).parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(self._thread_path(str(number)), _dump(data))
        log.info("local forge: opened %s #%s", kind, number)
        return self._thread(data)

    def _touch_and_write(self, data: dict[str, Any]) -> None:
        data["updated_at"] = self._clock()
        _atomic_write(self._thread_path(data["number"]), _dump(data))

    def _thread_path(self, number: str) -> Path:
        if not (str(number).isascii() and str(number).isdigit()):  # "²" is a digit to isdigit
            raise ForgeNotFoundError(f"local forge: no thread #{number}")
        return self.root / "threads" / f"{int(number)}.json"

    def _branch_dir(self, branch: str) -> Path:
        return self.root / "branches" / _safe_relative(branch, "branch")

    def _read_thread(self, number: str) -> dict[str, Any]:
        path = self._thread_path(number)
        if not path.exists():
            raise ForgeNotFoundError(f"local forge: no thread #{number} in {self.root}")
        return _load(path)

    def _all_threads(self) -> list[dict[str, Any]]:
        folder = self.root / "threads"
        if not folder.is_dir():
            return []
        return [_load(path) for path in folder.glob("*.json")]

    def _read_meta(self) -> dict[str, Any]:
        path = self.root / "local.json"
        return _load(path) if path.exists() else {}

    def _write_meta(self, meta: dict[str, Any]) -> None:
        _atomic_write(self.root / "local.json", _dump(meta))

    def _thread(self, data: dict[str, Any]) -> Thread:
        return Thread(
            kind=data["kind"],
            number=str(data["number"]),
            title=data["title"],
            body=data["body"],
            url=self._thread_path(str(data["number"])).as_uri(),
            state=data["state"],
            author=data.get("author", ""),
            labels=tuple(data.get("labels", ())),
            updated_at=data.get("updated_at", ""),
            head_sha=self._head(data["source_branch"]) if data.get("source_branch") else "",
            assignees=tuple(data.get("assignees", ())),
            reviewers=tuple(data.get("reviewers", ())),
        )

    def _say(self, text: str) -> None:
        if self._echo is not None:
            self._echo(text)


def _people(thread: Thread) -> str:
    assigned = f"\nassigned to {', '.join(thread.assignees)}" if thread.assignees else ""
    asked = f"\nreview requested from {', '.join(thread.reviewers)}" if thread.reviewers else ""
    return assigned + asked


def _comment(raw: dict[str, Any]) -> Comment:
    return Comment(
        id=str(raw["id"]),
        author=raw["author"],
        body=raw["body"],
        created_at=raw.get("created_at", ""),
        internal=raw.get("internal") is True,
    )


def _safe_relative(path: str, what: str) -> Path:
    """A repository path or branch name that stays inside its folder."""
    relative = Path(path)
    if not path or relative.is_absolute() or ".." in relative.parts:
        raise ForgeError(f"local forge: {what} {path!r} must be relative, without '..'")
    return relative


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ForgeNotFoundError(f"local forge: {path} disappeared") from None
    except (OSError, ValueError) as exc:
        raise ForgeError(f"local forge: cannot read {path} ({exc})") from None
    if not isinstance(data, dict):
        raise ForgeError(f"local forge: {path} is not a JSON object")
    return data


def _atomic_write(path: Path, text: str) -> None:
    """Write to a temp file next to `path` and rename it over, so no reader sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _updated_since(data: dict[str, Any], since: str) -> bool:
    """Unreadable times count as updated: a thread is read again rather than missed."""
    cutoff, updated = parse_iso(since), parse_iso(str(data.get("updated_at", "")))
    return cutoff is None or updated is None or updated >= cutoff
