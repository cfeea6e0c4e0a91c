"""Configuration refuses the ambiguous (docs/security.md, "Configuration").

Every enum-like value is checked against its allowed set, every path, URL and number against what
it may be, at load time, as one line naming the key. `min_role: None` used to become a role of
level 0 and admit everyone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.policy import actor_refusal
from bot.config.checks import MIN_ROLES
from bot.config.params import Approvers, Params, load_params, parse_params
from bot.config.settings import Settings
from bot.errors import ConfigError
from bot.forges.base import role_level
from bot.runtime.context import Context


def refused(promotion: dict[str, object] | None = None, **sections: object) -> str:
    data = {**sections, **({"promotion": promotion} if promotion is not None else {})}
    with pytest.raises(ConfigError) as caught:
        parse_params(data, "params.yaml")
    return str(caught.value)


# --- min_role ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["None", "none", "NONE", "", " ", "null", "~"])
def test_a_min_role_that_reads_as_nothing_is_an_error_naming_the_key(role: str) -> None:
    message = refused({"approvers": {"min_role": role}})
    assert message.startswith(f"params.yaml: promotion.approvers.min_role: unknown role {role!r}")
    if role.strip().lower() in ("", "none"):
        assert "(null, unquoted, admits approvers.users only)" in message


@pytest.mark.parametrize("role", ["guest", "reporter", "planner", "read", "triage", "boss"])
def test_roles_below_developer_and_unknown_names_are_refused(role: str) -> None:
    message = refused({"approvers": {"min_role": role}})
    assert f"promotion.approvers.min_role: unknown role '{role}'" in message
    assert "developer, maintainer, owner, write, maintain, admin" in message


@pytest.mark.parametrize("role", [*MIN_ROLES, "Developer", " Maintainer ", "ADMIN"])
def test_the_roles_spec_lists_are_accepted_in_any_case(role: str) -> None:
    params = parse_params({"promotion": {"approvers": {"min_role": role}}})
    assert params.promotion.approvers.min_role == role.strip().lower()
    assert role_level(role) > 0  # every accepted role is above a stranger's level 0


def test_yaml_null_still_means_the_users_list_only(tmp_path: Path) -> None:
    text = "promotion:\n  approvers:\n    min_role: null\n    users: [ana]\n"
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    approvers = load_params(tmp_path / "p.yaml").promotion.approvers
    assert (approvers.min_role, approvers.users) == (None, ("ana",))
    message = refused({"approvers": {"min_role": None}})
    assert "min_role is null and users and teams are empty: nobody could approve" in message


def test_an_unknown_role_that_slips_past_loading_admits_nobody(tmp_path: Path) -> None:
    """Defence in depth: the rule itself fails closed on a role of level 0."""
    approvers = Approvers.model_construct(
        users=(),
        min_role="none",
        required_approvals=1,
        allow_self_approval=False,
        require_platform_approval=False,
    )
    defaults = Params()
    params = defaults.model_copy(
        update={"promotion": defaults.promotion.model_copy(update={"approvers": approvers})}
    )
    ctx = Context(Settings(platform="local", local_dir=tmp_path / "forge"), params)
    refusal = actor_refusal(ctx, "stranger", "")
    assert refusal is not None and refusal.code == "not_eligible"


# --- the class: every other enum-like value, name, path, URL and number -----------------------

REFUSED = [
    ({"register_model": {"model_stage": "Smoke"}}, "register_model.model_stage"),
    ({"promotion": {"request": {"kind": "Issue"}}}, "promotion.request.kind"),
    ({"promotion": {"request": {"labels": []}}}, "promotion.request.labels: at least one"),
    ({"promotion": {"request": {"labels": ["a,b"]}}}, "promotion.request.labels: 'a,b'"),
    ({"promotion": {"request": {"labels": [" "]}}}, "promotion.request.labels: ' '"),
    ({"promotion": {"request": {"target_branch": ""}}}, "promotion.request.target_branch"),
    ({"promotion": {"approvers": {"users": [""]}}}, "promotion.approvers.users: ''"),
    ({"promotion": {"approvers": {"users": ["@dana"]}}}, "promotion.approvers.users: '@dana'"),
    ({"promotion": {"approvers": {"users": ["dana "]}}}, "promotion.approvers.users: 'dana '"),
    ({"promotion": {"gates": {"required_tags": [""]}}}, "required_tags: an empty tag name"),
    ({"promote_model": {"tolerance": float("inf")}}, "promote_model.tolerance"),
    ({"promote_model": {"tolerance": float("nan")}}, "promote_model.tolerance"),
    (
        {"promotion": {"gates": {"max_regression_vs_champion": float("inf")}}},
        "promotion.gates.max_regression_vs_champion",
    ),
    (
        {"promotion": {"gates": {"thresholds": {"final.logloss": {"max": float("inf")}}}}},
        "promotion.gates.thresholds.final.logloss.max",
    ),
    (
        {"promotion": {"gates": {"thresholds": {"final.logloss": {"min": float("-inf")}}}}},
        "promotion.gates.thresholds.final.logloss.min",
    ),
    (
        {"promotion": {"gates": {"thresholds": {"final.logloss": {"min": float("nan")}}}}},
        "promotion.gates.thresholds.final.logloss.min",
    ),
    ({"register_model": {"model_name": "it's"}}, 'register_model.model_name: "it\'s"'),
    ({"register_model": {"model_name": "model\\"}}, "trailing \\"),
    ({"register_model": {"model_name": " model"}}, "no leading or trailing spaces"),
    ({"register_model": {"model_name": "a\nb"}}, "control characters"),
    ({"register_model": {"run_id_file": ""}}, "register_model.run_id_file"),
    ({"promote_model": {"output": ""}}, "promote_model.output"),
    ({"promotion": {"post_promote_hook": "ftp://hooks.example/x"}}, "not an http(s) URL"),
    ({"promotion": {"post_promote_hook": "hooks.example/x"}}, "not an http(s) URL"),
    ({"promotion": {"post_promote_hook": "http://"}}, "not an http(s) URL with a host"),
    ({"promotion": {"post_promote_hook": "http://h:port/x"}}, "is not a URL"),
    ({"promotion": {"request": {"record_path": "../x.json"}}}, "inside the repository"),
    ({"promotion": {"request": {"record_path": "/etc/x.json"}}}, "inside the repository"),
    ({"promotion": {"request": {"record_path": "a/../../x.json"}}}, "inside the repository"),
    ({"promotion": {"request": {"record_path": "a\\..\\x.json"}}}, "inside the repository"),
    ({"promotion": {"request": {"record_path": "promotions/"}}}, "inside the repository"),
    (
        {
            "register_model": {"model_name": ".."},
            "promotion": {"request": {"record_path": "{model_name}/x"}},
        },
        "promotion.request.record_path: '../x'",
    ),
]


@pytest.mark.parametrize(("data", "expected"), REFUSED, ids=[e for _, e in REFUSED])
def test_ambiguous_values_are_refused_naming_the_key(
    data: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_params(data, "params.yaml")
    assert str(caught.value).startswith("params.yaml: "), caught.value
    assert expected in str(caught.value)


def test_a_hook_url_with_credentials_is_refused_without_showing_them() -> None:
    message = refused({"post_promote_hook": "ftp://user:hook-pw-123@hooks.example/x?token=t0k3n"})
    assert "hook-pw-123" not in message and "t0k3n" not in message
    assert "'ftp://***@hooks.example/x?token=***'" in message


def test_values_that_look_odd_but_are_fine() -> None:
    params = parse_params(
        {
            "register_model": {"model_name": 'a"b c жé'},
            "promotion": {
                "post_promote_hook": "https://user:pw@hooks.example:8443/p?q=1",
                "request": {"record_path": "records/{model_name}/champion.json"},
                "approvers": {"users": ["Dana.K", "bot-1"]},
            },
        }
    )
    assert params.model_name == 'a"b c жé'


# --- the environment ---------------------------------------------------------------------------

REGISTRY = {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
ENV_REFUSED = [
    ({"MLFLOW_TRACKING_URI": "::::"}, "tracking URI: '::::' is no registry URI"),
    ({"MLFLOW_TRACKING_URI": "ftp://x/y"}, "no model registry for 'ftp' URIs"),
    ({"MLFLOW_TRACKING_URI": "mlruns"}, "MLFLOW_ALLOW_FILE_STORE=true"),
    ({"MLFLOW_TRACKING_URI": "http://"}, "not an http(s) URL with a host"),
    ({"MLFLOW_TRACKING_URI": "http://u:pw@host:port"}, "'http://***@host:port' is not a URL"),
    ({"MLFLOW_TRACKING_URI": "sqlite://"}, "expected sqlite:///relative/path.db"),
    ({"MLFLOW_TRACKING_URI": "sqlite:///:memory:"}, "expected sqlite:///relative/path.db"),
    ({"MLFLOW_TRACKING_URI": "sqlite:///missing/m.db"}, "the folder missing does not exist"),
    ({"MLFLOW_TRACKING_URI": "sqlite:///."}, "is a folder, not a database file"),
    (
        {**REGISTRY, "PROMOTION_BOT_PLATFORM": "gitlab", "GITLAB_URL": "gitlab.example.com"},
        "GITLAB_URL: 'gitlab.example.com' is not an http(s) URL",
    ),
    (
        {**REGISTRY, "PROMOTION_BOT_PLATFORM": "github", "GITHUB_API_URL": "ftp://api"},
        "GITHUB_API_URL: 'ftp://api' is not an http(s) URL",
    ),
    ({"PROMOTION_BOT_LOCAL_DIR": "a-file"}, "PROMOTION_BOT_LOCAL_DIR: a-file is a file"),
    ({"PROMOTION_BOT_LOCK_DIR": "a-file"}, "PROMOTION_BOT_LOCK_DIR: a-file is a file"),
    # In CI a registry made up inside the job would take the versions with it.
    ({"GITLAB_CI": "true"}, "MLFLOW_TRACKING_URI: not set: on the gitlab platform"),
    ({"PROMOTION_BOT_PLATFORM": "github"}, "MLFLOW_TRACKING_URI: not set: on the github platform"),
]


@pytest.mark.parametrize(("env", "expected"), ENV_REFUSED, ids=[e for _, e in ENV_REFUSED])
def test_environment_values_are_checked_at_load_time(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env).validated(env)
    assert expected in str(caught.value)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MLFLOW_TRACKING_URI": "http://user:pw@mlflow:5000"},
        {"MLFLOW_TRACKING_URI": "https://[::1]:5000/prefix"},
        {"MLFLOW_TRACKING_URI": "postgresql+psycopg2://u:p@db/mlflow"},
        {"MLFLOW_TRACKING_URI": "databricks"},
        {"MLFLOW_TRACKING_URI": "mlruns", "MLFLOW_ALLOW_FILE_STORE": "true"},
        {
            **REGISTRY,
            "PROMOTION_BOT_PLATFORM": "gitlab",
            "GITLAB_URL": "https://oauth2:t@gitlab.example",
        },
        {**REGISTRY, "PROMOTION_BOT_PLATFORM": "github"},
        {"PROMOTION_BOT_LOCK_DIR": "not-yet-made"},  # created on first use
    ],
)
def test_usable_environments_pass(tmp_path: Path, env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    assert settings.validated(env) is settings


# --- templates are code, so they come from the repository ----------------------------------------


@pytest.mark.parametrize("folder", ["/tmp", "../..", "templates/../../x", "a\\..\\b"])
def test_templates_dir_outside_the_repository_is_refused(folder: str) -> None:
    message = refused({"templates_dir": folder})
    assert "promotion.templates_dir" in message and "inside the repository" in message


def test_templates_dir_may_be_a_relative_folder_or_empty() -> None:
    assert parse_params({"promotion": {"templates_dir": "ci/templates/"}}).promotion
    assert parse_params({"promotion": {"templates_dir": ""}}).promotion.templates_dir == ""
