"""Model loading: --seed decides the freshly initialised classification head of a pretrained checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow  # ~5 s, most of it importing transformers
def test_new_head_on_a_pretrained_body_follows_the_seed(tmp_path: Path) -> None:
    import torch
    from transformers import RobertaConfig, RobertaModel

    from trainer import modeling

    # A body without a classification head, as on the hub (roberta-large): load_model must create the head.
    config = RobertaConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    RobertaModel(config).save_pretrained(tmp_path / "body")

    calls = iter(range(100))

    def head(seed: int) -> torch.Tensor:
        torch.manual_seed(next(calls))  # whatever ran before (another RNG state each time) must not matter
        model = modeling.load_model(str(tmp_path / "body"), str(tmp_path / "cache"), None, seed)
        return model.classifier.out_proj.weight.detach().clone()

    assert torch.equal(head(7), head(7))
    assert not torch.equal(head(7), head(8))
