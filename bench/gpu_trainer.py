"""RoBERTa-large training throughput and MFU: the trainer's code path vs a plain PyTorch loop, same run.

The model is built from RoBERTa-large's config (random weights: throughput does not depend on them, and
nothing is downloaded); the data are synthetic rows of exactly ``--max_seq_length`` tokens. Both paths train
the same model with the same batch, precision (the trainer's ``auto``: bf16 where the GPU has it), fused
AdamW, linear schedule and grad-norm clip; the trainer path is ``trainer.train.build_trainer`` with the
settings ``trainer.performance`` resolves, as a trial runs it. The same run times a large matrix product
to measure the device's dense matmul rate; MFU is model FLOPs per second (6 x parameters x tokens/s, plus
attention's 12 x layers x hidden x sequence per token; also the stricter count without the embedding
tables) over that rate and over the datasheet's. Prints JSON. ``--model tiny`` runs the same code on CPU in
seconds (tests/bench/test_gpu_trainer.py does), and nothing in it needs the ``datasets`` package.

    python bench/gpu_trainer.py                          # on a GPU: RoBERTa-large, batch 32, sequence 256
    python bench/gpu_trainer.py --model tiny --batch 8 --max_seq_length 32 --steps 3 --warmup 1
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# FacebookAI/roberta-large's config.json (architecture only).
ROBERTA_LARGE = dict(
    vocab_size=50265,
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    max_position_embeddings=514,
    type_vocab_size=1,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)
# NVIDIA H100/H200 SXM dense BF16 tensor-core peak (no sparsity).
DATASHEET_BF16_TFLOPS = 989.5
SEED = 42
LEARNING_RATE = 1e-5


def model_config(name: str) -> dict[str, Any]:
    from trainer.modeling import TINY_CONFIG

    if name == "large":
        return dict(ROBERTA_LARGE)
    return dict(TINY_CONFIG, vocab_size=2000, pad_token_id=1, bos_token_id=0, eos_token_id=2)


def build_model(config: dict[str, Any], attn_implementation: str) -> Any:
    import transformers
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from trainer.labels import ID2LABEL, LABEL2ID

    transformers.set_seed(SEED)
    cfg = AutoConfig.for_model(
        "roberta", num_labels=len(ID2LABEL), id2label=ID2LABEL, label2id=LABEL2ID, **config
    )
    return AutoModelForSequenceClassification.from_config(cfg, attn_implementation=attn_implementation)


def synthetic_rows(n_rows: int, seq: int, vocab: int) -> list[dict[str, list[int]]]:
    """Rows of exactly ``seq`` tokens (<s> ... </s>), so both paths process the same token count."""
    import random

    rng = random.Random(SEED)
    rows = []
    for _ in range(n_rows):
        body = [rng.randrange(5, vocab) for _ in range(seq - 2)]
        rows.append({"input_ids": [0, *body, 2], "attention_mask": [1] * seq, "labels": rng.randrange(10)})
    return rows


def bench_tokenizer(cache_dir: str) -> Any:
    """The project's tiny tokenizer (ids < 2000; pad id 1 as in RoBERTa): the collator needs one to pad."""
    from trainer import modeling, synthetic

    texts = synthetic.generate_rows(400, seed=SEED)["best_answer"]
    return modeling.load_tokenizer("tiny", cache_dir, "gpu-bench", texts)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # the process so far, Linux KiB


