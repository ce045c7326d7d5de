"""Verify a checkpoint before anything is copied: files, config labels, tokenizer, trial.json vs the record.

Every check names the file that failed and the fix; a failed check writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.collector import parse_float
from experiments.ranking import UNAVAILABLE
from serving.promote_errors import VerificationError
from serving.promote_files import CheckpointFiles
from serving.promote_select import Selection
from trainer.checkpoint import TRIAL_JSON

CONFIG = "config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
# KServe's storage initializer + Hugging Face runtime need these (reference/kserve.md).
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
TOKENIZER_VOCAB = (("tokenizer.json",), ("vocab.json", "merges.txt"))


@dataclass(frozen=True)
class VerifiedCheckpoint:
    source: CheckpointFiles
    trial_json: dict[str, Any]
    trial_json_sha256: str
    id2label: dict[int, str]
    architecture: str


def _fail(where: str, problem: str, fix: str) -> VerificationError:
    return VerificationError(f"{where}: {problem}; {fix}. Nothing was promoted.")


def check_required(source: CheckpointFiles, names: list[str]) -> None:
    present = set(names)
    missing = []
    if TRIAL_JSON not in present:
        missing.append(TRIAL_JSON)
    if CONFIG not in present:
        missing.append(CONFIG)
    if not any(w in present for w in WEIGHTS):
        missing.append("model.safetensors")
    if TOKENIZER_CONFIG not in present:
        missing.append(TOKENIZER_CONFIG)
    if not any(all(n in present for n in group) for group in TOKENIZER_VOCAB):
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if missing:
        raise _fail(
            source.location,
            f"missing {', '.join(missing)}",
            "the trial's checkpoint is incomplete or not a Hugging Face model folder; rerun the trial "
            "(the trainer saves with safetensors) or pick another with --trial",
        )


def check_trial_json(
    source: CheckpointFiles, trial: dict[str, Any], selection: Selection, names: list[str]
) -> None:
    where = source.uri(TRIAL_JSON)
    expected = (("trial_name", selection.trial.name), ("experiment_name", selection.experiment.name))
    for key, want in expected:
        if trial.get(key) != want:
            raise _fail(
                where,
                f"{key} is {trial.get(key)!r}, expected {want!r}",
                "another run wrote this folder; give every trial its own --output_dir "
                "(…/${trialParameters.trialName}) and rerun the trial, or pick another with --trial",
            )
    listed = [n for n in trial.get("files", []) if n != TRIAL_JSON]
    absent = [n for n in listed if n not in names]
    if absent:
        raise _fail(where, f"lists files that are not there: {', '.join(absent)}", "rerun the trial")


def check_metrics(source: CheckpointFiles, trial: dict[str, Any], selection: Selection) -> None:
    """The metrics in trial.json must be the ones the experiment recorded (min / max / latest each)."""
    history = (trial.get("metrics") or {}).get("history") or []
    where = source.uri(TRIAL_JSON)
    for summary in selection.trial.metrics:
        values = [float(row[summary.name]) for row in history if summary.name in row]
        if not values:
            if summary.latest == UNAVAILABLE:
                continue
            raise _fail(
                where,
                f"has no {summary.name} values, but the experiment recorded {summary.name}={summary.latest}",
                "the checkpoint is not the one this trial reported; rerun the trial or pick another with --trial",
            )
        for kind, recorded, actual in (
            ("latest", summary.latest, values[-1]),
            ("min", summary.min, min(values)),
            ("max", summary.max, max(values)),
        ):
            if recorded == UNAVAILABLE:
                continue
            value = parse_float(recorded)
            if value is None or not math.isclose(value, actual, rel_tol=1e-4, abs_tol=1e-6):
                raise _fail(
                    where,
                    f"{summary.name} {kind} is {actual:g} but experiment {selection.experiment.name!r} recorded "
                    f"{recorded} for trial {selection.trial.name}",
                    "the folder was overwritten after the trial ran; rerun the trial or pick another with --trial",
                )


def check_loadable(folder: Path, source: CheckpointFiles) -> tuple[dict[int, str], str]:
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as error:
        raise _fail(
            source.uri(CONFIG), f"does not load ({str(error).splitlines()[0][:160]})", "rerun the trial"
        ) from None
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    if not id2label or all(v == f"LABEL_{k}" for k, v in id2label.items()):
        raise _fail(
            source.uri(CONFIG),
            "id2label has no topic names (only LABEL_0, LABEL_1, ...)",
            "train with the project's trainer, which stores the 10 topic names, and rerun the trial",
        )
    architectures = list(config.architectures or [])
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise _fail(
            source.uri(CONFIG),
            f"architectures is {architectures}, not a *ForSequenceClassification model",
            "KServe's Hugging Face runtime needs it for --task=sequence_classification; rerun the trial",
        )
    try:
        AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as error:
        raise _fail(
            source.uri(TOKENIZER_CONFIG),
            f"the tokenizer does not load ({str(error).splitlines()[0][:160]})",
            "rerun the trial so the tokenizer is saved with the model",
        ) from None
    return id2label, architectures[0]


def verify_checkpoint(selection: Selection) -> VerifiedCheckpoint:
    source = CheckpointFiles(selection.checkpoint)
    names = source.names()
    check_required(source, names)
    raw = source.read_bytes(TRIAL_JSON)
    try:
        trial = json.loads(raw)
    except json.JSONDecodeError as error:
        raise _fail(source.uri(TRIAL_JSON), f"is not valid JSON ({error.msg})", "rerun the trial") from None
    if not isinstance(trial, dict):
        raise _fail(source.uri(TRIAL_JSON), "is not a JSON object", "rerun the trial")
    check_trial_json(source, trial, selection, names)
    check_metrics(source, trial, selection)
    with tempfile.TemporaryDirectory(prefix="promote-verify-") as scratch:
        id2label, architecture = check_loadable(source.fetch_small(names, Path(scratch)), source)
    return VerifiedCheckpoint(source, trial, hashlib.sha256(raw).hexdigest(), id2label, architecture)
