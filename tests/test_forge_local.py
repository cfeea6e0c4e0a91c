"""The `local` forge: threads, comments, branches and roles as files, safe across processes."""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config.settings import Settings
from bot.errors import ForgeError, ForgeNotFoundError
from bot.forges import make_forge
from bot.forges.base import Forge
from bot.forges.local import LocalForge, readable

PROCS = 4
COMMENTS_EACH = 25


def _clock() -> Callable[[], str]:
    """Deterministic, strictly increasing timestamps."""
    counter = itertools.count()
    return lambda: f"2024-05-01T12:00:{next(counter):02d}.000Z"


@pytest.fixture
def forge(tmp_path: Path) -> LocalForge:
    return LocalForge(tmp_path / "forge", clock=_clock())


def _thread_file(forge: LocalForge, number: str) -> dict:
    return json.loads((forge.root / "threads" / f"{number}.json").read_text())


def test_implements_the_forge_protocol_and_is_built_from_settings(tmp_path: Path) -> None:
    lines: list[str] = []
    settings = Settings(platform="local", local_dir=tmp_path / "d", bot_username="robo")
    forge = make_forge(settings, echo=lines.append)
    assert isinstance(forge, LocalForge)
    assert isinstance(forge, Forge)
    assert forge.platform == "local"
    assert forge.bot_username() == "robo"
    assert forge.slash_promote_works() is True
    assert LocalForge(tmp_path).bot_username() == "promotion-bot"
    assert forge.root == (tmp_path / "d").resolve()


def test_reads_on_a_missing_folder_create_nothing(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "nothing-here")
    assert forge.find_threads(["model-promotion"]) == []
    assert forge.access_level("alice") == 0
    with pytest.raises(ForgeNotFoundError, match="no thread #1"):
        forge.get_thread("issue", "1")
    assert not (tmp_path / "nothing-here").exists()


def test_open_issue_writes_a_thread_file_with_a_stable_file_url(forge: LocalForge) -> None:
    thread = forge.open_issue("Promote m v1 to champion", "body 1", ["model-promotion"])
    assert thread.kind == "issue"
    assert thread.number == "1"
    assert thread.state == "open"
    assert thread.author == "promotion-bot"
    assert thread.labels == ("model-promotion",)
    assert thread.url == (forge.root / "threads" / "1.json").as_uri()
    assert thread.url.startswith("file:///")
    data = _thread_file(forge, "1")
    assert data["title"] == "Promote m v1 to champion"
    assert data["body"] == "body 1"
    assert data["comments"] == []
    assert data["created_at"] == "2024-05-01T12:00:00.000Z"
    assert forge.get_thread("issue", "1") == thread
    # the same thread seen from another working directory has the same URL
    assert LocalForge(forge.root).get_thread("issue", "1").url == thread.url


def test_find_threads_filters_by_all_labels_and_state_newest_first(forge: LocalForge) -> None:
    a = forge.open_issue("a", "", ["model-promotion", "x"])
    b = forge.open_issue("b", "", ["model-promotion"])
    c = forge.open_issue("c", "", ["other"])
    forge.commit_file("br", "main", "f.txt", "x", "msg")
    d = forge.open_merge_request("d", "", ["model-promotion"], "br", "main")
    forge.close(b)
    forge.merge(d, sha=d.head_sha)
    numbers = lambda threads: [t.number for t in threads]  # noqa: E731
    assert numbers(forge.find_threads(["model-promotion"])) == [a.number]
    assert numbers(forge.find_threads(["model-promotion"], state="closed")) == [d.number, b.number]
    assert numbers(forge.find_threads(["model-promotion"], state="all")) == ["4", "2", "1"]
    assert numbers(forge.find_threads(["model-promotion", "x"], state="all")) == ["1"]
    assert numbers(forge.find_threads([], state="all")) == ["4", "3", "2", "1"]
    assert c.number == "3"
    with pytest.raises(ForgeError, match="unknown thread state"):
        forge.find_threads([], state="merged-ish")


def test_find_threads_since_keeps_the_threads_updated_at_or_after_it(forge: LocalForge) -> None:
    first = forge.open_issue("a", "", ["model-promotion"])
    second = forge.open_issue("b", "", ["model-promotion"])
    comment = forge.add_comment(first.number, "maria", "/help")  # moves the first thread
    since = comment.created_at
    assert [t.number for t in forge.find_threads([], since=since)] == [first.number]
    assert {t.number for t in forge.find_threads([], since="not a time")} == {"1", "2"}
    assert second.number == "2"


