"""What the local backend costs per trial over running the same trial commands by hand.

    python bench/local_overhead.py                 # 5 trials, 2 processes each
    python bench/local_overhead.py --trials 10 --nproc 2 --steps 40

N short trials (a real torchrun'd DDP job: gloo process group, a few all-reduced SGD steps, Katib metric
lines from rank 0) run twice in the same process, one at a time each:

1. ``direct``: the N rendered trial commands run with torchrun in a plain loop, with the environment the
   Training Operator gives a Master pod (PET_*, MASTER_ADDR/PORT);
2. ``backend``: the same Experiment through ``katib experiment``'s local backend (Optuna suggestion,
   SQLite storage, process supervision, log capture, metric parsing), parallelTrialCount 1.

The direct loop runs the backend's own trials' parameter assignments, so both do identical work. Prints
JSON; the target is overhead <= max(5 %, 1 s) per trial. Timings on a shared machine are noisy.

The script is also the trial program: ``torchrun bench/local_overhead.py --trial --lr=0.01``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# ---------------------------------------------------------------- the trial program (under torchrun)


def trial_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trial", action="store_true")
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=5)
    args = parser.parse_args(argv)

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        rank = dist.get_rank()
        torch.manual_seed(0)
        model = DistributedDataParallel(torch.nn.Linear(16, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
        generator = torch.Generator().manual_seed(rank)
        target = torch.arange(16, dtype=torch.float32) / 16
        for step in range(1, args.steps + 1):
            x = torch.randn(64, 16, generator=generator)
            loss = torch.nn.functional.mse_loss(model(x).squeeze(1), x @ target)
            optimizer.zero_grad()
            loss.backward()  # DDP all-reduces the gradients across ranks here
            optimizer.step()
            if step % args.eval_every == 0:
                value = loss.detach().clone()
                dist.all_reduce(value)
                if rank == 0:
                    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    print(
                        f"{stamp} step={step} eval_loss={value.item() / dist.get_world_size():.6f}",
                        flush=True,
                    )
    finally:
        dist.destroy_process_group()
    return 0


# ---------------------------------------------------------------- the benchmark


def experiment_yaml(name: str, trials: int, nproc: int, steps: int, seed: int) -> str:
    from experiments.spec import dump_yaml  # quotes "1e-4": kubectl (and our loader) read it as Katib does

    command = [
        "torchrun",
        str(REPO / "bench" / "local_overhead.py"),
        "--trial",
        "--lr=${trialParameters.lr}",
        f"--steps={steps}",
    ]
    pod = {
        "spec": {"containers": [{"name": "pytorch", "image": "katib-suite/bench:local", "command": command}]}
    }
    document = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "eval_loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": str(seed)}],
            },
            "parallelTrialCount": 1,
            "maxTrialCount": trials,
            "maxFailedTrialCount": trials,
            "parameters": [
                {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.001", "max": "0.1"}},
            ],
            "trialTemplate": {
                "primaryContainerName": "pytorch",
                "trialParameters": [{"name": "lr", "reference": "lr", "description": "learning rate"}],
                "trialSpec": {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "spec": {
                        "nprocPerNode": str(nproc),
                        "pytorchReplicaSpecs": {
                            "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": pod}
                        },
                    },
                },
            },
        },
    }
    return dump_yaml(document)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def master_command(experiment, parameters: dict[str, str], trial_name: str) -> list[str]:
    """The Master container's argv after Katib's substitution of this trial's assignments."""
    from experiments.spec import render_trial

    rendered = render_trial(experiment, parameters, trial_name)
    container = rendered["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    return [*container["command"], *container.get("args", [])]


def run_direct(command: list[str], nproc: int, log: Path) -> float:
    """One trial as a person would run it: torchrun with the Master pod's environment, output to a file."""
    port = str(_free_port())
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONUNBUFFERED": "1",
        "MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": port,
        "PET_MASTER_PORT": port,
        "PET_NNODES": "1",
        "PET_NPROC_PER_NODE": str(nproc),
        "PET_NODE_RANK": "0",
        "RANK": "0",
        "WORLD_SIZE": str(nproc),
    }
    start = time.perf_counter()
    with log.open("wb") as out:
        subprocess.run(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True
        )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="N trials in each arm (default 5)")
    parser.add_argument("--nproc", type=int, default=2, help="processes per trial (nprocPerNode, default 2)")
    parser.add_argument("--steps", type=int, default=20, help="SGD steps per trial (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="random_state of the random sampler")
    args = parser.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from experiments.backends import get_backend
    from experiments.spec import load_experiment

    with tempfile.TemporaryDirectory(prefix="katib-bench-") as tmp:
        work = Path(tmp)
        spec_path = work / "overhead.yaml"
        spec_path.write_text(experiment_yaml("overhead", args.trials, args.nproc, args.steps, args.seed))
        experiment = load_experiment(spec_path)

        # Warm the page cache (torch import) so neither arm pays for the first cold start.
        run_direct(master_command(experiment, {"lr": "0.01"}, "warmup"), args.nproc, work / "warmup.log")

        backend = get_backend("local", storage=f"sqlite:///{work / 'bench.db'}", workdir=work)
        start = time.perf_counter()
        handle = backend.submit(experiment)
        status = handle.wait()
        backend_s = time.perf_counter() - start
        trials = list(status.trials)
        if len(trials) != args.trials or any(t.condition != "Succeeded" for t in trials):
            states = [(t.name, t.condition, t.reason) for t in trials]
            print(f"backend arm did not run {args.trials} successful trials: {states}", file=sys.stderr)
            return 1

        direct_s = 0.0
        for trial in trials:
            command = master_command(experiment, dict(trial.parameters), trial.name)
            direct_s += run_direct(command, args.nproc, work / f"{trial.name}.direct.log")

    overhead = (backend_s - direct_s) / args.trials
    per_trial = direct_s / args.trials
    allowed = max(0.05 * per_trial, 1.0)
    print(
        json.dumps(
            {
                "n_trials": args.trials,
                "nproc_per_trial": args.nproc,
                "direct_s": round(direct_s, 2),
                "backend_s": round(backend_s, 2),
                "direct_s_per_trial": round(per_trial, 2),
                "overhead_s_per_trial": round(overhead, 3),
                "overhead_pct": round(100 * (backend_s - direct_s) / direct_s, 2),
                "target": "overhead per trial <= max(5% of a trial, 1 s)",
                "allowed_s_per_trial": round(allowed, 3),
                "met": overhead <= allowed,
                "machine": f"{os.cpu_count()} CPUs, shared with other work: timings are noisy",
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    if "--trial" in sys.argv[1:]:
        sys.exit(trial_main(sys.argv[1:]))
    sys.exit(main())
