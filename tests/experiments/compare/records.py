"""Hand-made TrialRecords for table tests of the pure parts (no trial runs)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path

from experiments.backends._protocol import Observation, TrialRecord
from experiments.compare import view_of
from experiments.spec import MetricStrategy, Objective
from tests.experiments.backends._local_helpers import make_experiment

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(
    index: int, condition: str, accuracy, loss=(), seconds: float = 30.0, message: str = "", reason=""
):
    obs = [Observation("accuracy", str(v), T0 + timedelta(seconds=k)) for k, v in enumerate(accuracy)]
    obs += [Observation("loss", str(v), T0 + timedelta(seconds=k)) for k, v in enumerate(loss)]
    start = T0 + timedelta(minutes=index)
    return TrialRecord(
        f"demo-{chr(97 + index) * 8}",
        {"lr": f"{0.01 * (index + 1):g}", "tag": "a"},
        condition,
        reason,
        message,
        observations=tuple(obs),
        start_time=start,
        completion_time=start + timedelta(seconds=seconds),
    )


def demo_view(records, workers: int = 1, strategies=()):
    exp = make_experiment("demo", Path("/nonexistent"), workers=workers)
    objective = Objective(
        "maximize", "accuracy", additional_metric_names=("loss",), metric_strategies=tuple(strategies)
    )
    exp = dataclasses.replace(exp, objective=objective)
    return view_of("demo", exp, records, condition="Succeeded", reason="ExperimentMaxTrialsReached")


LOSS_MIN = MetricStrategy("loss", "min")