def test_update_close_and_merge_change_the_file(forge: LocalForge) -> None:
    issue = forge.open_issue("t", "old", [])
    forge.update_body(issue, "new")
    assert forge.get_thread("issue", "1").body == "new"
    assert _thread_file(forge, "1")["updated_at"] > _thread_file(forge, "1")["created_at"]
    with pytest.raises(ForgeError, match="is an issue"):
        forge.merge(issue, sha="")
    forge.close(issue)
    assert forge.get_thread("issue", "1").state == "closed"
    forge.close(issue)  # closing twice is harmless
    assert forge.get_thread("issue", "1").state == "closed"


def test_merge_request_needs_its_branch_and_merging_brings_the_files_over(
    forge: LocalForge,
) -> None:
    with pytest.raises(ForgeError, match="source branch 'promotion/m/v2' does not exist"):
        forge.open_merge_request("t", "b", [], "promotion/m/v2", "main")
    assert forge.find_threads([], state="all") == []
    forge.commit_file("main", "main", "README.md", "hello\n", "init")
    forge.commit_file("promotion/m/v2", "main", "promotions/m.json", '{"v": 2}\n', "record v2")
    assert forge.branch_file("promotion/m/v2", "README.md").read_text() == "hello\n"
    assert not forge.branch_file("main", "promotions/m.json").exists()
    mr = forge.open_merge_request("t", "b", ["l"], "promotion/m/v2", "main")
    assert mr.kind == "merge_request"
    data = _thread_file(forge, mr.number)
    assert (data["source_branch"], data["target_branch"]) == ("promotion/m/v2", "main")
    assert mr.head_sha == forge.commits()[-1]["id"]  # the commit `record v2`
    forge.commit_file("promotion/m/v2", "main", "extra.txt", "x\n", "pushed later")
    with pytest.raises(ForgeError, match="head of #1 is not"):
        forge.merge(mr, sha=mr.head_sha)  # pinned: a push since fails the merge
    assert forge.get_thread("merge_request", mr.number).state == "open"
    head = forge.get_thread("merge_request", mr.number).head_sha
    forge.merge(mr, sha=head)
    assert forge.get_thread("merge_request", mr.number).state == "merged"
    assert forge.branch_file("main", "promotions/m.json").read_text() == '{"v": 2}\n'
    with pytest.raises(ForgeError, match="is merged, not open"):
        forge.merge(mr, sha=head)
    assert [c["message"] for c in forge.commits()] == ["init", "record v2", "pushed later"]


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b", ""])
def test_commit_file_refuses_paths_outside_the_branch(forge: LocalForge, path: str) -> None:
    with pytest.raises(ForgeError, match="must be relative"):
        forge.commit_file("b", "main", path, "x", "m")
    with pytest.raises(ForgeError, match="must be relative"):
        forge.commit_file(path or "..", "main", "ok.txt", "x", "m")


def test_comments_have_increasing_unique_ids_and_authors(forge: LocalForge) -> None:
    one = forge.open_issue("one", "", [])
    two = forge.open_issue("two", "", [])
    human = forge.add_comment("1", "alice", "/promote\nlooks good")
    bot = forge.post_comment(one, "done")
    other = forge.post_comment(two, "elsewhere")
    assert (human.id, bot.id, other.id) == ("1", "2", "3")  # global, across threads
    assert human.author == "alice"
    assert bot.author == "promotion-bot"
    assert [c.id for c in forge.list_comments(one)] == ["1", "2"]
    assert forge.list_comments(one)[0].body == "/promote\nlooks good"
    assert [c.id for c in forge.list_comments(two)] == ["3"]
    with pytest.raises(ForgeNotFoundError):
        forge.add_comment("99", "alice", "hi")


def test_list_comments_since(forge: LocalForge) -> None:
    thread = forge.open_issue("t", "", [])  # 12:00:00
    for text in ("a", "b", "c"):  # 12:00:01, :02, :03 (plus the thread's updated_at ticks)
        forge.add_comment("1", "u", text)
    created = [c.created_at for c in forge.list_comments(thread)]
    assert created == sorted(created)
    assert [c.body for c in forge.list_comments(thread, since=created[1])] == ["b", "c"]
    assert [c.body for c in forge.list_comments(thread, since="not a date")] == ["a", "b", "c"]


def test_react_is_stored_once_and_never_fails(forge: LocalForge) -> None:
    thread = forge.open_issue("t", "", [])
    comment = forge.add_comment("1", "alice", "/promote")
    forge.react(thread, comment.id, "eyes")
    forge.react(thread, comment.id, "eyes")
    forge.react(thread, "999", "eyes")  # unknown comment: ignored
    assert _thread_file(forge, "1")["comments"][0]["reactions"] == ["eyes"]


def test_roles_give_access_levels(forge: LocalForge) -> None:
    forge.set_role("Alice", "maintainer")
    forge.set_role("bob", "write")
    assert forge.access_level("alice") == 40
    assert forge.access_level("ALICE") == 40
    assert forge.access_level("bob") == 30
    assert forge.access_level("mallory") == 0
    forge.set_role("alice", "none")
    assert forge.access_level("alice") == 0
    assert forge.roles() == {"alice": "none", "bob": "write"}
    with pytest.raises(ForgeError, match="unknown role 'wizard'"):
        forge.set_role("carol", "wizard")


