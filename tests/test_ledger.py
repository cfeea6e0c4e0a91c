"""The audit ledger (docs/design.md, "The ledger") against the session's real `mlflow server`:
every change kept, with its approval snapshot, queryable by time; `/rollback previous`; the old
history tag imported once; what MLflow lets nobody rewrite.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.errors import RegistryError
from bot.ledger.entry import PARAM_CHUNK, Approver, Evidence, LedgerEntry
from bot.ledger.importing import import_history
from bot.ledger.setup import prepare
from bot.ledger.store import Ledger, Where, now_ms
from bot.registry.client import Registry
from bot.registry.records import HistoryEntry
from bot.registry.tags import HISTORY_TAG, PENDING_TAG
from bot.reports.audit import read_csv
from bot.reports.page import page_data
from bot.signing import Keys
from bot.timestamps import iso_from_ms
from tests.helpers import TEST_SIGNING_KEY
from tests.ledger_history import planned_changes, write_changes
from tests.promotion_env import Playground

TEST_KEYS = Keys.load(TEST_SIGNING_KEY)


def history_cli(tracking_uri: str, tmp_path: Path, experiment: str, *args: str) -> Result:
    params = tmp_path / "params.yaml"
    # `--model` must name a configured model: the params configure the one asked about.
    model = args[args.index("--model") + 1] if "--model" in args else "unused-model"
    params.write_text(f"register_model:\n  model_name: {model}\n", encoding="utf-8")
    common = ["--params", str(params), "--platform", "local", "--tracking-uri", tracking_uri]
    env = {
        "PROMOTION_BOT_LEDGER_EXPERIMENT": experiment,
        "PROMOTION_BOT_SIGNING_KEY": TEST_SIGNING_KEY,
    }
    return CliRunner().invoke(cli, ["history", *args, *common], env=env)


def champion_at(changes: list[LedgerEntry], at_ms: int) -> LedgerEntry | None:
    """The answer from the sequence the test made: the newest change at or before `at_ms`."""
    before = [entry for entry in changes if entry.at_ms <= at_ms]
    return before[-1] if before else None


# --- 500 changes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def five_hundred(
    mlflow_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, list[LedgerEntry]]]:
    """500 changes of one model, in a ledger experiment of their own (other models' changes
    would fill the all-model listing)."""
    registry = Registry(mlflow_server.url)
    experiment = f"ledger-500-{tmp_path_factory.mktemp('x').name}"
    ledger = Ledger(registry, TEST_KEYS, experiment)
    changes = planned_changes("model-500", 500)
    write_changes(ledger, registry.experiment_id(experiment), changes)
    yield mlflow_server.url, experiment, changes


@pytest.mark.slow
def test_history_returns_all_500_changes_newest_first(
    five_hundred: tuple[str, str, list[LedgerEntry]], tmp_path: Path
) -> None:
    uri, experiment, changes = five_hundred
    result = history_cli(uri, tmp_path, experiment, "--model", "model-500", "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    expected = [entry.as_dict() for entry in reversed(changes)]
    assert [{**row, "ledger_run": ""} for row in shown] == expected
    assert len({row["ledger_run"] for row in shown}) == 500
    # Every model unless --model: the same 500 here. Pages of 1,000 by default: ask for 7.
    everything = history_cli(uri, tmp_path, experiment, "--json")
    assert len(json.loads(everything.output)) == 500
    ledger = Ledger(Registry(uri), TEST_KEYS, experiment)
    paged = list(ledger.entries(ledger.experiment_id(), Where(model="model-500"), page_size=7))
    assert [entry.at_ms for entry in paged] == [entry.at_ms for entry in reversed(changes)]


@pytest.mark.slow
def test_history_at_20_random_instants_matches_the_sequence(
    five_hundred: tuple[str, str, list[LedgerEntry]], tmp_path: Path
) -> None:
    uri, experiment, changes = five_hundred
    rng = random.Random(2026)
    first, last = changes[0].at_ms, changes[-1].at_ms
    instants = [rng.randint(first - 86_400_000, last + 86_400_000) for _ in range(17)]
    instants += [changes[0].at_ms, changes[250].at_ms, changes[250].at_ms - 1]  # the edges
    for at_ms in instants:
        result = history_cli(uri, tmp_path, experiment, "--model", "model-500", "--at",
                             iso_from_ms(at_ms), "--format", "json")  # fmt: skip
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        expected = champion_at(changes, at_ms)
        if expected is None:
            assert (answer["champion"], answer["entry"]) == (None, None)
            continue
        assert (answer["champion"], answer["since"]) == (expected.to_version, expected.at)
        assert answer["entry"]["approvers"] == [a.stored() for a in expected.evidence.approvers]
    text = history_cli(uri, tmp_path, experiment, "--model", "model-500", "--at",
                       iso_from_ms(changes[300].at_ms + 1000))  # fmt: skip
    said = changes[300]
    assert text.output.splitlines()[0].endswith(f"v{said.to_version} was champion, since {said.at}")


@pytest.mark.slow
def test_csv_round_trips(five_hundred: tuple[str, str, list[LedgerEntry]], tmp_path: Path) -> None:
    uri, experiment, _changes = five_hundred
    as_json = json.loads(history_cli(uri, tmp_path, experiment, "--format", "json").output)
    as_csv = history_cli(uri, tmp_path, experiment, "--format", "csv").output
    assert [entry.as_dict() for entry in read_csv(as_csv)] == as_json
    assert as_csv.splitlines()[0].startswith("at,model,action,from,to,actor,approvers,reason")


@pytest.mark.slow
def test_since_until_and_limit(
    five_hundred: tuple[str, str, list[LedgerEntry]], tmp_path: Path
) -> None:
    uri, experiment, changes = five_hundred
    since, until = changes[100], changes[199]
    window = history_cli(uri, tmp_path, experiment, "--since", since.at, "--until", until.at,
                         "--json")  # fmt: skip
    assert [row["at"] for row in json.loads(window.output)] == [e.at for e in changes[199:99:-1]]
    newest = history_cli(uri, tmp_path, experiment, "--limit", "3", "--json")
    assert [row["at"] for row in json.loads(newest.output)] == [e.at for e in changes[:-4:-1]]
    table = history_cli(uri, tmp_path, experiment, "--limit", "1")
    assert table.output.startswith(f"{changes[-1].at}  model-500  ")


def test_times_and_options_people_get_wrong_are_one_line_each(
    tracking_uri: str, tmp_path: Path
) -> None:
    bad = history_cli(tracking_uri, tmp_path, "ledger-x", "--at", "last tuesday")
    assert bad.exit_code == 2
    assert "'last tuesday' is no time (one of: 2026-03-03, 2026-03-03T14:00," in bad.output
    both = history_cli(tracking_uri, tmp_path, "ledger-x", "--at", "2026-03-03", "--limit", "2")
    assert both.exit_code == 2 and "--at answers alone" in both.output
    unknown = history_cli(tracking_uri, tmp_path, "ledger-x", "--at", "2026-03-03T14:00")
    assert (unknown.exit_code, unknown.output) == (
        1,
        "Error: no registered model 'unused-model' and no ledger entry of it\n",
    )
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if not client.search_registered_models(filter_string="name = 'unused-model'"):
        client.create_registered_model("unused-model")
    nothing = history_cli(tracking_uri, tmp_path, "ledger-x", "--at", "2026-03-03T14:00")
    assert (nothing.exit_code, nothing.output) == (
        0,
        "unused-model at 2026-03-03T14:00:00.000Z: no champion change recorded before then\n",
    )


def test_now_today_yesterday_and_times_ago(
    tracking_uri: str, model_name: str, tmp_path: Path
) -> None:
    """What an auditor types: `--since 1d`, `--at now`, `--since yesterday`; an inverted range is
    an error, not an empty answer."""
    now_ms = round(time.time() * 1000)
    three_days, two_hours, ten_minutes = (
        replace(entry, model=model_name, at_ms=now_ms - ago)
        for entry, ago in zip(
            planned_changes(model_name, 3), (3 * 86_400_000, 7_200_000, 600_000), strict=True
        )
    )
    experiment = f"ledger-{model_name}"
    ledger = Ledger(Registry(tracking_uri), TEST_KEYS, experiment)
    write_changes(
        ledger,
        Registry(tracking_uri).experiment_id(experiment),
        [three_days, two_hours, ten_minutes],
    )

    def shown(*args: str) -> list[str]:
        result = history_cli(tracking_uri, tmp_path, experiment, "--model", model_name, *args)
        assert result.exit_code == 0, result.output
        return [row["at"] for row in json.loads(result.output)]

    recent = [ten_minutes.at, two_hours.at]
    assert shown("--since", "1d", "--json") == recent
    assert shown("--since", "yesterday", "--until", "now", "--json") == recent
    assert shown("--since", "1w", "--until", "1h", "--json") == [two_hours.at, three_days.at]
    assert shown("--until", "2w", "--json") == []
    at = history_cli(tracking_uri, tmp_path, experiment, "--model", model_name, "--at", "30m",
                     "--json")  # fmt: skip
    assert json.loads(at.output)["since"] == two_hours.at
    at_now = history_cli(tracking_uri, tmp_path, experiment, "--model", model_name, "--at", "NOW",
                         "--json")  # fmt: skip
    assert json.loads(at_now.output)["champion"] == ten_minutes.to_version

    inverted = history_cli(tracking_uri, tmp_path, experiment, "--since", "2026-12-08",
                           "--until", "2026-12-01")  # fmt: skip
    assert inverted.exit_code == 2
    assert (
        "--since 2026-12-08T00:00:00.000Z is after --until 2026-12-01T00:00:00.000Z: nothing can "
        "lie between them (swap the two?)"
    ) in inverted.output
    assert history_cli(tracking_uri, tmp_path, experiment, "--since", "today", "--until",
                       "yesterday").exit_code == 2  # fmt: skip


# --- the snapshot of a change ------------------------------------------------------------------


def test_two_approvers_and_a_gate_failed_then_fixed_are_in_the_snapshot(
    make_pg: Any,
) -> None:
    pg: Playground = make_pg(
        approvers={"required_approvals": 2},
        gates={"required_tags": ["data_version"], "thresholds": {"final.logloss": {"max": 0.7}}},
    )
    version = pg.train(0.6)
    thread = pg.open_request(version)

    refused, _ = pg.comment(thread, "maria", "/promote")
    assert (refused.status, refused.detail) == ("refused", "gate")
    from mlflow import MlflowClient

    run_id = pg.ctx.registry.version(pg.model, version).run_id
    MlflowClient(tracking_uri=pg.ctx.settings.tracking_uri).set_tag(run_id, "data_version", "d7")
    first, first_event = pg.comment(thread, "maria", "/promote\nData fixed.")
    assert first.status == "approval"
    second, second_event = pg.comment(thread, "olga", "/promote\nAgreed, ship it.")
    assert second.status == "changed"

    [entry] = pg.ledger()
    ev = entry.evidence
    assert [(a.user, a.role, a.comment_id) for a in ev.approvers] == [
        ("maria", "maintainer", first_event.comment_id),
        ("olga", "owner", second_event.comment_id),
    ]
    assert all(a.at for a in ev.approvers)
    gates = {gate["name"]: gate for gate in ev.gates}
    assert gates["tag:data_version"] == {
        "name": "tag:data_version",
        "passed": True,
        "detail": "run tag `data_version` = `d7`",
    }
    assert gates["threshold:final.logloss:max"]["value"] == pytest.approx(0.6)
    assert gates["threshold:final.logloss:max"]["reference"] == 0.7
    assert gates["regression"]["passed"] is True
    assert ev.metrics == {"final.logloss": pytest.approx(0.6)}
    assert ev.run_id == run_id
    assert [item["ticked"] for item in ev.checklist] == [True] * len(
        pg.ctx.params.promotion.checklist
    )
    assert ev.comment_url == f"{thread.url}#comment-{second_event.comment_id}"
    assert (entry.actor, entry.reason, entry.request_url) == (
        "olga",
        "Agreed, ship it.",
        thread.url,
    )
    assert (entry.from_version, entry.to_version, entry.action) == (None, version, "promote")


def test_a_long_value_is_split_across_params_and_read_back_whole(tracking_uri: str) -> None:
    registry = Registry(tracking_uri)
    ledger = Ledger(registry, TEST_KEYS, "ledger-long-values")
    reason = "".join(f"{n:05d}é " for n in range(2 * PARAM_CHUNK // 7 + 10))
    assert len(reason) > 2 * PARAM_CHUNK
    many = tuple(Approver(f"user{n}", str(n), "developer") for n in range(150))
    entry = LedgerEntry("long-model", "promote", 1, 2, 1_770_000_000_123, actor="maria",
                        reason=reason, evidence=Evidence(approvers=many))  # fmt: skip
    params = entry.to_params()
    assert {"reason", "reason.2", "reason.3"} <= set(params)
    assert max(len(value) for value in params.values()) <= PARAM_CHUNK

    run_id = ledger.record(registry.experiment_id("ledger-long-values"), entry, "long")

    [back] = ledger.entries(ledger.experiment_id(), Where(model="long-model"))
    assert back.ledger_run == run_id
    assert back.reason == reason and back.evidence.approvers == many
    assert back.at == "2026-02-02T02:40:00.123Z"


def test_no_one_can_rewrite_an_entry_through_mlflow(pg: Playground) -> None:
    """Params keep their first value: a changed approver is refused, the same value is a no-op."""
    version = pg.train(0.6)
    pg.comment(pg.open_request(version), "maria", "/promote")
    [entry] = pg.ledger()
    registry = pg.ctx.registry
    with pytest.raises(RegistryError):
        registry.log_params(entry.ledger_run, {"actor": "mallory"})
    registry.log_params(entry.ledger_run, {"actor": "maria"})
    [again] = pg.ledger()
    assert again.actor == "maria"


def test_the_ledger_outlives_a_deleted_registered_model(pg: Playground) -> None:
    version = pg.train(0.6)
    pg.comment(pg.open_request(version), "maria", "/promote")
    pg.ctx.registry._models.delete_registered_model(pg.model)
    [entry] = pg.ledger()
    assert (entry.to_version, entry.actor) == (version, "maria")
    shown = pg.cli("history", "--model", pg.model)
    assert shown.exit_code == 0 and f"{pg.model}  promote  none -> v1" in shown.output


# --- /rollback previous -----------------------------------------------------------------------


def test_rollback_previous_goes_back_to_the_champion_before_the_current_one(
    pg: Playground,
) -> None:
    first = pg.train(0.6)
    pg.comment(pg.open_request(first), "maria", "/promote")
    second = pg.train(0.58)
    thread = pg.open_request(second)
    pg.comment(thread, "maria", "/promote")

    outcome, _ = pg.comment(thread, "olga", "/rollback previous\nv2 drifts on live data.")

    assert (outcome.status, pg.champion()) == ("changed", first)
    answer = pg.answers(thread)[-1].body
    assert f"v{first}" in answer
    newest = pg.ledger()[0]
    assert (newest.action, newest.from_version, newest.to_version) == ("rollback", second, first)
    assert newest.reason == "v2 drifts on live data."
    # The champion before the current one is now v2 again: the mention form takes it back.
    again, _ = pg.comment(thread, "maria", f"@{pg.forge.bot_username()} rollback previous")
    assert (again.status, pg.champion()) == ("changed", second)


def test_rollback_previous_without_a_previous_champion_is_refused(pg: Playground) -> None:
    first = pg.train(0.6)
    thread = pg.open_request(first)
    pg.comment(thread, "maria", "/promote")

    outcome, _ = pg.comment(thread, "maria", "/rollback previous")

    assert (outcome.status, outcome.detail) == ("refused", "no_previous")
    assert pg.champion() == first
    answer = pg.answers(thread)[-1].body
    assert "`/rollback previous`" in answer
    assert f"the audit ledger records no champion before v{first}" in answer


def test_rollback_previous_returns_from_a_hand_move_to_the_approved_champion(
    pg: Playground,
) -> None:
    """The champion set by hand: its `external` entry's `from` is the approved one."""
    first = pg.train(0.6)
    thread = pg.open_request(first)
    pg.comment(thread, "maria", "/promote")
    other = pg.train(0.65, gate_it=False)
    pg.ctx.registry.set_alias(pg.model, "champion", other)
    from bot.intake.poll import poll

    assert poll(pg.ctx).champions != []  # recorded as an external entry
    outcome, _ = pg.comment(thread, "maria", "/rollback previous")
    assert (outcome.status, pg.champion()) == ("changed", first)


