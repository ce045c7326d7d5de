"""Wall time of the minimal 2-process trial against the floor of ``torchrun`` itself, in the same run.

The minimal trial is the quickstart's trainer flags (read from ``experiments/quickstart.yaml``) with
``--max_steps=1 --max_eval_samples=32``, run as ``torchrun --standalone --nproc_per_node=2 -m trainer.train``.
The floor is ``torchrun`` launching two processes that only ``import torch`` and join a gloo group: no
trainer can start faster. One untimed trial first warms the tokenizer and tokenized-dataset caches; then
the variants run alternately (the machine is shared, so alternating spreads any disturbance over all of
them) and each reports the median of ``--repeats`` wall times measured from outside the processes.

``trial_warm`` is the same trial with a warm trainer serving it (``python -m trainer.warm``, started
once before the timed runs, as the local backend starts one per experiment): each of the two processes
hands its work to the server, which forks a child that has torch, transformers and datasets imported.
The server's own start-up (``warm_server_ready_seconds``) is paid once per experiment, not per trial.

``trial_image`` is the same trial with every installed distribution outside ``.[trainer]``'s dependency
closure (read from pyproject.toml) made impossible to import, as in the trial image, which installs that
extra alone: in the development venv scikit-learn's scipy, for one, is there and transformers imports it
at start-up when it is.

``--compare DIR`` adds a variant whose ``trainer`` package is the one under DIR (e.g. a copy of the
code before a change), so a before/after pair is measured in the same run. Prints JSON.

    python bench/trial_startup.py --repeats 3
    python bench/trial_startup.py --repeats 3 --compare /tmp/baseline   # /tmp/baseline/trainer/...

Figures on a quiet 2-core machine are in the README (trial start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from trainer.warm import WARM_SOCKET_ENV  # noqa: E402  (stdlib only)

QUICKSTART = REPO_ROOT / "experiments" / "quickstart.yaml"
MINIMAL_FLAGS = ["--max_steps=1", "--max_eval_samples=32"]
TARGET_SECONDS = 4.0
# Values for the quickstart's ${trialParameters.*} placeholders (any feasible point does).
TRIAL_PARAMETERS = {"learningRate": "3e-4", "batchSize": "32", "trialName": "startup-bench"}

FLOOR_SCRIPT = """\
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
dist.barrier()
dist.destroy_process_group()
"""


def quickstart_flags(path: Path = QUICKSTART) -> list[str]:
    """The trainer flags of the quickstart's Master replica, placeholders filled, --output_dir dropped."""
    import yaml

    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    template = documents[0]["spec"]["trialTemplate"]["trialSpec"]
    command = template["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
        "command"
    ]
    flags = command[command.index("trainer.train") + 1 :]
    filled = []
    for flag in flags:
        for name, value in TRIAL_PARAMETERS.items():
            flag = flag.replace(f"${{trialParameters.{name}}}", value)
        if not flag.startswith("--output_dir"):
            filled.append(flag)
    return filled


def trainer_closure(pyproject: Path = REPO_ROOT / "pyproject.toml") -> set[str]:
    """Canonical names of the installed distributions ``pip install .[trainer]`` would bring."""
    from importlib import metadata

    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    roots = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["trainer"]
    todo = [Requirement(r) for r in roots]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        extras = [{"extra": e} for e in requirement.extras] or [{"extra": ""}]
        for text in dist.requires or []:
            child = Requirement(text)
            if child.marker is None or any(child.marker.evaluate(env) for env in extras):
                todo.append(child)
    return seen