def test_teams_come_from_local_json_and_a_parent_groups_members_belong(
    forge: LocalForge,
) -> None:
    forge.root.mkdir(parents=True, exist_ok=True)
    teams = {"ml-team": ["Olga"], "ml-team/churn": ["devon"]}
    (forge.root / "local.json").write_text(json.dumps({"teams": teams}), encoding="utf-8")
    assert forge.team_member("ml-team/churn", "devon")
    assert forge.team_member("ml-team/churn", "olga")  # a member of the parent group
    assert not forge.team_member("ml-team", "devon")  # not the other way round
    assert not forge.team_member("ml-team/fraud", "maria")
    assert not forge.team_member("ml-team-x", "olga")  # a prefix of a name is no parent


def test_platform_approval(forge: LocalForge) -> None:
    forge.commit_file("br", "main", "f", "x", "m")
    mr = forge.open_merge_request("t", "", [], "br", "main")
    assert forge.is_approved(mr) is False
    forge.approve(mr.number, "alice")
    forge.approve(mr.number, "alice")
    assert forge.is_approved(mr) is True
    assert _thread_file(forge, mr.number)["approved_by"] == ["alice"]


def test_new_requests_and_bot_comments_are_echoed_readably(tmp_path: Path) -> None:
    lines: list[str] = []
    forge = LocalForge(tmp_path / "f", echo=lines.append)
    body = "<!-- promotion-bot:request model=m version=1 -->\nHello\n- [ ] item <!-- check:a -->"
    thread = forge.open_issue("Promote m v1 to champion", body, [])
    forge.add_comment("1", "alice", "/promote")  # a person's comment: the CLI prints it itself
    forge.post_comment(thread, "Promoted.\n<!-- promotion-bot:answer comment=1 -->")
    forge.commit_file("b", "main", "f", "x", "m")
    forge.open_merge_request("Promote m v2 to champion", "MR body", [], "b", "main")
    assert len(lines) == 3
    assert lines[0].startswith("=== new issue #1: Promote m v1 to champion ===\nfile:///")
    assert lines[0].endswith("Hello\n- [ ] item")
    assert "<!--" not in "".join(lines)
    assert lines[1] == "--- promotion-bot on #1 ---\nPromoted."
    assert lines[2].startswith("=== new merge request #2 (b -> main): Promote m v2 to champion")


def test_readable_drops_markers_and_extra_blank_lines() -> None:
    text = "<!-- promotion-bot:request a=1 -->\nA\n\n\n<!-- x -->\n\nB <!-- check:b -->\n"
    assert readable(text) == "A\n\nB"


def test_a_broken_file_is_a_forge_error(forge: LocalForge) -> None:
    forge.open_issue("t", "", [])
    (forge.root / "threads" / "1.json").write_text("{not json")
    with pytest.raises(ForgeError, match="cannot read"):
        forge.get_thread("issue", "1")
    with pytest.raises(ForgeNotFoundError):
        forge.get_thread("issue", "../local")


def _add_comments(root: str, worker: int) -> list[str]:
    forge = LocalForge(root)
    return [forge.add_comment("1", f"w{worker}", f"c{worker}-{i}").id for i in range(COMMENTS_EACH)]


def _open_issues(root: str, worker: int) -> list[str]:
    forge = LocalForge(root)
    return [forge.open_issue(f"w{worker}-{i}", "", []).number for i in range(5)]


def test_concurrent_comments_from_several_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    LocalForge(root).open_issue("busy", "", [])
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that has threads
    with spawn.Pool(PROCS) as pool:
        ids = pool.starmap(_add_comments, [(str(root), w) for w in range(PROCS)])
        numbers = pool.starmap(_open_issues, [(str(root), w) for w in range(PROCS)])
    all_ids = [i for chunk in ids for i in chunk]
    assert len(all_ids) == PROCS * COMMENTS_EACH
    assert len(set(all_ids)) == len(all_ids)
    stored = LocalForge(root).list_comments(LocalForge(root).get_thread("issue", "1"))
    assert sorted(c.id for c in stored) == sorted(all_ids)
    assert {c.body for c in stored} == {
        f"c{w}-{i}" for w in range(PROCS) for i in range(COMMENTS_EACH)
    }
    for worker in range(PROCS):  # each process saw its own comments in order
        own = [int(c.id) for c in stored if c.author == f"w{worker}"]
        assert own == sorted(own)
    opened = sorted(int(n) for chunk in numbers for n in chunk)
    assert opened == list(range(2, 2 + PROCS * 5))
    assert not list((root / "threads").glob("*.tmp")) and not list(root.glob(".*.tmp"))
