"""The `promotion-bot` command line. Thin: options in, one importable function called, output out.

Nothing heavy is imported at module level, so `--help` and `--version` start fast (no MLflow,
no forge clients, no pydantic): each command imports what it needs when it runs.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from bot import __version__
from bot.config.cli_options import (
    LOG_FORMAT_HELP,
    OVERRIDES,
    VERBOSE_HELP,
    connection_options,
    logging_options,
)

if TYPE_CHECKING:
    from bot.reports.status import ChampionStatus
    from bot.runtime.context import Context

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Commands that act on one model: with several configured, --model must name it.
_ONE_MODEL = frozenset({"register", "gate", "request", "files"})
# Commands that write records the bot relies on later: on a forge, never without the signing key
# (docs/security.md). `verify`, `status` and `history` only read, and need no secret.
_SIGNING = frozenset({"serve", "poll", "handle", "register", "gate", "request", "import-ledger"})


def _context(kwargs: dict[str, Any]) -> Context:
    """Build the Context from params.yaml, the environment and this command's options."""
    from bot.config.model_set import load_models
    from bot.config.settings import Settings
    from bot.runtime.context import Context
    from bot.urls import url_secrets

    click_ctx = click.get_current_context()
    root = click_ctx.find_root().obj or {}
    params_path = kwargs.pop("params_path", None) or root.get("params_path")
    overrides = {key: kwargs.pop(key, None) for key in OVERRIDES}
    settings = Settings.from_env().with_overrides(**overrides)
    redactor = root.get("redactor")
    if redactor is not None:  # mask this run's secrets in every log line from now on
        redactor.set_secrets(settings.secret_values())
    settings.validated()
    if click_ctx.info_name in _SIGNING:
        settings.require_signing_key()
    model = kwargs.pop("model", None)
    models = load_models(params_path).named_by(model)
    models.require_names(settings.platform)
    if redactor is not None:
        hooks = [url_secrets(params.promotion.post_promote_hook) for params in models]
        redactor.set_secrets([*settings.secret_values(), *(s for hook in hooks for s in hook)])
    one = click_ctx.info_name in _ONE_MODEL
    if one or not models.declared:  # one pipeline template or action for several models
        return Context(settings=settings, params=models.pick(model, required=one), echo=click.echo)
    served = models.only(model)  # serve, poll, handle, status...: every model, or the one named
    return Context(settings=settings, params=served.models[0], echo=click.echo, models=served)


