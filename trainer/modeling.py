"""Tokenizer and model: a pretrained sequence-classification checkpoint, or ``tiny`` built offline.

``tiny`` trains a byte-level BPE tokenizer on the training texts (cached per dataset fingerprint, so
every trial of an experiment shares it) and builds a small RoBERTa from a config. Both are saved with the
checkpoint and reload with the Auto* classes, like any hub model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.args import TINY_MODEL
from trainer.errors import TrainerInputError
from trainer.labels import ID2LABEL, LABEL2ID

TINY_VOCAB_SIZE = 2000
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
# 512 usable positions + RoBERTa's padding offset of 2, like roberta-base: KServe's --max_model_len=512 fits.
TINY_CONFIG = dict(
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=256,
    max_position_embeddings=514,
    type_vocab_size=1,
)


def _tiny_tokenizer_dir(cache_dir: str, data_fingerprint: str) -> Path:
    return Path(cache_dir) / "tokenizers" / f"tiny-bpe{TINY_VOCAB_SIZE}-{data_fingerprint}"


def _train_tiny_tokenizer(texts: Iterator[str], target: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    # show_progress=False: the trainer's progress bar would land on stdout, which belongs to metric lines.
    bpe.train_from_iterator(
        texts, vocab_size=TINY_VOCAB_SIZE, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target, then renamed: a concurrent trial never sees a half-written tokenizer.
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        bpe.save_model(str(staging))
        tokenizer = RobertaTokenizer(
            vocab=str(staging / "vocab.json"), merges=str(staging / "merges.txt"), model_max_length=512
        )
        tokenizer.save_pretrained(str(staging))
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "tokenizer_config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _local_model_dir(model_name_or_path: str, cache_dir: str) -> str:
    from trainer import s3

    if not s3.is_s3_uri(model_name_or_path):
        return model_name_or_path
    bucket, prefix = s3.parse_s3_uri(model_name_or_path)
    target = Path(cache_dir) / "models" / bucket / prefix.strip("/")
    if not (target / "config.json").exists():
        s3.download(model_name_or_path.rstrip("/") + "/", target)
    return str(target)


def load_tokenizer(model_name_or_path: str, cache_dir: str, data_fingerprint: str, texts: Any) -> Any:
    """The tokenizer; for ``tiny`` it is trained on ``texts`` (an iterable of str) unless already cached."""
    from transformers import AutoTokenizer

    if model_name_or_path == TINY_MODEL:
        directory = _tiny_tokenizer_dir(cache_dir, data_fingerprint)
        if not (directory / "tokenizer_config.json").exists():
            from filelock import FileLock

            directory.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(directory) + ".lock"):
                if not (directory / "tokenizer_config.json").exists():
                    _train_tiny_tokenizer(iter(texts), directory)
        return AutoTokenizer.from_pretrained(str(directory))
    source = _local_model_dir(model_name_or_path, cache_dir)
    try:
        return AutoTokenizer.from_pretrained(source, cache_dir=str(Path(cache_dir) / "hub"))
    except (OSError, ValueError) as error:
        raise TrainerInputError(
            f"cannot load a tokenizer from {model_name_or_path!r} ({str(error).splitlines()[0][:160]}); "
            f"pass a hub id, a local checkpoint directory, an s3:// prefix or --model_name_or_path={TINY_MODEL}"
        ) from None


def load_model(
    model_name_or_path: str, cache_dir: str, tokenizer: Any, seed: int, attn_implementation: str = "sdpa"
) -> Any:
    import transformers
    from transformers import AutoConfig, AutoModelForSequenceClassification

    labels = dict(num_labels=len(ID2LABEL), id2label=ID2LABEL, label2id=LABEL2ID)
    if model_name_or_path == TINY_MODEL:
        transformers.set_seed(seed)
        config = AutoConfig.for_model(
            "roberta",
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **TINY_CONFIG,
            **labels,
        )
        return AutoModelForSequenceClassification.from_config(config, attn_implementation=attn_implementation)
    source = _local_model_dir(model_name_or_path, cache_dir)
    # The new classification head is drawn from the global RNG: without this, --seed would not decide it
    # and repeated trials of one configuration would start from different heads.
    transformers.set_seed(seed)
    try:
        # A checkpoint fine-tuned on other labels gets a fresh head instead of a shape error.
        return AutoModelForSequenceClassification.from_pretrained(
            source,
            cache_dir=str(Path(cache_dir) / "hub"),
            ignore_mismatched_sizes=True,
            attn_implementation=attn_implementation,
            **labels,
        )
    except (OSError, ValueError) as error:
        raise TrainerInputError(
            f"cannot load a sequence-classification model from {model_name_or_path!r} "
            f"({str(error).splitlines()[0][:160]}); pass a hub id, a local checkpoint directory, "
            f"an s3:// prefix or --model_name_or_path={TINY_MODEL}"
        ) from None
