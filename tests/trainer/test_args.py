"""Argument parsing and the one-line errors users see for bad input (in-process, no training)."""

from __future__ import annotations

import pytest

from trainer.args import split_global_batch
from trainer.errors import TrainerInputError
from trainer.train import main, parse_args


@pytest.mark.parametrize(
    ("global_batch", "world", "cap", "expected"),
    [
        (32, 1, 16, (16, 2)),
        (32, 2, 16, (16, 1)),
        (32, 4, 16, (8, 1)),
        (96, 2, 16, (16, 3)),
        (24, 1, 16, (12, 2)),  # 12 x 2 beats 8 x 3: fewest accumulation steps that fit
        (7, 1, 4, (1, 7)),  # a prime: only micro-batch 1 fits under the cap
        (64, 16, 64, (4, 1)),
    ],
)
def test_global_batch_split(global_batch: int, world: int, cap: int, expected: tuple[int, int]) -> None:
    micro, accumulation = split_global_batch(global_batch, world, cap)
    assert (micro, accumulation) == expected
    assert micro * accumulation * world == global_batch


def test_indivisible_global_batch_names_the_fix() -> None:
    with pytest.raises(
        TrainerInputError, match=r"cannot be split evenly over 4 processes; use a multiple of 4"
    ):
        split_global_batch(30, 4, 16)


def test_katib_style_flags_parse() -> None:
    model, data, train = parse_args(
        [
            "--model_name_or_path=tiny",
            "--dataset=synthetic",
            "--learning_rate=3e-5",
            "--global_batch_size=64",
            "--bf16",
        ]
    )
    assert (model.model_name_or_path, data.dataset, train.learning_rate, train.global_batch_size) == (
        "tiny",
        "synthetic",
        3e-5,
        64,
    )
    assert train.bf16 is True and train.warmup_ratio == 0.06 and data.max_seq_length == 256


