"""The Python API behind the CLI verbs, for notebooks and scripts.

import experiments
handle = experiments.submit("experiments/quickstart.yaml", search_space="search_spaces/lr-batch.yaml")
status = handle.wait()
print(status.optimal_trial.name, status.optimal_trial.parameters)
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from experiments.backends._protocol import ExperimentHandle
from experiments.spec import Experiment


def submit(
    path_or_experiment: str | PathLike | Experiment,
    *,
    backend: str = "local",
    search_space: str | PathLike | None = None,
    name: str | None = None,
    storage: str | None = None,
    workdir: str | PathLike | None = None,
    wait: bool = False,
) -> ExperimentHandle:
    """Submit an Experiment (a YAML path or a loaded object); with ``wait=True`` run it to its end first."""
    from experiments.backends import get_backend

    if isinstance(path_or_experiment, Experiment):
        experiment = _prepared(path_or_experiment, search_space, backend)
    else:
        from experiments.spec import load_experiment

        target = "cluster" if backend == "cluster" else "local"
        experiment = load_experiment(path_or_experiment, search_space=search_space, backend=target)
    handle = get_backend(backend, **_options(storage, workdir)).submit(experiment, name=name)
    if wait:
        handle.wait()
    return handle


def get_experiment(
    name: str, backend: str = "local", storage: str | None = None, workdir: str | PathLike | None = None
) -> ExperimentHandle:
    """A handle on an experiment already in the backend (NotFoundError lists the known names)."""
    from experiments.backends import get_backend

    return get_backend(backend, **_options(storage, workdir)).get(name)


def _options(storage: str | None, workdir: str | PathLike | None) -> dict:
    options: dict = {"storage": storage}
    if workdir is not None:
        options["workdir"] = Path(workdir)
    return options


def _prepared(
    experiment: Experiment, search_space: str | PathLike | dict | None, backend: str = "local"
) -> Experiment:
    """An object built in a notebook gets what a YAML file gets: composition, Katib's defaults, validation."""
    from experiments.spec import InvalidExperimentError, apply_defaults, compose, validate_experiment

    if search_space is not None:
        experiment = compose(experiment, search_space)
    experiment = apply_defaults(experiment)
    problems = validate_experiment(experiment, backend="cluster" if backend == "cluster" else "local")
    if problems:
        raise InvalidExperimentError(repr(experiment.name), problems)
    return experiment