def with_context(
    forge: bool, requester: bool = False, check: Callable[[dict[str, Any]], None] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The command gets the Context its options, params.yaml and the environment make; `check`
    refuses a bad combination of its options first, before any of that is read."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @connection_options(forge, requester)
        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            if check is not None:
                check(kwargs)
            return func(_context(kwargs), **kwargs)

        return wrapper

    return decorate


class CommandFailed(click.ClickException):
    """A command's failure as main() prints it: one line, after the traceback under -v."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details  # the traceback, already through the redactor

    def show(self, file: Any = None) -> None:  # click's own printing (CliRunner, standalone)
        if self.details:
            click.echo(self.details, err=True)
        super().show(file)


class CannotTell(CommandFailed):
    exit_code = 2  # verify's 1 is the answer "drift": an error must not read as one


def failure(exc: Exception, kind: type[CommandFailed] = CommandFailed) -> CommandFailed:
    """`exc`, raised inside a command, as one line (and its traceback with -v)."""
    from bot.errors import BotError

    verbose = (click.get_current_context().find_root().obj or {}).get("verbose", 0)
    # Through the redactor: a library's message may quote a secret URI.
    details = _scrub(traceback.format_exc().rstrip()) if verbose else ""
    if isinstance(exc, BotError):
        return kind(_scrub(str(exc)), details)
    what = f"unexpected {type(exc).__name__}: {_scrub(str(exc))} (run with -v for details)"
    return kind(what, details)


class BotGroup(click.Group):
    """Turns every BotError into one `error: ...` line and exit code 1 (traceback only with -v)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            raise failure(exc) from None


def _scrub(text: str) -> str:
    redactor = (click.get_current_context().find_root().obj or {}).get("redactor")
    return redactor.redact(text) if redactor is not None else text


@click.group(cls=BotGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(
    __version__, "--version", prog_name="promotion-bot", help="Show the bot's version and exit."
)
@click.option(
    "--params",
    "params_path",
    metavar="PATH",
    envvar="PROMOTION_BOT_PARAMS",
    help="[env: PROMOTION_BOT_PARAMS; default: params.yaml]",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help=LOG_FORMAT_HELP,
)
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.pass_context
def cli(ctx: click.Context, params_path: str | None, log_format: str, verbose: int) -> None:
    """Promote MLflow models to champion through reviewed GitLab/GitHub requests.

    \b
    Lifecycle:  register -> gate -> request -> /promote or /rollback in the thread
    Try it:     promotion-bot demo

    -v and --log-format go before or after the command.
    """
    from bot.logs import configure

    redactor = configure(verbose, log_format)
    # Filled in place: main() hands this dict in and reads the log format back after a failure.
    state = ctx.ensure_object(dict)
    state.update(params_path=params_path, verbose=verbose, log_format=log_format, redactor=redactor)


def _model_version(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    if value == "":  # `--version` without a number: perhaps the bot's version was meant
        raise click.BadParameter(
            f"give the model version: {ctx.command_path} --version N (the bot's own version: "
            "promotion-bot --version)",
            ctx,
            param,
        )
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise click.BadParameter(f"{value!r} is no version number (1, 2, ...)", ctx, param)
    return int(value)


def model_version_option(help_text: str) -> Callable[[Any], Any]:
    """A command's `--version N`: a model version. The bot's own `--version` stands before
    the command (`promotion-bot --version`), so the two never meet."""
    return click.option(
        "--version",
        "version",
        metavar="N",
        is_flag=False,
        flag_value="",
        callback=_model_version,
        help=help_text,
    )


@cli.command()
@click.option("--run-id", help="Run to register [default: from register_model.run_id_file]")
@click.option("--alias", type=click.Choice(["ci-smoke", "smoke"]), help="Initial alias")
@with_context(forge=False, requester=True)
def register(ctx: Context, run_id: str | None, alias: str | None) -> None:
    """Stage 1: register the trained run as a new version (idempotent)."""
    from bot.ci.register import register as do_register
    from bot.ci.register import requester_warning
    from bot.ci.request_body import requester_missing

    result = do_register(ctx, run_id=run_id, alias=alias)
    again = " (already registered)" if result.reused else ""
    click.echo(f"{ctx.model} v{result.version.version} @{result.alias}{again}")
    version = result.version
    if requester_missing(ctx, version, version.requested_by or ctx.settings.requested_by):
        click.echo(requester_warning(ctx.model, version.version), err=True)


@cli.command()
@model_version_option("The model version to gate [default: the one @smoke points at].")
@with_context(forge=False)
def gate(ctx: Context, version: int | None) -> None:
    """Stage 2: compare with the current candidate; move `candidate` on pass."""
    from bot.ci.gate import gate as do_gate

    result = do_gate(ctx, version=version)
    current = "none" if result.candidate_value is None else f"{result.candidate_value:.6g}"
    verdict = "PASS" if result.passed else "FAIL"
    click.echo(
        f"{verdict} {result.model} v{result.version}: {result.metric} {result.new_value:.6g} "
        f"vs candidate {current} (tolerance {result.tolerance:g}); {result.reason}"
    )
    if not result.passed:
        click.echo(f"warning: v{result.version} stays out of @candidate", err=True)


@cli.command()
@model_version_option("The model version to request [default: the candidate].")
@click.option("--dry-run", is_flag=True, help="Print the body and the calls; write nothing.")
@with_context(forge=True, requester=True)
def request(ctx: Context, version: int | None, dry_run: bool) -> None:
    """Open or update the promotion request for the candidate (or --version)."""
    import os

    from bot.ci.register import requester_warning
    from bot.ci.request import open_or_update_request, write_ci_outputs

    result = open_or_update_request(ctx, version=version, dry_run=dry_run)
    if result.requester_missing:
        click.echo(requester_warning(ctx.model, result.version), err=True)
    if dry_run and not result.planned:  # writes nothing, not even the CI outputs
        click.echo(result.message)
        return
    if dry_run:
        if result.unread:
            click.echo(
                f"note: the forge was not read in this dry run ({_scrub(result.unread)}): shown "
                "as a new request; an open request of this version would be updated instead",
                err=True,
            )
        click.echo(result.body)
        click.echo("would call:")
        for call in result.planned:
            click.echo(f"  {call}")
        return
    if not result.url:  # nothing to request (e.g. the candidate already is champion)
        click.echo(result.message)
        return
    write_ci_outputs(result.url, result.number, os.environ)
    click.echo(result.url)


@cli.command()
@click.option(
    "--copy-to",
    type=click.Path(file_okay=False),
    help="Copy the files that exist into this folder (a CI job's artifacts).",
)
@click.option(
    "--take-from",
    type=click.Path(file_okay=False),
    help="Put the run id file a training job left in this folder back where the params say.",
)
@with_context(forge=False)
def files(ctx: Context, copy_to: str | None, take_from: str | None) -> None:
    """The model's files in CI, where its params put them: the run id training writes, the
    gate's result."""
    from pathlib import Path

    from bot.ci.files import copy_model_files, model_files, take_run_id

    if copy_to and take_from:
        raise click.UsageError("--copy-to and --take-from: choose one")
    if take_from is not None:
        click.echo(f"register_model.run_id_file: {take_run_id(ctx.params, Path(take_from))}")
        return
    if copy_to is None:
        for found in model_files(ctx.params):
            click.echo(f"{found.key}: {found.path}")
        return
    for found in copy_model_files(ctx.params, Path(copy_to)):
        where = f"copied to {found.copy}" if found.copy else "not written, not copied"
        click.echo(f"{found.key}: {found.path}: {where}")


@cli.command()
@click.option("--event-name", required=True, help="e.g. $GITHUB_EVENT_NAME or 'Note Hook'")
@click.option("--event-file", required=True, type=click.Path(dir_okay=False), help="JSON payload")
@with_context(forge=True)
def handle(ctx: Context, event_name: str, event_file: str) -> None:
    """Process one webhook delivery from a file (GitHub Actions)."""
    from bot.intake.entry import handle_event_file

    click.echo(handle_event_file(ctx, event_name, event_file))


@cli.command()
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False),
    help="Then write the status page here (as `report --html`); '' for none.",
)
@with_context(forge=True)
def poll(ctx: Context, report_file: str | None) -> None:
    """Handle unanswered commands on open (and recently closed) requests, oldest first."""
    from bot.intake.poll import poll as do_poll

    result = do_poll(ctx)
    click.echo(result.summary())
    if report_file:  # before the verdict: a red poll still publishes what it saw
        from bot.ledger.store import now_ms
        from bot.reports.page import page_data, render_html

        Path(report_file).parent.mkdir(parents=True, exist_ok=True)
        Path(report_file).write_text(render_html(page_data(ctx, now_ms())), encoding="utf-8")
    # A scheduled job must turn red when a command could not be handled, or the champion checked.
    problems = [f"{len(result.failures)} command(s) failed"] if result.failures else []
    if result.check_failures:
        count = len(result.check_failures)
        problems.append(
            "the champion check failed" if count == 1 else f"{count} champion checks failed"
        )
    if problems:
        raise click.ClickException(f"{'; '.join(problems)}; see above")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@with_context(forge=True)
def serve(ctx: Context, host: str, port: int) -> None:
    """Run the webhook server (GitLab, GitHub and MLflow webhooks)."""
    from bot.intake.entry import serve as do_serve

    do_serve(ctx, host, port)


@cli.command()
@click.argument("thread")
@click.argument("body")
@click.option("--as", "author", required=True, help="The commenter's username")
@with_context(forge=True)
def comment(ctx: Context, thread: str, body: str, author: str) -> None:
    """local platform: add a comment to THREAD as USER and handle it."""
    from bot.intake.entry import local_comment

    click.echo(local_comment(ctx, thread, body, author))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_context(forge=True)
def status(ctx: Context, as_json: bool) -> None:
    """Aliases, their versions and metrics, open requests (every model, or --model). Reads only;
    exit 1 when a champion was moved outside the bot (as `verify`)."""
    from dataclasses import replace

    from bot.reports.status import render_status, status_data, status_json

    shown = []
    for model_ctx in ctx.each_model():
        one = status_data(model_ctx, model_ctx.model)
        shown.append(replace(one, champion_check=_champion_check(model_ctx)))
    if as_json:
        click.echo(status_json(shown))
    else:
        click.echo("\n\n".join(render_status(one) for one in shown))
    if any(one.champion_check and one.champion_check.drifted for one in shown):
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help="Write the page here.")
@click.option(
    "--json", "json_file", type=click.Path(dir_okay=False), help="Its data here ('-': stdout)."
)
@with_context(forge=True)
def report(ctx: Context, html_file: str | None, json_file: str | None) -> None:
    """The status page (every model's champion, candidate, gates, drift, last changes, trend) as
    an HTML file for a CI artifact or Pages, and its data as JSON (stdout without options).
    Reads only."""
    from bot.ledger.store import now_ms
    from bot.reports.page import page_data, page_json, render_html

    page = page_data(ctx, now_ms())
    if html_file:
        Path(html_file).write_text(render_html(page), encoding="utf-8")
    if json_file and json_file != "-":
        Path(json_file).write_text(page_json(page) + "\n", encoding="utf-8")
    elif json_file == "-" or not html_file:
        click.echo(page_json(page))