def test_trial_name_defaults_to_katib_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "exp-abcdefgh")
    monkeypatch.setenv("KATIB_SUITE_CACHE", str(tmp_path))
    model, _, train = parse_args([])
    assert train.trial_name == "exp-abcdefgh"
    assert model.cache_dir == str(tmp_path)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err  # one line, no traceback
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--learning_rate=0"], "--learning_rate must be > 0"),
        (["--learning_rate=-1e-5"], "--learning_rate must be > 0"),
        (["--global_batch_size=0"], "--global_batch_size must be >= 1"),
        (["--bf16", "--fp16"], "--bf16 and --fp16 are exclusive"),
        (["--max_seq_length=1024"], "between 8 and 512"),
        (["--warmup_ratio=1.5"], "--warmup_ratio must be in [0, 1)"),
        (["--num_train_epochs=inf"], "--num_train_epochs must be a finite number; got: inf"),
        (["--num_train_epochs=nan"], "--num_train_epochs must be a finite number; got: nan"),
        (["--learning_rate=nan"], "--learning_rate must be a finite number; got: nan"),
        (["--weight_decay=-inf"], "--weight_decay must be a finite number; got: -inf"),
        (["--precision=fp8"], "invalid choice: 'fp8'"),
        (["--fp16"], "--fp16 needs a CUDA GPU"),
        (["--dataset=imdb"], "unknown dataset 'imdb'; --dataset must be one of"),
        (["--dataset=/no/such/file.csv"], "not a file or directory"),
        (
            ["--dataset=yahoo_answers_topics"],
            "allow network access (unset HF_HUB_OFFLINE) or pass --dataset=synthetic",
        ),
        (["--model_name_or_path=FacebookAI/roberta-large"], "or --model_name_or_path=tiny"),
    ],
)
def test_bad_input_gets_one_line_and_non_zero_exit(
    argv: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KATIB_SUITE_CACHE", str(tmp_path / "cache"))
    code = main(
        ["--model_name_or_path=tiny", "--dataset=synthetic", f"--output_dir={tmp_path / 'out'}", *argv]
    )
    assert code != 0
    line = _error_line(capsys)
    assert line.startswith("error: ") and expected in line


def test_indivisible_batch_for_the_world_size_is_reported_before_joining_the_group(
    capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WORLD_SIZE=3 with no peers: if the check came after init_process_group this would hang.
    for key, value in {
        "WORLD_SIZE": "3",
        "RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "1",
    }.items():
        monkeypatch.setenv(key, value)
    code = main(["--global_batch_size=32", f"--output_dir={tmp_path}"])
    assert code != 0
    assert "cannot be split evenly over 3 processes; use a multiple of 3" in _error_line(capsys)


@pytest.mark.parametrize("flag", ["--learning_rat=1e-5", "--no_such_flag=1"])
def test_unknown_or_abbreviated_flag_is_one_line(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag]) != 0
    line = _error_line(capsys)
    assert flag in line and "python -m trainer.train --help" in line


def test_several_processes_per_pod_without_torchrun_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PyTorchJob with nprocPerNode=2 running plain `python -m trainer.train` would hang; say so instead.
    monkeypatch.setenv("PET_NPROC_PER_NODE", "2")
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert main([f"--output_dir={tmp_path}"]) != 0
    assert "run it as `torchrun -m trainer.train ...`" in _error_line(capsys)


def test_missing_output_bucket_is_reported_before_training(
    s3_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATIB_SUITE_CACHE", str(tmp_path))
    code = main(
        ["--model_name_or_path=tiny", "--dataset=synthetic", "--output_dir=s3://no-such-bucket/exp/t1/"]
    )
    assert code != 0
    assert "bucket 'no-such-bucket' does not exist; create it first" in _error_line(capsys)


def test_help_names_the_program_lists_each_flag_once_and_each_default_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m trainer.train ")  # not "train.py"
    assert "torchrun" in out and "eval_accuracy" in out  # how to launch it, what it prints
    assert "--learning_rate X" in out and "--learning-rate" not in out  # the dashed alias still parses
    assert "-h, --help" in out
    flat = " ".join(out.split())  # independent of the terminal width argparse wraps to
    assert "(default: None)" not in flat
    # helps that state their default in words do not get argparse's raw value appended as well
    assert "training rows (default: all). --" in flat
    assert "(default: $KATIB_SUITE_CACHE or ~/.cache/katib-suite). --" in flat


def test_dashed_flag_aliases_still_parse() -> None:
    _, _, train = parse_args(["--learning-rate=3e-4", "--global-batch-size=8"])
    assert (train.learning_rate, train.global_batch_size) == (3e-4, 8)


def test_help_documents_every_speed_flag_and_its_auto_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    flat = " ".join(capsys.readouterr().out.split())
    for flag in (
        "--precision {auto,bf16,fp16,fp32}",
        "--tf32 [BOOL]",
        "--attn_implementation {sdpa,eager}",
        "--optim {adamw_torch_fused,adamw_torch}",
        "--group_by_length BOOL",
        "--pad_to_multiple_of N",
        "--torch_compile [BOOL]",
        "--dataloader_num_workers N",
        "--dataloader_pin_memory [BOOL]",
    ):
        assert flag in flat, flag
    assert "auto = bf16 on a GPU that has it, else fp16 on a GPU, fp32 on CPU" in flat
    assert "auto = 8 with a GPU (tensor cores), 1 on CPU" in flat
    # HfArgumentParser's negative alias of a flag that defaults to true says what it does, not "default: False".
    assert "--no_tf32 Same as --tf32=false." in flat
    assert "--no_dataloader_pin_memory Same as --dataloader_pin_memory=false." in flat


def test_empty_data_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATIB_SUITE_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "answers.csv"
    empty.write_text("")
    code = main(["--model_name_or_path=tiny", f"--dataset={empty}", f"--output_dir={tmp_path / 'out'}"])
    assert code == 2
    assert _error_line(capsys) == (
        f"error: data file {empty} is empty; put rows with columns "
        "['topic', 'question_title', 'question_content', 'best_answer'] in it, or pass --dataset=synthetic"
    )
