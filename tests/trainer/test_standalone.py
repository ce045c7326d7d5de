"""The trial image carries trainer/ alone: the trainer runs with experiments, serving, optuna, kserve and
kubeflow impossible to import."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.conftest import REPO_ROOT, TINY_SYNTHETIC, parse_katib_line, trainer_env

# Ours (the trainer imports nothing of them) and the orchestration/serving stacks the image does not install.
BLOCKED = ("experiments", "serving", "optuna", "kserve", "kubeflow")

# None in sys.modules: `import x` raises ModuleNotFoundError and importlib.util.find_spec("x") answers
# None, so libraries probing for an optional package (transformers does) see it as not installed.
SITECUSTOMIZE = f"""\
import sys

for name in {BLOCKED!r}:
    sys.modules[name] = None
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(a directory holding only a copy of trainer/, the environment that blocks the other packages)."""
    root = tmp_path_factory.mktemp("trial-image")
    app = root / "app"
    shutil.copytree(REPO_ROOT / "trainer", app / "trainer", ignore=shutil.ignore_patterns("__pycache__"))
    blocker = root / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    cache = root / "cache"
    return app, trainer_env(cache, PYTHONPATH=str(blocker))


def _run(image: tuple[Path, dict[str, str]], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    app, env = image
    return subprocess.run(
        [sys.executable, *args], cwd=app, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_trainer_imports_nothing_blocked_anywhere_in_its_source() -> None:
    offending = []
    for path in sorted((REPO_ROOT / "trainer").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offending += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in BLOCKED]
    assert offending == []


def test_the_blocker_blocks_and_the_copy_is_the_trainer_that_runs(image) -> None:
    # Without this the other two tests could pass against an environment that blocks nothing.
    for name in BLOCKED:
        result = _run(image, "-c", f"import {name}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, (name, result.stderr)
    probe = "import importlib.util, trainer; print(trainer.__file__, importlib.util.find_spec('optuna'))"
    result = _run(image, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(image[0] / "trainer" / "__init__.py"), "None"]


@pytest.mark.slow
def test_help_runs_without_the_blocked_packages(image) -> None:
    result = _run(image, "-m", "trainer.train", "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage: python -m trainer.train ") and "--precision" in result.stdout


@pytest.mark.slow
def test_a_tiny_run_trains_evaluates_and_saves_without_the_blocked_packages(image, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(
        image,
        "-m",
        "trainer.train",
        *TINY_SYNTHETIC,
        "--max_train_samples=64",
        "--max_eval_samples=32",
        "--global_batch_size=32",
        "--max_steps=2",
        f"--output_dir={out}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert [parse_katib_line(line)[1]["step"] for line in lines] == [1.0, 2.0]
    trial = json.loads((out / "trial.json").read_text())
    assert trial["training"]["optimizer_steps"] == 2 and trial["world_size"] == 1
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
