"""Data loading: synthetic generator, local and s3:// files, schema errors, the tokenization cache."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trainer import data, synthetic
from trainer.errors import TrainerInputError
from trainer.labels import REQUIRED_COLUMNS, TOPICS


def _rows(n: int, topic_as_name: bool = False) -> dict[str, list]:
    rows = synthetic.generate_rows(n, seed=7)
    if topic_as_name:
        rows["topic"] = [TOPICS[t] for t in rows["topic"]]
    return rows


def _write(rows: dict[str, list], path: Path) -> Path:
    import pandas as pd

    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


def test_synthetic_has_the_schema_all_topics_and_is_reproducible() -> None:
    train, test = synthetic.synthetic_splits()
    assert set(train) == set(REQUIRED_COLUMNS)
    assert (
        len(train["topic"]) == synthetic.SYNTHETIC_TRAIN_ROWS
        and len(test["topic"]) == synthetic.SYNTHETIC_TEST_ROWS
    )
    counts = Counter(train["topic"])
    assert sorted(counts) == list(range(10)) and min(counts.values()) > 0.05 * len(train["topic"])
    assert synthetic.synthetic_splits() == (train, test)
    assert train["question_title"][:50] != test["question_title"][:50]


def test_synthetic_is_learnable_but_not_trivially_separable() -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = synthetic.synthetic_splits()

    def texts(rows):
        return [
            " ".join(parts)
            for parts in zip(
                rows["question_title"], rows["question_content"], rows["best_answer"], strict=True
            )
        ]

    vectorizer = CountVectorizer()
    model = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform(texts(train)), train["topic"])
    accuracy = model.score(vectorizer.transform(texts(test)), test["topic"])
    assert 0.5 < accuracy < 0.9, accuracy  # chance is 0.1; label noise and keyword leakage cap it


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_single_file_holds_out_an_eval_slice(suffix: str, tmp_path: Path) -> None:
    path = _write(_rows(200, topic_as_name=True), tmp_path / f"answers{suffix}")
    raw = data.load_raw(str(path), str(tmp_path / "cache"), max_train_samples=None, max_eval_samples=None)
    assert (len(raw.train), len(raw.eval)) == (180, 20)
    assert raw.train.column_names == ["text", "label"]
    expected = synthetic.generate_rows(200, seed=7)
    assert set(raw.train["label"]) <= set(range(10)) and Counter(
        list(raw.train["label"]) + list(raw.eval["label"])
    ) == Counter(expected["topic"])
    first = raw.train[0]["text"]
    assert any(first.startswith(title) for title in expected["question_title"])


def test_directory_with_train_and_test_files_and_sample_limits(tmp_path: Path) -> None:
    _write(_rows(120), tmp_path / "train.parquet")
    _write(_rows(40), tmp_path / "test.csv")
    raw = data.load_raw(str(tmp_path), str(tmp_path / "cache"), max_train_samples=50, max_eval_samples=10)
    assert (len(raw.train), len(raw.eval)) == (50, 10)
    again = data.load_raw(str(tmp_path), str(tmp_path / "cache"), max_train_samples=50, max_eval_samples=10)
    assert again.fingerprint == raw.fingerprint and list(again.train["text"]) == list(raw.train["text"])
    other = data.load_raw(str(tmp_path), str(tmp_path / "cache"), max_train_samples=60, max_eval_samples=10)
    assert other.fingerprint != raw.fingerprint


def test_missing_columns_are_named(tmp_path: Path) -> None:
    rows = _rows(20)
    del rows["best_answer"]
    path = _write(rows, tmp_path / "train.csv")
    with pytest.raises(TrainerInputError, match=r"missing columns \['best_answer'\]"):
        data.load_raw(str(path), str(tmp_path / "cache"), None, None)


def test_bad_topic_values_are_named(tmp_path: Path) -> None:
    rows = _rows(20)
    rows["topic"][3] = "Gardening"
    path = _write(rows, tmp_path / "train.jsonl")
    with pytest.raises(TrainerInputError, match="'Gardening' is not a label id 0-9 or a topic name"):
        data.load_raw(str(path), str(tmp_path / "cache"), None, None)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("train.csv", "", "is empty"),
        ("train.jsonl", "\n\n", "is empty"),
        ("train.csv", "topic,question_title,question_content,best_answer\n", "has no rows"),
        ("train.parquet", None, "has no rows"),
    ],
)
def test_empty_data_file_is_named_with_the_fix(
    name: str, content: str | None, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if content is None:
        _write({column: [] for column in REQUIRED_COLUMNS}, path)
    else:
        path.write_text(content)
    with pytest.raises(TrainerInputError) as error:
        data.load_raw(str(path), str(tmp_path / "cache"), None, None)
    assert str(error.value) == (
        f"data file {path} {problem}; put rows with columns {list(REQUIRED_COLUMNS)} in it, "
        "or pass --dataset=synthetic"
    )


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("hello\n")
    with pytest.raises(TrainerInputError, match="the format must be one of"):
        data.load_raw(str(path), str(tmp_path / "cache"), None, None)


def test_dataset_from_s3(bucket: str, tmp_path: Path) -> None:
    import boto3

    path = _write(_rows(100), tmp_path / "train.csv")
    boto3.client("s3").upload_file(str(path), bucket, "datasets/yahoo/train.csv")
    raw = data.load_raw(f"s3://{bucket}/datasets/yahoo/train.csv", str(tmp_path / "cache"), None, None)
    assert (len(raw.train), len(raw.eval)) == (90, 10)
    with pytest.raises(Exception, match=r"no such object|nothing under that prefix"):
        data.load_raw(f"s3://{bucket}/datasets/missing.csv", str(tmp_path / "cache"), None, None)


def test_tokenization_is_cached_across_calls(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from trainer.modeling import load_tokenizer

    raw = data.load_raw("synthetic", str(tmp_path), max_train_samples=200, max_eval_samples=50)
    tokenizer = load_tokenizer("tiny", str(tmp_path), raw.fingerprint, raw.train["text"])
    first = data.tokenize(raw.train, tokenizer, 32, str(tmp_path), raw.fingerprint + "-train")
    cached = sorted((tmp_path / "tokenized").glob("*.arrow"))
    assert len(cached) == 1 and first.cache_files[0]["filename"] == str(cached[0])
    assert max(len(ids) for ids in first["input_ids"]) == 32  # truncated to --max_seq_length
    # A second trial: same tokenizer files from the cache, same tokenized file, nothing re-written.
    reloaded = AutoTokenizer.from_pretrained(str(next((tmp_path / "tokenizers").glob("tiny-*"))))
    mtime = cached[0].stat().st_mtime_ns
    second = data.tokenize(raw.train, reloaded, 32, str(tmp_path), raw.fingerprint + "-train")
    assert second.cache_files[0]["filename"] == str(cached[0]) and cached[0].stat().st_mtime_ns == mtime
    assert list(second["input_ids"]) == list(first["input_ids"])
    assert list(second["labels"]) == list(raw.train["label"])
    # Another sequence length is another cache entry.
    data.tokenize(raw.train, tokenizer, 64, str(tmp_path), raw.fingerprint + "-train")
    assert len(list((tmp_path / "tokenized").glob("*.arrow"))) == 2
