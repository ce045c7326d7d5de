"""Experiment and trial names typed on the command line, checked by Katib's own ``metadata.name`` rule.

They become storage keys and folder names (``.katib/<experiment>/<trial>/``), so a name that would not
pass Katib's webhook is refused here, by argparse (exit 2), before it reaches a path or a database.
"""

from __future__ import annotations

import argparse

# A trial name is "<experiment>-<8 random characters>", one Kubernetes name label.
TRIAL_NAME_MAX = 63


def _check(text: str, what: str, max_length: int | None) -> str:
    from experiments.spec import name_problems  # the spec's one definition of a valid name

    options = {} if max_length is None else {"max_length": max_length}
    problems = name_problems(text, path=what, **options)
    if problems:
        reasons = "; ".join(problem.message for problem in problems)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid {what}: it {reasons} — as Katib's metadata.name requires"
        )
    return text


def experiment_name(text: str) -> str:
    """argparse ``type=`` for NAME arguments and ``--name``."""
    return _check(text, "experiment name", None)


def trial_name(text: str) -> str:
    """argparse ``type=`` for TRIAL arguments."""
    return _check(text, "trial name", TRIAL_NAME_MAX)
