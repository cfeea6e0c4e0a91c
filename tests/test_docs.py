"""The documentation stays true to the code (in the manner of sqlite-utils' test_docs.py):

- the README's Layout lists every module of bot/, and nothing that is not there;
- every `docs/design.md, "Section"` cited in code, tests or docs names a section that exists;
- every module docs/design.md names exists, and each of its rule sections names one;
- nothing cites a specification outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DESIGN = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
SECTIONS = re.findall(r"^## (.+)$", DESIGN, re.MULTILINE)
# A citation may be wrapped over lines, inside a comment or a docstring.
CITATION = re.compile(r'docs/design\.md,\s+"([^"]+)"')
MODULE_PATH = re.compile(r"\bbot/[\w/]*\w(?:\.py|/)")


def layout_block() -> str:
    section = README.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, "the Layout section has one code block"
    return blocks[0]


def modules() -> dict[str, set[str]]:
    """Every module of bot/ -> the names that list it (a subpackage's `__init__.py` may be
    listed as the package itself, `bot/ci/`)."""
    found = {}
    for path in (ROOT / "bot").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        names = {relative}
        if path.name == "__init__.py" and path.parent != ROOT / "bot":
            names.add(relative.removesuffix("__init__.py"))
        found[relative] = names
    return found


def listed() -> list[str]:
    return [line.split()[0] for line in layout_block().splitlines() if line.startswith("bot/")]


def test_the_layout_lists_every_module_once():
    names = listed()
    assert len(names) == len(set(names)), "a module is listed twice"
    missing = sorted(module for module, ways in modules().items() if not ways & set(names))
    assert missing == [], f"add these to the README's Layout: {missing}"


def test_the_layout_lists_nothing_that_does_not_exist():
    stale = sorted(name for name in listed() if not (ROOT / name).exists())
    assert stale == [], f"listed in the README's Layout, but not in bot/: {stale}"


def test_every_layout_line_says_what_the_module_does():
    lines = [line for line in layout_block().splitlines() if line.startswith("bot/")]
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def cited_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for folder in ("bot", "tests", "bench"):
        files += sorted((ROOT / folder).rglob("*.py"))
    files += [ROOT / "bench" / "RESULTS.md", ROOT / "params.yaml", ROOT / "dvc.yaml"]
    files += sorted((ROOT / "templates").glob("*.j2"))
    return [path for path in files if path.name != "test_docs.py"]  # its own examples


def citations() -> list[tuple[str, str]]:
    found = []
    for path in cited_files():
        # Join wrapped lines: a comment's "#" or a docstring's indentation between the words.
        text = re.sub(r"\s*\n\s*#?\s*", " ", path.read_text(encoding="utf-8"))
        found += [(path.relative_to(ROOT).as_posix(), name) for name in CITATION.findall(text)]
    return found


def test_the_design_is_cited_and_every_citation_names_a_section():
    found = citations()
    assert len(found) >= 30
    unknown = sorted({f"{where}: {name!r}" for where, name in found if name not in SECTIONS})
    assert unknown == [], f"no such section in docs/design.md: {unknown}"


def test_the_designs_modules_exist():
    named = sorted(set(MODULE_PATH.findall(DESIGN)))
    assert len(named) >= 30
    assert [name for name in named if not (ROOT / name).exists()] == []


@pytest.mark.parametrize(
    "section",
    [
        "The lifecycle",
        "Configuration",
        "Command line",
        "The promotion request",
        "Commands",
        "Which comments the bot acts on",
        "Rules for a champion change",
        "The change",
        "Exactly once",
        "Markers",
        "Registry tags",
        "Webhooks",
        "Polling",
        "Trust boundaries",
    ],
)
def test_each_rule_section_names_the_module_that_keeps_it(section: str):
    assert section in SECTIONS
    body = DESIGN.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    assert MODULE_PATH.search(body), f"{section!r} names no module"


def test_nothing_cites_a_specification_outside_the_repository():
    outside = re.compile("SPEC" + r"\s*§|SPEC" + r"\.md|shared/")
    hits = [
        path.relative_to(ROOT).as_posix()
        for path in cited_files()
        if outside.search(path.read_text(encoding="utf-8"))
    ]
    assert hits == []


# A cited test: `tests/test_x.py::test_name`, or `::test_name` after a cited file (the same).
CITED_TEST = re.compile(r"`(tests/[\w/]+\.py)?(?:::(test_\w+))?`")


def cited_tests(text: str) -> list[tuple[str, str]]:
    found, current = [], ""
    for match in CITED_TEST.finditer(text):
        current = match.group(1) or current
        if match.group(2):
            found.append((current, match.group(2)))
    return found


def test_every_test_the_docs_cite_exists():
    """The threat model's proofs are test names: a renamed or deleted test must not leave a
    claim without its proof."""
    cited = cited_tests(README) + cited_tests(
        (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    )
    assert len(cited) >= 40
    missing = sorted(
        f"{path}::{name}"
        for path, name in cited
        if not path
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    )
    assert missing == [], f"cited, but no such test: {missing}"