def matmul_tflops(device: str, dtype_name: str, size: int, repeats: int, rounds: int = 3) -> float:
    """Dense matmul rate: the best of ``rounds`` rounds of ``repeats`` products of two size x size matrices,
    after an untimed one. The best round is the one least disturbed (other processes, clock ramp-up)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype_name]
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.matmul(a, b)
    _sync(device)
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        _sync(device)
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12)
    del a, b
    return best


def trainer_path(model: Any, tokenizer: Any, rows: list, options: argparse.Namespace, device: str, perf: Any):
    """(samples/s, peak bytes) through the trainer's own Trainer, as a trial builds it."""
    from transformers import TrainerCallback

    from trainer import distributed
    from trainer.args import TrainArguments
    from trainer.train import build_trainer

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.times: dict[int, float] = {}

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (options.warmup, options.warmup + options.steps):
                _sync(device)
                self.times[state.global_step] = time.perf_counter()

    total = options.warmup + options.steps
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainArguments(
            output_dir=scratch,
            learning_rate=LEARNING_RATE,
            global_batch_size=options.batch,
            per_device_batch_size=options.batch,
            precision=perf.precision,
            seed=SEED,
        )
        env = distributed.DistEnv(rank=0, local_rank=0, world_size=1, device_type=device)
        clock = StepClock()
        _reset_peak(device)
        # eval_every beyond the run: no evaluation inside the timed window.
        trainer = build_trainer(
            args, env, model, tokenizer, rows, rows[: options.batch], options.batch, 1, total, total + 1,
            scratch, [clock], perf,
        )  # fmt: skip
        trainer.train()
        peak = _peak_bytes(device)
    elapsed = clock.times[total] - clock.times[options.warmup]
    return options.steps * options.batch / elapsed, peak


def plain_path(model: Any, tokenizer: Any, rows: list, options: argparse.Namespace, device: str, perf: Any):
    """(samples/s, peak bytes) of a hand-written loop: autocast, fused AdamW, clip 1.0, linear schedule."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(perf.precision)
    model.to(device).train()
    if perf.torch_compile:
        model = torch.compile(model)
    total = options.warmup + options.steps
    loader = DataLoader(
        rows,
        batch_size=options.batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(SEED),
        collate_fn=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=perf.pad_to_multiple_of),
        num_workers=perf.dataloader_num_workers,
        pin_memory=perf.dataloader_pin_memory,
        drop_last=True,
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=LEARNING_RATE, weight_decay=0.1, fused=perf.optim == "adamw_torch_fused"
    )
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    scaler = torch.amp.GradScaler(device, enabled=perf.precision == "fp16")
    _reset_peak(device)
    step, started = 0, time.perf_counter()
    while step < total:
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            precision = torch.autocast(device_type=device, dtype=dtype) if dtype else contextlib.nullcontext()
            with precision:
                loss = model(**batch).loss
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == options.warmup:
                _sync(device)
                started = time.perf_counter()
            if step == total:
                break
    _sync(device)
    return options.steps * options.batch / (time.perf_counter() - started), _peak_bytes(device)


def flops_per_token(config: dict[str, Any], model: Any, seq: int) -> dict[str, int]:
    """Training FLOPs per token: 6 x parameters (forward + backward) plus attention's score and value
    products, 12 x layers x hidden x sequence (PaLM, appendix B). ``non_embedding`` leaves out the embedding
    tables, which are looked up, not multiplied: the stricter count."""
    total = sum(p.numel() for p in model.parameters())
    embeddings = sum(p.numel() for n, p in model.named_parameters() if ".embeddings." in f".{n}")
    attention = 12 * config["num_hidden_layers"] * config["hidden_size"] * seq
    return {
        "parameters": total,
        "non_embedding_parameters": total - embeddings,
        "per_token": 6 * total + attention,
        "per_token_non_embedding": 6 * (total - embeddings) + attention,
    }


def _sig(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant figures: CPU and GPU figures differ by orders of magnitude."""
    return float(f"{value:.{digits}g}")