# --- the history tag of earlier versions --------------------------------------------------------

OLD = [
    {"at": "2025-03-01T10:00:00Z", "from": None, "to": 1, "actor": "maria", "action": "promote",
     "reason": "first", "request_url": "https://f/issues/1", "comment_id": "11"},
    {"at": "2025-03-02T10:00:00Z", "from": 1, "to": 2, "actor": "olga", "action": "promote",
     "reason": "second", "request_url": "https://f/issues/2", "comment_id": "12"},
    {"at": "2025-03-03T10:00:00Z", "from": 2, "to": 1, "actor": "maria", "action": "rollback",
     "reason": "", "request_url": "https://f/issues/2", "comment_id": "13"},
]  # fmt: skip


def _old_registry(pg: Playground) -> None:
    """A registry as a bot before the ledger left it: the history tag, v1 champion."""
    pg.train(0.6)
    pg.train(0.59)
    for stored in OLD:
        pg.ctx.registry.append_history(pg.model, HistoryEntry.parse(stored))
    pg.ctx.registry.set_alias(pg.model, "champion", 1)


def test_the_old_history_tag_is_imported_once_and_marked(pg: Playground) -> None:
    _old_registry(pg)
    imported = pg.cli("import-ledger")  # the operator's step, after checking the dry run
    assert imported.exit_code == 0, imported.output
    second = pg.train(0.58)
    pg.comment(pg.open_request(second), "maria", "/promote")  # the first change since

    entries = pg.ledger()[::-1]
    assert [(e.action, e.from_version, e.to_version, e.imported) for e in entries] == [
        ("promote", None, 1, True),
        ("promote", 1, 2, True),
        ("rollback", 2, 1, True),
        ("promote", 1, second, False),
    ]
    assert [json.loads(e.original) for e in entries[:3]] == OLD
    assert [e.at for e in entries[:3]] == [f"{o['at'][:-1]}.000Z" for o in OLD]
    # Again, as after the model's marker was lost: nothing is copied twice, and the change the
    # bot made since (in the tag too now) is not copied as an imported one.
    ledger = pg.ctx.ledger
    experiment_id = ledger.experiment_id()
    state = pg.ctx.registry.state(pg.model)
    assert len(state.history) == 4
    assert import_history(ledger, experiment_id, pg.model, state.history) == 0
    assert len(pg.ledger()) == 4


