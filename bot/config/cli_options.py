"""The command line's shared options: where settings come from (each option overrides its
environment variable, docs/design.md, "Configuration") and how the run logs.

Imported by `bot/cli.py` at start-up, so it imports nothing heavy: click and the logging setup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


# The options of the commands that build a Context. Every such command accepts all of them, so
# one set of options can be passed to every command as the environment is; a command shows in
# its help only those it uses: the forge's only where it talks to the forge.
def _registry_options() -> list[Callable[[F], F]]:
    return [
        click.option(
            "--params", "params_path", metavar="PATH", help="params.yaml [default: params.yaml]"
        ),
        click.option("--tracking-uri", help="MLflow tracking URI [env: MLFLOW_TRACKING_URI]"),
        click.option(
            "--model",
            envvar="PROMOTION_BOT_MODEL",
            help="the model to act on, one params.yaml configures (required by register, gate "
            "and request when it lists several) [env: PROMOTION_BOT_MODEL]",
        ),
    ]


def _forge_options(hidden: bool) -> list[Callable[[F], F]]:
    return [
        click.option(
            "--platform",
            type=click.Choice(["gitlab", "github", "local"]),
            hidden=hidden,
            help="Forge [env: PROMOTION_BOT_PLATFORM; detected from CI]",
        ),
        click.option(
            "--gitlab-url", hidden=hidden, help="GitLab base URL [env: GITLAB_URL, CI_SERVER_URL]"
        ),
        click.option(
            "--project",
            "gitlab_project",
            hidden=hidden,
            help="GitLab project id or path [env: GITLAB_PROJECT]",
        ),
        click.option(
            "--github-api-url", hidden=hidden, help="GitHub API URL [env: GITHUB_API_URL]"
        ),
        click.option(
            "--repo",
            "github_repository",
            hidden=hidden,
            help="GitHub owner/name [env: GITHUB_REPOSITORY]",
        ),
        click.option(
            "--local-dir",
            hidden=hidden,
            help="local platform folder [env: PROMOTION_BOT_LOCAL_DIR]",
        ),
    ]


def _requester_option(hidden: bool) -> Callable[[F], F]:
    return click.option(
        "--requested-by",
        hidden=hidden,
        help="who triggered training [env: PROMOTION_BOT_REQUESTED_BY]",
    )


OVERRIDES = (
    "tracking_uri",
    "platform",
    "gitlab_url",
    "gitlab_project",
    "github_api_url",
    "github_repository",
    "local_dir",
    "requested_by",
)


def connection_options(forge: bool, requester: bool = False) -> Callable[[F], F]:
    """The options above, the forge's and the requester's shown only when the command uses them."""
    options = [
        *_registry_options(),
        *_forge_options(hidden=not forge),
        _requester_option(hidden=not requester),
    ]

    def decorate(func: F) -> F:
        func = logging_options(func)  # applied first: listed last in the help
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _more_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        _reconfigure(ctx, verbose=value)


def _log_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        _reconfigure(ctx, log_format=value)


def _reconfigure(ctx: click.Context, verbose: int = 0, log_format: str | None = None) -> None:
    """-v and --log-format given after the command: as if given before it."""
    from bot.logs import configure

    state = ctx.find_root().ensure_object(dict)
    state["verbose"] = state.get("verbose", 0) + verbose
    state["log_format"] = log_format or state.get("log_format", "text")
    state["redactor"] = configure(state["verbose"], state["log_format"])


VERBOSE_HELP = "More logging; -v also shows tracebacks."
LOG_FORMAT_HELP = "Log lines and errors: text, or one JSON object a line."


def logging_options(func: F) -> F:
    """-v and --log-format after the command too (`promotion-bot status -v`)."""
    func = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        expose_value=False,
        callback=_log_format,
        help=LOG_FORMAT_HELP,
    )(func)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_more_verbose,
        help=VERBOSE_HELP,
    )(func)
