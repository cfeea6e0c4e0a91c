"""`promotion-bot permissions` and the bot against a real `mlflow server --app-name basic-auth`
(docs/security.md, "Accounts"): after the layout is applied a training account logs runs but
cannot move an alias, tag the bot's model or write the ledger; the bot's account runs the
lifecycle; `--check` finds a grant made by hand; `--dry-run` changes nothing; a refusal of
MLflow is one line naming the permission."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.registry import permissions as layout_of
from tests.helpers import log_training_run, run_main
from tests.mlflow_auth_server import ADMIN, AuthServer, start_auth_server
from tests.promotion_env import Playground, make_context

pytestmark = pytest.mark.slow
LEDGER = "promotion-bot/ledger"  # the default ledger experiment


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuthServer, dict[str, str]]]:
    server = start_auth_server(tmp_path_factory.mktemp("mlflow-auth"))
    try:
        yield server, {user: server.create_user(user) for user in ("bot", "trainer", "intern")}
    finally:
        server.stop()


@pytest.fixture
def server(auth: tuple[AuthServer, dict[str, str]]) -> AuthServer:
    return auth[0]


class Accounts:
    """Switches whose MLflow credentials this process uses (MLflow reads them per request)."""

    def __init__(self, auth: tuple[AuthServer, dict[str, str]], mp: pytest.MonkeyPatch) -> None:
        self.server, self.passwords, self._mp = auth[0], auth[1], mp
        mp.setenv("MLFLOW_TRACKING_URI", self.server.url)

    def use(self, user: str) -> None:
        password = self.server.admin_password if user == ADMIN else self.passwords[user]
        self._mp.setenv("MLFLOW_TRACKING_USERNAME", user)
        self._mp.setenv("MLFLOW_TRACKING_PASSWORD", password)


@pytest.fixture
def accounts(auth: tuple[AuthServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> Accounts:
    return Accounts(auth, monkeypatch)


def params_file(folder: Path, model: str) -> Path:
    path = folder / "params.yaml"
    path.write_text(f"register_model:\n  model_name: {model}\n", encoding="utf-8")
    return path


def permissions(
    mp: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], params: Path, *flags: str
) -> tuple[int, str, str]:
    args = ["--params", str(params), "permissions", "--bot-user", "bot"]
    return run_main(mp, capsys, *args, "--training-user", "trainer", *flags)


def admin_api(server: AuthServer) -> layout_of.AuthApi:
    admin = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": server.admin_password}
    return layout_of.AuthApi(server.url, admin)


def effective(server: AuthServer, user: str, kind: str, name: str) -> str:
    api = admin_api(server)
    return api.effective(user, api.resource(kind, name))


def refused(call: object) -> str:
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as caught:
        call()  # type: ignore[operator]
    return str(caught.value.error_code)


def test_after_permissions_training_logs_runs_and_cannot_touch_the_alias_tags_or_ledger(
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
) -> None:
    from mlflow import MlflowClient

    accounts.use(ADMIN)
    code, out, err = permissions(monkeypatch, capsys, params_file(tmp_path, model_name))
    assert code == 0, err
    assert f"created registered model {model_name!r}" in out
    assert f"granted bot MANAGE on registered model {model_name!r}" in out

    accounts.use("bot")  # the bot's account registers a version and moves an alias
    client = MlflowClient(accounts.server.url)
    accounts.use("trainer")
    run_id = log_training_run(accounts.server.url, {"final.logloss": 0.5}, experiment="trainer")
    assert client.get_run(run_id).data.metrics == {"final.logloss": 0.5}
    accounts.use("bot")
    version = client.create_model_version(model_name, f"runs:/{run_id}/model", run_id).version
    client.set_registered_model_alias(model_name, "candidate", version)

    accounts.use("trainer")
    ledger = client.get_experiment_by_name(LEDGER)
    assert ledger is not None
    attempts = {
        "set an alias": lambda: client.set_registered_model_alias(model_name, "champion", version),
        "delete an alias": lambda: client.delete_registered_model_alias(model_name, "candidate"),
        "tag the model": lambda: client.set_registered_model_tag(model_name, "promotion.x", "1"),
        "tag a version": lambda: client.set_model_version_tag(model_name, version, "k", "v"),
        "write the ledger": lambda: client.create_run(ledger.experiment_id),
        "register a version": lambda: client.create_model_version(model_name, "runs:/x/m", run_id),
    }
    codes = {what: refused(call) for what, call in attempts.items()}
    assert codes == dict.fromkeys(attempts, "PERMISSION_DENIED")
    accounts.use("bot")
    assert client.get_registered_model(model_name).aliases == {"candidate": version}


def test_the_bots_account_runs_the_whole_lifecycle(
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
) -> None:
    accounts.use(ADMIN)
    assert permissions(monkeypatch, capsys, params_file(tmp_path, model_name))[0] == 0
    accounts.use("trainer")
    run_id = log_training_run(accounts.server.url, {"final.logloss": 0.4}, experiment="trainer")

    accounts.use("bot")
    pg = Playground(make_context(accounts.server.url, model_name, tmp_path), tmp_path)
    pg.setup_people()
    from bot.ci.gate import gate
    from bot.ci.register import register

    version = register(pg.ctx, run_id=run_id, alias="smoke").version.version
    assert gate(pg.ctx, version=version).passed
    pg.comment(pg.open_request(version), "maria", "/promote")
    assert pg.champion() == version
    assert [entry.to_version for entry in pg.ledger()] == [version]


def test_check_finds_a_grant_made_by_hand_and_applying_removes_it(
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
) -> None:
    params = params_file(tmp_path, model_name)
    accounts.use(ADMIN)
    assert permissions(monkeypatch, capsys, params)[0] == 0
    assert permissions(monkeypatch, capsys, params, "--check")[:2] == (
        0,
        "permissions: as the layout says\n",
    )
    api = admin_api(accounts.server)
    model = api.resource(layout_of.MODEL, model_name)
    api.grant("trainer", model, "EDIT")  # by hand, in the admin UI
    api.revoke("bot", model)
    api.grant("bot", model, "READ")

    code, out, err = permissions(monkeypatch, capsys, params, "--check")
    assert code == 1
    assert out.splitlines() == [
        f"bot: registered model {model_name!r} is READ, needs MANAGE",
        f"trainer: registered model {model_name!r} is EDIT, at most READ",
    ]
    assert err == "error: 2 deviation(s) from the permission layout\n"

    code, out, _ = permissions(monkeypatch, capsys, params)
    assert code == 0
    assert out.splitlines() == [
        f"granted bot MANAGE on registered model {model_name!r}",
        f"granted trainer READ on registered model {model_name!r}",
    ]
    assert effective(accounts.server, "trainer", layout_of.MODEL, model_name) == "READ"
    assert effective(accounts.server, "bot", layout_of.MODEL, model_name) == "MANAGE"
    assert permissions(monkeypatch, capsys, params)[1] == "permissions: nothing to change\n"


def test_dry_run_prints_the_changes_and_makes_none(
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
) -> None:
    from mlflow import MlflowClient

    params = params_file(tmp_path, model_name)
    accounts.use(ADMIN)
    code, out, err = permissions(monkeypatch, capsys, params, "--dry-run")
    assert code == 0, err
    assert out.splitlines()[:2] == [
        f"would create registered model {model_name!r} as admin",
        f"would grant bot MANAGE on registered model {model_name!r}",
    ]
    assert MlflowClient(accounts.server.url).search_registered_models(f"name='{model_name}'") == []

    assert permissions(monkeypatch, capsys, params)[0] == 0
    api = admin_api(accounts.server)
    api.grant("trainer", api.resource(layout_of.MODEL, model_name), "MANAGE")
    code, out, _ = permissions(monkeypatch, capsys, params, "--dry-run")
    assert (code, out) == (0, f"would grant trainer READ on registered model {model_name!r}\n")
    assert effective(accounts.server, "trainer", layout_of.MODEL, model_name) == "MANAGE"


@pytest.mark.parametrize(
    ("user", "flags", "said"),
    [
        ("trainer", (), "error: permissions: http://127.0.0.1:"),
        (ADMIN, ("--training-user", "nobody"), "error: permissions: no MLflow user 'nobody'"),
        (ADMIN, ("--check", "--dry-run"), "error: --check and --dry-run: choose one"),
    ],
    ids=["not an admin", "unknown user", "check and dry-run"],
)
def test_bad_input_is_one_line_and_changes_nothing(
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
    user: str,
    flags: tuple[str, ...],
    said: str,
) -> None:
    accounts.use(user)
    code, out, err = permissions(monkeypatch, capsys, params_file(tmp_path, model_name), *flags)
    assert code != 0 and out == ""
    assert err.startswith(said) and len(err.splitlines()) == 1, err
    assert user != "trainer" or err.endswith(
        "/api/2.0/mlflow/users/get: 'trainer' is no MLflow admin (403)\n"
    )
    accounts.use(ADMIN)
    assert admin_api(accounts.server).resource(layout_of.MODEL, model_name).id == ""


def test_a_training_account_that_is_an_admin_is_refused(
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
) -> None:
    """An MLflow admin passes every check: no READ grant would hold it back."""
    accounts.server.create_user("boss")
    answer = requests.patch(
        f"{accounts.server.url}/api/2.0/mlflow/users/update-admin",
        json={"username": "boss", "is_admin": True},
        auth=(ADMIN, accounts.server.admin_password),
        timeout=30,
    )
    answer.raise_for_status()
    accounts.use(ADMIN)
    params = params_file(tmp_path, model_name)
    code, out, err = permissions(monkeypatch, capsys, params, "--training-user", "boss")
    assert (code, out) == (1, "")
    assert err == (
        "error: permissions: training account 'boss' is an MLflow admin, which no grant "
        "restricts: make it a plain account\n"
    )
    assert admin_api(accounts.server).resource(layout_of.MODEL, model_name).id == ""


def test_a_refusal_of_mlflow_names_the_missing_permission(
    accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
) -> None:
    params = params_file(tmp_path, model_name)
    accounts.use(ADMIN)
    assert permissions(monkeypatch, capsys, params)[0] == 0
    accounts.use("intern")  # an account the layout never named: the default READ
    run_id = log_training_run(accounts.server.url, {"final.logloss": 0.4}, experiment="intern")
    capsys.readouterr()  # MLflow's own "View run" line
    args = ["--params", str(params), "register", "--run-id", run_id, "--platform", "local"]
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 1 and out == ""
    assert err.endswith(
        "the registry refused the account 'intern' (403): it needs MANAGE on the registered "
        "model (`promotion-bot permissions --check` lists what the bot's account lacks)\n"
    ), err
    assert len(err.splitlines()) == 1 and accounts.passwords["intern"] not in err

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    code, _, err = run_main(monkeypatch, capsys, *args)
    assert code == 1
    assert "the registry refused the credentials (401)" in err
    assert "not-the-password" not in err


def test_a_server_without_basic_auth_is_one_line(
    tracking_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_name: str,
) -> None:
    """The session's plain `mlflow server`: no user API, so nothing to set."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret-password-5")
    code, out, err = permissions(monkeypatch, capsys, params_file(tmp_path, model_name))
    assert (code, out) == (1, "")
    assert err.endswith(
        "/api/2.0/mlflow/users/get: not found: the server is no `mlflow server --app-name "
        "basic-auth` with MLflow's user permission API\n"
    ), err
    assert len(err.splitlines()) == 1 and "secret-password-5" not in err
