"""Training data: load (hub / local or s3:// file / synthetic), check the schema, tokenize once and cache.

Text is ``question_title + question_content + best_answer``; labels are topic ids 0-9 (integers or the
exact topic names in the file). Tokenized datasets are cached under ``--cache_dir`` keyed by the data
fingerprint, the tokenizer and ``--max_seq_length``, so later trials of an experiment skip tokenization.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import TrainerInputError
from trainer.labels import LABEL2ID, REQUIRED_COLUMNS, TEXT_COLUMNS, TOPICS

HUB_DATASETS = {"yahoo_answers_topics": "community-datasets/yahoo_answers_topics"}
SYNTHETIC = "synthetic"
FILE_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
# A single file has no test split: hold out this fraction (fixed seed, so every trial evaluates alike).
HELD_OUT_FRACTION = 0.1
SUBSET_SEED = 1234
# Bump when the text recipe or tokenization changes, so stale caches are never reused.
TOKENIZATION_VERSION = "1"


@dataclass
class RawData:
    name: str
    fingerprint: str
    train: Any  # datasets.Dataset with columns "text" and "label"
    eval: Any


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _known_choices() -> list[str]:
    return [*HUB_DATASETS, SYNTHETIC, "<path or s3:// URI to .csv/.jsonl/.parquet>"]


def _load_synthetic() -> tuple[Any, Any, str]:
    from datasets import Dataset

    from trainer import synthetic

    train, test = synthetic.synthetic_splits()
    fingerprint = _sha(
        "synthetic",
        synthetic.SYNTHETIC_TRAIN_ROWS,
        synthetic.SYNTHETIC_TEST_ROWS,
        synthetic.SYNTHETIC_DATA_SEED,
    )
    return Dataset.from_dict(train), Dataset.from_dict(test), fingerprint


def _load_hub(name: str, cache_dir: str) -> tuple[Any, Any, str]:
    import datasets

    repo = HUB_DATASETS[name]
    try:
        loaded = datasets.load_dataset(repo, cache_dir=str(Path(cache_dir) / "hub-datasets"))
    except Exception as error:  # network, offline mode, missing repo: all one fix
        raise TrainerInputError(
            f"cannot load dataset {repo!r} from the Hugging Face Hub ({type(error).__name__}); "
            "allow network access (unset HF_HUB_OFFLINE) or pass --dataset=synthetic or a local file"
        ) from None
    return (
        loaded["train"],
        loaded["test"],
        _sha(repo, loaded["train"]._fingerprint, loaded["test"]._fingerprint),
    )


def _read_file(path: Path, cache_dir: str) -> Any:
    import datasets

    builder = FILE_FORMATS.get("".join(path.suffixes[-1:]).lower())
    if builder is None:
        raise TrainerInputError(
            f"unsupported data file {path.name!r}; the format must be one of {sorted(FILE_FORMATS)}"
        )
    no_rows = (
        f"data file {path} has no rows; put rows with columns {list(REQUIRED_COLUMNS)} in it, "
        "or pass --dataset=synthetic"
    )
    with path.open("rb") as handle:
        if not handle.read(4096).strip():
            raise TrainerInputError(no_rows.replace("has no rows", "is empty"))
    if builder == "parquet" and _parquet_rows(path) == 0:  # datasets fails on it with a generic error
        raise TrainerInputError(no_rows)
    try:
        loaded = datasets.load_dataset(
            builder, data_files=str(path), split="train", cache_dir=str(Path(cache_dir) / "file-datasets")
        )
    except Exception as error:  # malformed file contents of any kind
        reason = (str(error).splitlines() or [""])[0][:200]
        if "corresponds to no data" in reason:  # a CSV header and nothing else
            raise TrainerInputError(no_rows) from None
        raise TrainerInputError(
            f"cannot read {path} as {builder} ({type(error).__name__}: {reason}); fix the file or its extension"
        ) from None
    if len(loaded) == 0:
        raise TrainerInputError(no_rows)
    return loaded


def _parquet_rows(path: Path) -> int | None:
    """Rows in a parquet file's footer; None if it has none readable (the load then names the problem)."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # not parquet at all: datasets' own error says so
        return None


