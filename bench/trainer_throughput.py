"""Training throughput of the trainer (HF Trainer as trials build it) vs a plain PyTorch loop.

Same tiny RoBERTa, same synthetic data and tokenization, same batch, same optimizer settings (AdamW,
linear warmup/decay, grad-norm clip 1.0), same thread count, one process. Each side runs ``--repeats``
times, interleaved, after a few untimed warm-up steps; the best run of each counts (the machine is shared,
so the best run is the least disturbed one). Evaluation is not in the timed window. Prints JSON.

    python bench/trainer_throughput.py --threads 2 --batch 32 --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _prepare(cache_dir: str, max_seq_length: int):
    from trainer import data, modeling

    raw = data.load_raw("synthetic", cache_dir, None, None)
    tokenizer = modeling.load_tokenizer("tiny", cache_dir, raw.fingerprint, raw.train["text"])
    train = data.tokenize(raw.train, tokenizer, max_seq_length, cache_dir, raw.fingerprint + "-train")
    return tokenizer, train


def _trainer_run(tokenizer, train, batch: int, steps: int, warmup: int, seed: int) -> float:
    from transformers import TrainerCallback

    from trainer import distributed, modeling, performance
    from trainer.args import TrainArguments
    from trainer.train import build_trainer

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.times: dict[int, float] = {}

        def on_step_end(self, args, state, control, **kwargs):
            self.times[state.global_step] = time.perf_counter()

    args = TrainArguments(
        output_dir="unused",
        learning_rate=1e-3,
        global_batch_size=batch,
        per_device_batch_size=batch,
        seed=seed,
    )
    env = distributed.DistEnv(rank=0, local_rank=0, world_size=1, device_type="cpu")
    perf = performance.resolve(args, performance.probe("cpu"))  # as a CPU trial resolves its speed flags
    model = modeling.load_model("tiny", "", tokenizer, seed)
    clock = StepClock()
    with tempfile.TemporaryDirectory() as scratch:
        total = warmup + steps
        # eval_every beyond the run: no evaluation inside the timed window.
        trainer = build_trainer(
            args, env, model, tokenizer, train, train, batch, 1, total, total + 1, scratch, [clock], perf
        )
        trainer.train()
    return steps * batch / (clock.times[total] - clock.times[warmup])


def _plain_run(tokenizer, train, batch: int, steps: int, warmup: int, seed: int) -> float:
    import torch
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

    from trainer import modeling

    model = modeling.load_model("tiny", "", tokenizer, seed)
    model.train()
    total = warmup + steps
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        train,
        batch_size=batch,
        shuffle=True,
        generator=generator,
        collate_fn=DataCollatorWithPadding(tokenizer),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    step, started = 0, None
    while step < total:
        for inputs in loader:
            loss = model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == warmup:
                started = time.perf_counter()
            if step == total:
                break
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed optimizer steps first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--cache_dir", default=None, help="default: a temporary directory")
    options = parser.parse_args()

    import datasets
    import torch
    import transformers

    torch.set_num_threads(options.threads)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, train = _prepare(options.cache_dir or tmp, options.max_seq_length)
        runs: dict[str, list[float]] = {"trainer": [], "plain": []}
        for repeat in range(options.repeats):
            for name, run in (("trainer", _trainer_run), ("plain", _plain_run)):
                runs[name].append(
                    run(tokenizer, train, options.batch, options.steps, options.warmup, 42 + repeat)
                )
    best = {name: max(values) for name, values in runs.items()}
    print(
        json.dumps(
            {
                "trainer_samples_per_s": round(best["trainer"], 1),
                "plain_loop_samples_per_s": round(best["plain"], 1),
                "ratio": round(best["trainer"] / best["plain"], 3),
                "target_ratio": 0.9,
                "runs": {name: [round(v, 1) for v in values] for name, values in runs.items()},
                "threads": options.threads,
                "batch": options.batch,
                "timed_steps": options.steps,
                "model": "tiny RoBERTa (trainer.modeling.TINY_CONFIG)",
                "data": "synthetic",
                "torch": torch.__version__,
                "transformers": transformers.__version__,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
