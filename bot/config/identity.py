"""Who this bot is: a registry and a forge project, as a short id (docs/design.md, "Locking" and
"Markers").

Two bots may share one Redis, and two registries (staging, production) may serve one project.
Each bot's shared keys and request markers carry its id, so neither touches the other's locks,
deliveries or requests. The id is derived from the configuration, with no API call: the same
settings give the same id in every job, replica and restart.

Credentials never enter it: the tracking URI is read without its userinfo and without secret
query parameters, so rotating a password keeps the id, and the id (which is public, in request
markers) says nothing about them. A hash, not the URI itself: a marker must not show where the
registry is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.urls import SECRET_PARAMS

ID_LENGTH = 12  # hex characters: 48 bits, far past any number of bots sharing a Redis
_DEFAULT_PORTS = {"http": 80, "https": 443}


def registry_key(tracking_uri: str) -> str:
    """The tracking URI with nothing secret in it and one spelling per server: no userinfo, no
    secret query parameter, lower-case scheme and host, no default port, no trailing slash."""
    uri = tracking_uri.strip()
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:  # unreadable: keep only what cannot be a credential
        return uri.rpartition("@")[2]
    if not parts.netloc:  # sqlite:///mlflow.db, a path, databricks
        return uri
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in SECRET_PARAMS
    ]
    return urlunsplit((scheme, host, parts.path.rstrip("/"), urlencode(query), ""))


def forge_key(platform: str, host_url: str, project: str) -> str:
    """The project as configured: GitLab's numeric id, else a path (its letter case ignored, as
    the forges ignore it); with the forge's host, so two instances' `group/app` differ."""
    project = project.strip().strip("/")
    if not (project.isascii() and project.isdigit()):
        project = project.lower()
    else:
        project = str(int(project))
    return f"{platform}\0{registry_key(host_url)}\0{project}"


def short_id(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(("promotion-bot", *parts)).encode()).hexdigest()
    return digest[:ID_LENGTH]


def registry_id(tracking_uri: str) -> str:
    """The registry alone: what a model's lock guards (its aliases) belongs to the registry."""
    return short_id("registry", registry_key(tracking_uri))


def instance_id(tracking_uri: str, platform: str, host_url: str, project: str) -> str:
    """The bot: its registry and its forge project."""
    return short_id("bot", registry_key(tracking_uri), forge_key(platform, host_url, project))


def local_project(folder: Path) -> str:
    """The local platform's project is its folder, wherever the command was started from."""
    return folder.expanduser().absolute().as_posix()
