"""One redaction for every URL the bot logs or shows: the tracking URI, GITLAB_URL,
GITHUB_API_URL, `post_promote_hook`, and URLs quoted inside library messages.

A URL can carry a credential in two places: its userinfo (`https://oauth2:TOKEN@host`) and its
query (`?private_token=...`). Both are replaced by `***`; the rest stays, so a log line still
says which host and path it was about. `url_secrets` lists the same values for the log filter,
which masks them wherever else they turn up (a library's message, a traceback).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

# Query parameters that carry credentials in the APIs the bot talks to (GitLab `private_token`,
# OAuth `access_token`, signed URLs `sig`/`signature`, API keys), matched case-insensitively.
SECRET_PARAMS = frozenset(
    {
        "token",
        "private_token",
        "access_token",
        "job_token",
        "key",
        "api_key",
        "apikey",
        "sig",
        "signature",
        "secret",
        "password",
        "client_secret",
    }
)
MASK = "***"
# Parentheses end a URL or a value: messages say "(see https://...)" far more often than a URL
# or a token contains one.
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>()]+""")
_PARAM = re.compile(r"(?i)(?<=[?&;])([A-Za-z_-]+)=([^&;#\s'\"<>()]*)")


def redact_url(url: str) -> str:
    """`url` fit for a log line or an error: no userinfo, no secret query values."""
    try:
        urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in the host: keep nothing that could be secret
        return MASK
    span = _userinfo(url)
    if span is not None:
        url = url[: span[0]] + MASK + url[span[1] :]
    return _PARAM.sub(_mask_param, url)


def _userinfo(url: str) -> tuple[int, int] | None:
    """Where the userinfo is: everything between `://` and the last `@`, or None.

    urlsplit() ends the authority at the first `/`, `?` or `#`, but people paste tokens holding
    them (base64 has `/`) into `https://user:TOKEN@host` unencoded. An `@` later in a path or
    query makes this mask the host too: too much is safe, too little is not.
    """
    start = url.find("://")
    if start < 0:
        return None
    at = url.rfind("@", start + 3)
    return (start + 3, at) if at >= 0 else None


def redact_urls_in(text: str) -> str:
    """Every URL inside `text` redacted, and secret parameters of a bare path (`/x?token=..`)."""
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    return _PARAM.sub(_mask_param, text)


def url_secrets(url: str | None) -> list[str]:
    """The credentials inside `url` as written and percent-decoded, for the log filter."""
    if not url:
        return []
    try:
        query = urlsplit(url).query
    except ValueError:
        return [url]  # unreadable: mask the whole value rather than guess
    found = []
    span = _userinfo(url)
    if span is not None:
        userinfo = url[span[0] : span[1]]
        # `user:password`, or `https://TOKEN@host`: a lone user part is the credential.
        found.append(userinfo.partition(":")[2] if ":" in userinfo else userinfo)
        query = url[span[1] :].partition("?")[2].partition("#")[0]
    found += [
        match.group(2)
        for match in _PARAM.finditer("?" + query)
        if match.group(1).lower() in SECRET_PARAMS
    ]
    return sorted({value for item in found for value in (item, unquote(item)) if value})


def _mask_param(match: re.Match[str]) -> str:
    key = match.group(1)
    return f"{key}={MASK}" if key.lower() in SECRET_PARAMS and match.group(2) else match.group(0)
