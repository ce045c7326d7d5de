"""The predictor's forward pass: texts run in length-sorted sub-batches come back in request order, with the
scores each text gets on its own."""

from __future__ import annotations

import pytest

from serving._classifier import CPU_SUB_BATCH, SequenceClassifier


def test_sub_batches_keep_request_order_and_match_one_text_at_a_time(tiny_checkpoint):
    classifier = SequenceClassifier(str(tiny_checkpoint), device="cpu")
    # Lengths deliberately out of order, more texts than one sub-batch holds.
    texts = [" ".join(["football coach league"] * n) for n in (9, 1, 5, 12, 2, 7, 3, 11, 4, 10, 6, 8, 1, 13)]
    assert len(texts) > CPU_SUB_BATCH
    together = classifier(texts)
    for i, text in enumerate(texts):
        alone = classifier([text])
        assert together.indices[i] == alone.indices[0]
        assert together.probabilities[i] == pytest.approx(alone.probabilities[0], abs=1e-5)
