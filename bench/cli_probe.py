"""Run `promotion-bot ARGS` in this process; at exit, write what it loaded to REPORT.

Usage: python bench/cli_probe.py REPORT.json ARGS...

Reports whether `mlflow` was imported, how many times it was loaded (the interpreter's `import`
audit event fires on a real load only, so a second load would mean someone dropped it from
sys.modules) and how many registry clients (`bot.registry.client.Registry`) were built.
"""

from __future__ import annotations

import atexit
import json
import sys
from typing import Any

REPORT = sys.argv[1]
loads: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "import" and args and args[0] == "mlflow":
        loads.append(args[0])


sys.addaudithook(_audit)

import bot.registry.client  # noqa: E402 - MLflow-free at import time: Registry() imports it

built: list[str] = []
_init = bot.registry.client.Registry.__init__


def _counting_init(self: Any, tracking_uri: str, *args: Any) -> None:
    built.append(tracking_uri)
    _init(self, tracking_uri, *args)


bot.registry.client.Registry.__init__ = _counting_init  # type: ignore[method-assign]


@atexit.register
def _report() -> None:
    data = {"mlflow_loaded": "mlflow" in sys.modules, "mlflow_loads": len(loads)}
    data["registries"] = len(built)
    with open(REPORT, "w", encoding="utf-8") as out:
        json.dump(data, out)


sys.argv = ["promotion-bot", *sys.argv[2:]]
from bot.cli import main  # noqa: E402

main()
