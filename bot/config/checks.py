"""What configuration values may be beyond their types: configuration refuses the ambiguous.

Names MLflow accepts, roles that may approve, paths that stay inside the repository, URLs the bot
can call and registries MLflow can open. params.yaml checks raise ValueError (pydantic names the
key); environment checks return a problem ("" when fine) for `Settings.validated` to name.
Messages show URLs redacted: a value may carry a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from bot.urls import redact_url

# The roles that may approve: GitLab developer|maintainer|owner, GitHub write|maintain|admin.
# Lower roles (guest, reporter, read, triage) and "none" would hand `/promote` to people who
# cannot even push.
MIN_ROLES = ("developer", "maintainer", "owner", "write", "maintain", "admin")
# Registries MLflow 3 opens (`mlflow.tracking._model_registry.utils`), file stores aside; a
# database scheme may name its driver (postgresql+psycopg2).
_DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
_DATABRICKS_SCHEMES = ("databricks", "databricks-uc", "uc")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def alias_name(value: str) -> str:
    """MLflow's rule for alias names, checked here so a typo fails before any registry call."""
    if not re.fullmatch(r"[\w-]{1,255}", value):
        raise ValueError(f"{value!r} is not an MLflow alias (letters, digits, _ and - only)")
    if value.lower() == "latest" or re.fullmatch(r"[vV]\d+", value):
        raise ValueError(f"{value!r} is reserved by MLflow")
    return value


def model_name(value: str) -> str:
    if "/" in value or ":" in value:
        raise ValueError(f"{value!r}: MLflow model names cannot contain '/' or ':'")
    # The bot looks versions up with `search_model_versions("name='<name>' and ...")`: MLflow's
    # filter syntax has no escape, so a quote (or a trailing backslash) breaks the query.
    if "'" in value or value.endswith("\\"):
        raise ValueError(f"{value!r}: MLflow's search filter cannot express a ' or a trailing \\")
    if value != value.strip() or _CONTROL.search(value):
        raise ValueError(f"{value!r}: no leading or trailing spaces or control characters")
    return value


def min_role(value: str | None) -> str | None:
    """One of MIN_ROLES (any case); None (YAML null) means the users list only."""
    if value is None:
        return None
    role = value.strip().lower()
    if role not in MIN_ROLES:
        hint = " (null, unquoted, admits approvers.users only)" if role in ("", "none") else ""
        raise ValueError(f"unknown role {value!r}{hint}; one of: {', '.join(MIN_ROLES)}")
    return role


def person(value: str) -> str:
    if not value.strip() or value != value.strip() or value.startswith("@"):
        raise ValueError(f"{value!r} is not a username (no spaces, no leading @)")
    return value


def assignee(value: str) -> str:
    if "/" in value:
        raise ValueError(f"{value!r}: a team cannot be assigned (list it under reviewers)")
    return person(value)


def reviewer(value: str) -> str:
    """A username, or a GitHub team as `org/team-slug`."""
    if "/" not in value:
        return person(value)
    parts = value.split("/")
    if len(parts) != 2 or not all(part and part == part.strip() for part in parts):
        raise ValueError(f"{value!r} is neither a username nor a team (org/team-slug)")
    return value


def team(value: str) -> str:
    """A GitHub team `org/team-slug` or a GitLab group path `group[/subgroup...]`."""
    parts = value.split("/")
    if value.startswith("@") or not all(
        part and part == part.strip() and " " not in part for part in parts
    ):
        raise ValueError(
            f"{value!r} is not a team (GitHub org/team-slug) or a group path (GitLab group/sub)"
        )
    return value


def label(value: str) -> str:
    # python-gitlab sends labels comma-joined: "a,b" would become two labels.
    if not value.strip() or "," in value:
        raise ValueError(f"{value!r} is not a label (not empty, no commas)")
    return value


def repository_path(value: str) -> str:
    """A file path inside the repository: relative, no `..`, `.` or empty parts."""
    parts = PurePosixPath(value).parts
    if (
        not value
        or value.startswith("/")
        or "\\" in value
        or "//" in value
        or any(part in ("..", ".") for part in parts)
        or value.endswith("/")
    ):
        raise ValueError(f"{value!r} must be a relative file path inside the repository")
    return value


def repository_folder(value: str) -> str:
    """A folder inside the repository (see `repository_path`); "" means none."""
    if value:
        repository_path(value[:-1] if value.endswith("/") else value)
    return value


def http_url(value: str) -> str:
    """A problem with `value` as an http(s) URL with a host, or ""."""
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port  # .port raises on a port that is no number
    except ValueError:
        return f"{redact_url(value)!r} is not a URL"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return f"{redact_url(value)!r} is not an http(s) URL with a host"
    return ""


def redis_url(value: str) -> str:
    """A problem with `value` as a Redis URL redis-py can open, or ""."""
    try:
        parts = urlsplit(value)
        _port = parts.port  # raises on a port that is no number
    except ValueError:
        return f"{redact_url(value)!r} is not a URL"
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss") and parts.hostname:
        return ""
    if scheme == "unix" and parts.path:
        return ""
    return f"{redact_url(value)!r} is not a redis://, rediss:// or unix:// URL"


def experiment_name(value: str) -> str:
    """A problem with `value` as the ledger's experiment name, or "": the bot finds its runs by
    name, so it must be one MLflow stores as written."""
    if not value or value != value.strip() or _CONTROL.search(value):
        return f"{value!r} is not an experiment name (empty, padded or a control character)"
    if len(value) > 500:
        return "an experiment name of more than 500 characters"
    return ""


def digits(value: str) -> str:
    """A problem with `value` as a positive decimal number (an id), or ""."""
    if value.isascii() and value.isdigit() and int(value) > 0:
        return ""
    return f"{value!r} is not a number"


def tracking_uri(uri: str, env: Mapping[str, str]) -> str:
    """A problem with `uri` as an MLflow registry, or ""."""
    shown = redact_url(uri)
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"{shown!r} is not a URI"
    scheme = parts.scheme.lower() or uri.strip().lower()  # "databricks" alone is a URI too
    if scheme in ("http", "https"):
        return http_url(uri)
    if scheme.split("+")[0] in _DATABASE_SCHEMES or scheme in _DATABRICKS_SCHEMES:
        return ""
    if scheme == "sqlite":
        return _sqlite(parts.netloc, parts.path, shown)
    if not parts.scheme or scheme == "file":
        if env.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1"):
            return ""
        return (
            f"{shown!r} is no registry URI MLflow 3 opens (a folder needs "
            "MLFLOW_ALLOW_FILE_STORE=true); use sqlite:///mlflow.db or http(s)://host:port"
        )
    known = ", ".join(("http(s)", "sqlite", *_DATABASE_SCHEMES, *_DATABRICKS_SCHEMES))
    return f"{shown!r}: MLflow has no model registry for {scheme!r} URIs ({known})"


def _sqlite(netloc: str, path: str, shown: str) -> str:
    # sqlite:///relative.db and sqlite:////absolute.db: the database follows the third slash.
    database = path[1:] if path.startswith("/") else path
    if netloc or not database or database == ":memory:":
        return f"{shown!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
    file = Path(database)
    if file.is_dir():
        return f"{shown!r}: {file} is a folder, not a database file"
    if not file.parent.is_dir():
        # MLflow would create the folder and an empty registry, and report "no changes".
        return f"{shown!r}: the folder {file.parent} does not exist"
    return ""


def folder(value: Path) -> str:
    """A problem with `value` as a folder the bot may create or use, or ""."""
    if value.exists() and not value.is_dir():
        return f"{value} is a file, not a folder"
    return ""
