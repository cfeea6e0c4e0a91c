"""Hard gates (`promotion.gates`): evaluated when a request is rendered and again at /promote.

See docs/design.md, "Rules for a champion change".
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from bot.config.params import Params
from bot.registry.versions import RunInfo
from bot.templating import inline_code


@dataclass(frozen=True)
class GateCheck:
    name: str  # short, stable id: "regression", "threshold:final.logloss:max", "tag:git_sha"
    passed: bool
    detail: str  # the values that decided it, for people
    metric: str = ""  # the metric it read ("" for a tag gate)
    value: float | None = None  # the candidate's value of `metric`
    reference: float | None = None  # the champion's value, or the bound


def evaluate_gates(params: Params, candidate: RunInfo, champion: RunInfo | None) -> list[GateCheck]:
    """Every configured hard gate, in a stable order. Never raises for missing data: it fails."""
    gates = params.promotion.gates
    metric = params.promote_model.metric
    higher_better = params.promote_model.greater_is_better
    results: list[GateCheck] = []

    value = candidate.metrics.get(metric)
    if value is not None and not math.isfinite(value):
        # -inf logloss is below every bound and nan fails open in a `not (x > y)` test: a value
        # that is no number fails every gate it feeds, whatever it is compared with.
        results.append(GateCheck("regression", False, not_a_number(metric, value)))
    elif champion is None:
        results.append(
            GateCheck("regression", True, "no current champion: nothing to regress against")
        )
    elif value is None:
        results.append(
            GateCheck(
                "regression", False, f"candidate run has no `{metric}`{_has(candidate, metric)}"
            )
        )
    elif metric not in champion.metrics:
        results.append(
            GateCheck("regression", True, f"champion run has no `{metric}`: not comparable")
        )
    elif not math.isfinite(champion.metrics[metric]):
        # Only a champion set by hand can carry one (the gates refuse it): it must not block
        # its own replacement.
        base_value = champion.metrics[metric]
        results.append(
            GateCheck("regression", True, f"champion's `{metric}` is {base_value}: not comparable")
        )
    else:
        base = champion.metrics[metric]
        allowed = gates.max_regression_vs_champion
        worse_by = (base - value) if higher_better else (value - base)
        passed = worse_by <= allowed + 1e-12
        direction = "higher" if higher_better else "lower"
        results.append(
            GateCheck(
                "regression",
                passed,
                f"`{metric}` {value:.6g} vs champion {base:.6g} ({direction} is better; "
                f"worse by {max(worse_by, 0):.6g}, allowed {allowed:g})",
                metric,
                value,
                base,
            )
        )
    if results[0].metric == "":  # the other outcomes above still read the candidate's value
        results[0] = replace(results[0], metric=metric, value=value)

    for name, bound in sorted(gates.thresholds.items()):
        observed = candidate.metrics.get(name)
        for side, limit in (("min", bound.min), ("max", bound.max)):
            if limit is None:
                continue
            gate = f"threshold:{name}:{side}"
            if observed is None:
                missing = f"`{name}` missing on the candidate run{_has(candidate, name)}"
                results.append(GateCheck(gate, False, missing))
                continue
            if not math.isfinite(observed):
                results.append(GateCheck(gate, False, not_a_number(name, observed)))
                continue
            ok = observed >= limit if side == "min" else observed <= limit
            sign = ">=" if side == "min" else "<="
            detail = f"`{name}` {observed:.6g} {sign} {limit:g}"
            results.append(GateCheck(gate, ok, detail, name, observed, limit))

    for tag in gates.required_tags:
        present = bool(candidate.tags.get(tag, "").strip())
        shown = candidate.tags.get(tag, "")
        # The tag's value is the run's, which anyone who can log to the run may set.
        quoted = inline_code(shown)
        detail = f"run tag `{tag}` = {quoted}" if present else f"run tag `{tag}` is missing"
        results.append(GateCheck(f"tag:{tag}", present, detail))
    return results


SHOWN_METRICS = 12  # a run may log hundreds: the closest names first, then the rest cut


def metrics_it_has(names: Iterable[str], wanted: str) -> str:
    """What a run logged, for a message about a metric it lacks: a misspelt name in params then
    shows beside the right one ("did you mean"), and the list says what to write instead."""
    logged = sorted(names)
    if not logged:
        return "it logged no metrics"
    near = difflib.get_close_matches(wanted, logged, n=1, cutoff=0.75)
    hint = f"did you mean `{near[0]}`? " if near else ""
    shown = ", ".join(f"`{name}`" for name in logged[:SHOWN_METRICS])
    more = f" and {len(logged) - SHOWN_METRICS} more" if len(logged) > SHOWN_METRICS else ""
    return f"{hint}it has {shown}{more}"


def _has(run: RunInfo, wanted: str) -> str:
    return f" ({metrics_it_has(run.metrics, wanted)})"


def not_a_number(metric: str, value: float) -> str:
    return f"`{metric}` is {value}, not a finite number"


def failed(results: list[GateCheck]) -> list[GateCheck]:
    return [result for result in results if not result.passed]
