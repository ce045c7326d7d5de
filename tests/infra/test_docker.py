"""The trial image's Dockerfile fits the experiments: a pinned CUDA PyTorch base, the `trainer` extra only,
a non-root user, an entrypoint that is the trial templates' own command, and a build context that carries
nothing but what it copies."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import tomllib

from tests.infra.conftest import INFRA, REPO_ROOT
from tests.infra.test_names import ALL_EXPERIMENTS, containers, experiment

DOCKERFILE = INFRA / "docker" / "Dockerfile"
TEXT = DOCKERFILE.read_text()
# What only the CLI and serving need; the image must not carry them (`pip install .[trainer]`).
NOT_FOR_THE_TRIAL_IMAGE = ("kserve", "kubeflow", "optuna", "kubernetes", "plotly", "rich", "sqlalchemy")


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", TEXT)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_base_image_is_a_cuda_pytorch_pinned_by_tag():
    (arg,) = [a for a in instructions("ARG") if a.startswith("BASE_IMAGE=")]
    image = arg.split("=", 1)[1]
    assert re.fullmatch(
        r"pytorch/pytorch:\d+\.\d+\.\d+-cuda\d+\.\d+-cudnn\d+-runtime(@sha256:[0-9a-f]{64})?", image
    ), image
    assert instructions("FROM") == ["${BASE_IMAGE}"]
    assert "imagetools inspect" in TEXT, "the Dockerfile says how to pin the base by digest"


def test_runs_as_a_fixed_non_root_user():
    (user,) = instructions("USER")
    assert user == "${APP_UID}:${APP_GID}"
    assert "ARG APP_UID=1000" in TEXT and "ARG APP_GID=1000" in TEXT


def test_entrypoint_is_the_command_every_trial_template_runs():
    (entrypoint,) = instructions("ENTRYPOINT")
    prefix = json.loads(entrypoint)
    assert prefix == ["torchrun", "-m", "trainer.train"]
    for path in ALL_EXPERIMENTS:
        for container in containers(experiment(path)):
            assert container["command"][:3] == prefix, (
                f"{path.name}: the template runs {container['command'][:3]}"
            )


def test_the_install_step_reads_the_trainer_extra_and_it_is_the_trainers_only(tmp_path):
    # Run the Dockerfile's own requirement-extraction snippet against this repository's pyproject.
    (first_run, *_) = instructions("RUN")
    snippet = re.match(r'python -c "(.*?)"\s+&&', first_run).group(1)
    (tmp_path / "pyproject.toml").write_text((REPO_ROOT / "pyproject.toml").read_text())
    code = snippet.replace("/tmp/build", str(tmp_path))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    wanted = (tmp_path / "requirements.txt").read_text().split()
    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "trainer"
    ]
    assert wanted == extra
    names = [re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for req in wanted]
    assert "torch" in names and "transformers" in names
    assert not [n for n in names if n.startswith(NOT_FOR_THE_TRIAL_IMAGE) or n == "katib-suite"], names


def test_the_package_is_installed_without_experiments_or_serving():
    copies = instructions("COPY")
    sources = {c.split()[0] for c in copies}
    assert sources == {"pyproject.toml", "README.md", "trainer"}, sources
    assert "--no-deps /tmp/build" in TEXT and 'python -c "import trainer.train"' in TEXT


def test_dockerignore_admits_exactly_what_the_dockerfile_copies(tmp_path):
    ignore = (INFRA / "docker" / "Dockerfile.dockerignore").read_text().split("\n")
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "an allow-list: everything else (.venv, runs, caches, credentials) stays out"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed == {c.split()[0] for c in instructions("COPY")}


def test_build_script_needs_docker_and_says_so(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("bash", "dirname", "sed"):
        (bin_dir / name).symlink_to(shutil.which(name))
    result = subprocess.run(
        ["bash", str(INFRA / "docker" / "build.sh"), "--image", "r.example/t:1"],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "docker is not installed" in result.stderr
