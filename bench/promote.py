"""promote-best's copy throughput against plain boto3 on the same moto S3 server (127.0.0.1). Prints JSON.

    python bench/promote.py                    # a 256 MiB weights file, 3 repetitions per arm
    python bench/promote.py --mb 64 --reps 5   # small files: fixed costs (verify, claim, card) weigh more

Arms, interleaved per repetition, each into a fresh prefix of one bucket:

1. ``promote_local_to_s3``: the whole ``promote()`` of a local trial (select through the ranking, verify:
   config + tokenizer load, SHA-256 of every file; claim v<N>; parallel multipart uploads with SHA-256
   checksums; size + checksum check of every object; model card; LATEST);
2. ``plain_upload_file``: ``boto3 client.upload_file`` of the same files, one after another, defaults;
3. ``promote_s3_to_s3``: ``promote()`` of the same checkpoint lying on S3 (server-side managed copies);
4. ``download_upload``: the naive S3 -> S3 path, ``download_file`` then ``upload_file`` of every file.

Targets: promote_local_to_s3 >= 0.9x plain_upload_file MB/s; promote_s3_to_s3 faster than download_upload.
The checkpoint is the trainer's tiny RoBERTa (real config + tokenizer) with model.safetensors replaced by
a larger random tensor (weights are copied and hashed, never loaded, so only their size matters).
A moto server is single-process Python: absolute MB/s say little, the ratios are the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_checkpoint(
    folder: Path, cache: Path, megabytes: int, experiment: str, trial: str, output_dir: str
) -> None:
    import torch
    from safetensors.torch import save_file

    from trainer import data, modeling

    raw = data.load_raw("synthetic", str(cache), 400, 50)
    tokenizer = modeling.load_tokenizer("tiny", str(cache), raw.fingerprint, raw.train["text"])
    model = modeling.load_model("tiny", str(cache), tokenizer, seed=1)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    weights = torch.randn(megabytes * 1024 * 1024 // 4, generator=torch.Generator().manual_seed(0))
    save_file({"weights": weights}, str(folder / "model.safetensors"))
    history = [{"step": 10, "eval_accuracy": 0.5}]
    trial_json = {
        "trial_name": trial,
        "experiment_name": experiment,
        "output_dir": output_dir,
        "dataset": {"name": "synthetic", "fingerprint": raw.fingerprint},
        "metrics": {"final": history[-1], "best": history[-1], "history": history},
        "files": sorted(p.name for p in folder.iterdir()),
    }
    (folder / "trial.json").write_text(json.dumps(trial_json))


def record(storage: str, workdir: Path, experiment: str, trials: dict[str, str]) -> None:
    """An experiment with one Succeeded trial per entry (name -> output_dir), through the local Store."""
    import optuna

    from experiments.backends._protocol import Observation
    from experiments.backends.local._store import Store, observations_to_json
    from experiments.spec import (
        Algorithm,
        Experiment,
        FeasibleSpace,
        Objective,
        Parameter,
        TrialParameter,
        TrialTemplate,
        to_dict,
    )  # fmt: skip

    spec = Experiment(
        name=experiment,
        objective=Objective(type="maximize", objective_metric_name="eval_accuracy"),
        algorithm=Algorithm("random"),
        parameters=(Parameter("lr", "double", FeasibleSpace(min="0.001", max="0.01")),),
        trial_template=TrialTemplate(
            trial_parameters=(TrialParameter("lr", "lr"),),
            trial_spec={"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [
                {"name": "training", "image": "x", "command": ["python", "--lr=${trialParameters.lr}"]}]}}}},
            primary_container_name="training",
        ),
        max_trial_count=len(trials),
    )  # fmt: skip
    store = Store(storage)
    study = store.create_study(experiment, "maximize", optuna.samplers.RandomSampler(seed=0))
    store.set_study_attrs(
        experiment, spec=to_dict(spec), backend="local", workdir=str(workdir), condition="Succeeded"
    )
    for name, output_dir in trials.items():
        trial = study.ask()
        store.set_trial_attrs(
            trial._trial_id, katib_trial=name, parameters={"lr": "0.005"}, output_dir=output_dir,
            observations=observations_to_json([Observation("eval_accuracy", "0.5")]), condition="Succeeded",
        )  # fmt: skip
        study.tell(trial, 0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mb",
        type=int,
        default=256,
        help="size of model.safetensors in MiB (default 256; RoBERTa-large: 1355)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per arm (default 3)")
    args = parser.parse_args(argv)

    os.environ.update(
        HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", HF_DATASETS_DISABLE_PROGRESS_BARS="1", AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
    )  # fmt: skip
    import boto3
    from moto.server import ThreadedMotoServer

    from serving.promote import promote
    from trainer import s3

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    bucket = "bench"
    try:
        with tempfile.TemporaryDirectory(prefix="promote-bench-") as tmp:
            work = Path(tmp)
            local = work / "runs" / "bench-local"
            s3_dir = f"s3://{bucket}/runs/bench-s3"
            build_checkpoint(local, work / "cache", args.mb, "bench", "bench-local", str(local))
            client = boto3.client("s3")
            client.create_bucket(Bucket=bucket)
            # The S3 trial: the same files, trial.json last (as the trainer uploads them).
            for path in sorted(local.iterdir()):
                if path.name != "trial.json":
                    client.upload_file(str(path), bucket, f"runs/bench-s3/{path.name}")
            s3_trial = json.loads((local / "trial.json").read_text())
            s3_trial.update(trial_name="bench-s3", experiment_name="bench-s3", output_dir=s3_dir)
            client.put_object(
                Bucket=bucket, Key="runs/bench-s3/trial.json", Body=json.dumps(s3_trial).encode()
            )
            storage = f"sqlite:///{work / 'katib.db'}"
            record(storage, work, "bench", {"bench-local": str(local)})
            record(storage, work, "bench-s3", {"bench-s3": s3_dir})
            files = sorted(local.iterdir())
            total = sum(p.stat().st_size for p in files)

            def promote_local(rep: int) -> None:
                result = promote("bench", f"s3://{bucket}/models/local-{rep}", storage=storage)
                assert result.created

            def plain(rep: int) -> None:
                for path in files:
                    client.upload_file(str(path), bucket, f"plain/{rep}/{path.name}")

            def promote_s3(rep: int) -> None:
                result = promote("bench-s3", f"s3://{bucket}/models/s3-{rep}", storage=storage)
                assert result.created

            def download_upload(rep: int) -> None:
                with tempfile.TemporaryDirectory(dir=work) as scratch:
                    for key in s3.list_keys(f"{s3_dir}/"):
                        target = Path(scratch) / key.rsplit("/", 1)[-1]
                        client.download_file(bucket, key, str(target))
                        client.upload_file(str(target), bucket, f"naive/{rep}/{target.name}")

            arms = {
                "promote_local_to_s3": promote_local,
                "plain_upload_file": plain,
                "promote_s3_to_s3": promote_s3,
                "download_upload": download_upload,
            }
            for arm in arms.values():  # warm-up: imports, first connections
                arm(-1)
            seconds: dict[str, list[float]] = {name: [] for name in arms}
            for rep in range(args.reps):
                for name, arm in arms.items():
                    start = time.perf_counter()
                    arm(rep)
                    seconds[name].append(time.perf_counter() - start)
    finally:
        server.stop()
    mib = total / 2**20
    median = {name: statistics.median(values) for name, values in seconds.items()}
    rate = {name: round(mib / value, 1) for name, value in median.items()}
    report = {
        "bytes": total,
        "files": len(files),
        "reps": args.reps,
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "mib_per_second": rate,
        "local_to_s3_vs_upload_file": round(rate["promote_local_to_s3"] / rate["plain_upload_file"], 3),
        "target_local_to_s3": 0.9,
        "s3_to_s3_vs_download_upload": round(rate["promote_s3_to_s3"] / rate["download_upload"], 3),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
