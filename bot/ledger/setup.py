"""Where a model's audit ledger lives, set up once (docs/design.md, "The ledger"): the experiment
looked up or created and the model's marker (`promotion.ledger`, signed) written, so that every
later change finds the experiment id in the model read it makes anyway. The experiment is the
configured one: a marker the bot did not sign names nothing (docs/security.md).

Nothing is imported here. History written before keys (an unsigned `promotion.history`, unsigned
runs in the experiment) is found in MLflow, where any registry writer could have put it: setting
up only names it, and an operator imports it (`bot.ledger.importing`).
"""

from __future__ import annotations

import logging

from bot.ledger.importing import waiting
from bot.ledger.store import Guard, Ledger, unguarded
from bot.registry.model_state import ModelState
from bot.registry.tags import LEDGER_TAG

log = logging.getLogger(__name__)


def prepare(ledger: Ledger, model: str, state: ModelState, guard: Guard = unguarded) -> str:
    """The experiment id for writing `model`'s entries: from the model's marker, no call.

    The first time (and after PROMOTION_BOT_LEDGER_EXPERIMENT changed) the experiment is looked
    up or created, what waits for the operator's import is named in a warning, and the marker
    written. Under the model lock: `guard` runs before each write.
    """
    found = ledger.ready(state, model)
    if found:
        return found
    experiment_id = ledger.registry.experiment_id(ledger.experiment)
    pending = waiting(model, state, ledger.chain(experiment_id, model))
    if pending:
        log.warning("the ledger of %s: %s", model, pending.notice(), extra={"model": model})
    guard()
    ledger.registry.set_model_tag(model, LEDGER_TAG, ledger.marker(model, experiment_id))
    log.info("the ledger of %s: experiment %s", model, experiment_id)
    return experiment_id