def test_a_history_from_before_keys_waits_for_the_operators_import(pg: Playground) -> None:
    """The upgrade: the tag as a version before keys left it (unsigned), v1 champion. A pass of
    the bot imports nothing and records nothing against it, `verify` fails naming the command;
    the operator's dry run writes nothing, the import writes every change once, and then
    `verify` passes (the unsigned tag is no problem while the ledger holds only imports)."""
    from bot.intake.poll import poll

    pg.train(0.6)
    pg.train(0.59)
    pg.ctx.registry.set_model_tag(pg.model, HISTORY_TAG, json.dumps(OLD))
    # ... and the intent of its last change, which a version before keys left too (unsigned)
    pg.ctx.registry.set_model_tag(pg.model, PENDING_TAG, json.dumps(OLD[-1]))
    pg.ctx.registry.set_alias(pg.model, "champion", 1)
    command = f"`promotion-bot import-ledger --model {pg.model}`"
    waiting = pg.cli("verify")
    assert waiting.exit_code == 1 and command in waiting.output, waiting.output

    summary = poll(pg.ctx).summary()  # the bot's first pass with a key, before the import
    assert "not recorded" in summary and command in summary
    assert pg.ledger_runs() == []
    [page] = page_data(pg.ctx, now_ms()).models  # the tag's entries, marked as no evidence
    assert [c.trusted for c in page.changes] == [False] * 3 and command in " ".join(page.problems)
    dry = pg.cli("import-ledger", "--dry-run")
    assert dry.exit_code == 0 and pg.ledger_runs() == []
    assert PENDING_TAG in pg.ctx.registry.state(pg.model).tags  # a dry run writes nothing
    assert dry.output.splitlines() == [
        f"{pg.model}: would import 3 change(s) from before keys, oldest first:",
        "  2025-03-01T10:00:00.000Z  promote  none -> v1  by maria  https://f/issues/1  "
        "(from the promotion.history tag)",
        "  2025-03-02T10:00:00.000Z  promote  v1 -> v2  by olga  https://f/issues/2  "
        "(from the promotion.history tag)",
        "  2025-03-03T10:00:00.000Z  rollback v2 -> v1  by maria  https://f/issues/2  "
        "(from the promotion.history tag)",
    ]
    done = pg.cli("import-ledger")
    assert done.output == dry.output.replace("would import", "imported")
    imported = pg.ledger()[::-1]
    assert [(e.to_version, e.imported, e.trusted) for e in imported] == [
        (1, True, True),
        (2, True, True),
        (1, True, True),
    ]
    checked = pg.cli("verify")  # the intent of an imported change is cleared: nothing in flight
    assert checked.exit_code == 0, checked.output
    assert PENDING_TAG not in pg.ctx.registry.state(pg.model).tags
    [page] = page_data(pg.ctx, now_ms()).models
    assert [c.trusted for c in page.changes] == [True] * 3 and page.problems == ()

    again = pg.cli("import-ledger")
    assert (again.exit_code, again.output) == (0, f"{pg.model}: nothing to import\n")
    assert not poll(pg.ctx).champions and pg.ledger() == imported[::-1]


