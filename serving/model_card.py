"""``model-card.json``: what a promoted version is, where it came from, and how good it is.

Katib's objective value and the metrics of the promoted weights are both stated: with a ``max`` / ``min``
metric strategy Katib scores a trial by its best evaluation, but the trainer saves the weights of its last
one, so the two differ whenever the best evaluation was not the last.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from serving.promote_files import FileDigest
from serving.promote_select import Selection
from serving.promote_verify import VerifiedCheckpoint

CARD_SCHEMA_VERSION = 1
PACKAGES = ("katib-suite", "torch", "transformers", "tokenizers", "safetensors", "boto3", "kserve", "optuna")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def weights_note(selection: Selection, final: dict[str, Any]) -> tuple[float | None, str]:
    """The objective metric of the promoted (final) weights, and a sentence when it is not Katib's value."""
    objective = selection.experiment.objective
    name = objective.objective_metric_name
    strategy = objective.strategy_for(name)
    value = final.get(name)
    weights = None if value is None else float(value)
    katib = selection.objective_value
    if weights is None or katib is None or math.isclose(weights, katib, rel_tol=1e-6, abs_tol=1e-9):
        return weights, ""
    return weights, (
        f"Katib's objective value {name}={katib:g} is the {strategy} over the trial's evaluations; the promoted "
        f"weights are those of its last evaluation, where {name}={weights:g}"
    )


def build_card(
    selection: Selection,
    verified: VerifiedCheckpoint,
    files: tuple[FileDigest, ...],
    number: int,
    uri: str,
    created: datetime | None = None,
) -> dict[str, Any]:
    trial_json = verified.trial_json
    objective = selection.experiment.objective
    metrics = trial_json.get("metrics") or {}
    final = metrics.get("final") or {}
    weights_value, note = weights_note(selection, final)
    dataset = trial_json.get("dataset") or {}
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "version": f"v{number}",
        "uri": uri,
        "created_at": (created or datetime.now(timezone.utc)).isoformat(),
        "experiment": selection.experiment.name,
        "trial": selection.trial.name,
        "backend": selection.backend,
        "selection": selection.reason,
        "katib_optimal_trial": selection.katib_optimal,
        "parameters": dict(selection.trial.parameters),
        "hyperparameters": trial_json.get("hyperparameters", {}),
        "objective": {
            "metric": objective.objective_metric_name,
            "type": objective.type,
            "strategy": objective.strategy_for(objective.objective_metric_name),
            "goal": objective.goal,
            "katib_value": selection.objective_value,
            "promoted_weights_value": weights_value,
            "differs": bool(note),
            "note": note,
        },
        "promoted_weights_metrics": final,
        "best_evaluation": metrics.get("best", {}),
        "dataset": {"name": dataset.get("name"), "fingerprint": dataset.get("fingerprint")},
        "model": {
            "architecture": verified.architecture,
            "id2label": {str(k): v for k, v in sorted(verified.id2label.items())},
            "num_parameters": (trial_json.get("model") or {}).get("num_parameters"),
        },
        "source": {
            "uri": verified.source.location,
            "trial_json_sha256": verified.trial_json_sha256,
            "global_batch_size": trial_json.get("global_batch_size"),
            "world_size": trial_json.get("world_size"),
        },
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files],
        "versions": {"promote": package_versions(), "training": trial_json.get("versions", {})},
    }


def labels_from_card(card: dict[str, Any]) -> dict[int, str]:
    """id -> topic name, for clients mapping KServe's class indices."""
    return {int(k): v for k, v in ((card.get("model") or {}).get("id2label") or {}).items()}


def dumps(card: dict[str, Any]) -> str:
    return json.dumps(card, indent=2)
