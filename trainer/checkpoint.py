"""The trial's checkpoint: a Hugging Face directory plus ``trial.json`` (DESIGN contract 4).

``trial.json`` is written last (locally by atomic rename, on S3 as the last object), so its presence means
the checkpoint is complete: promote-best can trust any output_dir that has one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from trainer import s3
from trainer.errors import TrainerInputError

TRIAL_JSON = "trial.json"
TRIAL_SCHEMA_VERSION = 1


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def check_output_dir(output_dir: str) -> None:
    """Fail before training, not after, when the destination cannot be written."""
    if s3.is_s3_uri(output_dir):
        bucket, _ = s3.parse_s3_uri(output_dir)
        with s3.s3_errors(output_dir, "write to", bucket_call=True):
            s3.client().head_bucket(Bucket=bucket)
        return
    path = Path(output_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainerInputError(
            f"cannot create --output_dir {output_dir} ({error.strerror}); pass a writable path"
        ) from None
    if not os.access(path, os.W_OK):
        raise TrainerInputError(f"--output_dir {output_dir} is not writable; pass a writable path")


def save_checkpoint(model: Any, tokenizer: Any, output_dir: str, trial: dict[str, Any]) -> list[str]:
    """Write model, tokenizer and trial.json to a local path or S3 prefix; returns the file names."""
    if s3.is_s3_uri(output_dir):
        staging = Path(tempfile.mkdtemp(prefix="katib-suite-ckpt-"))
        try:
            files = _save_local(model, tokenizer, staging, trial, write_trial=False)
            s3.upload_dir(staging, output_dir)
            trial_path = staging / TRIAL_JSON
            _write_json_atomic(trial_path, {**trial, "files": files})
            s3.upload_file(trial_path, s3.join_key(output_dir, TRIAL_JSON))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return [*files, TRIAL_JSON]
    return _save_local(model, tokenizer, Path(output_dir).expanduser(), trial, write_trial=True)


def _save_local(
    model: Any, tokenizer: Any, directory: Path, trial: dict[str, Any], write_trial: bool
) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    stale = directory / TRIAL_JSON
    if stale.exists():
        stale.unlink()  # a rerun into the same directory is incomplete until its own trial.json lands
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    if write_trial:
        _write_json_atomic(directory / TRIAL_JSON, {**trial, "files": files})
        files.append(TRIAL_JSON)
    return files


def read_trial_json(output_dir: str) -> dict:
    """The ``trial.json`` of a trial's output_dir (local path or s3:// prefix)."""
    if s3.is_s3_uri(output_dir):
        raw = s3.read_bytes(s3.join_key(output_dir, TRIAL_JSON))
        where = output_dir
    else:
        path = Path(output_dir).expanduser() / TRIAL_JSON
        if not path.is_file():
            raise TrainerInputError(
                f"no {TRIAL_JSON} in {output_dir}; the trial did not finish or the path is wrong"
            )
        raw, where = path.read_bytes(), str(path)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise TrainerInputError(
            f"{where}/{TRIAL_JSON} is not valid JSON ({error.msg}); rerun the trial"
        ) from None
