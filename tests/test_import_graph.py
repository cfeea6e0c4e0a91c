"""The dependency rule of docs/design.md ("Layout and the dependency rule"), read from the code.

Every module of bot/ is parsed with `ast`; every import counts, at module level, inside a
function or under TYPE_CHECKING alike: an import that only runs later is still a dependency.
Each package has its row; a package may import itself and the rows it names:

    entry points (bot, bot.__main__, bot.cli, bot.demo)  anything
    bot.intake    -> commands, reports, runtime, ground
    bot.ci        -> runtime, ground
    bot.commands  -> reports, runtime, ground
    bot.reports   -> runtime, ground
    bot.runtime   -> ground
  ground, each row only downward:
    bot.rules     -> ledger, registry, forges, config, threads, base
    bot.ledger    -> registry, config, threads, base
    bot.registry  -> config, threads, base
    bot.forges    -> config, threads, base
    bot.config    -> threads, base
    bot.threads   -> base
    base (the modules at the top of bot/: errors, logs, ...) -> base

and no cycle anywhere in the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parent.parent / "bot"
ENTRY_POINTS = {"bot", "bot.__main__", "bot.cli", "bot.demo"}
STAGES = ("intake", "ci", "commands", "reports", "runtime")
GROUND = ("rules", "ledger", "registry", "forges", "config", "threads")
PACKAGES = STAGES + GROUND
MAY_IMPORT = {
    "entry": {"entry", "base", *PACKAGES},
    "intake": {"intake", "commands", "reports", "runtime", *GROUND, "base"},
    "ci": {"ci", "runtime", *GROUND, "base"},
    "commands": {"commands", "reports", "runtime", *GROUND, "base"},
    "reports": {"reports", "runtime", *GROUND, "base"},
    "runtime": {"runtime", *GROUND, "base"},
    "rules": {"rules", "ledger", "registry", "forges", "config", "threads", "base"},
    "ledger": {"ledger", "registry", "config", "threads", "base"},
    "registry": {"registry", "config", "threads", "base"},
    "forges": {"forges", "config", "threads", "base"},
    "config": {"config", "threads", "base"},
    "threads": {"threads", "base"},
    "base": {"base"},
}
MOST_TOP_LEVEL_MODULES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(BOT.rglob("*.py"))}


def layer(module: str) -> str:
    if module in ENTRY_POINTS:
        return "entry"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else "base"


def resolve(name: str) -> str:
    """The module of bot/ an imported name lives in (`bot.forges.local`, or its package)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str) -> set[str]:
    """Every bot module `module` imports, wherever in the file the import statement stands."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from .y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        found |= {resolve(name) for name in names if name == "bot" or name.startswith("bot.")}
    found.discard(module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_package_has_a_row_and_the_graph_is_not_empty():
    for package in PACKAGES:
        assert f"bot.{package}" in MODULES, f"bot/{package}/__init__.py is missing"
    on_disk = {path.name for path in BOT.iterdir() if (path / "__init__.py").is_file()}
    assert on_disk - {"templates"} == set(PACKAGES), "every package of bot/ needs its row"
    assert sum(len(edges) for edges in GRAPH.values()) > 50


def test_at_most_a_dozen_modules_at_the_top():
    top = sorted(path.name for path in BOT.glob("*.py"))
    assert len(top) <= MOST_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_downward(module: str):
    wrong = sorted(
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for target in GRAPH[module]
        if layer(target) not in MAY_IMPORT[layer(module)]
    )
    assert wrong == []


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path [a, b, ..., a], or [] when the graph has none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once cleared
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle():
    assert find_cycle(GRAPH) == []


def test_the_checks_catch_what_they_are_for():
    """The checker itself: an upward edge and a cycle in a made-up graph are found."""
    assert layer("bot.commands.handler") == "commands" and layer("bot.errors") == "base"
    assert layer("bot.registry.client") == "registry" and "ledger" not in MAY_IMPORT["registry"]
    assert "ci" not in MAY_IMPORT["commands"] and "intake" not in MAY_IMPORT["commands"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert resolve("bot.forges.local.LocalForge") == "bot.forges.local"
