"""Real training runs: 2-process torchrun on CPU, 1 vs 2 processes, a checkpoint on S3 (all slow)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.trainer.conftest import KATIB_REGEX, TINY_SYNTHETIC, parse_katib_line, run_trainer
from trainer import synthetic
from trainer.checkpoint import read_trial_json
from trainer.labels import ID2LABEL, TOPICS
from trainer.reporting import METRIC_NAMES

pytestmark = pytest.mark.slow


def _predict_accuracy(model_dir: str, rows: dict[str, list]) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    texts = [
        " ".join(p)
        for p in zip(rows["question_title"], rows["question_content"], rows["best_answer"], strict=True)
    ]
    correct = 0
    with torch.no_grad():
        for start in range(0, len(texts), 100):
            batch = tokenizer(
                texts[start : start + 100], padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            predicted = model(**batch).logits.argmax(-1).tolist()
            correct += sum(
                int(p == t) for p, t in zip(predicted, rows["topic"][start : start + 100], strict=True)
            )
    return correct / len(texts)


def _assert_no_stray_metrics(text: str) -> None:
    """Katib records `name=value` for known names on ANY line of stdout+stderr (it wraps both on a cluster)."""
    for line in text.splitlines():
        names = {m.group(1) for m in KATIB_REGEX.finditer(line)} & set(METRIC_NAMES)
        assert not names, f"stray metric-looking line: {line!r}"


@pytest.fixture(scope="module")
def torchrun_job(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("torchrun")
    args = [
        *TINY_SYNTHETIC,
        "--learning_rate=1e-3",
        "--global_batch_size=32",
        f"--output_dir={out / 'ckpt'}",
        f"--metrics_file={out / 'metrics.log'}",
        "--experiment_name=quickstart",
    ]
    result = run_trainer(args, cache_dir, nproc=2, KATIB_TRIAL_NAME="quickstart-abcdefgh")
    assert result.returncode == 0, result.stderr[-3000:]
    return result, out


def test_torchrun_metric_lines_parse_with_katib_regex_and_carry_timestamps(torchrun_job) -> None:
    result, out = torchrun_job
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 5  # default: 5 evaluations; printed by rank 0 only
    stamps, records = [], []
    for line in lines:
        stamp, values = parse_katib_line(line)
        stamps.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
        records.append(values)
        assert set(values) <= set(METRIC_NAMES)
        assert {"epoch", "step", "eval_loss", "eval_accuracy", "eval_f1"} <= set(values)
    assert all(s.tzinfo is not None for s in stamps) and stamps == sorted(stamps)
    assert [r["step"] for r in records] == [50, 100, 150, 200, 250]
    final = records[-1]
    assert 0.4 < final["eval_accuracy"] < 0.95, final  # chance is 0.1
    assert final["eval_loss"] < records[0]["eval_loss"]
    assert (out / "metrics.log").read_text().splitlines() == lines
    _assert_no_stray_metrics(result.stderr)


def test_torchrun_checkpoint_reloads_and_predicts(torchrun_job) -> None:
    _, out = torchrun_job
    ckpt = out / "ckpt"
    config = json.loads((ckpt / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in ID2LABEL.items()}
    assert config["label2id"] == {name: i for i, name in enumerate(TOPICS)}
    trial = read_trial_json(str(ckpt))
    assert trial["trial_name"] == "quickstart-abcdefgh" and trial["experiment_name"] == "quickstart"
    assert trial["world_size"] == 2 and trial["global_batch_size"] == 32
    assert trial["distributed"] == {
        "backend": "gloo",
        "device": "cpu",
        "per_device_batch_size": 16,
        "gradient_accumulation_steps": 1,
    }
    assert trial["hyperparameters"]["learning_rate"] == 1e-3
    # The speed settings as resolved: on CPU every auto is what a CPU trial always computed.
    assert trial["performance"] == {
        "precision": "fp32",
        "tf32": False,
        "attn_implementation": "sdpa",
        "optim": "adamw_torch_fused",
        "group_by_length": False,
        "pad_to_multiple_of": None,
        "torch_compile": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
    }
    assert trial["dataset"]["name"] == "synthetic" and len(trial["dataset"]["fingerprint"]) == 16
    assert trial["metrics"]["best"]["eval_accuracy"] >= trial["metrics"]["final"]["eval_accuracy"]
    assert set(trial["versions"]) >= {"torch", "transformers", "python"}
    assert trial["timings"]["train_seconds"] > 0
    # Reload exactly as KServe's HF runtime does, and reproduce the reported accuracy on the eval split.
    _, test_rows = synthetic.synthetic_splits()
    accuracy = _predict_accuracy(str(ckpt), test_rows)
    assert accuracy == pytest.approx(trial["metrics"]["final"]["eval_accuracy"], abs=0.005)


def test_one_and_two_processes_take_the_same_steps_over_the_same_samples(
    cache_dir: Path, tmp_path: Path
) -> None:
    common = [
        *TINY_SYNTHETIC,
        "--max_train_samples=270",  # 270 -> 256 usable rows: 8 whole global batches per epoch
        "--max_eval_samples=64",
        "--global_batch_size=32",
        "--per_device_batch_size=8",  # 1 process: 8 x 4 accumulation; 2 processes: 8 x 2
        "--num_train_epochs=2",
        "--learning_rate=1e-3",
    ]
    trials = {}
    for nproc in (1, 2):
        result = run_trainer([*common, f"--output_dir={tmp_path / str(nproc)}"], cache_dir, nproc=nproc)
        assert result.returncode == 0, result.stderr[-3000:]
        trials[nproc] = read_trial_json(str(tmp_path / str(nproc)))
    for nproc, trial in trials.items():
        assert trial["world_size"] == nproc
        assert trial["training"]["optimizer_steps"] == 16
        assert trial["training"]["train_samples_seen"] == 512  # counted on every rank, summed
        assert (
            trial["distributed"]["per_device_batch_size"]
            * trial["distributed"]["gradient_accumulation_steps"]
            * nproc
            == 32
        )


def test_checkpoint_to_s3_and_back(
    cache_dir: Path, bucket: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    from trainer import s3

    uri = f"s3://{bucket}/experiments/quickstart/quickstart-s3trial1/"
    args = [
        *TINY_SYNTHETIC,
        "--max_train_samples=320",
        "--max_eval_samples=100",
        "--learning_rate=1e-3",
        f"--output_dir={uri}",
    ]
    result = run_trainer(args, cache_dir, KATIB_TRIAL_NAME="quickstart-s3trial1", **s3_env)
    assert result.returncode == 0, result.stderr[-3000:]
    trial = read_trial_json(uri)
    assert trial["trial_name"] == "quickstart-s3trial1" and trial["output_dir"] == uri
    keys = s3.list_keys(uri)
    assert {k.rsplit("/", 1)[1] for k in keys} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "trial.json",
    }
    local = s3.download(uri, tmp_path / "model")
    assert 0.0 <= _predict_accuracy(str(local), synthetic.generate_rows(50, seed=3)) <= 1.0


def test_rank_zero_failure_stops_both_ranks_with_one_line(cache_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("topic,question_title,question_content\n1,a,b\n2,c,d\n")
    args = [
        "--model_name_or_path=tiny",
        f"--dataset={tmp_path / 'train.csv'}",
        f"--output_dir={tmp_path / 'out'}",
    ]
    result = run_trainer(args, cache_dir, nproc=2, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: dataset {tmp_path / 'train.csv'} (train) is missing columns ['best_answer']; "
                      "found ['topic', 'question_title', 'question_content']; it needs "
                      "['topic', 'question_title', 'question_content', 'best_answer']"]  # fmt: skip
    assert (
        'File "' + str(Path(__file__).resolve().parents[2] / "trainer") not in result.stderr
    )  # no trainer traceback
    assert result.stdout == ""


def test_eval_metrics_cover_the_eval_set_once_whatever_the_world_size(
    cache_dir: Path, tmp_path: Path
) -> None:
    # 101 eval rows do not split evenly over 2 ranks: the sampler pads rank 1 with repeated rows, which
    # must not weigh into eval_loss (nor accuracy/F1). A ~0 learning rate keeps both runs at the same weights.
    common = [
        *TINY_SYNTHETIC,
        "--max_train_samples=64",
        "--max_eval_samples=101",
        "--global_batch_size=32",
        "--max_steps=1",
        "--learning_rate=1e-12",
    ]
    records = {}
    for nproc in (1, 2):
        result = run_trainer([*common, f"--output_dir={tmp_path / str(nproc)}"], cache_dir, nproc=nproc)
        assert result.returncode == 0, result.stderr[-3000:]
        records[nproc] = parse_katib_line(result.stdout.strip().splitlines()[-1])[1]
    one, two = records[1], records[2]
    assert one["eval_accuracy"] * 101 == pytest.approx(round(one["eval_accuracy"] * 101), abs=1e-3)
    assert two["eval_accuracy"] == one["eval_accuracy"] and two["eval_f1"] == one["eval_f1"]
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], abs=2e-5)


DIVERGING = [
    *TINY_SYNTHETIC,
    "--learning_rate=1e6",
    "--global_batch_size=32",
    "--max_train_samples=64",
    "--max_eval_samples=32",
    "--max_steps=10",  # it diverges within the first few steps and stops there
    "--eval_steps=2",
]


def _assert_nan_metric_line_then_stop(stdout: str, stderr: str) -> None:
    """The NaN evaluation is still reported (the collector records it as unavailable) and is the last one;
    the one error line names that step and metric, and the fix."""
    lines = stdout.strip().splitlines()
    assert lines, stderr[-3000:]
    *finite, last = lines
    assert all("nan" not in line and "inf" not in line for line in finite), stdout
    pairs = dict(pair.split("=", 1) for pair in last.split(" ")[1:])
    bad = [name for name, value in pairs.items() if value in ("nan", "inf", "-inf")]
    assert bad, last
    values = {m.group(1): m.group(2) for m in KATIB_REGEX.finditer(last)}
    assert all(values[name] in ("", "-") for name in bad)  # Katib reads no value for them
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: training diverged: {bad[0]} is {pairs[bad[0]]} at step {pairs['step']} (learning rate 1e+06); "
        "lower --learning_rate (or its search-space max), or raise --warmup_ratio"
    ]


def test_diverging_run_prints_its_nan_line_then_one_error_line(cache_dir: Path, tmp_path: Path) -> None:
    result = run_trainer([*DIVERGING, f"--output_dir={tmp_path / 'out'}"], cache_dir, timeout=120)
    assert result.returncode == 3, result.stderr[-3000:]
    _assert_nan_metric_line_then_stop(result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # that line only: no traceback
    assert not (tmp_path / "out" / "trial.json").exists()  # a diverged run leaves no checkpoint


def test_diverging_two_process_run_stops_every_rank_with_one_error_line(
    cache_dir: Path, tmp_path: Path
) -> None:
    result = run_trainer([*DIVERGING, f"--output_dir={tmp_path / 'out'}"], cache_dir, nproc=2, timeout=180)
    assert result.returncode != 0
    # Rank 0 says why; rank 1 stops at the same evaluation and exits quietly (torchrun adds its report).
    _assert_nan_metric_line_then_stop(result.stdout, result.stderr)
    assert 'File "' + str(Path(__file__).resolve().parents[2] / "trainer") not in result.stderr
    assert not (tmp_path / "out" / "trial.json").exists()
