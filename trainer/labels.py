"""The 10 topics of yahoo_answers_topics, in label-id order (the hub dataset's ClassLabel names)."""

from __future__ import annotations

TOPICS = (
    "Society & Culture",
    "Science & Mathematics",
    "Health",
    "Education & Reference",
    "Computers & Internet",
    "Sports",
    "Business & Finance",
    "Entertainment & Music",
    "Family & Relationships",
    "Politics & Government",
)
ID2LABEL = dict(enumerate(TOPICS))
LABEL2ID = {name: i for i, name in ID2LABEL.items()}
TEXT_COLUMNS = ("question_title", "question_content", "best_answer")
REQUIRED_COLUMNS = ("topic", *TEXT_COLUMNS)
