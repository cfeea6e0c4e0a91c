"""Stage 3 `request`: open or update the promotion request for the candidate (docs/design.md,
"The lifecycle").

Idempotent: the open request of the same model+version has its body re-rendered, keeping the
ticks a human made and the status section; otherwise a new issue or MR/PR is opened. That
request is the thread the version's `promotion.requested_in` tag names (so a request whose
marker a person damaged is found and repaired), and only that one: a marker is editable, so a
thread whose marker merely names the version is never adopted. The version is then tagged with
the thread (and with who asked, when the registry does not know yet): the handler acts only in
the thread the registry names. Older open requests of the model are commented on and closed as
superseded, each only when the registry names it as its version's request (a person cannot get
another request closed by editing a marker). With `dry_run`, every write is listed instead of
made (reads still happen).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.ci.recipients import describe, recipients, report_unreached
from bot.ci.request_body import (
    RequestData,
    load_request_data,
    record_path,
    render_request_body,
    request_title,
    requester_missing,
)
from bot.errors import BotError, ConfigError, ForgeError
from bot.forges.offline import OfflineForge
from bot.registry.tags import REQUEST_HEAD_TAG, REQUESTED_IN_TAG
from bot.registry.versions import (
    TOY_ALIAS,
    RunInfo,
    VersionInfo,
    binding_value,
    requester_tags,
)
from bot.runtime.context import Context
from bot.runtime.request_threads import find_requests, of_another_bot
from bot.signing import Keys
from bot.threads.markers import parse_request_marker, read_request_marker, read_section, read_ticks
from bot.threads.thread import Thread
from bot.timestamps import utc_now_iso

log = logging.getLogger(__name__)

DOTENV_FILE = "promotion.env"  # GitLab: `artifacts: reports: dotenv: promotion.env`


@dataclass
class RequestResult:
    url: str  # "" when nothing was opened (dry run of a new request, version already champion)
    number: str
    created: bool
    body: str
    version: int
    dry_run: bool = False
    planned: list[str] = field(default_factory=list)  # every write call, made or (dry run) not
    superseded: list[str] = field(default_factory=list)  # numbers of the requests closed
    not_notified: list[str] = field(default_factory=list)  # people the forge did not record
    message: str = ""  # one line for people
    unread: str = ""  # dry run: why the forge was not read ("": it was)
    requester_missing: bool = False  # nobody recorded as the requester: /promote is refused


def request_tags(
    keys: Keys,
    version: VersionInfo,
    url: str,
    requested_by: str,
    requested_by_id: str = "",
    head: str = "",
    sign: bool = True,
) -> dict[str, str]:
    """The version tags that make `url` the version's request in the registry, if missing.

    The binding (`promotion.requested_in`) is written again when it names another thread or
    its seal does not hold: one written before bindings were signed is signed on this run.

    The requester (who runs `request`, PROMOTION_BOT_REQUESTED_BY and its id) is recorded only
    when the registry does not know one yet: `register` may have run without it or reused an
    old version, and the description is no evidence. `head`, an MR/PR's head commit, is
    recorded every time: running `request` is what says the branch as it is was reviewed.
    """
    tags = {}
    if version.requested_in != url or version.request_binding_problem(keys):
        tags[REQUESTED_IN_TAG] = binding_value(keys, version.model, version.version, url, sign)
    known = version.requested_by or version.requested_by_id
    if not known or version.requester_problem(keys):  # one the bot did not sign is no record
        tags.update(
            requester_tags(
                keys, version.model, version.version, requested_by, requested_by_id, sign
            )
        )
    if head and version.request_head != head:
        tags[REQUEST_HEAD_TAG] = head
    return tags


def resolve_version(
    ctx: Context, version: int | None, aliases: dict[str, int] | None = None
) -> VersionInfo:
    """The version to request: the candidate, or `version` if it is the candidate."""
    model = ctx.model
    alias = ctx.params.promote_model.candidate_alias
    registry = ctx.registry
    number = (registry.aliases(model) if aliases is None else aliases).get(alias)
    candidate = registry.version(model, number) if number is not None else None
    if version is None or (candidate is not None and candidate.version == version):
        info = candidate
    else:
        info = registry.version(model, version)
    if info is None:
        raise BotError(
            f"{model} has no @{alias} version: nothing to request "
            "(`promotion-bot gate` sets it when a version passes)"
        )
    if info.is_toy:
        raise BotError(
            f"{model} v{info.version} was registered as {TOY_ALIAS}: a toy model is never promoted"
        )
    if info.status == "FAILED_REGISTRATION":
        raise BotError(f"{model} v{info.version} failed registration in MLflow")
    if candidate is None or candidate.version != info.version:
        current = f"v{candidate.version} is" if candidate else "no version is"
        raise BotError(
            f"{model} v{info.version} is not the @{alias} ({current}): only the candidate can "
            "be promoted; `promotion-bot gate --version N` makes a version the candidate"
        )
    return info


class _Plan:
    """Writes go through here: made and recorded, or (dry run) only recorded."""

    def __init__(self, dry_run: bool, echo: Callable[[str], None] | None) -> None:
        self.dry_run = dry_run
        self.calls: list[str] = []
        self._echo = echo

    def do(self, description: str, call: Callable[[], Any]) -> Any:
        self.calls.append(description)
        if self.dry_run:
            return None
        log.info("request: %s", description)
        result = call()
        if self._echo is not None:
            self._echo(description)
        return result


def open_or_update_request(
    ctx: Context,
    version: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
) -> RequestResult:
    """Open (or update) the candidate's request and supersede older ones. See the module doc."""
    aliases = ctx.registry.aliases(ctx.model)
    info = resolve_version(ctx, version, aliases)
    model, number = ctx.model, info.version
    champion = aliases.get(ctx.params.promotion.champion_alias)
    if champion == number:
        return RequestResult(
            url="",
            number="",
            created=False,
            body="",
            version=number,
            dry_run=dry_run,
            message=f"{model} v{number} already is @{ctx.params.promotion.champion_alias}: "
            "nothing to request",
        )
    unread = _unread_forge(ctx) if dry_run else ""
    if unread:  # rendered as a new request, with the platform and names the settings give
        ctx = Context(
            ctx.settings, ctx.params, registry=ctx.registry, forge=OfflineForge(ctx.settings)
        )
    plan = _Plan(dry_run, echo)
    data = load_request_data(ctx, info, aliases=aliases)
    bound = "" if info.request_binding_problem(ctx.keys) else info.requested_in
    found = [] if unread else find_requests(ctx, model, also=bound)
    threads = [t for t in found if (parse_request_marker(t.body) or {}).get("model") == model]
    # The registry's record alone: it finds the request even when its marker was damaged, and
    # a marker edited to name this version finds nothing.
    same = [t for t in found if bound and t.url == bound]
    if info.requested_in and not bound:  # a binding the bot did not sign: `_rebinds`
        same = [t for t in found if _rebinds(ctx, info, t)]
    thread: Thread | None
    not_notified: list[str] = []
    if same:
        thread, body = _update(ctx, plan, same[0], data)
        created = False
    else:
        thread, body, not_notified = _open(ctx, plan, data)
        created = True
    _record(ctx, plan, info, thread)
    if created:
        verb = "would open" if dry_run else "opened"
    else:
        verb = ("would update" if dry_run else "updated") if plan.calls else "up to date:"
    # Every other version's request is stale: only the candidate can be promoted.
    others = [t for t in threads if _version_of(t) not in (None, number) and t not in same]
    others = [t for t in others if _named_by_registry(ctx, t)]
    superseded = [_supersede(ctx, plan, old, thread, info) for old in others]
    url = thread.url if thread else ""
    message = f"{verb} the request for {model} v{number}" + (f": {url}" if url else "")
    if dry_run and not plan.calls and thread is not None:
        message = (
            f"nothing to do: the request for {model} v{number} is up to date (#{thread.number})"
        )
    return RequestResult(
        url=url,
        number=thread.number if thread else "",
        created=created,
        body=body,
        version=number,
        dry_run=dry_run,
        planned=plan.calls,
        superseded=superseded,
        not_notified=not_notified,
        message=message,
        unread=unread,
        requester_missing=requester_missing(ctx, info, data.requested_by),
    )


