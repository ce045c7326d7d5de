"""bench/trial_startup.py's pieces: the quickstart's trial flags and the trial image's package set."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("trial_startup", REPO_ROOT / "bench" / "trial_startup.py")
trial_startup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trial_startup)


def test_minimal_trial_is_the_quickstarts_command_with_its_placeholders_filled() -> None:
    flags = trial_startup.quickstart_flags()
    assert "--model_name_or_path=tiny" in flags and "--dataset=synthetic" in flags
    assert "--learning_rate=3e-4" in flags and "--global_batch_size=32" in flags
    assert not any("${" in flag or flag.startswith("--output_dir") for flag in flags)


def test_the_trial_image_closure_is_the_trainer_extra_and_what_it_needs() -> None:
    closure = trial_startup.trainer_closure()
    assert {"torch", "transformers", "datasets", "tokenizers", "boto3", "accelerate", "numpy"} <= closure
    assert not closure & {"scikit-learn", "scipy", "optuna", "kserve", "kubeflow-katib", "pytest"}


def test_the_trial_image_blocker_hides_the_rest(tmp_path: Path) -> None:
    hidden = set(trial_startup.trial_image_blocker(tmp_path))
    assert {"sklearn", "scipy", "optuna", "kserve", "pytest"} <= hidden
    assert not hidden & {"torch", "transformers", "datasets", "numpy", "yaml", "trainer", "experiments"}
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    blocked = subprocess.run([sys.executable, "-c", "import scipy"], env=env, capture_output=True, text=True)
    assert "ModuleNotFoundError" in blocked.stderr
    kept = subprocess.run([sys.executable, "-c", "import numpy"], env=env, capture_output=True, text=True)
    assert kept.returncode == 0, kept.stderr
