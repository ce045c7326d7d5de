"""Errors promote-best reports as one paragraph (problem, then fix) and an exit code; never a traceback."""

from __future__ import annotations

from experiments.errors import KatibSuiteError, NotFoundError


class PromoteError(KatibSuiteError):
    """A promotion that cannot go ahead; nothing was written (or nothing that looks complete)."""

    exit_code = 1


class VerificationError(PromoteError):
    """The checkpoint does not match what the experiment recorded, or is not servable; names the file."""

    exit_code = 3


class TrialNotFoundError(NotFoundError):
    """An unknown trial, or no trial with a complete checkpoint."""


class DeployError(PromoteError):
    """The Kubernetes API refused or did not answer; the message says what to change."""

    exit_code = 4
