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
        experiment = path_or_experiment
        if search_space is not None:
            from experiments.spec import to_dict

            # Compose through the loader so a search space applies exactly as it does to a file.
            experiment = _load_with_search_space(to_dict(experiment), search_space)
    else:
        from experiments.spec import load_experiment

        experiment = load_experiment(path_or_experiment, search_space=search_space)
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


def _load_with_search_space(spec: dict, search_space: str | PathLike) -> Experiment:
    import tempfile

    import yaml

    from experiments.spec import load_experiment

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "experiment.yaml"
        path.write_text(yaml.safe_dump(spec), encoding="utf-8")
        return load_experiment(path, search_space=search_space)