def _champion_check(ctx: Context) -> ChampionStatus:
    """`status` asks the drift question as `verify` does, read-only."""
    from bot.errors import BotError
    from bot.reports.status import ChampionStatus, champion_status

    try:
        return champion_status(ctx)
    except BotError as exc:  # status still shows the registry's aliases (as for the forge)
        return ChampionStatus("unavailable", f"{type(exc).__name__}: {_scrub(str(exc))}")


def _time_ms(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """A TIME option, read by the one function every time option uses."""
    if value is None:
        return None
    from bot.timestamps import TIME_FORMS, ms_from_user_time

    found = ms_from_user_time(value)
    if found is None:
        raise click.BadParameter(f"{value!r} is no time (one of: {TIME_FORMS})")
    return found


def _range_check(options: dict[str, Any]) -> None:
    since, until = options.get("since"), options.get("until")
    if since is not None and until is not None and since > until:
        from bot.timestamps import iso_from_ms

        raise click.UsageError(
            f"--since {iso_from_ms(since)} is after --until {iso_from_ms(until)}: "
            "nothing can lie between them (swap the two?)"
        )


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option("--since", metavar="TIME", callback=_time_ms, help="Changes at or after TIME.")
@click.option("--until", metavar="TIME", callback=_time_ms, help="Changes at or before TIME.")
@click.option(
    "--at",
    metavar="TIME",
    callback=_time_ms,
    help="Which version was champion at TIME, since when, approved by whom.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@with_context(forge=False, check=_range_check)
def history(
    ctx: Context,
    limit: int | None,
    since: int | None,
    until: int | None,
    at: int | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Every champion change from the audit ledger, newest first, across all models unless
    --model: when, from, to, who with which role, why, where.

    TIME is ISO 8601 (UTC unless it says otherwise; a date alone is its midnight), now, today or
    yesterday (midnight UTC), or a time ago: 30m, 2h, 1d, 1w."""
    from bot.reports.audit import Query, champion_at, history_entries, render, render_at

    fmt = "json" if as_json else fmt
    if at is not None:
        if limit is not None or since is not None or until is not None:
            raise click.UsageError("--at answers alone: leave out --limit, --since and --until")
        if ctx.several:
            names = ", ".join(ctx.model_names())
            raise click.UsageError(f"--at answers for one model: add --model (one of: {names})")
        entry = champion_at(ctx, ctx.model, at)
        if entry is None and not _known_model(ctx):
            raise click.ClickException(_unknown_model(ctx))
        click.echo(render_at(ctx.model, at, entry, fmt))
        return
    explicit = click.get_current_context().params.get("model")
    query = Query(model=ctx.model if explicit else "", since_ms=since, until_ms=until, limit=limit)
    entries = history_entries(ctx, query)
    if explicit and not entries and not _known_model(ctx):
        raise click.ClickException(_unknown_model(ctx))
    click.echo(render(entries, fmt))


def _unknown_model(ctx: Context) -> str:
    return f"no registered model {ctx.model!r} and no ledger entry of it"


def _known_model(ctx: Context) -> bool:
    """A model the registry has, or the ledger recorded (it outlives a deleted model): a name
    neither knows is a typo, not an empty history."""
    from bot.reports.audit import Query, history_entries

    if ctx.registry.model_exists(ctx.model):
        return True
    return bool(history_entries(ctx, Query(model=ctx.model, limit=1)))


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@connection_options(forge=False)
def verify(fmt: str, **kwargs: Any) -> None:
    """Is each model's champion the one the audit ledger says was approved? Exit 0 yes, 1 no
    (drift, a ledger entry deleted in MLflow, or no entry signed by a key it trusts), 2 when it
    cannot be told (an error). Reads only."""
    try:
        from bot.reports.audit import render_verification, verifications_json
        from bot.reports.audit import verify as check_ledger

        ctx = _context(kwargs)
        results = [check_ledger(one, one.model) for one in ctx.each_model()]
    except Exception as exc:  # 2: a monitor must never read a failure as "drift"
        raise failure(exc, CannotTell) from None
    if fmt == "json":
        click.echo(verifications_json(results))
    else:
        click.echo("\n".join(render_verification(result) for result in results))
    worst = max(result.exit_code for result in results)  # any model drifted: 1
    if worst:
        raise click.exceptions.Exit(worst)


@cli.command("import-ledger")
@click.option("--dry-run", is_flag=True, help="Print what it would import; write nothing.")
@with_context(forge=False)
def import_ledger(ctx: Context, dry_run: bool) -> None:
    """Import each model's history from before signing keys (its promotion.history tag, unsigned
    ledger runs) into the signed ledger, where the bot vouches for it. Run it with --dry-run
    first and check every change it prints against the request threads. Refused once the bot
    has signed a change of the model; idempotent."""
    from bot.commands.locking import model_lock
    from bot.ledger.importing import ImportRefused
    from bot.ledger.importing import import_ledger as do_import
    from bot.reports.audit import render_import

    refused = []
    for one in ctx.each_model():
        try:
            with model_lock(one) as lease:
                state = one.registry.state(one.model)
                found = do_import(one.ledger, one.model, state, lease.check, dry_run=dry_run)
        except ImportRefused as exc:
            refused.append(str(exc))
            continue
        click.echo(render_import(found, dry_run))
    if refused:
        raise click.ClickException("; ".join(refused))


@cli.command()
@click.option("--bot-user", required=True, help="The bot's MLflow account: MANAGE.")
@click.option(
    "--training-user",
    "training_users",
    multiple=True,
    help="A training account: READ at most (repeat for several).",
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 listing every deviation.")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option("--tracking-uri", help="MLflow tracking URI [env: MLFLOW_TRACKING_URI]")
def permissions(
    bot_user: str,
    training_users: tuple[str, ...],
    check: bool,
    dry_run: bool,
    tracking_uri: str | None,
) -> None:
    """Set who may move an alias in MLflow (basic-auth app; an admin's MLFLOW_TRACKING_USERNAME
    and _PASSWORD): the bot's account MANAGE on every model and the ledger experiment, training
    accounts READ at most. Idempotent."""
    import os

    from bot.config.model_set import load_models
    from bot.config.settings import Settings
    from bot.registry import permissions as layout_of

    if check and dry_run:
        raise click.UsageError("--check and --dry-run: choose one")
    root = click.get_current_context().find_root().obj or {}
    settings = Settings.from_env().with_overrides(tracking_uri=tracking_uri)
    if root.get("redactor") is not None:
        root["redactor"].set_secrets(settings.secret_values())
    models = load_models(root.get("params_path"))
    api = layout_of.AuthApi(settings.tracking_uri, os.environ)
    layout = layout_of.Layout(bot_user, training_users, models.names, settings.ledger_experiment)
    if check:
        found = layout_of.deviations(api, layout)
        for deviation in found:
            click.echo(str(deviation))
        if found:
            raise click.ClickException(f"{len(found)} deviation(s) from the permission layout")
        click.echo("permissions: as the layout says")
        return
    lines = layout_of.plan(api, layout) if dry_run else layout_of.apply(api, layout)
    prefix = "would " if dry_run else ""
    click.echo("\n".join(prefix + line for line in lines) or "permissions: nothing to change")


@cli.command()
def keygen() -> None:
    """A new signing key: the private one for the CI secret PROMOTION_BOT_SIGNING_KEY, and the
    line of its public key for promotion.trusted_keys in params.yaml (README "Signing keys")."""
    from bot.signing import KEY_VARIABLE, new_private

    seed, public, kid = new_private()
    click.echo(f"# private key: store it as the masked CI secret {KEY_VARIABLE}, nowhere else")
    click.echo(seed)
    click.echo("# public key: a line of promotion.trusted_keys in params.yaml (in place of [])")
    click.echo(f"- {public}  # key id {kid}")


@cli.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False), help="[default: a temp dir]")
@logging_options
def demo(workdir: str | None) -> None:
    """The whole lifecycle on an embedded registry and the local platform (under a minute)."""
    from bot.demo import run_demo

    run_demo(workdir, echo=click.echo)


def main() -> None:
    """Run the CLI; every failure is one `error: ...` line on stderr (a JSON line with
    `--log-format json`).

    See docs/design.md, "Command line".
    """
    state: dict[str, Any] = {}  # the group fills it: the log format, once it was read
    try:
        # Without standalone mode click hands an `Exit` raised inside a command (verify's 1)
        # back as the return value instead of exiting with it.
        returned = cli.main(prog_name="promotion-bot", standalone_mode=False, obj=state)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # no command: the help, as click shows it
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail(state, "aborted", 1)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        _fail(state, f"{exc.format_message()}{hint}", exc.exit_code)
    except click.ClickException as exc:
        _fail(state, exc.format_message(), exc.exit_code, getattr(exc, "details", ""))
    sys.exit(returned if isinstance(returned, int) and not isinstance(returned, bool) else 0)


def _fail(state: dict[str, Any], message: str, exit_code: int, details: str = "") -> NoReturn:
    from bot.logs import error_output

    # Options that failed to parse set nothing: then the command line says it.
    asked = state.get("log_format") == "json" or _log_format_in(sys.argv[1:]) == "json"
    fmt = "json" if asked else "text"
    click.echo(error_output(message, fmt, exit_code, details), err=True)
    sys.exit(exit_code)


def _log_format_in(argv: list[str]) -> str:
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    json_asked = any(pair == ("--log-format", "json") for pair in pairs)
    return "json" if json_asked or "--log-format=json" in argv else "text"


if __name__ == "__main__":  # pragma: no cover
    main()
