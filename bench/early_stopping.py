"""Compute saved by Katib's medianstop, and what it costs in best objective, on the real trainer.

    python bench/early_stopping.py                      # default: 6 trials per arm, ~10 min on 2 cores
    python bench/early_stopping.py --trials 16 --max-steps 240 --eval-steps 20

The same Experiment (tiny RoBERTa on the synthetic topic dataset, random search over learning rate and
global batch size with a fixed random_state, so both arms get the same assignments in the same order)
runs twice through the local backend, one trial at a time: without early stopping, then with
``medianstop``. Trial-seconds are the summed wall time of every trial (start to end, process start-up
included). Prints JSON; the target is >= 30 % trial-seconds saved with the best eval_accuracy within
1 point. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OBJECTIVE = "eval_accuracy"


def trainer_args(args) -> list[str]:
    return [
        "--model_name_or_path=tiny",
        "--dataset=synthetic",
        f"--max_train_samples={args.train_rows}",
        f"--max_eval_samples={args.eval_rows}",
        f"--max_seq_length={args.seq_len}",
        f"--max_steps={args.max_steps}",
        f"--eval_steps={args.eval_steps}",
        "--per_device_batch_size=32",
        f"--seed={args.seed}",
    ]


def experiment_yaml(name: str, args, early_stopping: bool) -> str:
    import yaml

    command = [
        "torchrun",
        "-m",
        "trainer.train",
        *trainer_args(args),
        "--learning_rate=${trialParameters.learningRate}",
        "--global_batch_size=${trialParameters.batchSize}",
        f"--output_dir={args.workdir}/{name}/" + "${trialParameters.trialName}",
    ]
    pod = {
        "spec": {
            "containers": [
                {
                    "name": "pytorch",
                    "image": "katib-suite/trainer:local",
                    "command": command,
                    "env": [
                        {"name": "OMP_NUM_THREADS", "value": str(args.threads)},
                        # trials run in the bench's scratch folder; the trainer is imported from this checkout
                        {"name": "PYTHONPATH", "value": str(REPO)},
                    ],
                }
            ]
        }
    }
    spec = {
        "objective": {
            "type": "maximize",
            "objectiveMetricName": OBJECTIVE,
            "additionalMetricNames": ["eval_loss"],
        },
        "algorithm": {
            "algorithmName": "random",
            "algorithmSettings": [{"name": "random_state", "value": str(args.seed)}],
        },
        "parallelTrialCount": 1,
        "maxTrialCount": args.trials,
        "maxFailedTrialCount": args.trials,
        "parameters": [
            {
                "name": "lr",
                "parameterType": "double",
                "feasibleSpace": {"min": args.lr_min, "max": args.lr_max, "distribution": "logUniform"},
            },
            {
                "name": "batch_size",
                "parameterType": "discrete",
                "feasibleSpace": {"list": ["16", "32"]},
            },
        ],
        "trialTemplate": {
            "primaryContainerName": "pytorch",
            "trialParameters": [
                {"name": "learningRate", "reference": "lr"},
                {"name": "batchSize", "reference": "batch_size"},
                {"name": "trialName", "reference": "${trialSpec.Name}"},
            ],
            "trialSpec": {
                "apiVersion": "kubeflow.org/v1",
                "kind": "PyTorchJob",
                "spec": {
                    "nprocPerNode": "1",
                    "pytorchReplicaSpecs": {
                        "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": pod}
                    },
                },
            },
        },
    }
    if early_stopping:
        spec["earlyStopping"] = {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": str(args.min_trials_required)},
                {"name": "start_step", "value": str(args.start_step)},
            ],
        }
    document = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": spec,
    }
    return yaml.safe_dump(document, sort_keys=False)


def run_arm(backend, work: Path, name: str, args, early_stopping: bool):
    from experiments.spec import load_experiment

    path = work / f"{name}.yaml"
    path.write_text(experiment_yaml(name, args, early_stopping))
    started = time.perf_counter()
    status = backend.submit(load_experiment(path)).wait()
    wall = time.perf_counter() - started
    seconds = sum(
        (t.completion_time - t.start_time).total_seconds() for t in status.trials if t.completion_time
    )
    accuracies = [float(m.max) for t in status.trials if (m := t.metric(OBJECTIVE)) is not None]
    return status, seconds, max(accuracies, default=float("nan")), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=6, help="maxTrialCount of each arm (default 6)")
    parser.add_argument("--max-steps", type=int, default=60, help="optimizer steps per trial (default 60)")
    parser.add_argument("--eval-steps", type=int, default=5, help="evaluate every N steps (default 5)")
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--eval-rows", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--lr-min", default="1e-5")
    parser.add_argument("--lr-max", default="5e-3")
    parser.add_argument(
        "--min-trials-required", type=int, default=2, help="medianstop setting (Katib default 3)"
    )
    parser.add_argument("--start-step", type=int, default=4, help="medianstop setting (Katib default 4)")
    parser.add_argument("--seed", type=int, default=3, help="random_state and trainer seed")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per trial")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from experiments.backends import get_backend

    with tempfile.TemporaryDirectory(prefix="katib-bench-es-") as tmp:
        work = Path(tmp)
        args.workdir = work
        # One cache for both arms, warmed first: the tokenizer and tokenized dataset are built once,
        # so neither arm pays for it inside its trial-seconds.
        os.environ["KATIB_SUITE_CACHE"] = str(work / "cache")
        warm = [sys.executable, "-m", "trainer.train", *trainer_args(args), "--max_steps=1", "--eval_steps=1"]
        warm += ["--learning_rate=1e-4", "--global_batch_size=16", f"--output_dir={work / 'warmup'}"]
        subprocess.run(warm, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        backend = get_backend("local", storage=f"sqlite:///{work / 'bench.db'}", workdir=work)
        without, seconds_without, best_without, wall_without = run_arm(backend, work, "es-off", args, False)
        with_, seconds_with, best_with, wall_with = run_arm(backend, work, "es-on", args, True)

    saved = 100 * (1 - seconds_with / seconds_without)
    delta = 100 * (best_without - best_with)
    print(
        json.dumps(
            {
                "trials": args.trials,
                "trial_seconds_without": round(seconds_without, 1),
                "trial_seconds_with": round(seconds_with, 1),
                "saved_pct": round(saved, 1),
                "best_without": round(best_without, 4),
                "best_with": round(best_with, 4),
                "delta_points": round(delta, 2),
                "early_stopped": with_.count("EarlyStopped"),
                "conditions_without": [t.condition for t in without.trials],
                "conditions_with": [t.condition for t in with_.trials],
                "wall_s": round(wall_without + wall_with, 1),
                "settings": {
                    "max_steps": args.max_steps,
                    "eval_steps": args.eval_steps,
                    "min_trials_required": args.min_trials_required,
                    "start_step": args.start_step,
                },
                "target": ">= 30% trial-seconds saved, best eval_accuracy within 1 point",
                "met": saved >= 30 and delta <= 1.0,
                "machine": f"{os.cpu_count()} CPUs, shared with other work: timings are noisy",
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
