"""Every registry tag the bot reads or writes: the registry is the evidence its rules rest on.

Nobody can edit these from the forge, so the rules read them, never a description or a comment
(see docs/design.md, "Registry tags"). Each one is written in exactly one place.
"""

from __future__ import annotations

# --- on a model version -------------------------------------------------------------------------
# Written by `register`: the initial alias (ci-smoke | smoke), so a toy stays recognisable.
REGISTERED_AS_TAG = "promotion.registered_as"
# Written by `register` (or `request`, when still missing): who triggered training, for the
# self-approval rule. Never overwritten. The forge's user id beside the name, when CI gave one
# (GITLAB_USER_ID, GITHUB_ACTOR_ID): a name is text its owner can change, the id is not.
REQUESTED_BY_TAG = "promotion.requested_by"
REQUESTED_BY_ID_TAG = "promotion.requested_by_id"
# Written with the two above: the bot's signature ({kid, sig}) over the model, the version and
# them (docs/security.md). A requester record without it, or whose seal fails, is no evidence.
REQUESTED_BY_SEAL_TAG = "promotion.requested_by_seal"
# Written by `request`: the thread it opened for the version, the registry's word on which thread
# is its request (a description can be edited to name another version; this tag cannot be).
REQUESTED_IN_TAG = "promotion.requested_in"
# Written by `request` (merge_request kind): the MR/PR head commit when it ran. `/promote` merges
# only that commit: commits pushed to the promotion branch since were reviewed by nobody.
REQUEST_HEAD_TAG = "promotion.request_head"
# Written by each recorded approval (`required_approvals` > 1): a JSON list of
# {user, user_id, comment_id, at}. Approvals are evidence: markers in comments are not.
APPROVALS_TAG = "promotion.approvals"
# Written by a champion change on the version it made champion.
CHAMPION_SINCE_TAG = "promotion.champion_since"
PROMOTED_BY_TAG = "promotion.promoted_by"
REQUEST_URL_TAG = "promotion.request_url"

# --- on the registered model --------------------------------------------------------------------
# The bounded, append-only champion history: a JSON list of history entries (bot.registry.records).
HISTORY_TAG = "promotion.history"
# The intent of the latest champion change: the history entry it is about to append, and the key
# of its ledger run. Done once the history holds that entry (it is not deleted: one call less).
PENDING_TAG = "promotion.pending"
# Where the model's audit ledger lives ({"experiment", "experiment_id"}), written once, when the
# history tag above had been imported into it (bot.ledger.store).
LEDGER_TAG = "promotion.ledger"
# The newest champion change seen outside the bot, as the ledger recorded it ({"to", "after"}:
# the history entry it followed). With the history cache it says what the champion should be
# without reading the ledger (bot.ledger.drift).
EXTERNAL_TAG = "promotion.external"
# The records the bot found unsigned or invalid (the intent above, a version's approvals) and
# reported in a request thread: each one's fingerprint and when, signed. Each value is reported
# once, and one record at most once an hour (bot.commands.forged_records).
REPORTED_TAG = "promotion.reported"

# --- on a run of the audit ledger (bot.ledger.store) ---------------------------------------------
# The intent's token (or an imported entry's key): how a later pass finds a run a dead one began.
LEDGER_KEY_TAG = "promotion.key"
# Written when the bot abandons a change whose alias never moved, before it marks the run FAILED:
# its seal ({kid, sig}) over the run's id and the digest of its entry (bot.ledger.entry.
# abandonment). A run that is not FINISHED and has no such seal is a break (docs/security.md).
ABANDONED_TAG = "promotion.abandoned"
# The forge deployment a change was also recorded as: display only, a link (not signed, read by
# no rule; docs/security.md, "The status page").
DEPLOYMENT_TAG = "promotion.deployment"
# The ids of the comments the bot handled (answered), newest last, as many as one SQL tag holds:
# people can delete the bot's answers, not this.
HANDLED_TAG = "promotion.handled"
