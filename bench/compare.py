"""How long ``katib experiment compare`` takes to lay out rows, the table and the HTML report, by trial count.

    python bench/compare.py                      # 10, 100, 1000 trials x 20 observations
    python bench/compare.py --trials 10 100 1000 5000 --observations 20

Trials are TrialRecords shaped like the quickstart experiment's (lr x batch_size, eval_accuracy plus two
additional metrics, Succeeded / EarlyStopped / Failed / MetricsUnavailable in realistic shares), built in
memory: the figures measure compare itself, not the storage read. Imports are warmed first and reported
apart (a first run in a fresh process pays them once). Target: rows + table + report < 3 s at 1000
trials, and the report's size growing linearly (bytes per trial about constant above plotly.js).
Prints JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
CONDITIONS = ["Succeeded"] * 14 + ["EarlyStopped"] * 4 + ["Failed", "MetricsUnavailable"]


def records(count: int, observations: int, seed: int = 0):
    from experiments.backends._protocol import Observation, TrialRecord

    rng = random.Random(seed)
    out = []
    for index in range(count):
        condition = rng.choice(CONDITIONS)
        steps = {"Succeeded": observations, "EarlyStopped": observations // 4, "Failed": 2}.get(condition, 0)
        lr = 10 ** rng.uniform(-4, -2.5)
        batch = rng.choice(["16", "32", "64"])
        quality = 0.9 - 40 * abs(lr - 0.0008) - (0.02 if batch == "64" else 0.0)
        start = T0 + timedelta(seconds=90 * index)
        obs = []
        for step in range(1, steps + 1):
            at = start + timedelta(seconds=3 * step)
            accuracy = quality * (1 - 0.6**step) + rng.gauss(0, 0.005)
            obs += [
                Observation("eval_accuracy", f"{accuracy:.5f}", at),
                Observation("eval_loss", f"{2.3 * (1 - accuracy):.5f}", at),
                Observation("eval_f1", f"{accuracy - 0.02:.5f}", at),
            ]
        message = {
            "Failed": "replica master-0 exited with code 1: RuntimeError: CUDA out of memory",
            "MetricsUnavailable": "the trial exited 0 but reported no value of 'eval_accuracy'",
            "EarlyStopped": "stopped by medianstop",
        }.get(condition, "")
        out.append(
            TrialRecord(
                name=f"quickstart-{index:08d}",
                parameters={"lr": repr(lr), "batch_size": batch},
                condition=condition,
                reason=condition,
                message=message,
                observations=tuple(obs),
                start_time=start,
                completion_time=start + timedelta(seconds=3 * max(steps, 1) + 5),
            )
        )
    return out


def timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def measure(experiment, count: int, observations: int) -> dict:
    from experiments.compare import view_of
    from experiments.compare._report import render_html
    from experiments.compare._table import print_csv, print_json, print_text

    recs = records(count, observations)
    rows_s, view = timed(lambda: view_of("quickstart", experiment, recs, condition="Succeeded"))
    table_s, _ = timed(lambda: print_text([view], io.StringIO(), width=120))
    json_s, _ = timed(lambda: print_json([view], io.StringIO()))
    csv_s, _ = timed(lambda: print_csv([view], io.StringIO()))
    report_s, page = timed(lambda: render_html([view]))
    return {
        "trials": count,
        "observations_per_trial": observations,
        "rows_s": round(rows_s, 4),
        "table_s": round(table_s, 4),
        "json_s": round(json_s, 4),
        "csv_s": round(csv_s, 4),
        "report_s": round(report_s, 4),
        "rows_table_report_s": round(rows_s + table_s + report_s, 4),
        "report_bytes": len(page.encode()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--observations", type=int, default=20)
    args = parser.parse_args()

    import_s, _ = timed(
        lambda: (
            __import__("optuna.importance"),
            __import__("optuna.visualization"),
            __import__("plotly.graph_objects"),
            __import__("rich.table"),
        )
    )
    from experiments.spec import load_experiment

    experiment = load_experiment(REPO / "experiments" / "quickstart.yaml")
    measure(experiment, 5, 3)  # warm the code paths (plotly validators, optuna's first study)
    results = [measure(experiment, n, args.observations) for n in args.trials]

    base = results[0]
    for result in results[1:]:
        extra = result["trials"] - base["trials"]
        result["bytes_per_extra_trial"] = round((result["report_bytes"] - base["report_bytes"]) / extra)
    largest = max(results, key=lambda r: r["trials"])
    print(
        json.dumps(
            {
                "benchmark": "compare",
                "import_s": round(import_s, 3),
                "results": results,
                "target": "rows + table + report < 3 s at 1000 trials; bytes per extra trial about constant",
                "report_s_at_largest": largest["report_s"],
                "meets_target": all(r["rows_table_report_s"] < 3.0 for r in results if r["trials"] <= 1000),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
