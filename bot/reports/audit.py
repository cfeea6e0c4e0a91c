"""`history` and `verify` for people and for machines: the audit ledger read back
(docs/design.md, "The ledger" and "Drift").

`history` pages through the ledger newest first, for one model or all; `--at` answers the
auditor's question (which version was champion then, since when, approved by whom) with one
search; `--format table|json|csv`. `verify` asks the drift question of the ledger itself, for a
CI job or a monitor. Both only read. History from before keys that the operator has not imported
(`promotion-bot import-ledger`, bot.ledger.importing) is evidence of nothing: `history` shows the
tag's entries as the import would write them, marked as not imported, and `verify` names what
waits and does not pass.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.errors import NotFoundError
from bot.ledger.chain import Break, InFlight, members, walk
from bot.ledger.drift import ChampionCheck, check_champion
from bot.ledger.entry import FIELDS, LedgerEntry
from bot.ledger.importing import Waiting, waiting
from bot.ledger.store import Where, now_ms
from bot.registry.model_state import ModelState
from bot.registry.tags import HISTORY_TAG, PENDING_TAG
from bot.signing import KEY_VARIABLE, NOT_SIGNED, TRUSTED_KEYS, UNTRUSTED
from bot.timestamps import iso_from_ms

if TYPE_CHECKING:
    from bot.runtime.context import Context

FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class Query:
    model: str = ""  # "" for every model of the ledger
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int | None = None


def history_entries(ctx: Context, query: Query) -> list[LedgerEntry]:
    """The entries `query` asks for, newest first."""
    model = query.model or ctx.model
    state = ctx.registry.state(model)
    experiment_id = ctx.ledger.ready(state, model) or ctx.ledger.experiment_id()
    where = Where(model=query.model, since_ms=query.since_ms, until_ms=query.until_ms)
    found = (
        list(ctx.ledger.entries(experiment_id, where, limit=query.limit)) if experiment_id else []
    )
    # An unsigned run the import copied into a signed entry shows once.
    covered = {entry.supersedes for entry in found if entry.trusted and entry.supersedes}
    found = [entry for entry in found if entry.ledger_run not in covered]
    waiting = [e for e in not_imported(ctx, model, state, experiment_id) if _within(e, where)]
    if waiting:  # merged in time order, as the ledger will hold them
        found = sorted([*found, *waiting], key=lambda entry: entry.at_ms, reverse=True)
    return found[: query.limit] if query.limit is not None else found


def champion_at(ctx: Context, model: str, at_ms: int) -> LedgerEntry | None:
    """The entry that made the champion of `model` at `at_ms`: one search (and the model read)."""
    state = ctx.registry.state(model)
    experiment_id = ctx.ledger.ready(state, model) or ctx.ledger.experiment_id()
    where = Where(model=model, until_ms=at_ms)
    found = ctx.ledger.latest(experiment_id, where) if experiment_id else None
    waiting = [e for e in not_imported(ctx, model, state, experiment_id) if _within(e, where)]
    candidates = [entry for entry in (found, *waiting) if entry is not None]
    return max(candidates, key=lambda entry: entry.at_ms, default=None)


def not_imported(
    ctx: Context, model: str, state: ModelState, experiment_id: str
) -> list[LedgerEntry]:
    """The history tag's entries the operator's import would write (newest first). None, with
    no call, when the tag is the bot's signed cache of changes it chained in this ledger: the
    ledger has them. Otherwise the model's chain says which are there already."""
    if not state.unchecked_history or (experiment_id and state.cache_experiment == experiment_id):
        return []
    chain = ctx.ledger.chain(experiment_id, model) if experiment_id else []
    return list(waiting(model, state, chain).history[::-1])


def _within(entry: LedgerEntry, where: Where) -> bool:
    if where.since_ms is not None and entry.at_ms < where.since_ms:
        return False
    return where.until_ms is None or entry.at_ms <= where.until_ms


