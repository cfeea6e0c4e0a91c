"""One exception hierarchy: the CLI turns any BotError into a single `error: ...` line."""

from __future__ import annotations


class BotError(Exception):
    """An expected failure with a message fit for a user (never contains a secret)."""


class ConfigError(BotError):
    """params.yaml or the environment is missing, malformed or inconsistent."""


class RegistryError(BotError):
    """MLflow could not be reached or refused an operation."""


class NotFoundError(RegistryError):
    """A model, version, alias or run does not exist."""


class ForgeError(BotError):
    """GitLab, GitHub or the local forge refused or failed a call."""


class ForgeAuthError(ForgeError):
    """401/403: the token is missing, wrong or lacks a scope."""


class ForgeNotFoundError(ForgeError):
    """404: project, repository, request or user not found."""


class Unavailable(BotError):
    """A service every command needs could not be reached before anything was read or written
    for the command: nothing was done, and the command can be repeated as it stands."""

    service = "a service the bot needs"


class RegistryUnavailable(RegistryError, Unavailable):
    """The registry failed on the first read of a command (docs/design.md, "Exactly once")."""

    service = "the model registry"


class LockUnavailable(Unavailable):
    """The shared lock store (Redis) could not be reached: no change is made without the lock."""

    service = "the lock service"


class LockLost(BotError):
    """The lease on a model's lock expired or could not be confirmed before a write."""
