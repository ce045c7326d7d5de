"""Ctrl-C and SIGTERM for the runner: a flag the loop checks at its safe points, not an exception anywhere.

An exception raised straight from a signal handler can land inside SQLAlchemy or subprocess code and
leave a lock held, and the clean-up that follows (which writes to the same storage) would then hang
instead of marking the running trials Killed.
"""

from __future__ import annotations

import signal
import threading


class ExperimentInterrupted(KeyboardInterrupt):
    """SIGTERM to the runner, handled like Ctrl-C."""


class InterruptFlag:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            self.signum = signum

        self._previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def raise_if_set(self) -> None:
        if self.signum == signal.SIGTERM:
            raise ExperimentInterrupted()
        if self.signum is not None:
            raise KeyboardInterrupt()


def hold_signals() -> dict:
    """Ignore Ctrl-C / SIGTERM while the clean-up records the trials (a second Ctrl-C must not cut it short)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}


def release_signals(held: dict) -> None:
    for sig, previous in held.items():
        signal.signal(sig, previous)
