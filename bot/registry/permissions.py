"""Who may move an alias, as MLflow itself enforces it (docs/security.md, "Accounts"): the bot's
account MANAGE on each configured registered model and on the ledger experiment, each training
account no more than READ on them. Set and checked through the basic-auth app's user
permission API (`/api/3.0/mlflow/users/permissions/...`) with an admin's credentials.

Plain HTTP on purpose: MLflow is imported by bot/registry/client.py alone, and these few admin
calls need none of its client machinery. A resource that does not exist yet is created by the
admin first, so no training account can create it and become its owner (MANAGE) before the
layout is applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from bot.errors import ConfigError, RegistryError
from bot.urls import redact_url

MODEL = "registered_model"
EXPERIMENT = "experiment"
_RANK = {"DENY": -1, "NO_PERMISSIONS": 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}
_V2 = "/api/2.0/mlflow"
_USERS = "/api/3.0/mlflow/users/permissions"
_TIMEOUT = 30


@dataclass(frozen=True)
class Resource:
    kind: str  # MODEL or EXPERIMENT
    name: str  # the model's or the experiment's name
    id: str  # what MLflow grants on: the model's name, the experiment's id ("" if missing)

    def __str__(self) -> str:
        label = "registered model" if self.kind == MODEL else "experiment"
        return f"{label} {self.name!r}"


@dataclass(frozen=True)
class Deviation:
    user: str
    resource: Resource
    found: str  # the effective permission ("" when the resource does not exist)
    wanted: str  # "MANAGE" for the bot; "READ" (at most) for training accounts

    def __str__(self) -> str:
        if not self.resource.id:
            return f"{self.resource}: does not exist (applying creates it as the admin)"
        if self.wanted == "MANAGE":
            return f"{self.user}: {self.resource} is {self.found}, needs MANAGE"
        return f"{self.user}: {self.resource} is {self.found}, at most READ"


class AuthApi:
    """The admin's calls of the basic-auth app (credentials from the environment)."""

    def __init__(self, tracking_uri: str, env: Mapping[str, str]) -> None:
        if not tracking_uri.startswith(("http://", "https://")):
            raise ConfigError(
                "permissions: MLFLOW_TRACKING_URI must be the http(s) URL of an "
                "`mlflow server --app-name basic-auth`"
            )
        user = env.get("MLFLOW_TRACKING_USERNAME", "")
        password = env.get("MLFLOW_TRACKING_PASSWORD", "")
        if not user or not password:
            raise ConfigError(
                "permissions: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
                "of an MLflow admin"
            )
        self.url = tracking_uri.rstrip("/")
        self.admin = user
        self._session = requests.Session()
        self._session.auth = (user, password)
        insecure = env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        cert = env.get("MLFLOW_TRACKING_SERVER_CERT_PATH", "")
        self._session.verify = False if insecure else (cert or True)

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        where = f"permissions: {redact_url(self.url)}{path}"
        try:
            answer = self._session.request(method, self.url + path, timeout=_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise RegistryError(f"{where}: unreachable ({type(exc).__name__})") from None
        if answer.status_code == 401:
            raise RegistryError(f"{where}: the admin credentials were refused (401)")
        if answer.status_code == 403:
            raise RegistryError(f"{where}: {self.admin!r} is no MLflow admin (403)")
        code = _error_code(answer)
        if answer.status_code == 404 and code != "RESOURCE_DOES_NOT_EXIST":  # no such route
            raise RegistryError(
                f"{where}: not found: the server is no `mlflow server --app-name basic-auth` "
                "with MLflow's user permission API"
            )
        if not answer.ok:
            raise RegistryError(f"{where}: HTTP {answer.status_code}: {code or 'no error code'}")
        try:
            body = answer.json() if answer.content else {}
        except ValueError:  # a proxy's page, or the UI's
            raise RegistryError(f"{where}: no MLflow answer (HTTP {answer.status_code})") from None
        return body if isinstance(body, dict) else {}

    def user(self, username: str) -> dict[str, Any] | None:
        """The account (`id`, `username`, `is_admin`), or None when there is none."""
        try:
            found = self.call("GET", f"{_V2}/users/get", params={"username": username})
        except RegistryError as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return None
            raise
        user = found.get("user")
        return user if isinstance(user, dict) else {}

    def has_user(self, username: str) -> bool:
        return self.user(username) is not None

    def effective(self, username: str, resource: Resource) -> str:
        """What a real request of `username` on the resource would be allowed."""
        params = {"username": username, "resource_type": resource.kind, "resource_id": resource.id}
        return str(self.call("GET", f"{_USERS}/get", params=params)["permission"])

    def granted(self, username: str) -> set[tuple[str, str]]:
        """The user's own grants (its synthetic `__user_<id>__` role): (kind, id) pairs."""
        rows = self.call("GET", f"{_USERS}/list", params={"username": username})["permissions"]
        own = [row for row in rows if str(row.get("role_name", "")).startswith("__user_")]
        return {(str(row["resource_type"]), str(row["resource_pattern"])) for row in own}

    def grant(self, username: str, resource: Resource, permission: str) -> None:
        body = {"username": username, "resource_type": resource.kind}
        body |= {"resource_id": resource.id, "permission": permission}
        self.call("POST", f"{_USERS}/grant", json=body)

    def revoke(self, username: str, resource: Resource) -> None:
        body = {"username": username, "resource_type": resource.kind, "resource_id": resource.id}
        self.call("POST", f"{_USERS}/revoke", json=body)

    def resource(self, kind: str, name: str) -> Resource:
        """The model or experiment by name; id "" when it does not exist."""
        if kind == MODEL:
            found = self._get(f"{_V2}/registered-models/get", {"name": name})
            return Resource(kind, name, name if found else "")
        found = self._get(f"{_V2}/experiments/get-by-name", {"experiment_name": name})
        return Resource(kind, name, str(found["experiment"]["experiment_id"]) if found else "")

    def create(self, resource: Resource) -> Resource:
        if resource.kind == MODEL:
            self.call("POST", f"{_V2}/registered-models/create", json={"name": resource.name})
            return Resource(MODEL, resource.name, resource.name)
        made = self.call("POST", f"{_V2}/experiments/create", json={"name": resource.name})
        return Resource(EXPERIMENT, resource.name, str(made["experiment_id"]))

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            return self.call("GET", path, params=params)
        except RegistryError as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return {}
            raise


@dataclass(frozen=True)
class Layout:
    bot_user: str
    training_users: tuple[str, ...]
    models: tuple[str, ...]
    ledger_experiment: str

    def wanted(self) -> list[tuple[str, str]]:
        """(user, permission) pairs every resource must show: MANAGE, or READ at most."""
        pairs = [(self.bot_user, "MANAGE")]
        return pairs + [(user, "READ") for user in self.training_users]


def resources(api: AuthApi, layout: Layout) -> list[Resource]:
    found = [api.resource(MODEL, name) for name in layout.models]
    return [*found, api.resource(EXPERIMENT, layout.ledger_experiment)]


def deviations(api: AuthApi, layout: Layout) -> list[Deviation]:
    """Every way the server differs from the layout, by user and resource."""
    _known_users(api, layout)
    found: list[Deviation] = []
    for resource in resources(api, layout):
        if not resource.id:
            found.append(Deviation("", resource, "", ""))
            continue
        for user, wanted in layout.wanted():
            permission = api.effective(user, resource)
            too_low = wanted == "MANAGE" and permission != "MANAGE"
            too_high = wanted == "READ" and _RANK.get(permission, 99) > _RANK["READ"]
            if too_low or too_high:
                found.append(Deviation(user, resource, permission, wanted))
    return found


def plan(api: AuthApi, layout: Layout) -> list[str]:
    """What `apply` would do, one line per change (nothing: the server is as the layout says)."""
    lines = []
    for deviation in deviations(api, layout):
        if not deviation.resource.id:
            lines.append(f"create {deviation.resource} as {api.admin}")
            lines.append(f"grant {layout.bot_user} MANAGE on {deviation.resource}")
            continue
        lines.append(f"grant {deviation.user} {deviation.wanted} on {deviation.resource}")
    return lines


def apply(api: AuthApi, layout: Layout) -> list[str]:
    """Make the server say what the layout says; returns what changed. Idempotent."""
    changed: list[str] = []
    for deviation in deviations(api, layout):
        resource = deviation.resource
        if not resource.id:
            resource = api.create(resource)
            changed.append(f"created {resource}")
            for user, wanted in layout.wanted():
                changed += _set(api, user, resource, wanted)
            continue
        changed += _set(api, deviation.user, resource, deviation.wanted)
    left = deviations(api, layout)
    if left:  # e.g. a role assigned to the user grants more, which a user grant cannot lower
        listed = "; ".join(str(deviation) for deviation in left)
        raise RegistryError(f"permissions: still different after applying: {listed}")
    return changed


def _set(api: AuthApi, user: str, resource: Resource, wanted: str) -> list[str]:
    """One user's own grant on the resource becomes `wanted` (an explicit grant on the resource
    itself decides over wildcard grants and the server's default_permission)."""
    if wanted == "READ" and _RANK.get(api.effective(user, resource), 99) <= _RANK["READ"]:
        return []
    if (resource.kind, resource.id) in api.granted(user):
        api.revoke(user, resource)
    api.grant(user, resource, wanted)
    return [f"granted {user} {wanted} on {resource}"]


def _known_users(api: AuthApi, layout: Layout) -> None:
    names: Sequence[str] = [layout.bot_user, *layout.training_users]
    if layout.bot_user in layout.training_users:
        raise ConfigError(f"permissions: {layout.bot_user!r} is both the bot and a training user")
    users = {name: api.user(name) for name in names}
    missing = [name for name, user in users.items() if user is None]
    if missing:
        raise ConfigError(f"permissions: no MLflow user {', '.join(map(repr, missing))}")
    # An admin passes every permission check, whatever its grants say: READ would be a lie.
    admins = [name for name in layout.training_users if (users[name] or {}).get("is_admin")]
    if admins:
        raise ConfigError(
            f"permissions: training account {', '.join(map(repr, admins))} is an MLflow admin, "
            "which no grant restricts: make it a plain account"
        )


def _error_code(answer: requests.Response) -> str:
    """MLflow's error code; never the body itself, which may echo what was sent."""
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("error_code", "")) if isinstance(body, dict) else ""
