"""Shared set-up for the infra tests: where infra/ lives, its shared names, and the linters.

The linters (shellcheck, hadolint, checkov) live in .venv-tools, apart from the project's .venv, because
checkov's pins clash with the project's. A missing tool fails the test with the command that installs it:
an infra check that silently skips is a check that never runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
TOOLS_BIN = REPO_ROOT / ".venv-tools" / "bin"


def tool(name: str) -> Path:
    """The linter ``name`` from .venv-tools/bin; fail (never skip) with the fix when it is absent."""
    path = TOOLS_BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} is missing; install the infra linters with `bash .ci/setup-tools`", pytrace=False
        )
    return path


def read_names() -> dict[str, str]:
    """infra/names.env as a dict: the one list of names every part of the cluster path shares."""
    names: dict[str, str] = {}
    for line in (INFRA / "names.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            names[key] = shlex.split(value)[0] if value else ""
    return names


@pytest.fixture(scope="session")
def names() -> dict[str, str]:
    return read_names()


def run_script(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    """Run an infra script with bash from the repository root, with a clean, predictable environment."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        ["bash", *argv],
        cwd=REPO_ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
