"""The documentation stays true to the code (in the manner of sqlite-utils' test_docs.py):

- docs/layout.md lists every module of bot/, and nothing that is not there;
- every `docs/design.md, "Section"` cited in code, tests or docs names a section that exists,
  and every `docs/security.md, "Boundary"` a boundary;
- every module docs/design.md names exists, and each of its rule sections names one;
- nothing cites a specification outside the repository, nor an issue or a review a reader of
  the repository cannot open;
- every relative link of the README and docs/ reaches a file, and a heading there when it names
  one; the README stays an adopter's: short, the quickstart first, adoption before reference.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
LAYOUT = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
DESIGN = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
SECTIONS = re.findall(r"^## (.+)$", DESIGN, re.MULTILINE)
# A citation may be wrapped over lines, inside a comment or a docstring.
CITATION = re.compile(r'docs/design\.md,\s+"([^"]+)"')
MODULE_PATH = re.compile(r"\bbot/[\w/]*\w(?:\.py|/)")


def layout_block() -> str:
    blocks = re.findall(r"```\n(.*?)```", LAYOUT, re.DOTALL)
    assert len(blocks) == 1, "docs/layout.md has one code block"
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
    assert missing == [], f"add these to docs/layout.md: {missing}"


def test_the_layout_lists_nothing_that_does_not_exist():
    stale = sorted(name for name in listed() if not (ROOT / name).exists())
    assert stale == [], f"listed in docs/layout.md, but not in bot/: {stale}"


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


SECURITY = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
# A boundary is cited by the start of its heading, without its number: "Comment text".
BOUNDARIES = [
    re.sub(r"^\d+a?\. ", "", title) for title in re.findall(r"^##+ (.+)$", SECURITY, re.M)
]
SECURITY_CITATION = re.compile(r'docs/security\.md,\s+"([^"]+)"')


def test_every_security_citation_names_a_boundary():
    found = []
    for path in cited_files():
        text = re.sub(r"\s*\n\s*#?\s*", " ", path.read_text(encoding="utf-8"))
        found += [
            (path.relative_to(ROOT).as_posix(), name) for name in SECURITY_CITATION.findall(text)
        ]
    assert len(found) >= 5
    unknown = sorted(
        f"{where}: {name!r}"
        for where, name in found
        if not any(title.startswith(name) for title in BOUNDARIES)
    )
    assert unknown == [], f"no such boundary in docs/security.md: {unknown}"


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
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    cited = [found for path in docs for found in cited_tests(path.read_text(encoding="utf-8"))]
    assert len(cited) >= 40
    missing = sorted(
        f"{path}::{name}"
        for path, name in cited
        if not path
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    )
    assert missing == [], f"cited, but no such test: {missing}"


# --- no citation a reader of the repository cannot open -----------------------------------------

# An issue tracker's or a review's numbering means nothing in a clone: code and tests cite the
# docs/design.md section or the docs/security.md boundary instead. Wrapped lines are joined first.
UNOPENABLE = re.compile(
    r"\bissues? \d+\b|\(issue:|\battacker review|\breview(?:er)?(?:'s)? findings?\b"
    r"|\bfindings? \d+\b|\breview [A-Z]\d+(?:-\d+)?\b|\(items? \d+\b|\bitems? \d+ (?:and|of)\b",
    re.IGNORECASE,
)
# Inside a comment only, a tracker's number: thread numbers in data and `#{number}` stay legal.
TRACKER_REF = re.compile(r"\b(?:see|fixes|fixed|closes|refs?|cf\.?)\s+#\d+\b|\(#\d+\)|\bGH-\d+\b")
COMMENT = re.compile(r"(?:^|\s)#\s.*$|\{#.*?#\}")  # Python or YAML; Jinja


def unopenable_citations(text: str) -> list[str]:
    joined = re.sub(r"\s*\n\s*#?\s*", " ", text)
    found = [match.group(0) for match in UNOPENABLE.finditer(joined)]
    for line in text.splitlines():
        comment = COMMENT.search(line)
        if comment:
            found += [match.group(0) for match in TRACKER_REF.finditer(comment.group(0))]
    return found


def guarded_files(root: Path) -> list[Path]:
    files = [root / "params.yaml", *sorted((root / "templates").glob("*.j2"))]
    files += sorted((root / "ci").rglob("*.yml"))
    for folder in ("bot", "tests", "bench"):
        files += sorted((root / folder).rglob("*.py")) + sorted((root / folder).glob("*.md"))
    return [
        path
        for path in files
        if path.exists() and path.name != "test_docs.py" and "node_modules" not in path.parts
    ]


def unopenable_in(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root).as_posix()}: {hit!r}"
        for path in guarded_files(root)
        for hit in unopenable_citations(path.read_text(encoding="utf-8"))
    ]


def test_nothing_cites_an_issue_or_a_review_a_reader_cannot_open():
    hits = unopenable_in(ROOT)
    assert hits == [], f'cite docs/design.md, "Section" or a docs/security.md boundary: {hits}'


@pytest.mark.parametrize(
    "planted",
    [
        '"""Edited notes are no commands (the attacker review\nof issue 10)."""',
        "# --- finding 13: non-finite metric values ---",
        "x = 1  # as review A2-1 asked",
        '"""Slow clients (issue 10, item 9)."""',
        "# an internal note (item 6)",
        "# the reviewer finding on templates",
        "# fixes #12",
        "value = parse(raw)  # (#12)",
        "{# see #40 #}",
        '"""The webhook server under load (issue: load)."""',
    ],
)
def test_a_planted_citation_is_refused(planted: str, tmp_path: Path):
    assert unopenable_citations(planted) != []
    (tmp_path / "bot" / "deep").mkdir(parents=True)
    (tmp_path / "bot" / "deep" / "module.py").write_text(planted, encoding="utf-8")
    assert unopenable_in(tmp_path) != []


@pytest.mark.parametrize(
    "legitimate",
    [
        'what: str  # for log lines: "comment 123 on issue #7"',
        'body = f"comment on #{thread.number}"',
        "- gitlab_note_issue (Note Hook): issue #7 (closed), note 3102 by dana",
        'assert f"see [#3]({new.url})" in comment.body',
        "for item in promotion.checklist:",
        "THREAD must be an issue number such as 3 or #3",
        "Merged !{{ number }} (#{{ number }}) at {{ head }}",
        "# a review request GitHub refuses (422), then finding the thread again",
    ],
)
def test_legitimate_text_is_not_taken_for_a_citation(legitimate: str):
    assert unopenable_citations(legitimate) == []


# --- links, and the README as an adopter reads it ------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """The anchor GitHub and GitLab give a heading: lower case, punctuation dropped, spaces
    become hyphens (`18. Accounts — who may …` -> `18-accounts--who-may-…`)."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))  # `# comment` lines in code blocks
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        name, number = slug(heading), 1
        while name in found:  # a repeated heading gets -1, -2, ...
            name, number = f"{slug(heading)}-{number}", number + 1
        found.add(name)
    return found


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def broken_links(paths: list[Path]) -> list[str]:
    broken = []
    for path in paths:
        for link in relative_links(path):
            target, _, anchor = link.partition("#")
            file = (path.parent / target).resolve() if target else path
            if not file.exists():
                broken.append(f"{path.name}: {link} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{path.name}: {link} (no such heading)")
    return broken


