"""The Katib trial program: distributed RoBERTa fine-tuning for 10-topic classification.

Runbook::

    python -m trainer.train --model_name_or_path=tiny --dataset=synthetic --output_dir=/tmp/trial
    torchrun --standalone --nproc_per_node=2 -m trainer.train --model_name_or_path=tiny --dataset=synthetic \
        --learning_rate=3e-4 --global_batch_size=32 --output_dir=s3://bucket/exp/trial-1/
    # in a PyTorchJob (Training Operator sets PET_*): torchrun -m trainer.train --learning_rate=... ...

Flow: args -> distributed env -> data -> tokenizer/model -> train (HF Trainer, DDP over gloo/nccl) ->
evaluate -> save (rank 0) -> report. Rank 0 prints one Katib metric line per evaluation on stdout;
everything else (library logs, warnings) goes to stderr. Bad input: one line on stderr, exit code != 0.
"""

from __future__ import annotations

import atexit
import gc
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from trainer import distributed
from trainer.args import (
    HELP_DESCRIPTION,
    HELP_EXAMPLES,
    DataArguments,
    ModelArguments,
    TrainArguments,
    help_formatter,
    split_global_batch,
)
from trainer.errors import PeerRankFailed, TrainerError, TrainerInputError, TrainingDiverged
from trainer.performance import Performance

# Evaluations spread over a run when --eval_steps is not given; Katib's medianstop needs >= start_step (4).
DEFAULT_EVALUATIONS = 5
EVAL_BATCH_SIZE = 64


def parse_args(argv: list[str] | None) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, TrainArguments),
        prog="python -m trainer.train",
        description=HELP_DESCRIPTION,
        epilog=HELP_EXAMPLES,
        formatter_class=help_formatter(),
    )
    # Katib passes exact names; a typo such as --learning_rat must fail, not match --learning_rate by prefix.
    parser.allow_abbrev = False

    def one_line_error(message: str) -> None:  # argparse would print the usage block, then exit 2
        raise TrainerInputError(f"{message}; see `python -m trainer.train --help`")

    parser.error = one_line_error  # type: ignore[method-assign]
    try:
        return parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:  # HfArgumentParser's "Some specified arguments are not used"
        raise TrainerInputError(f"{error}; see `python -m trainer.train --help`") from None


