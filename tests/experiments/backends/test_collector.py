"""Katib's metric collection: table tests of the parsing rules (file-metricscollector.go), the min/max/latest
summary (trial_controller_util.go) and the optimal-trial rule (status_util.go)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from experiments.backends._protocol import MetricSummary, Observation, TrialRecord
from experiments.collector import (
    UNAVAILABLE,
    InvalidMetricsFormatError,
    LineCollector,
    MetricsCollectionError,
    collect_file,
    goal_reached,
    objective_value,
    observation_log,
    optimal_trial,
    parse_float,
    parse_json,
    parse_rfc3339,
    parse_text,
    summarize,
)
from experiments.errors import KatibSuiteError
from experiments.spec._model import MetricsCollector, MetricStrategy, Objective

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)


def pairs(observations):
    return [(o.name, o.value) for o in observations]


@pytest.mark.parametrize(
    ("line", "names", "expected"),
    [
        (
            "eval_loss=0.91 eval_accuracy=0.71",
            ["eval_accuracy", "eval_loss"],
            [("eval_loss", "0.91"), ("eval_accuracy", "0.71")],
        ),
        ("loss=-1.5e-3", ["loss"], [("loss", "-1.5e-3")]),
        ("loss=+2E+10", ["loss"], [("loss", "+2E+10")]),
        ("loss=0.5,acc=.7", ["loss", "acc"], [("loss", "0.5"), ("acc", ".7")]),
        ("loss = 0.25", ["loss"], [("loss", "0.25")]),
        ("val-acc=0.9 a|b=3", ["val-acc", "a|b"], [("val-acc", "0.9"), ("a|b", "3")]),
        # only known names are recorded; other pairs on the same line are ignored
        ("epoch=2 loss=0.3 lr=1e-5", ["loss"], [("loss", "0.3")]),
        # a line without any metric name is skipped before the regex runs
        ("epoch=2 step=100", ["loss"], []),
        # the name is only a substring here: the line is considered, but group 1 is "my_loss", not "loss"
        ("my_loss=0.4", ["loss"], []),
        # the value group can match empty (loss=nan): Katib records "" as the value
        ("loss=nan", ["loss"], [("loss", "")]),
        # integers and repeated reports on one line are each recorded
        ("loss=3 loss=4", ["loss"], [("loss", "3"), ("loss", "4")]),
        # Go's \w is ASCII: the non-ASCII prefix is not part of the name
        ("éloss=0.5", ["loss"], [("loss", "0.5")]),
    ],
)
def test_default_regex_table(line, names, expected):
    assert pairs(parse_text([line], names)) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("2026-01-01T10:00:00Z", T0),
        ("2026-01-01T10:00:00.123456789Z", T0.replace(microsecond=123456)),
        ("2026-01-01T12:00:00+02:00", T0),
        ("2026-01-01", None),  # a date is not RFC 3339
        ("2026-01-01t10:00:00z", None),  # Go's layout wants upper-case T and Z
        ("2026-13-01T10:00:00Z", None),  # out of range
        ("epoch=1", None),
    ],
)
def test_first_token_timestamp(head, expected):
    [obs] = parse_text([f"{head} loss=0.5"], ["loss"])
    assert obs.timestamp == expected
    assert parse_rfc3339(head) == expected


def test_line_without_space_has_no_timestamp():
    [obs] = parse_text(["loss=0.5"], ["loss"])
    assert obs.timestamp is None


def test_multiple_regexes_all_apply():
    regexes = [r"(loss)\s*:\s*([\d.]+)", r"\{\"(acc)\": ([\d.]+)\}"]
    obs = parse_text(['loss: 0.3 {"acc": 0.8} loss=9'], ["loss", "acc"], regexes)
    assert pairs(obs) == [("loss", "0.3"), ("acc", "0.8")]


def test_user_regex_go_spellings_are_translated():
    obs = parse_text(["metric acc is 0.9"], ["acc"], [r"(?<name>[[:alpha:]]+) is (?<value>[[:digit:].]+)\z"])
    assert pairs(obs) == [("acc", "0.9")]


@pytest.mark.parametrize(
    "regex",
    [r"(loss)(?==)=([\d.]+)", r"(loss)=(\d)\1", r"([a-z"],
)
def test_regex_go_cannot_run_is_a_clear_error(regex):
    with pytest.raises(InvalidMetricsFormatError, match="metricsFormat"):
        parse_text(["loss=1"], ["loss"], [regex])


def test_regex_with_one_group_records_nothing():
    assert parse_text(["loss=1"], ["loss"], [r"(loss)=\d"]) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"loss": "0.5", "timestamp": "2026-01-01T10:00:00Z"}', [("loss", "0.5", T0)]),
        ('{"loss": "0.5", "timestamp": 1767261600.0}', [("loss", "0.5", T0)]),
        ('{"loss": "0.5", "timestamp": 1767261600}', [("loss", "0.5", T0)]),
        ('{"loss": "0.5", "timestamp": "yesterday"}', [("loss", "0.5", None)]),
        ('{"loss": "0.5", "timestamp": true}', [("loss", "0.5", None)]),
        ('{"loss": 0.5}', []),  # numbers are ignored: only JSON strings count
        ('{"loss": null, "acc": ["0.1"]}', []),
        ('{"loss": "0.5", "acc": "0.9"}', [("loss", "0.5", None), ("acc", "0.9", None)]),
        ("", []),
        ("null", []),
    ],
)
def test_json_lines(line, expected):
    obs = parse_json([line], ["loss", "acc"])
    assert [(o.name, o.value, o.timestamp) for o in obs] == expected


@pytest.mark.parametrize("line", ["loss=0.5", "[1, 2]", '{"loss": NaN}'])
def test_json_bad_line_is_a_clear_error(line):
    with pytest.raises(MetricsCollectionError, match="line 1"):
        parse_json([line], ["loss"])


def test_line_collector_text_and_json(tmp_path):
    text = LineCollector(MetricsCollector(kind="StdOut"), ["loss"])
    assert pairs(text.feed("2026-01-01T10:00:00Z loss=0.5\n")) == [("loss", "0.5")]
    assert text.feed("no metrics here") == []
    js = LineCollector(MetricsCollector(kind="File", file_path="m.json", file_format="JSON"), ["loss"])
    assert pairs(js.feed('{"loss": "0.4"}')) == [("loss", "0.4")]
    custom = MetricsCollector(kind="File", file_path="m.log", metrics_format=(r"(\w+):([\d.]+)",))
    path = tmp_path / "m.log"
    path.write_text("loss:0.3\r\nloss=0.9\nloss:0.2")
    assert pairs(collect_file(custom, ["loss"], path)) == [("loss", "0.3"), ("loss", "0.2")]


@pytest.mark.parametrize("kind", ["TensorFlowEvent", "PrometheusMetric", "Custom", "Push"])
def test_collector_kinds_the_local_backend_cannot_read(kind):
    with pytest.raises(
        KatibSuiteError,
        match=rf"collector kind {kind} is not supported by the local backend.*--backend cluster",
    ):
        LineCollector(MetricsCollector(kind=kind), ["loss"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5", 0.5),
        (".7", 0.7),
        ("-1e-3", -1e-3),
        ("0x1p-2", 0.25),
        ("Inf", float("inf")),
        ("", None),
        (" 1", None),
        ("1_0", None),
        ("1e400", None),
        ("abc", None),
        ("١", None),
    ],
)
def test_parse_float_is_go_strconv(text, expected):
    assert parse_float(text) == expected


def obs(name, value, seconds=None):
    return Observation(name, value, None if seconds is None else T0.replace(second=seconds))


def test_summary_min_max_latest_and_unavailable():
    log = [
        obs("loss", "0.5", 1),
        obs("loss", "0.25", 2),
        obs("loss", "0.75", 3),
        obs("loss", "x", 4),
        obs("acc", "0.1", 5),
    ]
    loss, acc, f1 = summarize(log, ["loss", "acc", "f1"])
    assert loss == MetricSummary("loss", min="0.25", max="0.75", latest="x")
    assert acc == MetricSummary("acc", "0.1", "0.1", "0.1")
    assert f1 == MetricSummary("f1", UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)


def test_summary_latest_is_by_timestamp_and_keeps_original_strings():
    log = [obs("loss", "1.0", 9), obs("loss", "2.00", 3), obs("loss", "0.50", None)]
    [loss] = summarize(log, ["loss"])
    assert loss == MetricSummary("loss", min="0.50", max="2.00", latest="1.0")
    # equal timestamps: the later line wins (Katib: !timestamp.After(current))
    [tie] = summarize([obs("loss", "1", None), obs("loss", "2", None)], ["loss"])
    assert tie.latest == "2"


def test_observation_log_without_objective_is_unavailable():
    log = [obs("acc", "0.1")]
    assert observation_log(log, ["loss", "acc"]) == [Observation("loss", UNAVAILABLE, None)]
    assert observation_log([*log, obs("loss", "1")], ["loss", "acc"]) == [*log, obs("loss", "1")]


def trial(name, values, condition="Succeeded", metric="loss"):
    return TrialRecord(
        name=name,
        parameters={},
        condition=condition,
        observations=tuple(obs(metric, v, i) for i, v in enumerate(values)),
    )


MIN_LOSS = Objective(type="minimize", objective_metric_name="loss", goal=0.2)
MAX_ACC = Objective(type="maximize", objective_metric_name="loss")


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        (MIN_LOSS, 0.3),
        (MAX_ACC, 0.9),
        (Objective("minimize", "loss", metric_strategies=(MetricStrategy("loss", "latest"),)), 0.5),
        (Objective("minimize", "loss", metric_strategies=(MetricStrategy("loss", "max"),)), 0.9),
    ],
)
def test_objective_value_by_strategy(objective, expected):
    assert objective_value(trial("t", ["0.9", "0.3", "0.5"]), objective) == expected


def test_objective_value_unavailable_and_from_summary():
    assert objective_value(trial("t", []), MIN_LOSS) is None
    assert objective_value(trial("t", ["0.4"], metric="acc"), MIN_LOSS) is None
    summarized = TrialRecord(
        "t", {}, "Succeeded", metrics=(MetricSummary("loss", UNAVAILABLE, UNAVAILABLE, "2"),)
    )
    assert objective_value(summarized, MIN_LOSS) == 2.0  # min unavailable -> latest, as Katib


def test_optimal_trial_rule():
    trials = [
        trial("a", ["0.5"]),
        trial("b", ["0.3"], condition="EarlyStopped"),  # early-stopped trials can be optimal
        trial("c", ["0.3"]),  # tie: the earlier trial stays optimal
        trial("d", ["0.1"], condition="Failed"),  # Katib has no observation for failed trials
        trial("e", ["0.05"], condition="Running"),
        trial("f", [""]),  # a non-numeric value never wins here
        trial("g", []),
    ]
    assert optimal_trial(trials, MIN_LOSS).name == "b"
    assert optimal_trial(trials, MAX_ACC).name == "a"
    assert optimal_trial([trial("g", [])], MIN_LOSS) is None


@pytest.mark.parametrize(
    ("value", "objective", "expected"),
    [
        (0.2, MIN_LOSS, True),
        (0.21, MIN_LOSS, False),
        (0.8, Objective("maximize", "acc", goal=0.8), True),
        (0.79, Objective("maximize", "acc", goal=0.8), False),
        (0.0, MAX_ACC, False),
    ],
)
def test_goal_reached(value, objective, expected):
    assert goal_reached(value, objective) is expected
