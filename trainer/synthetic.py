"""A synthetic yahoo_answers_topics: the same schema and the 10 real topic names, generated offline.

Learnable but not trivially separable: each text carries a few topic keywords drowned in shared filler,
some keywords come from a "neighbouring" topic (Health ~ Science, Business ~ Politics, ...), and a slice of
labels is noisy, so a good model tops out well below 100%.
"""

from __future__ import annotations

import random

from trainer.labels import TOPICS

SYNTHETIC_TRAIN_ROWS = 4000
SYNTHETIC_TEST_ROWS = 800
# Fixed so every trial (any --seed) sees the same data and reuses the same tokenization cache.
SYNTHETIC_DATA_SEED = 20240611
LABEL_NOISE = 0.12

_KEYWORDS = (
    "religion culture tradition custom ritual festival heritage belief myth language ethics society community holiday",
    "physics chemistry equation algebra theorem molecule atom planet galaxy calculus geometry experiment gravity",
    "doctor symptom disease diet vitamin fever pain allergy medicine exercise sleep infection headache",
    "school teacher homework college exam degree dictionary grammar essay library student university tutor",
    "computer software laptop windows internet browser email password virus keyboard download website printer",
    "football soccer basketball team coach player league baseball tennis goal match stadium referee",
    "money bank loan credit tax stock investment salary mortgage budget insurance business market",
    "music movie song band singer album actor guitar concert film celebrity television lyrics",
    "boyfriend girlfriend marriage wife husband dating parents divorce friendship wedding baby sister crush",
    "president election government congress senator vote law policy war military democracy court mayor",
)
# Keyword leakage between related topics: this is what keeps accuracy clearly below 100%.
_NEIGHBOUR = {0: 9, 1: 2, 2: 1, 3: 1, 4: 3, 5: 7, 6: 9, 7: 5, 8: 0, 9: 6}
_FILLER = (
    "the a an and or but so if when what why how is are was were be have has do does can could would "
    "should really very just still also about some any many much more most other another good bad best "
    "new old big small first last time year day people thing way think know want need help please "
    "anyone someone tell find get make go see look use work try like feel question answer thanks "
    "because maybe probably always never often sometimes here there this that these those my your"
).split()
_TITLES = (
    "What is the best {k} for {f}?",
    "How do I deal with {k} and {k2}?",
    "Why does my {k} {f} so much?",
    "Anyone know about {k}?",
    "Question about {k} {f}",
)


def _keyword(rng: random.Random, label: int, vocab: list[list[str]]) -> str:
    roll = rng.random()
    if roll < 0.65:
        source = label
    elif roll < 0.85:
        source = _NEIGHBOUR[label]
    else:
        source = rng.randrange(len(TOPICS))
    return rng.choice(vocab[source])


def _sentence(rng: random.Random, label: int, vocab: list[list[str]], n_words: int, n_keywords: int) -> str:
    words = [rng.choice(_FILLER) for _ in range(n_words)]
    for _ in range(n_keywords):
        words.insert(rng.randrange(len(words) + 1), _keyword(rng, label, vocab))
    return " ".join(words).capitalize() + "."


def generate_rows(n_rows: int, seed: int) -> dict[str, list]:
    """Columns ``topic`` (int label), ``question_title``, ``question_content``, ``best_answer``."""
    rng = random.Random(seed)
    vocab = [line.split() for line in _KEYWORDS]
    columns: dict[str, list] = {"topic": [], "question_title": [], "question_content": [], "best_answer": []}
    for _ in range(n_rows):
        label = rng.randrange(len(TOPICS))
        title = rng.choice(_TITLES).format(
            k=_keyword(rng, label, vocab), k2=_keyword(rng, label, vocab), f=rng.choice(_FILLER)
        )
        content = _sentence(rng, label, vocab, rng.randint(4, 12), rng.randint(1, 2))
        answer = _sentence(rng, label, vocab, rng.randint(8, 24), rng.randint(1, 3))
        if rng.random() < LABEL_NOISE:
            label = rng.randrange(len(TOPICS))
        columns["topic"].append(label)
        columns["question_title"].append(title)
        columns["question_content"].append(content)
        columns["best_answer"].append(answer)
    return columns


def synthetic_splits() -> tuple[dict[str, list], dict[str, list]]:
    return (
        generate_rows(SYNTHETIC_TRAIN_ROWS, SYNTHETIC_DATA_SEED),
        generate_rows(SYNTHETIC_TEST_ROWS, SYNTHETIC_DATA_SEED + 1),
    )