def _quiet_libraries() -> None:
    # Only metric lines may reach stdout: Katib records every `name=value` on a line naming a metric.
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in ("katib-suite", "torch", "transformers", "datasets", "tokenizers", "accelerate"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _import_run_libraries() -> None:
    """Import everything a run uses, up front and with the cyclic GC paused.

    The imports (torch, transformers' modeling and Trainer, datasets) build millions of objects; the
    collector would scan them over and over while they load: pausing it saves ~1.5 s per process.
    """
    import datasets  # noqa: F401
    import torch.distributed  # noqa: F401
    import transformers.modeling_utils  # noqa: F401

    import trainer.callbacks  # noqa: F401  (transformers.Trainer)


def _process_start_time() -> float:
    import psutil

    return psutil.Process().create_time()


def build_trainer(
    args: TrainArguments,
    env: distributed.DistEnv,
    model: Any,
    tokenizer: Any,
    train_set: Any,
    eval_set: Any,
    micro_batch: int,
    accumulation: int,
    total_steps: int,
    eval_every: int,
    scratch_dir: str,
    callbacks: list[Any],
    perf: Performance,
) -> Any:
    """The HF Trainer exactly as trials run it (the throughput bench builds the same one)."""
    from transformers import DataCollatorWithPadding, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from trainer.callbacks import CountingTrainer, compute_metrics, logits_to_predictions

    training_args = TrainingArguments(
        output_dir=scratch_dir,  # the Trainer's own checkpoints are off; ours go to --output_dir
        per_device_train_batch_size=micro_batch,
        gradient_accumulation_steps=accumulation,
        per_device_eval_batch_size=max(micro_batch, EVAL_BATCH_SIZE),
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        # transformers 5: a float in [0, 1) is a ratio of the total steps.
        warmup_steps=args.warmup_ratio if args.warmup_ratio > 0 else 0,
        lr_scheduler_type="linear",
        max_steps=total_steps,
        eval_strategy="steps",
        eval_steps=eval_every,
        logging_strategy="steps",
        logging_steps=eval_every,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        log_level="error",
        log_level_replica="error",
        seed=args.seed,
        use_cpu=env.device_type == "cpu",
        # A diverged run must show nan in its train_loss, not the mean of the finite steps.
        logging_nan_inf_filter=False,
        **perf.training_arguments(),
        # transformers 5 refuses a ddp_backend in a single process.
        ddp_backend=env.backend if env.distributed else None,
        ddp_find_unused_parameters=False,
    )
    # A datasets.Dataset: its lengths come from the Arrow column (other datasets: the Trainer measures rows).
    if perf.group_by_length and hasattr(train_set, "with_format"):
        from trainer.data import row_lengths

        train_lengths = row_lengths(train_set)
    else:
        train_lengths = None
    trainer = CountingTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=perf.pad_to_multiple_of),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=logits_to_predictions,
        callbacks=callbacks,
        train_lengths=train_lengths,
    )
    # PrinterCallback prints log dicts (with "epoch") on stdout; progress bars are no use in a pod.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def run(
    model_args: ModelArguments,
    data_args: DataArguments,
    args: TrainArguments,
    env: distributed.DistEnv,
    perf: Performance,
) -> int:
    from trainer import checkpoint, data, modeling, warm
    from trainer.callbacks import KatibMetricsCallback

    started = _process_start_time()
    t_setup = time.time()
    micro_batch, accumulation = split_global_batch(
        args.global_batch_size, env.world_size, args.per_device_batch_size
    )

    def prepare() -> tuple[Any, Any, Any, Any]:
        if env.is_main:  # fail before training, not after it, when the checkpoint cannot be written
            checkpoint.check_output_dir(args.output_dir)
        raw = data.load_raw(
            data_args.dataset, model_args.cache_dir, data_args.max_train_samples, data_args.max_eval_samples
        )
        tokenizer = modeling.load_tokenizer(
            model_args.model_name_or_path, model_args.cache_dir, raw.fingerprint, raw.train["text"]
        )
        key = f"{raw.fingerprint}"
        train = data.tokenize(
            raw.train, tokenizer, data_args.max_seq_length, model_args.cache_dir, key + "-train"
        )
        evaluation = data.tokenize(
            raw.eval, tokenizer, data_args.max_seq_length, model_args.cache_dir, key + "-eval"
        )
        return raw, tokenizer, train, evaluation

    # Every rank at once; the first to reach each cache builds it under a file lock, the others read it.
    raw, tokenizer, train_set, eval_set = distributed.on_every_rank(env, prepare)
    if len(eval_set) == 0:
        raise TrainerInputError(f"dataset {raw.name} has no evaluation rows; add a test split or more rows")
    # Whole global batches only: every optimizer step sees exactly --global_batch_size rows, so runs
    # with different world sizes take the same steps over the same number of samples.
    usable = len(train_set) // args.global_batch_size * args.global_batch_size
    if usable == 0:
        raise TrainerInputError(
            f"the training set has {len(train_set)} rows, fewer than --global_batch_size={args.global_batch_size}; "
            "lower the batch size or use more data"
        )
    train_set = train_set.select(range(usable))
    steps_per_epoch = usable // args.global_batch_size
    total_steps = (
        args.max_steps if args.max_steps > 0 else max(1, math.ceil(args.num_train_epochs * steps_per_epoch))
    )
    eval_every = args.eval_steps or max(1, total_steps // DEFAULT_EVALUATIONS)

    model = modeling.load_model(
        model_args.model_name_or_path, model_args.cache_dir, tokenizer, args.seed, perf.attn_implementation
    )
    scratch = tempfile.TemporaryDirectory(prefix="katib-suite-trainer-")
    metrics_callback = KatibMetricsCallback(args.metrics_file if env.is_main else None)
    trainer = build_trainer(
        args, env, model, tokenizer, train_set, eval_set, micro_batch, accumulation, total_steps, eval_every,
        scratch.name, [metrics_callback], perf,
    )  # fmt: skip
    setup_seconds = time.time() - t_setup

    t_train = time.time()
    train_output = trainer.train()
    if trainer.last_eval_step != trainer.state.global_step:
        trainer.evaluate()  # the final metrics are always reported
    train_wall = time.time() - t_train
    if metrics_callback.diverged is not None:
        scratch.cleanup()
        if not env.is_main:  # every rank stopped at the same evaluation; rank 0 says why
            raise PeerRankFailed("training diverged")
        raise TrainingDiverged(metrics_callback.diverged, args.learning_rate)
    samples_seen = distributed.all_reduce_sum(env, trainer.samples_seen)
    optimizer_steps = int(trainer.state.global_step)

    if env.is_main:
        t_save = time.time()
        history = metrics_callback.history
        pure_train = max(train_wall - trainer.eval_seconds, 1e-9)
        trial = {
            "schema_version": checkpoint.TRIAL_SCHEMA_VERSION,
            "trial_name": args.trial_name,
            "experiment_name": args.experiment_name,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "output_dir": args.output_dir,
            "hyperparameters": {
                "learning_rate": args.learning_rate,
                "global_batch_size": args.global_batch_size,
                "warmup_ratio": args.warmup_ratio,
                "weight_decay": args.weight_decay,
                "num_train_epochs": args.num_train_epochs,
                "max_steps": args.max_steps,
                "seed": args.seed,
                "max_seq_length": data_args.max_seq_length,
            },
            "arguments": {**asdict(model_args), **asdict(data_args), **asdict(args)},
            "global_batch_size": args.global_batch_size,
            "world_size": env.world_size,
            "distributed": {
                "backend": env.backend if env.distributed else None,
                "device": env.device_type,
                "per_device_batch_size": micro_batch,
                "gradient_accumulation_steps": accumulation,
            },
            "performance": perf.record(),
            "model": {
                "model_name_or_path": model_args.model_name_or_path,
                "architecture": type(model).__name__,
                "num_parameters": int(sum(p.numel() for p in model.parameters())),
            },
            "dataset": {
                "name": raw.name,
                "fingerprint": raw.fingerprint,
                "train_samples": len(raw.train),
                "train_samples_used": usable,
                "eval_samples": len(eval_set),
            },
            "training": {
                "optimizer_steps": optimizer_steps,
                "train_samples_seen": samples_seen,
                "epochs": float(trainer.state.epoch or 0.0),
                "train_loss": float(train_output.training_loss),
            },
            "metrics": {"final": history[-1] if history else {}, "best": _best(history), "history": history},
            "timings": {
                "startup_seconds": round(t_setup - started, 3),
                "setup_seconds": round(setup_seconds, 3),
                "train_seconds": round(pure_train, 3),
                "eval_seconds": round(trainer.eval_seconds, 3),
                "train_samples_per_second": round(samples_seen / pure_train, 2),
                "warm_start": warm.is_forked(),
            },
            "versions": _versions(),
        }
        checkpoint.save_checkpoint(model, tokenizer, args.output_dir, _with_total(trial, started, t_save))
    scratch.cleanup()
    return 0


def _with_total(trial: dict[str, Any], started: float, t_save: float) -> dict[str, Any]:
    # Saving a large model takes a while; the record states the time up to the start of the upload.
    trial["timings"]["total_seconds"] = round(t_save - started, 3)
    return trial


def _best(history: list[dict[str, float]]) -> dict[str, float]:
    if not history:
        return {}
    best = max(history, key=lambda r: r.get("eval_accuracy", float("-inf")))
    return {
        "step": best["step"],
        "eval_accuracy": best.get("eval_accuracy"),
        "eval_f1": max(r.get("eval_f1", float("-inf")) for r in history),
        "eval_loss": min(r.get("eval_loss", float("inf")) for r in history),
    }


def _check_against_env(args: TrainArguments, env: distributed.DistEnv) -> Performance:
    """Checks that need the world size or device, done before any rank waits on another; the resolved
    speed settings."""
    from trainer import performance

    perf = performance.resolve(args, performance.probe(env.device_type), env.local_world_size)
    split_global_batch(args.global_batch_size, env.world_size, args.per_device_batch_size)
    return perf


def main(argv: list[str] | None = None) -> int:
    gc_was_enabled = gc.isenabled()
    gc.disable()  # while the libraries import; see _import_run_libraries
    try:
        model_args, data_args, train_args = parse_args(argv)
        _import_run_libraries()
        # What the imports built lives as long as the process: out of the collector's sight, the full
        # collection the Trainer runs as training starts (accelerate's free_memory) takes ms, not ~0.5 s.
        gc.freeze()
        if gc_was_enabled:
            gc.enable()
        _quiet_libraries()
        env = distributed.detect()
        perf = _check_against_env(train_args, env)
        distributed.init(env)
        return run(model_args, data_args, train_args, env, perf)
    except PeerRankFailed:
        return 1  # rank 0 already printed the reason
    except TrainerError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        gc.unfreeze()  # main() called in-process (tests, notebooks) leaves the collector as it found it
        if gc_was_enabled:
            gc.enable()
        distributed.destroy()


def run_as_program() -> int:
    """``main`` as a process: exit without tearing down the interpreter.

    After the run, Python's finalization frees every module torch and transformers loaded, one object at
    a time: ~2 s per process that a trial waits for and nobody needs. The hook is registered before any
    library registers its own, and atexit runs hooks last-in first-out, so every library's exit hook
    still runs (logging flushes, temporary files go) before ``os._exit`` skips the teardown.
    """
    from trainer import warm

    handed_off = warm.hand_off(sys.argv)  # a warm server ran this process's work: its exit code
    if handed_off is not None:
        return handed_off
    exit_code = [1]  # an uncaught exception leaves 1, as Python would

    def exit_now() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code[0])

    atexit.register(exit_now)
    try:
        exit_code[0] = main()
    except SystemExit as stop:  # argparse's --help: 0; Python prints a text code and exits 1
        exit_code[0] = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        raise
    return exit_code[0]


if __name__ == "__main__":
    sys.exit(run_as_program())
