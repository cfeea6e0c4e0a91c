"""params.yaml (docs/design.md, "Configuration"), Settings from the environment and the command
line, secret masking."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from bot.config.params import Params, load_params, parse_params
from bot.config.settings import DEFAULT_TRACKING_URI, Secret, Settings
from bot.errors import ConfigError
from bot.logs import JsonFormatter, RedactSecrets

REPO_ROOT = Path(__file__).resolve().parent.parent

# The documented defaults (README, params.yaml), spelled out by hand so a changed default in the
# code fails here.
DOCUMENTED_DEFAULTS = {
    "register_model": {
        "model_name": "soccer-match-outcome",
        "model_stage": "smoke",
        "run_id_file": "data/models/final_run_id.json",
        "artifact_path": "model",
    },
    "promote_model": {
        "metric": "final.logloss",
        "greater_is_better": False,
        "tolerance": 0.005,
        "candidate_alias": "candidate",
        "output": "data/models/promoted_model.json",
    },
    "inference": {"model_stage": "smoke"},
    "promotion": {
        "champion_alias": "champion",
        "request": {
            "kind": "issue",
            "labels": ("model-promotion",),
            "target_branch": "main",
            "record_path": "promotions/{model_name}.json",
            "merge_on_promote": True,
            "close_on_promote": True,
            "chart": True,
            "assignees": None,
            "reviewers": None,
        },
        "approvers": {
            "users": (),
            "teams": (),
            "min_role": "maintainer",
            "required_approvals": 1,
            "allow_self_approval": False,
            "require_platform_approval": False,
        },
        "gates": {"max_regression_vs_champion": 0.0, "thresholds": {}, "required_tags": ()},
        "checklist": (
            {"id": "metrics", "text": "Metrics and calibration reviewed against the champion"},
            {"id": "data", "text": "Training data version and drift report checked"},
            {"id": "contract", "text": "Model contract unchanged, or consumers notified"},
            {"id": "rollback", "text": "Rollback target confirmed (previous champion)"},
        ),
        "require_checklist": True,
        "templates_dir": "templates",
        "post_promote_hook": None,
        "trusted_keys": (),
        "deployments": {"enabled": True, "environment_prefix": "model/", "ref": ""},
    },
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_params(path)
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert "Traceback" not in message
    return message


# --- defaults --------------------------------------------------------------------------------


def test_defaults_are_the_spec_defaults():
    assert Params().model_dump() == DOCUMENTED_DEFAULTS


def test_committed_params_yaml_loads_and_equals_the_defaults():
    committed = REPO_ROOT / "params.yaml"
    assert committed.is_file(), "params.yaml is part of the product"
    assert load_params(committed) == Params()
    text = committed.read_text(encoding="utf-8")
    for section in ("register_model:", "promote_model:", "inference:", "promotion:"):
        assert f"\n{section}" in f"\n{text}"
    assert "#" in text  # commented like the spec


def test_no_params_yaml_in_the_working_directory_means_defaults(tmp_path: Path):
    assert not (tmp_path / "params.yaml").exists()
    assert load_params() == Params()


def test_default_params_yaml_in_the_working_directory_is_read(tmp_path: Path):
    write(tmp_path / "params.yaml", "promote_model:\n  tolerance: 0.1\n")
    assert load_params().promote_model.tolerance == 0.1


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_an_empty_file_means_defaults(tmp_path: Path, text: str):
    assert load_params(write(tmp_path / "p.yaml", text)) == Params()


def test_a_partial_file_keeps_the_other_defaults(tmp_path: Path):
    path = write(
        tmp_path / "p.yaml",
        "register_model:\n  model_name: churn\npromotion:\n  approvers:\n    users: [ana, bo]\n",
    )
    params = load_params(path)
    assert params.model_name == "churn"
    assert params.promotion.approvers.users == ("ana", "bo")
    assert params.promotion.approvers.min_role is None  # users given: no default role
    assert params.promote_model == Params().promote_model
    assert params.promotion.checklist == Params().promotion.checklist


def test_integer_tolerance_and_role_case_are_accepted():
    params = parse_params(
        {"promote_model": {"tolerance": 0}, "promotion": {"approvers": {"min_role": "Owner"}}}
    )
    assert params.promote_model.tolerance == 0.0
    assert params.promotion.approvers.min_role == "owner"


def test_custom_aliases_that_mlflow_accepts_are_fine():
    params = parse_params(
        {
            "promote_model": {"candidate_alias": "staging_v2"},
            "promotion": {"champion_alias": "prod-live"},
            "inference": {"model_stage": "champion"},
        }
    )
    assert params.promote_model.candidate_alias == "staging_v2"
    assert params.promotion.champion_alias == "prod-live"


def test_min_role_null_means_the_users_list_only():
    params = parse_params({"promotion": {"approvers": {"min_role": None, "users": ["ana"]}}})
    assert params.promotion.approvers.min_role is None


def test_thresholds_are_keyed_by_metric_names_with_dots():
    params = parse_params({"promotion": {"gates": {"thresholds": {"final.logloss": {"max": 0.7}}}}})
    threshold = params.promotion.gates.thresholds["final.logloss"]
    assert (threshold.min, threshold.max) == (None, 0.7)


@pytest.mark.parametrize(
    ("kind", "thread_kind"),
    [("issue", "issue"), ("merge_request", "merge_request"), ("pull_request", "merge_request")],
)
def test_pull_request_is_the_merge_request_thread_kind(kind: str, thread_kind: str):
    params = parse_params({"promotion": {"request": {"kind": kind}}})
    assert params.promotion.request.thread_kind == thread_kind


# --- broken files: one line naming the file and the key ------------------------------------

BROKEN = [
    ("promtion: {}\n", "promtion: unknown section; did you mean promotion?"),
    (
        "promotion:\n  request:\n    record_path: 'p/{model}.json'\n",
        "promotion.request.record_path: only {model_name}",
    ),
    (
        "promotion:\n  gates:\n    thresholds: {a: {min: 2, max: 1}}\n",
        "promotion.gates.thresholds.a: min 2 is above max 1",
    ),
    ("promotion:\n  approvers:\n    userz: [ana]\n", "promotion.approvers.userz: unknown key"),
    (
        "promotion:\n  gates:\n    thresholds: {final_logloss: {max: 0.7}}\n",
        "promotion.gates.thresholds: 'final_logloss' is not the gate metric "
        "promote_model.metric 'final.logloss' (metric names are exact)",
    ),
    ("promote_model:\n  tolerance: abc\n", "promote_model.tolerance: "),
    ('promote_model:\n  tolerance: "0.1"\n', "promote_model.tolerance: "),
    ("promote_model:\n  tolerance: -0.01\n", "promote_model.tolerance: "),
    ("promote_model:\n  tolerance: .nan\n", "promote_model.tolerance: "),
    ("promotion:\n  request:\n    labels: 5\n", "promotion.request.labels: expected a list"),
    ("promotion:\n  request:\n    labels: lbl\n", "promotion.request.labels: expected a list"),
    ('promotion:\n  request:\n    merge_on_promote: "yes"\n', "merge_on_promote: "),
    ("promotion:\n  request:\n    kind: pr\n", "promotion.request.kind: "),
    ("promotion:\n  approvers:\n    min_role: boss\n", "promotion.approvers.min_role: "),
    ("promotion:\n  approvers:\n    required_approvals: 0\n", "required_approvals: "),
    ("promotion:\n  approvers:\n    required_approvals: 1.5\n", "required_approvals: "),
    ("promotion:\n  checklist:\n    - {id: a b, text: x}\n", "promotion.checklist.0.id: "),
    ("promotion:\n  checklist:\n    - {id: '', text: x}\n", "promotion.checklist.0.id: "),
    ("promotion:\n  checklist:\n    - {id: a}\n", "promotion.checklist.0.text: "),
    ("promotion:\n  checklist:\n    - {id: a, text: x}\n    - {id: a, text: y}\n", "'a'"),
    ("promotion:\n  gates:\n    thresholds: {final.logloss: {maxx: 1}}\n", "maxx: unknown key"),
    ("promotion:\n  gates:\n    max_regression_vs_champion: -1\n", "max_regression_vs_champion"),
    ("promotion: 5\n", "promotion: expected a mapping"),
    ("register_model:\n  model_stage: champion\n", "register_model.model_stage: "),
    ("register_model:\n  model_name: ''\n", "register_model.model_name: "),
    ("promotion:\n  post_promote_hook: 5\n", "promotion.post_promote_hook: "),
    ("register_model:\n  model_name: team/model\n", "register_model.model_name: 'team/model'"),
    ("promote_model:\n  candidate_alias: a b\n", "promote_model.candidate_alias: 'a b'"),
    ("promote_model:\n  candidate_alias: latest\n", "candidate_alias: 'latest' is reserved"),
    ("promotion:\n  champion_alias: v2\n", "promotion.champion_alias: 'v2' is reserved"),
    ("inference:\n  model_stage: 'x:y'\n", "inference.model_stage: 'x:y'"),
    # The automated gate must never be able to move the champion.
    (
        "promote_model:\n  candidate_alias: champion\n",
        "promote_model.candidate_alias and promotion.champion_alias are both 'champion'",
    ),
    ("promotion:\n  champion_alias: smoke\n", "promotion.champion_alias: 'smoke' is an initial"),
    ("promote_model:\n  candidate_alias: ci-smoke\n", "candidate_alias: 'ci-smoke' is an initial"),
]


@pytest.mark.parametrize(
    ("text", "expected"), BROKEN, ids=[f"{i}-{e.split(':')[0]}" for i, (_, e) in enumerate(BROKEN)]
)
def test_a_broken_file_is_one_error_naming_the_file_and_the_key(
    tmp_path: Path, text: str, expected: str
):
    path = write(tmp_path / "my-params.yaml", text)
    message = config_error(path)
    assert message.startswith(f"{path}: "), message
    assert expected in message
    assert "Value error" not in message and "tuple" not in message  # said in YAML terms


def test_the_unknown_role_error_lists_the_known_roles(tmp_path: Path):
    message = config_error(
        write(tmp_path / "p.yaml", "promotion:\n  approvers:\n    min_role: x\n")
    )
    assert "unknown role 'x'" in message and "maintainer" in message and "maintain" in message


def test_several_problems_are_counted_not_listed(tmp_path: Path):
    text = "promotion:\n  a: 1\n  b: 2\n  c: 3\n"
    message = config_error(write(tmp_path / "p.yaml", text))
    assert message == f"{tmp_path / 'p.yaml'}: promotion.a: unknown key (and 2 more)"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("promote_model:\n  tolerance: [1\n  x: 2\n", 3, "expected ',' or ']'"),
        ("promote_model:\n\tmetric: x\n", 2, "'\\t'"),
        ("a: 1\nb: [\n", 3, "expected the node content"),
        ("promote_model:\n  tolerance: 0.1\n  tolerance: 0.2\n", 3, "duplicate key 'tolerance'"),
    ],
    ids=["unclosed-list", "tab", "eof", "duplicate-key"],
)
def test_yaml_errors_name_the_line_and_the_problem(
    tmp_path: Path, text: str, line: int, problem: str
):
    path = write(tmp_path / "p.yaml", text)
    message = config_error(path)
    assert message.startswith(f"{path}: not valid YAML at line {line} ("), message
    assert problem in message


def test_yaml_merge_keys_may_override_merged_keys(tmp_path: Path):
    text = (
        "promotion:\n  gates:\n    thresholds:\n"
        "      final.logloss: &limit {max: 0.7, min: 0.1}\n"
        "      final.brier: {<<: *limit, max: 0.3}\n"
    )
    thresholds = load_params(write(tmp_path / "p.yaml", text)).promotion.gates.thresholds
    assert (thresholds["final.brier"].min, thresholds["final.brier"].max) == (0.1, 0.3)


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str")])
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, kind: str):
    path = write(tmp_path / "p.yaml", text)
    assert config_error(path) == f"{path}: expected a mapping of sections, got {kind}"


def test_a_missing_explicit_file_is_an_error(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    assert config_error(path) == f"{path}: no such file"


def test_a_directory_is_an_error_not_a_crash(tmp_path: Path):
    (tmp_path / "dir.yaml").mkdir()
    assert config_error(tmp_path / "dir.yaml").startswith(f"{tmp_path / 'dir.yaml'}: cannot read")


def test_other_tools_sections_are_left_alone(tmp_path: Path):
    """A DVC params.yaml keeps its stages' parameters beside the bot's sections."""
    text = (
        "prepare:\n  split: 0.2\ntrain:\n  seed: 7\n  n_estimators: 50\n"
        "register_model:\n  model_name: churn\n"
    )
    params = load_params(write(tmp_path / "params.yaml", text))
    assert params.model_name == "churn"
    strict = "train: {seed: 7}\npromotion:\n  aprovers: {}\n"  # strict inside the bot's own
    assert config_error(write(tmp_path / "p.yaml", strict)).endswith(
        "promotion.aprovers: unknown key"
    )


def test_parse_params_names_its_source():
    with pytest.raises(ConfigError, match=r"^from-dict: promotion.bogus: unknown key$"):
        parse_params({"promotion": {"bogus": 1}}, "from-dict")


# --- Settings from the environment -----------------------------------------------------------


def test_settings_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings == Settings(registry_given=False)  # the local platform's embedded registry
    assert settings.tracking_uri == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    assert settings.platform == "local"
    assert settings.local_dir == Path(".promotion-bot")
    assert settings.github_api_url == "https://api.github.com"
    assert settings.pipeline_url == ""


@pytest.mark.parametrize(
    ("env", "platform"),
    [
        ({}, "local"),
        ({"GITLAB_CI": "true"}, "gitlab"),
        ({"GITHUB_ACTIONS": "true"}, "github"),
        ({"GITLAB_CI": "true", "PROMOTION_BOT_PLATFORM": "local"}, "local"),
        ({"GITHUB_ACTIONS": "true", "PROMOTION_BOT_PLATFORM": " GitLab "}, "gitlab"),
        ({"PROMOTION_BOT_PLATFORM": "github"}, "github"),
        ({"GITLAB_CI": ""}, "local"),
    ],
)
def test_platform_detection(env: dict[str, str], platform: str):
    assert Settings.from_env(env).platform == platform


def test_an_unknown_platform_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^PROMOTION_BOT_PLATFORM: unknown platform 'bitbucket'"):
        Settings.from_env({"PROMOTION_BOT_PLATFORM": "bitbucket"})


def test_gitlab_settings_fall_back_to_the_ci_variables():
    ci = {"CI_SERVER_URL": "https://gitlab.example.com/", "CI_PROJECT_ID": "42"}
    settings = Settings.from_env(ci)
    assert settings.gitlab_url == "https://gitlab.example.com"
    assert settings.gitlab_project == "42"
    explicit = Settings.from_env(
        {**ci, "GITLAB_URL": "https://other.example.com", "GITLAB_PROJECT": "grp/proj"}
    )
    assert (explicit.gitlab_url, explicit.gitlab_project) == (
        "https://other.example.com",
        "grp/proj",
    )


def test_github_settings():
    settings = Settings.from_env(
        {
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "GITHUB_REPOSITORY": "org/repo",
            "GITHUB_TOKEN": "ghp_secret_value",
        }
    )
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.github_repository == "org/repo"
    assert settings.github_token.value == "ghp_secret_value"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GITLAB_USER_LOGIN": "dana"}, "dana"),
        ({"GITHUB_ACTOR": "octo"}, "octo"),
        ({"GITLAB_USER_LOGIN": "dana", "PROMOTION_BOT_REQUESTED_BY": "eve"}, "eve"),
        ({"GITLAB_USER_LOGIN": "dana", "GITHUB_ACTOR": "octo"}, "dana"),
        ({"PROMOTION_BOT_REQUESTED_BY": "", "GITHUB_ACTOR": "octo"}, "octo"),
        ({}, ""),
    ],
)
def test_requested_by_fallbacks(env: dict[str, str], expected: str):
    assert Settings.from_env(env).requested_by == expected


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"CI_PIPELINE_URL": "https://gl/p/-/pipelines/7"}, "https://gl/p/-/pipelines/7"),
        (
            {
                "CI_JOB_URL": "https://gl/p/-/jobs/9",
                "CI_PIPELINE_URL": "https://gl/p/-/pipelines/7",
            },
            "https://gl/p/-/jobs/9",
        ),
        (
            {"GITHUB_RUN_ID": "123", "GITHUB_REPOSITORY": "org/repo"},
            "https://github.com/org/repo/actions/runs/123",
        ),
        (
            {
                "GITHUB_RUN_ID": "123",
                "GITHUB_REPOSITORY": "org/repo",
                "GITHUB_SERVER_URL": "https://ghe.example.com/",
            },
            "https://ghe.example.com/org/repo/actions/runs/123",
        ),
        ({"GITHUB_RUN_ID": "123"}, ""),
        ({}, ""),
    ],
)
def test_pipeline_url(env: dict[str, str], url: str):
    assert Settings.from_env(env).pipeline_url == url


def test_secrets_and_local_dir_come_from_the_environment():
    settings = Settings.from_env(
        {
            "GITLAB_TOKEN": "glpat-aaaa",
            "GITLAB_WEBHOOK_SECRET": "gl-hook",
            "GITHUB_WEBHOOK_SECRET": "gh-hook",
            "MLFLOW_WEBHOOK_SECRET": "ml-hook",
            "PROMOTION_BOT_HOOK_SECRET": "post-hook",
            "PROMOTION_BOT_LOCAL_DIR": "/tmp/threads",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        }
    )
    assert settings.gitlab_token.value == "glpat-aaaa"
    assert settings.gitlab_webhook_secret.value == "gl-hook"
    assert settings.github_webhook_secret.value == "gh-hook"
    assert settings.mlflow_webhook_secret.value == "ml-hook"
    assert settings.hook_secret.value == "post-hook"
    assert settings.local_dir == Path("/tmp/threads")
    assert settings.tracking_uri == "http://mlflow:5000"
    assert not settings.github_token


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    settings = Settings.from_env()
    assert (settings.platform, settings.tracking_uri) == ("github", "http://from-env:5000")


def test_command_line_overrides_beat_the_environment():
    env = Settings.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://env:5000",
            "GITLAB_CI": "true",
            "GITLAB_URL": "https://env.example.com",
            "GITLAB_PROJECT": "env/proj",
            "GITLAB_USER_LOGIN": "dana",
            "GITLAB_TOKEN": "glpat-env",
        }
    )
    settings = env.with_overrides(
        tracking_uri="http://cli:5000",
        platform="github",
        gitlab_url="https://cli.example.com/",
        gitlab_project=None,  # not given: the environment stays
        github_api_url="https://ghe.example.com/api/v3/",
        github_repository="org/cli",
        local_dir="cli-dir",
        requested_by="eve",
        gitlab_token="glpat-cli",
    )
    assert settings.tracking_uri == "http://cli:5000"
    assert settings.platform == "github"
    assert settings.gitlab_url == "https://cli.example.com"
    assert settings.gitlab_project == "env/proj"
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.github_repository == "org/cli"
    assert settings.local_dir == Path("cli-dir")
    assert settings.requested_by == "eve"
    assert settings.gitlab_token == Secret("glpat-cli")
    assert env.tracking_uri == "http://env:5000"  # frozen: a new object


def test_no_overrides_change_nothing():
    settings = Settings.from_env({"GITLAB_CI": "1"})
    assert settings.with_overrides() == settings
    assert settings.with_overrides(tracking_uri=None, platform=None) == settings


# --- secrets never show ----------------------------------------------------------------------

TOKENS = {
    "GITLAB_TOKEN": "glpat-SECRET-1111",
    "GITHUB_TOKEN": "ghp_SECRET_2222",
    "GITLAB_WEBHOOK_SECRET": "gl-SECRET-3333",
    "GITHUB_WEBHOOK_SECRET": "gh-SECRET-4444",
    "MLFLOW_WEBHOOK_SECRET": "ml-SECRET-5555",
    "PROMOTION_BOT_HOOK_SECRET": "hook-SECRET-6666",
    "MLFLOW_TRACKING_URI": "https://alice:pw-SECRET-7777@mlflow.example.com",
}


def test_secrets_never_show_in_repr_str_or_fstring():
    settings = Settings.from_env(TOKENS)
    shown = [repr(settings), str(settings), f"{settings}", f"{settings!r}", format(settings)]
    shown += [f"{settings.gitlab_token}", str(settings.github_token), repr(settings.hook_secret)]
    for text in shown:
        assert "SECRET" not in text, text
    assert "mlflow.example.com" in repr(settings)  # the URI itself still shows, redacted
    assert f"{settings.gitlab_token}" == "***"
    assert str(Secret("")) == ""


def test_secret_values_lists_every_secret_for_masking():
    settings = Settings.from_env(TOKENS)
    values = set(settings.secret_values())
    expected = {value for key, value in TOKENS.items() if key != "MLFLOW_TRACKING_URI"}
    assert expected | {"pw-SECRET-7777"} <= values


def test_the_tracking_uri_password_is_masked_as_written_and_decoded():
    settings = Settings(tracking_uri="http://al:p%40ss-word@host:5000")
    assert {"p%40ss-word", "p@ss-word"} <= set(settings.secret_values())


def test_secret_is_falsy_when_empty():
    assert not Secret("") and Secret("x")


# --- log lines never carry a secret (bot.logs) -----------------------------------------------


def _log_through(formatter: logging.Formatter) -> str:
    redactor = RedactSecrets(["tok-SECRET-99"])
    record = logging.LogRecord(
        "bot.t", logging.ERROR, __file__, 1, "call with %s", ("tok-SECRET-99",), None
    )
    try:
        raise RuntimeError("server said tok-SECRET-99 is wrong")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    record.url = "https://x/?token=tok-SECRET-99"  # extra={...} context
    assert redactor.filter(record)
    return formatter.format(record)


@pytest.mark.parametrize(
    "formatter", [logging.Formatter("%(message)s %(url)s"), JsonFormatter()], ids=["text", "json"]
)
def test_log_lines_and_tracebacks_are_masked(formatter: logging.Formatter):
    line = _log_through(formatter)
    assert "tok-SECRET-99" not in line
    assert "***" in line and "RuntimeError: server said *** is wrong" in line.replace("\\n", "\n")


def test_log_masking_keeps_the_message_when_there_is_no_secret():
    redactor = RedactSecrets(["abc"])  # too short: ignored, or every word would be masked
    assert redactor.secrets == []
    record = logging.LogRecord("bot.t", logging.INFO, __file__, 1, "v%s of %s", (3, "abc"), None)
    assert redactor.filter(record)
    assert record.getMessage() == "v3 of abc"