def trial_image_blocker(directory: Path) -> list[str]:
    """Write a sitecustomize.py into ``directory`` that hides every top-level module no distribution of
    the trainer's closure provides; returns those module names."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    closure = trainer_closure() | {"katib-suite"}
    hidden = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if module.isidentifier() and not any(canonicalize_name(d) in closure for d in dists)
    )
    # None in sys.modules: `import x` fails and importlib.util.find_spec("x") is None ("not installed").
    (directory / "sitecustomize.py").write_text(
        f"import sys\n\nfor name in {hidden!r}:\n    sys.modules[name] = None\n"
    )
    return hidden


def _torchrun(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]


def _env(pythonpath: Path | str, cache_dir: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")
    }
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",  # as the quickstart's replicas set it
        KATIB_SUITE_CACHE=str(cache_dir),
        PYTHONPATH=str(pythonpath),
    )
    return env


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; a failing run is an error, not a figure.

    The CPU seconds (user + system of torchrun and every process it waited for) hardly change with the load
    other work puts on the machine; the wall time does: both are reported.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} ... exited {done.returncode}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def start_warm_server(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, float]:
    """``python -m trainer.warm`` on ``work/warm.sock``; (the server, seconds until it was ready)."""
    socket, log = work / "warm.sock", work / "warm.log"
    started = time.perf_counter()
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "trainer.warm", f"--socket={socket}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    while not socket.exists():
        if server.poll() is not None:
            raise SystemExit(f"the warm trainer exited {server.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    return server, time.perf_counter() - started


def run_alternately(variants: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, variant in variants.items():
            wall, cpu = timed(*variant)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return walls, cpus


def measure(repeats: int, compare: Path | None, nproc: int = 2) -> dict:
    flags = quickstart_flags()
    with tempfile.TemporaryDirectory(prefix="katib-suite-startup-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        floor_script = work / "floor.py"
        floor_script.write_text(FLOOR_SCRIPT)
        variants: dict[str, tuple[list[str], dict[str, str], Path]] = {
            "torchrun_floor": ([*_torchrun(nproc), str(floor_script)], _env(REPO_ROOT, cache), work),
        }
        trial = [*_torchrun(nproc), "-m", "trainer.train", *flags, *MINIMAL_FLAGS]
        roots = {"trial": REPO_ROOT, **({"trial_compare": compare.resolve()} if compare else {})}
        for name, root in roots.items():
            out = work / f"out-{name}"
            # cwd is the trainer's root, so `-m trainer.train` finds that copy and nothing else.
            variants[name] = ([*trial, f"--output_dir={out}"], _env(root, cache), root)
        blocker = work / "trial-image"
        blocker.mkdir()
        hidden = trial_image_blocker(blocker)
        roots["trial_image"] = REPO_ROOT
        variants["trial_image"] = (
            [*trial, f"--output_dir={work / 'out-trial_image'}"],
            _env(f"{blocker}{os.pathsep}{REPO_ROOT}", cache),
            REPO_ROOT,
        )
        server, ready_seconds = start_warm_server(work, _env(REPO_ROOT, cache))
        roots["trial_warm"] = REPO_ROOT
        variants["trial_warm"] = (
            [*trial, f"--output_dir={work / 'out-trial_warm'}"],
            {**_env(REPO_ROOT, cache), WARM_SOCKET_ENV: str(work / "warm.sock")},
            REPO_ROOT,
        )
        try:
            for name in roots:  # untimed: fills the caches (tokenizer, tokenized data, .pyc)
                timed(*variants[name])
            walls, cpus = run_alternately(variants, repeats)
        finally:
            server.terminate()
            server.wait(timeout=30)
        trial_json = json.loads((work / "out-trial" / "trial.json").read_text())
        warm_json = json.loads((work / "out-trial_warm" / "trial.json").read_text())
    if not warm_json["timings"]["warm_start"]:
        raise SystemExit("the trial_warm variant did not run in the warm trainer: see its stderr")
    medians = {name: statistics.median(values) for name, values in walls.items()}
    result = {
        "trial_wall_seconds": round(medians["trial"], 2),
        "torchrun_floor_seconds": round(medians["torchrun_floor"], 2),
        "trial_over_floor_seconds": round(medians["trial"] - medians["torchrun_floor"], 2),
        "trial_warm_wall_seconds": round(medians["trial_warm"], 2),
        "trial_warm_over_floor_seconds": round(medians["trial_warm"] - medians["torchrun_floor"], 2),
        "warm_server_ready_seconds": round(ready_seconds, 2),
        "target_trial_wall_seconds": TARGET_SECONDS,
        "target_met_by": sorted(
            n for n in ("trial", "trial_warm", "trial_image") if medians[n] <= TARGET_SECONDS
        ),
        "runs_seconds": {name: [round(v, 2) for v in values] for name, values in walls.items()},
        "cpu_seconds_median": {name: round(statistics.median(v), 2) for name, v in cpus.items()},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "trial_image_wall_seconds": round(medians["trial_image"], 2),
        "trial_image_over_floor_seconds": round(medians["trial_image"] - medians["torchrun_floor"], 2),
        "trial_image_hidden_modules": len(hidden),
        "trial_timings": trial_json["timings"],
        "trial_warm_timings": warm_json["timings"],
        "same_metrics_cold_and_warm": trial_json["metrics"] == warm_json["metrics"],
        "repeats": repeats,
        "nproc_per_node": nproc,
        "cpu_count": os.cpu_count(),
        "flags": [*flags, *MINIMAL_FLAGS],
    }
    if compare:
        result["compare_dir"] = str(compare)
        result["trial_compare_wall_seconds"] = round(medians["trial_compare"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each variant (median reported)")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="a directory holding another trainer/ package to time alongside",
    )
    options = parser.parse_args()
    if options.repeats < 1:
        parser.error(f"--repeats must be >= 1; got: {options.repeats}")
    if options.compare and not (options.compare / "trainer" / "train.py").is_file():
        parser.error(
            f"--compare {options.compare} has no trainer/train.py; pass the directory above trainer/"
        )
    print(json.dumps(measure(options.repeats, options.compare), indent=2))


if __name__ == "__main__":
    main()
