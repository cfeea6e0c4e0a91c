"""A real `mlflow server --app-name basic-auth` for the permission tests: its own sqlite
databases (runs and models, users and grants), an admin whose password only the tests know,
and `default_permission = READ` as the README advises (docs/security.md, "Accounts")."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.mlflow_server import MlflowServer, start_mlflow_server

ADMIN = "admin"
_USERS_CREATE = "/api/2.0/mlflow/users/create"


@dataclass
class AuthServer:
    server: MlflowServer
    admin_password: str

    @property
    def url(self) -> str:
        return self.server.url

    def create_user(self, username: str) -> str:
        """A new account; returns its password."""
        password = secrets.token_urlsafe(16)
        answer = requests.post(
            f"{self.url}{_USERS_CREATE}",
            json={"username": username, "password": password},
            auth=(ADMIN, self.admin_password),
            timeout=30,
        )
        answer.raise_for_status()
        return password

    def stop(self) -> None:
        self.server.stop()


def start_auth_server(workdir: Path) -> AuthServer:
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    config = workdir / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'auth.db'}\n"
        f"admin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    server = start_mlflow_server(
        workdir,
        extra_args=["--app-name", "basic-auth"],
        extra_env={
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            # Through the environment, not the file: the password never sits on disk.
            "MLFLOW_AUTH_ADMIN_PASSWORD": password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        },
    )
    return AuthServer(server=server, admin_password=password)
