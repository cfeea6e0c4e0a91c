"""Who may approve a champion change (`promotion.approvers`), and the one description of it
(docs/design.md, "Rules for a champion change").

Any of `users`, `min_role` and `teams` admits. A listed name must still be a member of the
project: a name is whoever holds it now (a renamed or deleted account frees it). One role
lookup decides both the list and the role; teams are asked only when neither admits, one
membership lookup each until one does. The request body says who may approve and a refusal
says who is an approver with the same words, from `describe`, so the two cannot disagree; a
refusal first names the rules that did not admit the actor (`Eligibility.why`). `min_role`'s
default applies only when neither `users` nor `teams` is given (bot.config.params.Approvers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.config.params import Approvers
from bot.errors import ForgeError
from bot.forges.base import Forge, role_level, role_name
from bot.templating import escape_markdown, inline_code
from bot.threads.thread import same_person

log = logging.getLogger(__name__)

NOBODY = "nobody (configure `promotion.approvers`)"


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    level: int | None = None  # the role the forge reported, when it was asked (for the ledger)
    unread: tuple[str, ...] = ()  # teams whose membership could not be read
    # Why not, rule by rule ("" when eligible): the refusal says it, before `describe`.
    why: str = field(default="", compare=False)


def is_listed(approvers: Approvers, author: str) -> bool:
    """Whether `promotion.approvers.users` names `author` (any letter case)."""
    return any(same_person(user, "", author, "") for user in approvers.users)


def eligibility(forge: Forge, approvers: Approvers, author: str, author_id: str) -> Eligibility:
    """Whether `author` may approve now, as the forge's roles and memberships say."""
    listed = is_listed(approvers, author)
    required = role_level(approvers.min_role) if approvers.min_role else 0  # > 0 when set
    level: int | None = None
    eligible = False
    if listed or required:
        level = forge.access_level(author, author_id)
        eligible = (listed and level > 0) or (required > 0 and level >= required)
    if eligible:
        return Eligibility(True, level)
    member, unread = _team_member(forge, approvers.teams, author, author_id)
    if member:
        return Eligibility(True, level)
    why = _why_not(approvers, forge.platform, listed, level, unread)
    return Eligibility(False, level, unread, why)


def _why_not(
    approvers: Approvers, platform: str, listed: bool, level: int | None, unread: Sequence[str]
) -> str:
    """Each rule that did not admit the author, joined: a listed name that is no member of the
    project is told so, not handed the list of approvers it is on."""
    if listed:  # a listed name with a role is admitted: this one has none
        return "listed in `promotion.approvers.users`, but no member of the project"
    reasons = []
    if approvers.users:
        reasons.append("not listed in `promotion.approvers.users`")
    if approvers.min_role:
        role = escape_markdown(approvers.min_role)
        if not level:
            reasons.append(f"no member of the project (the {role} role or higher is required)")
        else:
            found = role_name(platform, level)
            reasons.append(f"the {found} role, below the {role} role that is required")
    read = [team for team in approvers.teams if team not in unread]
    if read:
        reasons.append("no member of " + " or ".join(inline_code(team) for team in read))
    return "; ".join(reasons)


def _team_member(
    forge: Forge, teams: Sequence[str], author: str, author_id: str
) -> tuple[bool, tuple[str, ...]]:
    """(a member of one of `teams`, the teams whose membership could not be read)."""
    unread = []
    for team in teams:
        try:
            if forge.team_member(team, author, author_id):
                return True, ()
        except ForgeError as exc:
            log.warning("membership of %s in %s unknown: %s", author, team, exc)
            unread.append(team)
    return False, tuple(unread)


def describe(approvers: Approvers) -> str:
    """Who may approve, as one Markdown phrase: "`alice`, `bob` or anyone with the maintainer
    role or higher or the members of `org/team`". Names and teams as code: a request listing
    them must not ping them all on every update."""
    parts = []
    if approvers.users:
        parts.append(", ".join(inline_code(user) for user in approvers.users))
    if approvers.min_role:
        parts.append(f"anyone with the {escape_markdown(approvers.min_role)} role or higher")
    if approvers.teams:
        parts.append("the members of " + ", ".join(inline_code(team) for team in approvers.teams))
    return " or ".join(parts) if parts else NOBODY