def test_every_relative_link_of_the_docs_resolves():
    assert sum(len(relative_links(path)) for path in DOCS) >= 40  # the pattern still matches
    assert broken_links(DOCS) == []


def test_a_broken_link_is_found(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Other\n\n## A section — `x`\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-section--x) [self](#here) [gone](missing.md) [bad](other.md#nowhere)\n"
        "# Here\n```\n[in code](nowhere.md)\n```\n[web](https://example.com/x)\n",
        encoding="utf-8",
    )
    assert broken_links([page]) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#nowhere (no such heading)",
    ]


README_HEADINGS = re.findall(r"^## (.+)$", FENCE.sub("", README), re.MULTILINE)


def test_the_readme_is_an_adopters():
    """Short; the first code block installs the bot without the test extras and runs the demo,
    and the test command is pointed at right after it; adoption comes before any reference."""
    assert len(README.splitlines()) <= 400
    first = re.search(r"```bash\n(.*?)```", README, re.DOTALL)
    assert first and README.index(first.group(0)) < README.index("\n## ")
    assert "pip install -e . " in first.group(1) and "promotion-bot demo" in first.group(1)
    assert "[test]" not in first.group(1) and ".ci/run" not in first.group(1)
    after = README[first.end() :].strip().splitlines()[0]
    assert "`bash .ci/run`" in after and "(#contributing)" in after
    order = ["What it is", "Try it without a forge", "Use it in your repository", "Configuration"]
    order += ["Commands", "Comment commands", "Documentation", "Contributing"]
    assert [heading for heading in README_HEADINGS if heading in order] == order
    adoption = README.index("\n## Use it in your repository\n")
    operations = ("PROMOTION_BOT_LOCK_URL", "Prometheus", "replica", "/metrics", "/readyz")
    assert [word for word in operations if word in README[:adoption]] == []


def test_ci_runs_the_test_command_the_readme_names():
    contributing = README.split("\n## Contributing\n", 1)[1]
    command = re.search(r"The test command is `([^`]+)`", contributing)
    assert command and command.group(1) == "python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command.group(1) in ci