def measure(options: argparse.Namespace) -> dict[str, Any]:
    import torch
    import transformers

    from trainer import performance
    from trainer.args import TrainArguments

    device = "cuda" if torch.cuda.is_available() and not options.cpu else "cpu"
    request = TrainArguments(
        output_dir="unused",
        precision=options.precision,
        torch_compile=options.torch_compile,
        global_batch_size=options.batch,
        per_device_batch_size=options.batch,
    )
    perf = performance.resolve(request, performance.probe(device))
    config = model_config(options.model)
    n_rows = options.batch * (options.warmup + options.steps + 1)
    rows = synthetic_rows(n_rows, options.max_seq_length, min(config["vocab_size"], 2000))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cache:
        tokenizer = bench_tokenizer(options.cache_dir or cache)
        matmul_size = options.matmul_size or (8192 if device == "cuda" else 1024)
        repeats = options.matmul_repeats or (50 if device == "cuda" else 5)
        matmul = matmul_tflops(device, perf.precision, matmul_size, repeats)
        for name, path in (("trainer", trainer_path), ("plain", plain_path)):
            model = build_model(config, perf.attn_implementation)
            results[name] = path(model, tokenizer, rows, options, device, perf)
            del model
            gc.collect()  # the first path's model and optimizer state must not count in the second's peak
        flops = flops_per_token(config, build_model(config, "sdpa"), options.max_seq_length)
    tokens = {name: sps * options.max_seq_length for name, (sps, _) in results.items()}
    model_tflops = {name: t * flops["per_token"] / 1e12 for name, t in tokens.items()}
    strict_tflops = {name: t * flops["per_token_non_embedding"] / 1e12 for name, t in tokens.items()}
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "model": "roberta-large (random weights)" if options.model == "large" else "tiny roberta",
        "parameters": flops["parameters"],
        "non_embedding_parameters": flops["non_embedding_parameters"],
        "per_device_batch": options.batch,
        "max_seq_length": options.max_seq_length,
        "timed_steps": options.steps,
        "performance": perf.record(),
        "samples_per_s": {name: _sig(sps) for name, (sps, _) in results.items()},
        "tokens_per_s": {name: _sig(t) for name, t in tokens.items()},
        "trainer_vs_plain": _sig(results["trainer"][0] / results["plain"][0]),
        "peak_memory_gib": {name: _sig(peak / 2**30) for name, (_, peak) in results.items()},
        "peak_memory_source": "torch.cuda.max_memory_allocated" if device == "cuda" else "process max RSS",
        "model_flops_per_token": flops["per_token"],
        "model_flops_per_token_non_embedding": flops["per_token_non_embedding"],
        "model_tflops": {name: _sig(v) for name, v in model_tflops.items()},
        "matmul": {"size": matmul_size, "dtype": perf.precision, "tflops": _sig(matmul)},
        "mfu_vs_matmul": {name: _sig(v / matmul) for name, v in model_tflops.items()},
        "mfu_vs_matmul_non_embedding": {name: _sig(v / matmul) for name, v in strict_tflops.items()},
        "datasheet_bf16_tflops": DATASHEET_BF16_TFLOPS,
        "mfu_vs_datasheet": {name: _sig(v / DATASHEET_BF16_TFLOPS) for name, v in model_tflops.items()},
        "targets": {"mfu_vs_matmul": 0.45, "trainer_vs_plain": 0.95},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["large", "tiny"], default="large")
    parser.add_argument("--batch", type=int, default=32, help="per-device batch (one process)")
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per path")
    parser.add_argument("--warmup", type=int, default=5, help="untimed optimizer steps first")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], default="auto")
    parser.add_argument("--torch_compile", action="store_true")
    parser.add_argument("--matmul_size", type=int, default=None, help="default: 8192 on GPU, 1024 on CPU")
    parser.add_argument(
        "--matmul_repeats", type=int, default=None, help="per round; default: 50 on GPU, 5 on CPU"
    )
    parser.add_argument("--cpu", action="store_true", help="run on CPU even where a GPU is present")
    parser.add_argument("--cache_dir", default=None, help="tokenizer cache (default: a temporary directory)")
    options = parser.parse_args(argv)
    for name in ("batch", "steps", "warmup", "matmul_size", "matmul_repeats"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            parser.error(f"--{name} must be >= 1; got: {getattr(options, name)}")
    if not 8 <= options.max_seq_length <= 512:
        parser.error(f"--max_seq_length must be between 8 and 512; got: {options.max_seq_length}")
    return options


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    import transformers

    transformers.logging.set_verbosity_error()
    print(json.dumps(measure(options), indent=2))


if __name__ == "__main__":
    main()
