"""Compute saved by Katib's medianstop, and what it costs in best objective, on the real trainer.

    python bench/early_stopping.py                      # default: 10 trials per arm, ~10 min on 2 cores
    python bench/early_stopping.py --trials 16 --max-steps 1200 --eval-steps 80 --sequential

The same Experiment (tiny RoBERTa on the synthetic topic dataset, random search over learning rate and
global batch size with a fixed random_state, so both arms get the same assignments in the same order)
runs twice through the local backend, one trial at a time per arm: without early stopping and with
``medianstop`` (side by side, one core each, or ``--sequential``). Trial-seconds are the summed wall time of every trial (start to end, process start-up
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
    from experiments.spec import dump_yaml  # quotes "1e-4": kubectl (and our loader) read it as Katib does

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
    return dump_yaml(document)


def run_arm(work: Path, name: str, args, early_stopping: bool) -> dict:
    from experiments.backends import get_backend
    from experiments.spec import load_experiment

    path = work / f"{name}.yaml"
    path.write_text(experiment_yaml(name, args, early_stopping))
    backend = get_backend("local", storage=f"sqlite:///{work / f'{name}.db'}", workdir=work)
    started = time.perf_counter()
    status = backend.submit(load_experiment(path)).wait()
    wall = time.perf_counter() - started
    seconds = sum(
        (t.completion_time - t.start_time).total_seconds() for t in status.trials if t.completion_time
    )
    accuracies = [float(m.max) for t in status.trials if (m := t.metric(OBJECTIVE)) is not None]
    return {
        "trial_seconds": seconds,
        "best": max(accuracies, default=float("nan")),
        "wall_s": wall,
        "conditions": [t.condition for t in status.trials],
        "early_stopped": status.count("EarlyStopped"),
    }


def _arm_command(args, arm: str) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("arm", "sequential")]
    return [sys.executable, str(Path(__file__).resolve()), f"--arm={arm}", *flags]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="maxTrialCount of each arm (default 10)")
    parser.add_argument("--max-steps", type=int, default=600, help="optimizer steps per trial (default 600)")
    parser.add_argument("--eval-steps", type=int, default=40, help="evaluate every N steps (default 40)")
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--eval-rows", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--lr-min", default="1e-4")
    parser.add_argument("--lr-max", default="1e-1")
    parser.add_argument(
        "--min-trials-required", type=int, default=2, help="medianstop setting (Katib default 3)"
    )
    parser.add_argument("--start-step", type=int, default=3, help="medianstop setting (Katib default 4)")
    parser.add_argument("--seed", type=int, default=3, help="random_state and trainer seed")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per trial")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run the arms one after the other (default: side by side, one core each; the arm without "
        "early stopping then runs its last trials alone and faster, so the saving is understated)",
    )
    parser.add_argument("--arm", choices=["off", "on"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.arm:  # one arm, in its own process (the runner owns signal handlers, so no threads)
        os.environ["KATIB_SUITE_CACHE"] = str(args.workdir / "cache")
        print(json.dumps(run_arm(args.workdir, f"es-{args.arm}", args, args.arm == "on")))
        return 0

    with tempfile.TemporaryDirectory(prefix="katib-bench-es-") as tmp:
        work = Path(tmp)
        args.workdir = work
        # One cache for both arms, warmed first: the tokenizer and tokenized dataset are built once,
        # so neither arm pays for it inside its trial-seconds.
        env = {**os.environ, "KATIB_SUITE_CACHE": str(work / "cache"), "OMP_NUM_THREADS": str(args.threads)}
        warm = [sys.executable, "-m", "trainer.train", *trainer_args(args), "--max_steps=1", "--eval_steps=1"]
        warm += ["--learning_rate=1e-4", "--global_batch_size=16", f"--output_dir={work / 'warmup'}"]
        subprocess.run(
            warm, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        results = {}
        if args.sequential:
            for arm in ("off", "on"):
                done = subprocess.run(_arm_command(args, arm), capture_output=True, text=True, check=True)
                results[arm] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            procs = {
                arm: subprocess.Popen(_arm_command(args, arm), stdout=subprocess.PIPE, text=True)
                for arm in ("off", "on")
            }
            for arm, proc in procs.items():
                out, _ = proc.communicate()
                if proc.returncode:
                    print(f"arm {arm} failed with exit code {proc.returncode}", file=sys.stderr)
                    return 1
                results[arm] = json.loads(out.strip().splitlines()[-1])

    off, on = results["off"], results["on"]
    saved = 100 * (1 - on["trial_seconds"] / off["trial_seconds"])
    delta = 100 * (off["best"] - on["best"])
    print(
        json.dumps(
            {
                "trials": args.trials,
                "trial_seconds_without": round(off["trial_seconds"], 1),
                "trial_seconds_with": round(on["trial_seconds"], 1),
                "saved_pct": round(saved, 1),
                "best_without": round(off["best"], 4),
                "best_with": round(on["best"], 4),
                "delta_points": round(delta, 2),
                "early_stopped": on["early_stopped"],
                "conditions_without": off["conditions"],
                "conditions_with": on["conditions"],
                "wall_s": round(
                    max(off["wall_s"], on["wall_s"]) if not args.sequential else off["wall_s"] + on["wall_s"],
                    1,
                ),
                "arms": "sequential" if args.sequential else "side by side",
                "settings": {
                    "max_steps": args.max_steps,
                    "eval_steps": args.eval_steps,
                    "lr": [args.lr_min, args.lr_max],
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
