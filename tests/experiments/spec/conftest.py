from __future__ import annotations

import copy
from pathlib import Path

import pytest

from experiments.spec import load_yaml

REPO = Path(__file__).resolve().parents[3]
# One short Experiment per Katib feature, written for this suite (see its README.md).
FEATURES = Path(__file__).resolve().parent / "katib_features"
QUICKSTART = REPO / "experiments" / "quickstart.yaml"


@pytest.fixture
def quickstart() -> dict:
    return copy.deepcopy(_QUICKSTART)


_QUICKSTART = load_yaml(QUICKSTART.read_text())
