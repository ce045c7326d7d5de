"""A fast stand-in for the trainer: prints Katib metric lines driven by its arguments.

Run as every replica of a local PyTorchJob: each replica records the environment it was given; only
rank 0 reports metrics (to stdout, or to a Katib File-collector file in TEXT or JSON).

    python standin_trial.py --values=0.5,0.6,0.7 --sleep=0.05 --metric=accuracy
    python standin_trial.py --score --lr=0.03 --units=2 --epochs=3   # values from the searched parameters
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ENV_KEYS = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
    "RANK",
    "PET_NODE_RANK",
    "PET_NNODES",
    "PET_NPROC_PER_NODE",
    "WORLD_SIZE",
    "PYTHONUNBUFFERED",
    "KATIB_TRIAL_NAME",
    "STANDIN_FROM_TEMPLATE",
)


def stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claim(folder: Path) -> int:
    """The next unclaimed index: the n-th trial to start gets entry n (trials start one by one)."""
    folder.mkdir(parents=True, exist_ok=True)
    index = 0
    while True:
        try:
            os.close(os.open(folder / str(index), os.O_CREAT | os.O_EXCL))
            return index
        except FileExistsError:
            index += 1


def apply_plan(args: argparse.Namespace) -> None:
    entries = args.plan.split(";")
    entry = entries[min(claim(Path(args.plan_dir)), len(entries) - 1)]
    values, *options = entry.split("|")
    args.values = "" if values == "-" else values
    for option in options:
        key, value = option.split("=", 1)
        if key == "exit":
            args.exit_code = int(value)
        elif key == "sleep":
            args.sleep = float(value)


def score(args: argparse.Namespace) -> str:
    """A toy objective of the searched parameters, one value per epoch: ``quality * (1 - 0.5**epoch)``, where
    quality peaks at lr=0.042, units=2, tag=b. More budget (epochs) gives a higher final value, as training does."""
    quality = 1.0 - 5 * abs(float(args.lr) - 0.042) - 0.02 * abs(int(args.units or 2) - 2)
    quality += 0.01 if args.tag == "b" else 0.0
    return ",".join(f"{quality * (1 - 0.5**epoch):.6f}" for epoch in range(1, args.epochs + 1))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", default=None, help="a searched parameter (recorded, not used)")
    parser.add_argument("--tag", default=None, help="a searched categorical parameter (recorded, not used)")
    parser.add_argument("--units", default=None, help="a searched int parameter (used by --score)")
    parser.add_argument("--epochs", type=int, default=1, help="how many values --score reports")
    parser.add_argument(
        "--score", action="store_true", help="report score(lr, units, tag) instead of --values"
    )
    parser.add_argument("--values", default="", help="objective values, one per report")
    parser.add_argument("--metric", default="accuracy")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds before each report")
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--file", default=None, help="write metrics to this file instead of stdout")
    parser.add_argument("--format", default="TEXT", choices=["TEXT", "JSON"])
    parser.add_argument("--record-dir", default=None, help="write <rank>.json: env, argv, pids, times")
    parser.add_argument("--child", action="store_true", help="spawn a long-sleeping child (a process tree)")
    parser.add_argument(
        "--plan",
        default=None,
        help="per-trial behaviour, ';'-separated, claimed in trial order: VALUES[|exit=N][|sleep=S]; '-' = no values",
    )
    parser.add_argument("--plan-dir", default=None, help="where trials claim their plan entry")
    args = parser.parse_args()

    rank = int(os.environ.get("RANK", "0"))
    if args.plan and rank == 0:
        apply_plan(args)
    if args.score:
        args.values = score(args)
    started = time.time()
    record = {"env": {k: os.environ.get(k) for k in ENV_KEYS}, "argv": sys.argv[1:], "pid": os.getpid()}
    if args.child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        record["child_pid"] = child.pid
    if args.record_dir:
        folder = Path(args.record_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{os.environ.get('KATIB_TRIAL_NAME')}-{rank}.json").write_text(
            json.dumps(record | {"start": started})
        )

    values = [v for v in args.values.split(",") if v]
    sink = open(args.file, "a") if (args.file and rank == 0) else None
    for step, value in enumerate(values, start=1):
        time.sleep(args.sleep)
        if rank != 0:
            continue  # like the trainer: only global rank 0 reports
        if sink is not None and args.format == "JSON":
            sink.write(json.dumps({args.metric: value, "step": str(step), "timestamp": stamp()}) + "\n")
            sink.flush()
        elif sink is not None:
            sink.write(f"{stamp()} step={step} {args.metric}={value}\n")
            sink.flush()
        else:
            print(f"{stamp()} step={step} {args.metric}={value}", flush=True)
    if args.record_dir:
        path = Path(args.record_dir) / f"{os.environ.get('KATIB_TRIAL_NAME')}-{rank}.json"
        path.write_text(json.dumps(record | {"start": started, "end": time.time()}))
    if args.exit_code:
        print(f"standin: failing on purpose with exit code {args.exit_code}", file=sys.stderr, flush=True)
    return args.exit_code


if __name__ == "__main__":
    sys.exit(main())