def test_an_import_killed_halfway_is_finished_without_copies(pg: Playground) -> None:
    _old_registry(pg)
    ledger = pg.ctx.ledger
    state = pg.ctx.registry.state(pg.model)
    writes = iter(range(100))

    def dies_at_the_third_entry() -> None:
        """The lease's check runs before every write: three per entry (run, params, commit)."""
        if next(writes) == 7:  # the third entry's run is created, its params never logged
            raise SystemExit("killed")

    experiment_id = pg.ctx.registry.experiment_id(ledger.experiment)
    with pytest.raises(SystemExit):
        import_history(ledger, experiment_id, pg.model, state.history, dies_at_the_third_entry)
    assert len(pg.ledger()) == 2 and not ledger.ready(pg.ctx.registry.state(pg.model), pg.model)
    assert sorted(run.status for run in pg.ledger_runs()) == ["FINISHED", "FINISHED", "RUNNING"]

    done = pg.cli("import-ledger")  # the operator runs it again

    assert done.exit_code == 0, done.output
    assert [e.to_version for e in pg.ledger()[::-1]] == [1, 2, 1]
    assert sorted(run.status for run in pg.ledger_runs()) == ["FINISHED"] * 3
    assert ledger.ready(pg.ctx.registry.state(pg.model), pg.model)


def test_history_before_the_import_shows_the_tag_as_the_import_will_write_it(
    pg: Playground,
) -> None:
    _old_registry(pg)
    before = pg.cli("history", "--model", pg.model, "--json")
    prepare(pg.ctx.ledger, pg.model, pg.ctx.registry.state(pg.model))  # a pass: imports nothing
    assert pg.cli("history", "--model", pg.model, "--json").output == before.output
    assert pg.cli("import-ledger").exit_code == 0
    after = pg.cli("history", "--model", pg.model, "--json")
    strip = [{**row, "ledger_run": ""} for row in json.loads(before.output)]
    assert strip == [{**row, "ledger_run": ""} for row in json.loads(after.output)]
    assert len(strip) == 3 and all(row["imported"] for row in strip)
