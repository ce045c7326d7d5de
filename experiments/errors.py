"""Errors a user can act on. The CLI prints ``str(error)`` and exits non-zero; never a traceback."""

from __future__ import annotations


class KatibSuiteError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""

    exit_code = 1


class UsageError(KatibSuiteError):
    """Wrong flags or arguments (exit 2, like argparse)."""

    exit_code = 2


class NotFoundError(KatibSuiteError):
    """An experiment, trial or file that does not exist."""