# --- output ----------------------------------------------------------------------------------
def render(entries: Sequence[LedgerEntry], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([entry.as_dict() for entry in entries], indent=2, ensure_ascii=False)
    if fmt == "csv":
        return render_csv(entries)
    return render_table(entries)


def render_csv(entries: Sequence[LedgerEntry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FIELDS), lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow(entry.csv_row())
    return out.getvalue().rstrip("\n")


def read_csv(text: str) -> list[LedgerEntry]:
    """`history --format csv` read back (what an auditor's tool does)."""
    return [LedgerEntry.from_csv_row(row) for row in csv.DictReader(io.StringIO(text))]


def render_table(entries: Sequence[LedgerEntry]) -> str:
    if not entries:
        return "no champion changes recorded"
    return "\n".join(_line(entry) for entry in entries)


def _line(entry: LedgerEntry) -> str:
    before = f"v{entry.from_version}" if entry.from_version is not None else "none"
    after = f"v{entry.to_version}" if entry.to_version is not None else "none"
    marks = "".join(
        f"  [{mark}]"
        for mark, on in (
            ("imported", entry.imported and bool(entry.ledger_run)),
            # in the history tag only (`history_entries`): not imported, evidence of nothing
            ("NOT IMPORTED: tag only", entry.imported and not entry.ledger_run),
            ("deleted in MLflow", entry.deleted),
            # docs/security.md: a run the bot did not sign, or changed since, is shown, flagged
            (f"NOT EVIDENCE: {entry.problem}", bool(entry.ledger_run) and not entry.trusted),
        )
        if on
    )
    reason = f" — {shown(entry.reason)}" if entry.reason else ""
    where = f"  {shown(entry.request_url)}" if entry.request_url else ""
    return (
        f"{entry.at}  {shown(entry.model)}  {shown(entry.action) or '?':<8} {before} -> {after}  "
        f"by {who(entry)}{reason}{where}{marks}"
    )


def shown(text: str) -> str:
    """`text` on one line of a terminal: line breaks and every other control or format
    character (ESC sequences, bidirectional overrides) written as escapes. A reason is an
    approver's free text, and any field can come from a run someone planted in the ledger: a
    second line must never read as a change that did not happen."""
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in _UNSHOWN
        else char
        for char in text
    )


_UNSHOWN = frozenset(("Cc", "Cf", "Zl", "Zp"))  # controls, formats, line/paragraph separators


def who(entry: LedgerEntry) -> str:
    """The approvers with their roles, or what set the champion."""
    if entry.evidence.approvers:
        return ", ".join(
            shown(f"{a.user} ({a.role})" if a.role else a.user) for a in entry.evidence.approvers
        )
    if not entry.approved and entry.action:
        return f"nobody (set outside promotion-bot, seen by {shown(entry.seen_by) or '?'})"
    return shown(entry.actor) or "?"


def render_at(model: str, at_ms: int, entry: LedgerEntry | None, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            {
                "model": model,
                "at": iso_from_ms(at_ms),
                "champion": entry.to_version if entry else None,
                "since": entry.at if entry else None,
                "entry": entry.as_dict() if entry else None,
            },
            indent=2,
            ensure_ascii=False,
        )
    if fmt == "csv":
        return render_csv([entry] if entry else [])
    model = shown(model)
    if entry is None:
        return f"{model} at {iso_from_ms(at_ms)}: no champion change recorded before then"
    version = f"v{entry.to_version}" if entry.to_version is not None else "no version"
    before = f"v{entry.from_version}" if entry.from_version is not None else "none"
    lines = [
        f"{model} at {iso_from_ms(at_ms)}: {version} was champion, since {entry.at}",
        f"  {shown(entry.action) or '?'} from {before}, approved by {who(entry)}"
        if entry.approved
        else f"  set by {who(entry)}",
    ]
    if entry.reason:
        lines.append(f"  reason: {shown(entry.reason)}")
    for label, url in (("request", entry.request_url), ("comment", entry.evidence.comment_url)):
        if url:
            lines.append(f"  {label}: {shown(url)}")
    return "\n".join(lines)


def render_import(found: Waiting, dry_run: bool) -> str:
    """`import-ledger`'s lines: every change it writes (or would), oldest first, each with what
    to check it against in the request threads, and where it was found."""
    model = shown(found.model)
    if not found:
        return f"{model}: nothing to import"
    verb = "would import" if dry_run else "imported"
    lines = [f"{model}: {verb} {len(found.entries)} change(s) from before keys, oldest first:"]
    for entry in found.entries:
        before = f"v{entry.from_version}" if entry.from_version is not None else "none"
        after = f"v{entry.to_version}" if entry.to_version is not None else "none"
        where = f"  {shown(entry.request_url)}" if entry.request_url else ""
        source = f"ledger run {entry.ledger_run}" if entry.ledger_run else f"the {HISTORY_TAG} tag"
        lines.append(
            f"  {entry.at}  {shown(entry.action) or '?':<8} {before} -> {after}  "
            f"by {shown(entry.actor) or '?'}{where}  (from {source})"
        )
    return "\n".join(lines)


# --- verify ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    check: ChampionCheck
    problems: list[str] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)  # entries that are not evidence
    entries: int = 0  # the ledger entries read to decide
    waiting: Waiting | None = None  # history from before keys the operator has not imported

    @property
    def foreign_keys(self) -> list[str]:
        """The key ids of a ledger whose every entry is signed by a key this bot does not trust
        (run without the key that wrote it: the demo's folder, a monitor missing
        `promotion.trusted_keys`): then nothing can be told, not even drift. Empty otherwise:
        a chain with one trusted entry decides, and an untrusted one beside it is a break."""
        if not self.breaks or self.entries != len(self.breaks):
            return []
        if not all(b.reason.startswith(UNTRUSTED) for b in self.breaks):
            return []
        return sorted({b.entry.kid for b in self.breaks})

    @property
    def exit_code(self) -> int:
        return 1 if self.check.drifted or self.problems or self.breaks else 0

    def cannot_tell(self) -> str:
        """Why no entry can be told apart from a forgery ("" when some can), and what to do.
        Still exit 1: nothing this bot trusts approves the champion. A key nobody knows is a
        registry writer's until someone who does says otherwise, so the advice names the bot's
        own key, never "trust the key you see"."""
        kids = self.foreign_keys
        if not kids:
            return ""
        shown_kids = ", ".join(shown(kid[:20]) for kid in kids)
        return (
            f"no record this bot trusts: all {self.entries} ledger entries are signed by a key "
            f"it does not trust ({shown_kids}). If that is your bot's key (`promotion-bot "
            f"keygen` printed its id), set {KEY_VARIABLE} to it or list its public key in "
            f"{TRUSTED_KEYS}; a key you do not know is not the bot's: treat the champion as "
            "set outside promotion-bot"
        )