def _find_split(directory: Path, split: str) -> Path | None:
    for suffix in FILE_FORMATS:
        candidate = directory / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _load_path(location: str, cache_dir: str) -> tuple[Any, Any, str]:
    from trainer import s3

    if s3.is_s3_uri(location):
        local = s3.download(location, Path(cache_dir) / "downloads" / _sha(location))
    else:
        local = Path(location).expanduser()
        if not local.exists():
            raise TrainerInputError(
                f"unknown dataset {location!r}: not a file or directory; --dataset must be one of {_known_choices()}"
            )
    if local.is_dir():
        train_path, test_path = _find_split(local, "train"), _find_split(local, "test")
        if train_path is None:
            raise TrainerInputError(
                f"dataset directory {location} has no train file; add train.csv, train.jsonl or train.parquet"
            )
        train = _read_file(train_path, cache_dir)
        fingerprint = _sha(_file_sha(train_path), test_path and _file_sha(test_path))
        if test_path is not None:
            return train, _read_file(test_path, cache_dir), fingerprint
    else:
        train, fingerprint = _read_file(local, cache_dir), _file_sha(local)
    if len(train) < 2:
        raise TrainerInputError(
            f"dataset {location} has {len(train)} rows; it needs at least 2 to hold out an eval slice"
        )
    split = train.train_test_split(test_size=HELD_OUT_FRACTION, seed=SUBSET_SEED)
    return split["train"], split["test"], _sha(fingerprint, "held-out", HELD_OUT_FRACTION)


def _check_columns(dataset: Any, location: str, split: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise TrainerInputError(
            f"dataset {location} ({split}) is missing columns {missing}; found {dataset.column_names}; "
            f"it needs {list(REQUIRED_COLUMNS)}"
        )


def _to_label(value: Any) -> int:
    if isinstance(value, str):
        if value in LABEL2ID:
            return LABEL2ID[value]
        if value.strip().isdigit():
            value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(TOPICS):
        return value
    raise TrainerInputError(
        f"topic value {value!r} is not a label id 0-{len(TOPICS) - 1} or a topic name; "
        f"use one of {list(TOPICS)}"
    )


def _to_text_and_label(batch: dict[str, list]) -> dict[str, list]:
    texts = [
        " ".join(str(part).strip() for part in parts if part is not None and str(part).strip())
        for parts in zip(*(batch[c] for c in TEXT_COLUMNS), strict=True)
    ]
    return {"text": texts, "label": [_to_label(v) for v in batch["topic"]]}


def _normalise(dataset: Any, limit: int | None) -> Any:
    if limit is not None and limit < len(dataset):
        # A fixed-seed subset: every trial of an experiment trains and evaluates on the same rows.
        dataset = dataset.shuffle(seed=SUBSET_SEED).select(range(limit))
    return dataset.map(
        _to_text_and_label, batched=True, remove_columns=dataset.column_names, keep_in_memory=True
    )


def load_raw(
    dataset: str, cache_dir: str, max_train_samples: int | None, max_eval_samples: int | None
) -> RawData:
    if dataset == SYNTHETIC:
        train, test, fingerprint = _load_synthetic()
    elif dataset in HUB_DATASETS:
        train, test, fingerprint = _load_hub(dataset, cache_dir)
    elif "/" in dataset or "." in dataset or Path(dataset).expanduser().exists():
        train, test, fingerprint = _load_path(dataset, cache_dir)
    else:
        raise TrainerInputError(f"unknown dataset {dataset!r}; --dataset must be one of {_known_choices()}")
    _check_columns(train, dataset, "train")
    _check_columns(test, dataset, "eval")
    return RawData(
        name=dataset,
        fingerprint=_sha(fingerprint, max_train_samples, max_eval_samples),
        train=_normalise(train, max_train_samples),
        eval=_normalise(test, max_eval_samples),
    )


def tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return _sha(
        backend.to_str() if backend is not None else tokenizer.name_or_path, tokenizer.model_max_length
    )


def tokenize(dataset: Any, tokenizer: Any, max_seq_length: int, cache_dir: str, key: str) -> Any:
    """Tokenized copy of ``dataset`` (columns input_ids, attention_mask, labels), cached on disk by ``key``.

    No padding here: the collator pads each batch to its longest row, which is much faster than padding
    every short text to ``max_seq_length``.
    """
    from filelock import FileLock

    directory = Path(cache_dir) / "tokenized"
    directory.mkdir(parents=True, exist_ok=True)
    fingerprint = _sha(key, tokenizer_fingerprint(tokenizer), max_seq_length, TOKENIZATION_VERSION)
    cache_file = directory / f"{fingerprint}.arrow"

    def encode(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_seq_length)
        return {**encoded, "labels": batch["label"]}

    # Concurrent trials of one experiment share the cache: the lock makes one tokenize, the rest read.
    with FileLock(str(cache_file) + ".lock"):
        return dataset.map(
            encode,
            batched=True,
            remove_columns=dataset.column_names,
            cache_file_name=str(cache_file),
            load_from_cache_file=True,
            # Our key already names the result; without it datasets would pickle and hash `encode`, the
            # tokenizer included, in every process of every trial before finding the cached file.
            new_fingerprint=fingerprint,
            desc=None,
        )


def row_lengths(dataset: Any) -> list[int]:
    """Tokens per row of a tokenized dataset, read from the Arrow column (no Python pass over the rows),
    for length-grouped batches."""
    import pyarrow.compute as pc

    return pc.list_value_length(dataset.with_format("arrow")["input_ids"]).to_pylist()
