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

import math
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from trainer import distributed
from trainer.args import DataArguments, ModelArguments, TrainArguments, split_global_batch
from trainer.errors import PeerRankFailed, TrainerError, TrainerInputError

# Evaluations spread over a run when --eval_steps is not given; Katib's medianstop needs >= start_step (4).
DEFAULT_EVALUATIONS = 5
EVAL_BATCH_SIZE = 64


HELP_DESCRIPTION = """\
Fine-tune a RoBERTa sequence classifier on yahoo_answers_topics (10 topics); the Katib trial program.
One process: python -m trainer.train ...; several: torchrun [--nproc_per_node=N] -m trainer.train ...
(in a PyTorchJob the Training Operator's PET_* variables tell torchrun the nodes and the master).
At every evaluation global rank 0 prints one Katib metric line on stdout:
  <RFC 3339 time> epoch=.. step=.. train_loss=.. eval_loss=.. eval_accuracy=.. eval_f1=..
Flags take --name=value; --name-with-dashes works too."""

HELP_EXAMPLES = """\
examples:
  python -m trainer.train --model_name_or_path=tiny --dataset=synthetic --output_dir=/tmp/trial
  torchrun --standalone --nproc_per_node=2 -m trainer.train --model_name_or_path=tiny \\
      --dataset=synthetic --learning_rate=3e-4 --global_batch_size=32 --output_dir=/tmp/trial"""


_METAVARS = {str: "TEXT", int: "N", float: "X"}


def _help_formatter():
    import argparse

    class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """One name per flag (HfArgumentParser also registers the --dashed alias) and one default."""

        def _format_action_invocation(self, action: argparse.Action) -> str:
            if not action.option_strings or not action.option_strings[0].startswith("--"):
                return super()._format_action_invocation(action)  # -h, --help
            name = action.option_strings[0]
            if action.nargs == 0:
                return name
            return f"{name} {self._format_args(action, self._get_default_metavar_for_optional(action))}"

        def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
            return _METAVARS.get(action.type, "BOOL")  # HfArgumentParser parses bools with a function

        def _get_help_string(self, action: argparse.Action) -> str:
            help_text = action.help or ""
            # The help already says it better than the raw value would, or there is nothing to say.
            if "default:" in help_text.lower() or action.default is None:
                return help_text
            return super()._get_help_string(action)

    return HelpFormatter


def parse_args(argv: list[str] | None) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, TrainArguments),
        prog="python -m trainer.train",
        description=HELP_DESCRIPTION,
        epilog=HELP_EXAMPLES,
        formatter_class=_help_formatter(),
    )
    # Katib passes exact names; a typo such as --learning_rat must fail, not match --learning_rate by prefix.
    parser.allow_abbrev = False
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
        bf16=args.bf16,
        fp16=args.fp16,
        use_cpu=env.device_type == "cpu",
        dataloader_num_workers=0,
        # transformers 5 refuses a ddp_backend in a single process.
        ddp_backend=env.backend if env.distributed else None,
        ddp_find_unused_parameters=False,
    )
    trainer = CountingTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=logits_to_predictions,
        callbacks=callbacks,
    )
    # PrinterCallback prints log dicts (with "epoch") on stdout; progress bars are no use in a pod.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def run(
    model_args: ModelArguments, data_args: DataArguments, args: TrainArguments, env: distributed.DistEnv
) -> int:
    from trainer import checkpoint, data, modeling
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

    # Rank 0 loads, trains the tokenizer and tokenizes; the others then read its cache.
    raw, tokenizer, train_set, eval_set = distributed.rank_zero_first(env, prepare)
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

    model = modeling.load_model(model_args.model_name_or_path, model_args.cache_dir, tokenizer, args.seed)
    scratch = tempfile.TemporaryDirectory(prefix="katib-suite-trainer-")
    metrics_callback = KatibMetricsCallback(args.metrics_file if env.is_main else None)
    trainer = build_trainer(
        args, env, model, tokenizer, train_set, eval_set, micro_batch, accumulation, total_steps, eval_every,
        scratch.name, [metrics_callback],
    )  # fmt: skip
    setup_seconds = time.time() - t_setup

    t_train = time.time()
    train_output = trainer.train()
    if trainer.last_eval_step != trainer.state.global_step:
        trainer.evaluate()  # the final metrics are always reported
    train_wall = time.time() - t_train
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


def _check_against_env(args: TrainArguments, env: distributed.DistEnv) -> None:
    """Checks that need the world size or device, done before any rank waits on another."""
    if args.fp16 and env.device_type != "cuda":
        raise TrainerInputError("--fp16 needs a CUDA GPU; drop it (or use --bf16, which also works on CPU)")
    split_global_batch(args.global_batch_size, env.world_size, args.per_device_batch_size)


def main(argv: list[str] | None = None) -> int:
    try:
        model_args, data_args, train_args = parse_args(argv)
        _quiet_libraries()
        env = distributed.detect()
        _check_against_env(train_args, env)
        distributed.init(env)
        return run(model_args, data_args, train_args, env)
    except PeerRankFailed:
        return 1  # rank 0 already printed the reason
    except TrainerError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        distributed.destroy()


if __name__ == "__main__":
    sys.exit(main())
