"""``katib experiment compare --backend cluster``: the same table from Katib's Experiment and Trial objects."""

from __future__ import annotations

import json

from tests.experiments.backends.cluster.katib_world import NS, Outcome, cluster_experiment, play_katib


def test_compare_reads_katibs_trials_and_marks_the_best(platform, katib, tmp_path):
    exp = cluster_experiment(tmp_path)
    names = play_katib(platform, exp, [
        Outcome("aaaaaaaa", "1e-4", "16", accuracy=("0.61", "0.66")),
        Outcome("bbbbbbbb", "8e-4", "32", condition="EarlyStopped", accuracy=("0.58",)),
        Outcome("cccccccc", "3e-3", "64", accuracy=("0.70", "0.72")),
    ])  # fmt: skip
    code, out, err = katib("compare", "quickstart", "--backend", "cluster", "--namespace", NS, "-o", "json")
    assert code == 0, err
    rows = {row["trial"]: row for row in json.loads(out)["experiments"][0]["trials"]}
    assert set(rows) == set(names)
    assert rows[names[1]]["status"] == "EarlyStopped"
    code, out, err = katib("compare", "quickstart", "--backend", "cluster", "--namespace", NS)
    assert code == 0, err
    (best,) = [line for line in out.splitlines() if line.startswith("* ") and "best:" not in line]
    assert "0.72" in best and max(map(len, out.splitlines())) <= 80


def test_cluster_flags_without_the_cluster_backend_are_a_usage_error(katib):
    code, _, err = katib("compare", "quickstart", "--namespace", NS)
    assert code == 2 and "--backend cluster" in err and "Traceback" not in err
