"""Errors a user can cause. The CLI prints their message and exits with status 2, no traceback."""

from __future__ import annotations

from data_checks.errors import DataError


class UserError(Exception):
    """A mistake in the config or the command line, named by its key."""


class ConfigError(UserError):
    """An invalid or impossible configuration: `key: what is wrong`."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"{key}: {problem}")


USER_ERRORS = (UserError, DataError)