def _unread_forge(ctx: Context) -> str:
    """Why a dry run cannot read the forge ("": it can). A dry run needs no credentials: it is
    how an adopter checks a request's text before any are set up."""
    try:
        ctx.forge.ping()
    except (ConfigError, ForgeError) as exc:
        return str(exc)
    return ""


def _version_of(thread: Thread) -> int | None:
    marker = read_request_marker(thread.body)
    return marker.version if marker is not None and not marker.problem else None


def _rebinds(ctx: Context, info: VersionInfo, thread: Thread) -> bool:
    """Is `thread` what the version's unsigned binding names (one written before bindings were
    signed, or by hand), with the bot's own marker agreeing: this model and version, and this
    bot or a marker written before ids? Then `request` binds it again, signed. A registry
    writer alone cannot point `request` at another thread (docs/security.md)."""
    marker = read_request_marker(thread.body)
    agrees = (
        thread.url == info.requested_in
        and marker is not None
        and not marker.problem
        and (marker.model, marker.version) == (info.model, info.version)
        and not of_another_bot(ctx, marker.bot)
    )
    if agrees:
        log.warning("#%s: the registry binds it without the bot's seal: bound again", thread.number)
    return agrees


def _named_by_registry(ctx: Context, thread: Thread) -> bool:
    """The registry names `thread` as the request of the version its marker says (one search)."""
    if _version_of(thread) in ctx.registry.versions_requested_in(ctx.model, thread.url):
        return True
    log.warning("#%s is not closed: the registry does not name it as a request", thread.number)
    return False