def verify(ctx: Context, model: str, state: ModelState | None = None) -> Verification:
    """The drift question asked of the ledger itself, and of nothing a person can fix by
    editing the model's tags: the model read (`state`, when the caller just read it), then the
    model's whole chain, every run whatever its status (docs/security.md). Only FINISHED entries
    signed by a trusted key that follow each other are evidence; every other one is a break,
    an entry marked FAILED the bot did not abandon included."""
    alias = ctx.params.promotion.champion_alias
    state = ctx.registry.state(model) if state is None else state
    if not state.aliases and not state.tags and not ctx.registry.model_exists(model):
        # A monitor with a misspelt model must not stay green: "cannot tell", not "as approved".
        raise NotFoundError(f"no registered model {model!r} in the registry")
    experiment_id = ctx.ledger.ready(state, model) or ctx.ledger.experiment_id()
    runs = ctx.ledger.chain(experiment_id, model, finished=False) if experiment_id else []
    # Not the changes the bot abandoned, nor one in flight: the runs that say what happened.
    flight = InFlight.of(state, now_ms(), ctx.settings.lock_ttl)
    chain = members(runs, flight)
    evidence, breaks = walk(chain, flight)
    # Only the signed chain decides: history from before keys (the tag, unsigned runs) is
    # evidence once the operator has imported it, and until then `verify` says so and fails.
    pending = waiting(model, state, chain)
    newest = evidence[::-1]
    last = newest[0] if newest else None
    approved = next((entry for entry in newest if entry.approved), None)
    check = check_champion(state, model, alias, last, approved)
    # The champion cache the cheap drift filter reads: one the bot did not sign decides nothing
    # (the ledger does), and is named. A history from before keys is not, until the bot has
    # recorded a change of its own (it writes the cache signed then).
    before_keys = bool(evidence) and all(entry.imported for entry in evidence)
    problems = [*deleted_entries(chain), *record_problems(state, before_keys, pending)]
    return Verification(check, problems, breaks, len(chain), pending)


