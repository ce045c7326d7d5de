"""promote-best to a local store: selection by Katib's ranking, verification, versions, idempotency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.cli import main
from tests.serving.conftest import TrialSpec, write_checkpoint

TRIALS = [
    TrialSpec("exp-a", (0.40, 0.55)),
    TrialSpec("exp-b", (0.50, 0.80, 0.70)),  # Katib's optimal: max 0.80, but the saved weights are at 0.70
    TrialSpec("exp-c", (0.60,)),
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_promotes_katibs_optimal_trial_with_a_model_card(recorded, tmp_path: Path, capsys) -> None:
    storage = recorded("exp", TRIALS)
    dest = tmp_path / "models" / "roberta-yahoo"
    code, out, err = run(capsys, "exp", "--to", str(dest), "--storage", storage, "--output", "json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["trial"], result["version"], result["created"]) == ("exp-b", "v1", True)
    card = json.loads((dest / "v1" / "model-card.json").read_text())
    assert card["objective"]["katib_value"] == pytest.approx(0.80)
    assert card["objective"]["promoted_weights_value"] == pytest.approx(0.70)
    assert card["objective"]["differs"] and "last evaluation" in card["objective"]["note"]
    assert card["model"]["id2label"]["5"] == "Sports"
    assert card["dataset"] == {"name": "synthetic", "fingerprint": "f00d"}
    listed = {f["path"]: f for f in card["files"]}
    assert {"config.json", "model.safetensors", "trial.json", "tokenizer_config.json"} <= set(listed)
    import hashlib

    for path, entry in listed.items():
        data = (dest / "v1" / path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    assert (dest / "LATEST").read_text().strip() == "v1"
    assert not (dest / ".partial").exists() or not any((dest / ".partial").iterdir())
    # The promoted folder loads like any Hugging Face model, with the topic names.
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(str(dest / "v1")).id2label[0] == "Society & Culture"
    AutoTokenizer.from_pretrained(str(dest / "v1"))


def test_rerun_is_a_no_op_and_another_trial_gets_the_next_version(recorded, tmp_path: Path, capsys) -> None:
    storage = recorded("exp", TRIALS)
    dest = str(tmp_path / "store")
    assert run(capsys, "exp", "--to", dest, "--storage", storage)[0] == 0
    code, out, _ = run(capsys, "exp", "--to", dest, "--storage", storage)
    assert code == 0 and "already promoted: v1" in out
    code, out, _ = run(
        capsys, "exp", "--to", dest, "--storage", storage, "--trial", "exp-c", "--output", "json"
    )
    result = json.loads(out)
    assert code == 0 and result["version"] == "v2" and "Katib's optimal trial is exp-b" in result["selection"]
    assert sorted(p.name for p in Path(dest).iterdir() if not p.name.startswith(".")) == [
        "LATEST",
        "v1",
        "v2",
    ]
    assert (Path(dest) / "LATEST").read_text().strip() == "v2"


def test_early_stopped_optimal_falls_back_to_the_best_complete_checkpoint(
    recorded, tmp_path: Path, capsys
) -> None:
    trials = [*TRIALS, TrialSpec("exp-d", (0.95,), condition="EarlyStopped")]
    storage = recorded("exp", trials)
    code, out, err = run(capsys, "exp", "--to", str(tmp_path / "m"), "--storage", storage, "--output", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["katib_optimal_trial"] == "exp-d" and result["trial"] == "exp-b"
    assert "exp-d is EarlyStopped and has no complete checkpoint" in result["selection"]


def test_dry_run_writes_nothing(recorded, tmp_path: Path, capsys) -> None:
    storage = recorded("exp", TRIALS)
    dest = tmp_path / "m"
    code, out, _ = run(capsys, "exp", "--to", str(dest), "--storage", storage, "--dry-run")
    assert code == 0 and "would promote to v1" in out
    assert not dest.exists()


def test_failure_mid_copy_leaves_no_complete_version_and_its_number_is_not_reused(
    recorded, tmp_path: Path, capsys, monkeypatch
) -> None:
    import shutil

    storage = recorded("exp", TRIALS)
    dest = tmp_path / "m"
    real_copy = shutil.copyfile
    copied: list[str] = []

    def failing_copy(src, dst, *a, **k):
        copied.append(str(src))
        if len(copied) == 3:
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr("serving.store.shutil.copyfile", failing_copy)
    code, _, err = run(capsys, "exp", "--to", str(dest), "--storage", storage)
    assert code != 0 and "No space left on device" in err and "v1 is left incomplete" in err
    assert not (dest / "v1").exists() and not (dest / "LATEST").exists()
    assert not list(dest.rglob("model-card.json"))
    monkeypatch.setattr("serving.store.shutil.copyfile", real_copy)
    code, out, _ = run(capsys, "exp", "--to", str(dest), "--storage", storage, "--output", "json")
    result = json.loads(out)
    assert code == 0 and result["version"] == "v2" and result["incomplete_versions"] == ["v1"]
    assert (dest / "LATEST").read_text().strip() == "v2"


def test_relative_output_dir_resolves_against_the_experiments_workdir(
    recorded, tmp_path: Path, capsys
) -> None:
    storage = recorded("exp", [TrialSpec("exp-a", (0.5,), output_dir="runs/exp/exp-a")])
    assert (tmp_path / "runs/exp/exp-a/trial.json").is_file()
    code, out, err = run(capsys, "exp", "--to", str(tmp_path / "m"), "--storage", storage)
    assert code == 0, err and "exp-a" in out


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("trial_name", "trial.json: trial_name is 'someone-else', expected 'exp-b'"),
        ("metrics", "eval_accuracy latest is 0.99 but experiment 'exp' recorded 0.7"),
        ("no_labels", "config.json: id2label has no topic names"),
        ("no_weights", "missing model.safetensors"),
        ("bad_tokenizer", "tokenizer does not load"),
    ],
)
def test_verification_failures_name_the_file_and_write_nothing(
    recorded, tiny_checkpoint: Path, tmp_path: Path, capsys, damage: str, expected: str
) -> None:
    storage = recorded("exp", TRIALS)
    folder = tmp_path / "runs" / "exp-b"
    if damage == "trial_name":
        write_checkpoint(tiny_checkpoint, folder, "exp", "exp-b", (0.5, 0.8, 0.7), trial_name="someone-else")
    elif damage == "metrics":
        write_checkpoint(tiny_checkpoint, folder, "exp", "exp-b", (0.5, 0.8, 0.99))
    elif damage == "no_labels":
        config = json.loads((folder / "config.json").read_text())
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(10)}
        (folder / "config.json").write_text(json.dumps(config))
    elif damage == "no_weights":
        (folder / "model.safetensors").unlink()
    elif damage == "bad_tokenizer":
        for name in ("tokenizer.json", "vocab.json"):
            if (folder / name).exists():
                (folder / name).write_text("{not json")
    dest = tmp_path / "m"
    code, _, err = run(capsys, "exp", "--to", str(dest), "--storage", storage)
    assert code != 0 and expected in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not dest.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nope", "--to", "{dest}"], "no experiment named 'nope'"),
        (
            ["exp", "--to", "{dest}", "--trial", "exp-zzz"],
            "has no trial 'exp-zzz' (trials: exp-a, exp-b, exp-c)",
        ),
        (["exp", "--to", "{dest}", "--backend", "kube"], "--backend must be one of"),
        (["exp"], "needs EXPERIMENT and --to DEST"),
    ],
)
def test_bad_input_is_one_clear_line(
    recorded, tmp_path: Path, capsys, argv: list[str], expected: str
) -> None:
    storage = recorded("exp", TRIALS)
    argv = [a.replace("{dest}", str(tmp_path / "m")) for a in argv]
    code, _, err = run(capsys, *argv, "--storage", storage)
    assert code != 0 and expected in err and "Traceback" not in err, err