def _record(ctx: Context, plan: _Plan, info: VersionInfo, thread: Thread | None) -> None:
    """Tag the version with its request (see `request_tags`); a dry run lists the tags."""
    url = thread.url if thread is not None else "<the new request's URL>"
    settings = ctx.settings
    head = thread.head_sha if thread is not None else ""
    tags = request_tags(
        ctx.keys, info, url, settings.requested_by, settings.requested_by_id, head,
        sign=not plan.dry_run,
    )  # fmt: skip
    for key, value in tags.items():
        tag = functools.partial(ctx.registry.set_version_tag, ctx.model, info.version, key, value)
        plan.do(f"tag {ctx.model} v{info.version} {key}={value}", tag)


def _update(ctx: Context, plan: _Plan, thread: Thread, data: RequestData) -> tuple[Thread, str]:
    if thread.kind == "merge_request" and not thread.head_sha:  # GitHub's listing has no head
        thread = ctx.forge.get_thread(thread.kind, thread.number)
    # The body shows who trained it as the registry holds it (or is about to: `request_tags`),
    # so someone else re-running `request` does not change it.
    shown = data.requested_by or (parse_request_marker(thread.body) or {}).get("requested_by", "")
    body = render_request_body(
        ctx,
        data.candidate.version,
        kind=thread.kind,
        ticks=read_ticks(thread.body),
        status=read_section(thread.body, "status"),
        data=dataclasses.replace(data, requested_by=shown),
    )
    if body != thread.body:
        plan.do(f"update the body of #{thread.number}", lambda: ctx.forge.update_body(thread, body))
    return thread, body


def _open(ctx: Context, plan: _Plan, data: RequestData) -> tuple[Thread | None, str, list[str]]:
    """Open the request, notifying its recipients; also returns who the forge did not record."""
    cfg = ctx.params.promotion.request
    kind = cfg.thread_kind
    info = data.candidate.version
    title = request_title(ctx.model, info.version)
    body = render_request_body(ctx, info, kind=kind, data=data)
    forge = ctx.forge
    people = recipients(ctx.params, kind, data.requested_by, forge.bot_username())
    if kind == "issue":
        thread = plan.do(
            f"open issue {title!r}{describe(people)}",
            lambda: forge.open_issue(title, body, cfg.labels, people),
        )
        return thread, body, report_unreached(people, thread) if thread else []
    branch = f"promotion/{ctx.model}/v{info.version}"
    path = record_path(ctx)
    record = promotion_record(ctx, info, data.candidate.run)
    plan.do(
        f"create branch {branch} from {cfg.target_branch} and commit {path}",
        lambda: forge.commit_file(
            branch,
            cfg.target_branch,
            path,
            record,
            f"Request promotion of {ctx.model} v{info.version}",
        ),
    )
    thread = plan.do(
        f"open merge request {title!r} ({branch} -> {cfg.target_branch}){describe(people)}",
        lambda: forge.open_merge_request(
            title, body, cfg.labels, branch, cfg.target_branch, people
        ),
    )
    return thread, body, report_unreached(people, thread) if thread else []


def promotion_record(ctx: Context, info: VersionInfo, run: RunInfo | None = None) -> str:
    """The JSON committed at `record_path` on the merge_request kind's branch."""
    run = run if run is not None else ctx.registry.run(info.run_id)
    record = {
        "model": info.model,
        "version": info.version,
        "run_id": info.run_id,
        "metrics": dict(sorted(run.metrics.items())),
        "requested_by": info.requested_by or ctx.settings.requested_by,
        "requested_at": utc_now_iso(),
    }
    return json.dumps(record, indent=2) + "\n"


def _supersede(
    ctx: Context, plan: _Plan, old: Thread, new: Thread | None, info: VersionInfo
) -> str:
    new_link = f"[#{new.number}]({new.url})" if new else ""
    comment = ctx.render(
        "superseded.md.j2",
        model=ctx.model,
        new_version=info.version,
        old_version=_version_of(old),
        candidate_alias=ctx.params.promote_model.candidate_alias,
        new_link=new_link,
    )
    plan.do(f"comment on #{old.number} (superseded)", lambda: ctx.forge.post_comment(old, comment))
    plan.do(f"close #{old.number} (superseded)", lambda: ctx.forge.close(old))
    return old.number


def write_ci_outputs(url: str, number: str, env: Mapping[str, str]) -> list[Path]:
    """Hand the request to later CI steps: `$GITHUB_OUTPUT` lines, a GitLab dotenv report."""
    url, number = _one_line(url), _one_line(number)
    written = []
    if env.get("GITHUB_OUTPUT"):
        path = Path(env["GITHUB_OUTPUT"])
        with path.open("a", encoding="utf-8") as out:
            out.write(f"request_url={url}\nrequest_number={number}\n")
        written.append(path)
    if env.get("GITLAB_CI"):
        path = Path(DOTENV_FILE)
        path.write_text(
            f"PROMOTION_REQUEST_URL={url}\nPROMOTION_REQUEST_NUMBER={number}\n", encoding="utf-8"
        )
        written.append(path)
    return written


def _one_line(value: str) -> str:
    return " ".join(str(value).split())
