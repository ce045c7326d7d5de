"""``katib experiment compare`` on experiments the local backend ran: text that fits, JSON, CSV, errors."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from experiments.cli import main

pytestmark = pytest.mark.slow  # the session fixture runs real (stand-in) trials


def compare(runs, capsys, *args: str, columns: int = 80) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(columns))
        mp.chdir(runs.workdir)
        code = main(["experiment", "compare", *args, "--storage", runs.storage])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_table_fits_80_columns_marks_the_best_and_says_why(runs, capsys):
    code, out, err = compare(runs, capsys, "cmp-a")
    assert code == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, out
    assert "\x1b[" not in out  # piped: no ANSI escapes
    best = [line for line in lines if line.startswith("* ") and "best:" not in line]
    assert len(best) == 1 and "0.97" in best[0]
    assert any("EarlyStopped" in line and "2" in line for line in lines)
    notes = [line for line in lines if line.startswith("[")]
    assert any("exited with code 1" in n for n in notes), out
    assert any(
        "reported no value of 'accuracy'" in " ".join(lines[lines.index(n) : lines.index(n) + 2])
        for n in notes
    )
    assert "TRIAL-S = TIME x 1 process(es)" in out and "early stopping saved" in out


def test_wider_terminals_get_whole_names_and_the_step_spelled_out(runs, capsys):
    code, out, _ = compare(runs, capsys, "cmp-a", "cmp-b", columns=160)
    assert code == 0
    assert "EarlyStopped at step 2" in out and "accuracy (max)" in out
    assert "optimal trials" in out and "cmp-b" in out.split("optimal trials")[1]


def test_json_and_csv_carry_every_trial_with_sort_top_and_hide(runs, capsys):
    code, out, _ = compare(
        runs, capsys, "cmp-a", "--output", "json", "--sort", "accuracy", "--top", "3", "--hide", "tag"
    )
    assert code == 0
    (experiment,) = json.loads(out)["experiments"]
    trials = experiment["trials"]
    assert [t["rank"] for t in trials] == [1, 2, 3] and trials[0]["best"] is True
    assert "tag" not in trials[0]["parameters"] and experiment["trial_seconds_saved_by_early_stopping"] > 0
    code, out, _ = compare(runs, capsys, "cmp-a", "cmp-b", "--output", "csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 9 and {"lr", "tag", "batch_size", "trial_seconds"} <= set(table[0])
    assert {t["status"] for t in table} >= {"EarlyStopped at step 2", "MetricsUnavailable", "Failed"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope"], 1, "no experiment named 'nope'"),
        (
            ["cmp-a", "--sort", "bogus"],
            2,
            "--sort must be one of ['accuracy', 'lr', 'tag', 'duration', 'trial-seconds']",
        ),
        (["cmp-a", "--hide", "bogus"], 2, "--hide takes a parameter or additional metric name"),
        (["cmp-a", "cmp-a"], 2, "each experiment may be named once; repeated: cmp-a"),
    ],
)
def test_bad_input_is_one_clear_line(runs, capsys, args, code, message):
    got, _, err = compare(runs, capsys, *args)
    assert got == code and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_plotly_gets_the_pip_line_and_writes_nothing(runs, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "plotly", None)
    code, _, err = compare(runs, capsys, "cmp-a", "--html", str(tmp_path / "r.html"))
    assert code == 1 and "pip install 'plotly>=5.20'" in err
    assert not (tmp_path / "r.html").exists()
