from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.trainer.conftest import KATIB_REGEX, parse_katib_line
from trainer.reporting import METRIC_NAMES, format_metric_line


def test_line_matches_the_documented_example() -> None:
    when = datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    line = format_metric_line(
        {"epoch": 1.0, "step": 120, "eval_loss": 0.91, "eval_accuracy": 0.71, "eval_f1": 0.70}, when
    )
    assert (
        line == "2026-01-01T10:00:00.123456Z epoch=1.0 step=120 eval_loss=0.91 eval_accuracy=0.71 eval_f1=0.7"
    )


def test_timestamp_is_rfc3339_utc_even_for_other_zones() -> None:
    when = datetime(2026, 1, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    stamp, values = parse_katib_line(format_metric_line({"eval_loss": 1.5}, when))
    assert stamp == "2026-01-01T10:30:00.000000Z"
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) == when
    assert values == {"eval_loss": 1.5}


@given(
    st.dictionaries(
        st.sampled_from(METRIC_NAMES),
        st.floats(allow_nan=False, allow_infinity=False, width=64) | st.integers(-(10**12), 10**12),
        min_size=1,
    )
)
def test_katib_regex_reads_back_every_value(metrics: dict[str, float]) -> None:
    _, parsed = parse_katib_line(format_metric_line(metrics))
    assert parsed.keys() == metrics.keys()
    for name, value in metrics.items():
        assert math.isclose(parsed[name], value, rel_tol=1e-12, abs_tol=0.0) or parsed[name] == value


@pytest.mark.parametrize(
    ("bad", "text"), [(float("nan"), "nan"), (float("inf"), "inf"), (-float("inf"), "-inf")]
)
def test_non_finite_values_are_printed_and_katib_reads_no_value(bad: float, text: str) -> None:
    # A diverged evaluation still gets its line; Katib's regex captures an empty value (unavailable).
    line = format_metric_line({"step": 3, "eval_loss": bad})
    assert line.endswith(f" step=3 eval_loss={text}")
    matches = {m.group(1): m.group(2) for m in KATIB_REGEX.finditer(line) if m.group(1) in METRIC_NAMES}
    assert matches == {"step": "3", "eval_loss": "-" if text == "-inf" else ""}


def test_unknown_metric_names_are_refused() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        format_metric_line({"accuracy": 0.5})


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_metric_line({"eval_loss": 0.5}, datetime(2026, 1, 1))
