"""Reading Experiment and search-space files, and composing them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from experiments.spec._errors import InvalidExperimentError, SpecFileError, SpecNotFoundError
from experiments.spec._model import Experiment
from experiments.spec._parse import parse_experiment, parse_search_space


def read_yaml(path: str | Path, what: str = "Experiment") -> Any:
    """The one YAML document in ``path``, read as kubectl reads it (``_yaml``); a clear error otherwise."""
    import yaml

    from experiments.spec._yaml import load_yaml_documents

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecNotFoundError(f"{what} file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise SpecFileError(f"{what} file {path} is a directory; pass a .yaml file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecFileError(f"cannot read {what} file {path}: {error}") from None
    try:
        documents = [doc for doc in load_yaml_documents(text) if doc is not None]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecFileError(f"{path} is not valid YAML{where}: {error.problem}; fix the syntax") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as error:
        raise SpecFileError(f"{path} is not valid YAML: {error}; fix the syntax") from None
    if not documents:
        raise SpecFileError(f"{path} is empty; it should hold one Katib {what}")
    if len(documents) > 1:
        raise SpecFileError(f"{path} holds {len(documents)} YAML documents; keep one {what} per file")
    return documents[0]


def compose(exp: Experiment, search_space: str | Path | dict) -> Experiment:
    """The Experiment with its parameters (and, where the search space sets them, algorithm,
    earlyStopping and trial counts) replaced by the search space's. Still a plain Katib Experiment."""
    if isinstance(search_space, dict):
        source = "<search space>"
        data = search_space
    else:
        source = str(search_space)
        data = read_yaml(search_space, "search-space")
    composed = dataclasses.replace(exp, **parse_search_space(data, source=source))
    return _keep_hyperband_resource(exp, composed)


def _keep_hyperband_resource(exp: Experiment, composed: Experiment) -> Experiment:
    # hyperband's resource parameter (resource_name) is the budget the algorithm assigns and the trial template
    # is written around, not a search dimension: a search space that does not name it keeps the experiment's,
    # so `quickstart-hyperband.yaml --search-space lr-batch.yaml` swaps lr and batch size and keeps the epochs.
    if exp.algorithm.algorithm_name != "hyperband":
        return composed
    resource = exp.algorithm.settings.get("resource_name")
    if resource is None or any(p.name == resource for p in composed.parameters):
        return composed
    kept = tuple(p for p in exp.parameters if p.name == resource)
    return dataclasses.replace(composed, parameters=composed.parameters + kept)


def load_experiment(
    path: str | Path, search_space: str | Path | dict | None = None, *, backend: str | None = "local"
) -> Experiment:
    """Read, compose, default (as Katib's webhook does) and validate for ``backend`` (see
    :func:`validate_experiment`); raise every problem together."""
    from experiments.spec._defaults import apply_defaults
    from experiments.spec._validate import validate_experiment

    source = str(path)
    exp = parse_experiment(read_yaml(path), source=source)
    if search_space is not None:
        exp = compose(exp, search_space)
        source = (
            f"{path} (with search space {search_space if not isinstance(search_space, dict) else '<dict>'})"
        )
    exp = apply_defaults(exp)
    problems = validate_experiment(exp, backend=backend)
    if problems:
        raise InvalidExperimentError(source, problems)
    return exp
