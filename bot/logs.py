"""Logging for the CLI and the server: text or JSON lines, with secrets masked on the way out.

A record with an exception is one line unless -v: the exception's type and first line are
appended to the message, and the traceback is shown only when `tracebacks` is on (README: "one
line unless -v"). Records keep their exc_info, so tests and other handlers still see it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_SUMMARY_CHARS = 300


def exception_summary(record: logging.LogRecord) -> str:
    """`Type: first line of the message` of the record's exception, or ""."""
    masked = getattr(record, "_error_summary", None)  # set by RedactSecrets
    if masked is not None:
        return str(masked)
    if not record.exc_info or record.exc_info[1] is None:
        return ""
    exc = record.exc_info[1]
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


class TextFormatter(logging.Formatter):
    """`LEVEL logger: message`, an exception as `(Type: message)` unless tracebacks are on."""

    def __init__(self, tracebacks: bool = True) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks or not record.exc_info:
            return super().format(record)
        record.message = record.getMessage()
        return f"{self.formatMessage(record)} ({exception_summary(record)})"


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the `extra={...}` context (delivery id, model, version)."""

    def __init__(self, tracebacks: bool = True) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            {
                k: v
                for k, v in record.__dict__.items()
                if k not in _STANDARD and not k.startswith("_")
            }
        )
        if record.exc_info:
            entry["error"] = exception_summary(record)
            if self.tracebacks:  # exc_text: the traceback as RedactSecrets left it
                entry["traceback"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RedactSecrets(logging.Filter):
    """Replace every configured secret value in a record's message and arguments with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                # Formatters render the traceback after filters ran: render it here to mask it.
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if record.exc_info:  # the one-line form formatters show without -v
                record._error_summary = self.redact(exception_summary(record))
            if record.stack_info:
                record.stack_info = self.redact(record.stack_info)
            for key, value in list(record.__dict__.items()):  # extra={...} context
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, self.redact(value))
        return True


def error_output(message: str, fmt: str, exit_code: int, details: str = "") -> str:
    """A failed command's last words on stderr: `error: message` after the traceback (`details`,
    under -v), or one JSON line like the log records' with `--log-format json`."""
    if fmt != "json":
        return f"{details}\nerror: {message}" if details else f"error: {message}"
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "level": "error",
        "logger": "promotion-bot",
        "message": message,
        "exit_code": exit_code,
    }
    if details:
        entry["traceback"] = details
    return json.dumps(entry)


def configure(verbose: int, fmt: str, secrets: Iterable[str] = ()) -> RedactSecrets:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    redactor = RedactSecrets(secrets)
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    handler.setFormatter(formatter(tracebacks=verbose > 0))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("bot").setLevel(level)
    # MLflow's HTTP client logs every retry as a warning; the bot reports the outcome instead.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbose > 1 else logging.ERROR)
    return redactor
