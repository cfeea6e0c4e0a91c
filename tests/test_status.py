"""`status` as people and scripts read it (bot/reports/status.py): the exact text of
`status --json` and of the lines for people, from typed records (no registry, no forge).

Scripts parse `status --json`: its keys, their order and the indentation are pinned here, text
for text, for every shape a value can take (a metric or none, requests or why there are none, a
drift check made, not needed, or failed).
"""

from __future__ import annotations

import pytest

from bot.ledger.drift import ChampionCheck
from bot.ledger.entry import LedgerEntry
from bot.reports.status import (
    AliasStatus,
    ChampionStatus,
    ModelStatus,
    OpenRequest,
    _marked_version,
    render_status,
    status_json,
)
from bot.threads.markers import request_marker

APPROVED = LedgerEntry("churn", "promote", None, 1, 1_770_000_000_000, actor="maria")
EXTERNAL = LedgerEntry("churn", "external", 1, 2, 1_770_000_100_000)

DRIFTED = ModelStatus(
    model="churn",
    aliases=(
        AliasStatus("champion", 2, "run2", "final.logloss", 0.702, "smoke"),
        AliasStatus("candidate", 3, "run3", "final.logloss", None, ""),
    ),
    open_requests=(OpenRequest("7", 3, "https://forge.example/issues/7"),),
    champion_check=ChampionStatus(
        "checked",
        "the audit ledger was read",
        ChampionCheck("churn", 2, last=APPROVED, approved=APPROVED),
    ),
)

DRIFTED_JSON = """{
  "models": [
    {
      "model": "churn",
      "aliases": [
        {
          "alias": "champion",
          "version": 2,
          "run_id": "run2",
          "metric": "final.logloss",
          "value": 0.702,
          "registered_as": "smoke"
        },
        {
          "alias": "candidate",
          "version": 3,
          "run_id": "run3",
          "metric": "final.logloss",
          "value": null,
          "registered_as": ""
        }
      ],
      "open_requests": [
        {
          "number": "7",
          "version": 3,
          "url": "https://forge.example/issues/7"
        }
      ],
      "open_requests_unavailable": null,
      "champion_check": {
        "outcome": "checked",
        "detail": "the audit ledger was read",
        "model": "churn",
        "champion": 2,
        "approved": 1,
        "approved_at": "2026-02-02T02:40:00.000Z",
        "approved_by": "maria",
        "drifted": true,
        "recorded": false,
        "in_flight": null
      }
    }
  ]
}"""


def test_one_model_is_a_list_of_one_under_models() -> None:
    """One shape however many models: a script reads `models` and never asks how many there are;
    every version an integer (docs/cli.md, "JSON output")."""
    assert status_json([DRIFTED]) == DRIFTED_JSON


def test_several_models_print_a_list_under_models_with_every_fallback() -> None:
    quiet = ModelStatus(
        model="fraud",
        aliases=(),
        open_requests=(),
        requests_unavailable="unavailable (ForgeError)",
        champion_check=ChampionStatus("unavailable", "RegistryError: down"),
    )
    agreeing = ModelStatus(
        "churn", (), (), champion_check=ChampionStatus("checked", "the records agree")
    )

    assert status_json([quiet, agreeing]) == (
        """{
  "models": [
    {
      "model": "fraud",
      "aliases": [],
      "open_requests": [],
      "open_requests_unavailable": "unavailable (ForgeError)",
      "champion_check": {
        "outcome": "unavailable",
        "detail": "RegistryError: down"
      }
    },
    {
      "model": "churn",
      "aliases": [],
      "open_requests": [],
      "open_requests_unavailable": null,
      "champion_check": {
        "outcome": "checked",
        "detail": "the records agree"
      }
    }
  ]
}"""
    )


def test_the_lines_for_people() -> None:
    assert render_status(DRIFTED).splitlines() == [
        "model churn",
        "  @champion   v2    final.logloss=0.702  run run2",
        "  @candidate  v3    final.logloss=n/a  run run3",
        "open requests:",
        "  #7 v3  https://forge.example/issues/7",
        "champion: DRIFT: v2 was set outside promotion-bot (approved: v1); `poll` and `serve` "
        "record it and report it in the request",
    ]
    recorded = ChampionCheck("churn", 1, last=EXTERNAL, approved=APPROVED)
    back = ModelStatus("churn", (), (), champion_check=ChampionStatus("checked", "", recorded))
    assert render_status(back).splitlines() == [
        "model churn",
        "  no aliases yet (run `promotion-bot register`)",
        "open requests: none",
        "champion: as the audit ledger records it",
    ]
    failed = ModelStatus(
        "churn",
        (),
        (),
        requests_unavailable="unavailable (ForgeError)",
        champion_check=ChampionStatus("unavailable", "RegistryError: down"),
    )
    assert render_status(failed).splitlines()[-2:] == [
        "open requests: unavailable (ForgeError)",
        "champion: not checked against the audit ledger (RegistryError: down)",
    ]


@pytest.mark.parametrize(
    ("body", "version"),
    [
        (request_marker(model="churn", version=7, run="abc"), 7),
        (request_marker(model="churn", version="7x", run="abc"), None),  # edited by a person
        (request_marker(model="churn", run="abc"), None),
        ("no marker at all", None),
    ],
)
def test_an_open_requests_version_is_an_integer_or_null(body: str, version: int | None) -> None:
    assert _marked_version(body) == version


def test_a_request_without_a_readable_version_reads_v_question_mark() -> None:
    edited = ModelStatus("churn", (), (OpenRequest("8", None, "https://forge.example/issues/8"),))
    assert render_status(edited).splitlines()[-1] == "  #8 v?  https://forge.example/issues/8"
    assert '"version": null' in status_json([edited])