def deleted_entries(entries: Iterable[LedgerEntry]) -> list[str]:
    """A problem for each entry deleted in MLflow (still read, so still counted)."""
    return [
        f"ledger run {entry.ledger_run} ({entry.at}, v{entry.to_version}) was deleted in MLflow: "
        f"restore it (`mlflow runs restore --run-id {entry.ledger_run}`)"
        for entry in entries
        if entry.deleted
    ]


def record_problems(
    state: ModelState, before_keys: bool = False, pending: Waiting | None = None
) -> list[str]:
    """What is wrong with the records on the model the bot signs: an intent nobody can prove
    (drift is decided as usual), a champion cache the bot did not sign (named; the ledger
    decides). `before_keys`: the ledger holds only entries imported from before keys, and an
    unsigned cache is expected until the bot's first change. `pending`: history from before
    keys waiting for the operator's import, named once with what to do."""
    problems = []
    if state.intent_problem:
        problems.append(
            f"the {PENDING_TAG} tag is not evidence of a change in flight: {state.intent_problem}"
        )
    for tag, problem in state.cache_problems.items():
        if pending and pending.history and tag == HISTORY_TAG:
            continue  # named below, with what to do
        if not (before_keys and problem == NOT_SIGNED):
            problems.append(f"the {tag} tag is not evidence of the champion: {problem}")
    if pending:
        problems.append(pending.notice())
    return problems


def verifications_json(results: Sequence[Verification]) -> str:
    """`verify --format json`: {"models": [...]}, one object a model, however many there are
    (docs/cli.md, "JSON output")."""
    models = [
        {
            **result.check.as_dict(),
            "problems": [*result.problems, *(str(b) for b in result.breaks)],
            "breaks": [b.as_dict() for b in result.breaks],
            "foreign_keys": result.foreign_keys,
            "exit_code": result.exit_code,
        }
        for result in results
    ]
    return json.dumps({"models": models}, indent=2)


def render_verification(result: Verification) -> str:
    """`verify`'s lines for people about one model."""
    check = result.check
    champion = f"v{check.champion}" if check.champion is not None else "not set"
    approved = check.approved
    said = (
        f"v{approved.to_version} ({approved.action} by {who(approved)} at {approved.at})"
        if approved
        else "none recorded"
    )
    if result.cannot_tell():
        head = f"{check.model}: {result.cannot_tell()}"
    elif check.in_flight is not None:
        head = (
            f"{check.model}: a change to v{check.in_flight.to_version} is in flight or was "
            "interrupted; the next command or `poll` finishes its record"
        )
    elif result.waiting and approved is None:
        head = (
            f"{check.model}: champion {champion}; no signed entry approves it (the history from "
            "before keys is not imported)"
        )
    elif check.drifted:
        restore = (
            f"; `/rollback {approved.to_version}` restores it"
            if approved and approved.to_version is not None
            else ""
        )
        head = (
            f"{check.model}: DRIFT: champion is {champion}, set outside promotion-bot; the "
            f"approved champion is {said}{restore}"
        )
    elif result.breaks:  # the entries that are evidence agree, but some were taken out
        head = (
            f"{check.model}: champion {champion}, NOT VERIFIED: the ledger's chain is broken "
            f"(below); the newest approved change that is evidence: {said}"
        )
    else:
        head = f"{check.model}: champion {champion}, as approved: {said}"
    breaks = [] if result.foreign_keys else result.breaks  # one line says it for every entry
    problems = [*result.problems, *(str(b) for b in breaks)]
    return "\n".join([head, *(f"{check.model}: {shown(problem)}" for problem in problems)])
