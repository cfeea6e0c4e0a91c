"""Webhook payload fixtures (tests/fixtures/webhooks/*.json), shaped like real deliveries.

Everything happens in `ml-team/soccer-model`; the bot is `promotion-bot`; model
`soccer-match-outcome`. What each file is:

- gitlab_note_merge_request (Note Hook): MR !12, note 3101 by dana (user id 42),
  `@promotion-bot promote` + a reason line
- gitlab_note_issue (Note Hook): issue #7 (closed), note 3102 by dana, `/rollback v5` + reason
- gitlab_note_issue_edited (Note Hook): note 3102 edited (`action: update`) to `/rollback v4`
- gitlab_note_issue_confidential (Confidential Note Hook): confidential issue #7, note 3103,
  `@promotion-bot help`
- gitlab_note_commit (Note Hook): a note on a commit (`noteable_type: Commit`), not ours
- gitlab_merge_request_hook (Merge Request Hook): MR !12 opened, not a comment
- github_issue_comment_pr (issue_comment): PR #31, comment 2712345601 by dana (id 5810042),
  `/promote` + reason, CRLF line endings as the GitHub web UI sends them
- github_issue_comment_issue (issue_comment): issue #8 (closed), comment 2712345602 by dana,
  `/rollback 5` + reason
- github_issue_comment_edited (issue_comment): comment 2712345602 edited to `/rollback 4`
  (sender: erin)
- github_issue_comment_deleted (issue_comment): comment 2712345602 deleted
- github_issue_comment_by_bot (issue_comment): PR #31, the bot's own answer
  (`promotion-bot[bot]`, type Bot, answer marker for comment 2712345601)
- github_ping (ping): the hook's ping
- github_pull_request_opened (pull_request): PR #31 opened, not a comment
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEBHOOK_DIR = Path(__file__).resolve().parent / "fixtures" / "webhooks"

# The X-Gitlab-Event / X-GitHub-Event header each fixture is delivered with.
WEBHOOK_EVENTS: dict[str, str] = {
    "gitlab_note_merge_request": "Note Hook",
    "gitlab_note_issue": "Note Hook",
    "gitlab_note_issue_edited": "Note Hook",
    "gitlab_note_issue_confidential": "Confidential Note Hook",
    "gitlab_note_commit": "Note Hook",
    "gitlab_merge_request_hook": "Merge Request Hook",
    "github_issue_comment_pr": "issue_comment",
    "github_issue_comment_issue": "issue_comment",
    "github_issue_comment_edited": "issue_comment",
    "github_issue_comment_deleted": "issue_comment",
    "github_issue_comment_by_bot": "issue_comment",
    "github_ping": "ping",
    "github_pull_request_opened": "pull_request",
}


def _path(name: str) -> Path:
    stem = name.removesuffix(".json")
    if stem not in WEBHOOK_EVENTS:
        raise KeyError(f"no webhook fixture {name!r}; known: {', '.join(sorted(WEBHOOK_EVENTS))}")
    return WEBHOOK_DIR / f"{stem}.json"


def raw_webhook(name: str) -> bytes:
    """The fixture's bytes exactly as stored (sign these for HMAC tests)."""
    return _path(name).read_bytes()


def load_webhook(name: str) -> dict[str, Any]:
    """A fresh, decoded copy of the fixture: tests may mutate it."""
    data = json.loads(raw_webhook(name))
    assert isinstance(data, dict)
    return data


def webhook_event(name: str) -> str:
    """The event header value the fixture is delivered with."""
    _path(name)
    return WEBHOOK_EVENTS[name.removesuffix(".json")]
