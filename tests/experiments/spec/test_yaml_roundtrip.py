"""Every YAML the project writes, as the commands write it, reads back under YAML 1.2 resolution (ruamel, an
independent reader), YAML 1.1 (PyYAML) and kubectl's rules to the same object, with Katib's string fields
(feasibleSpace min/max/step/list, trialParameters, algorithm settings, parameter assignments, metric values)
still strings: what ``render``, ``status -o yaml``, ``trials -o yaml`` and ``submit --dry-run`` print is what
``kubectl apply`` creates, and the shipped files mean to kubectl what they say.

The writers run for real: the CLI on the local backend (a one-trial run of the stand-in trial program) and on
the cluster backend (the stand-in API server holding what Katib writes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml as pyyaml
from ruamel.yaml import YAML

from experiments.cli import main
from experiments.spec import FeasibleSpace, dump_yaml, load_yaml, to_dict
from tests.experiments.backends._local_helpers import make_experiment
from tests.k8s_standin import k8s_standin, kubeconfig  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[3]
SHIPPED = sorted(
    [*(REPO / "experiments").glob("*.yaml"), *(REPO / "search_spaces").glob("*.yaml"),
     REPO / "infra" / "kind" / "quickstart.yaml"]
)  # fmt: skip


def yaml12(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def katib_strings(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every field Katib's Go types hold as a string, wherever it sits in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if key == "feasibleSpace" and isinstance(value, dict):
                for k in ("min", "max", "step"):
                    if k in value:
                        yield f"{here}.{k}", value[k]
                for i, item in enumerate(value.get("list") or []):
                    yield f"{here}.list[{i}]", item
            elif key == "trialParameters":
                for i, tp in enumerate(value or []):
                    for k, v in tp.items():
                        yield f"{here}[{i}].{k}", v
            elif key in ("algorithmSettings", "parameterAssignments"):
                for i, setting in enumerate(value or []):
                    yield f"{here}[{i}].value", setting.get("value")
            elif key == "metrics" and isinstance(value, list):
                for i, metric in enumerate(value):
                    for k in ("min", "max", "latest"):
                        if k in metric:
                            yield f"{here}[{i}].{k}", metric[k]
            else:
                yield from katib_strings(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from katib_strings(item, f"{path}[{i}]")


def check(text: str) -> Any:
    """The one object all readers agree on, its Katib strings strings; returns it."""
    ours = load_yaml(text)
    assert yaml12(text) == ours, "YAML 1.2 reads another object than kubectl"
    assert pyyaml.safe_load(text) == ours, "YAML 1.1 reads another object than kubectl"
    found = list(katib_strings(ours))
    wrong = [(p, v) for p, v in found if not isinstance(v, str)]
    assert not wrong, wrong
    return ours


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_files(path):
    document = check(path.read_text())
    assert any(p.endswith(".min") or ".list[" in p for p, _ in katib_strings(document))


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> str:
        code = main(["experiment", *argv])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    return run


def _tricky(exp):
    lr = dataclasses.replace(exp.parameters[0], feasible_space=FeasibleSpace(min="1e-4", max="3e-3"))
    return dataclasses.replace(exp, parameters=(lr, *exp.parameters[1:]))


def test_render(cli, tmp_path):
    exp = _tricky(make_experiment("yamlrender", tmp_path, max_trials=1, workers=1))
    path = tmp_path / "exp.yaml"
    path.write_text(dump_yaml(to_dict(exp)))
    assert check(path.read_text()) == to_dict(exp)
    out = cli("render", str(path), "--assign", "lr=1e-4", "--assign", "tag=yes")
    manifest = check(out)
    args = manifest["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["args"]
    assert "--lr=1e-4" in args and "--tag=yes" in args


def test_local_status_and_trials(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("KATIB_STORAGE", raising=False)
    exp = _tricky(make_experiment("yamllocal", tmp_path, plan="1e-2,0.5", max_trials=1, workers=0))
    path = tmp_path / "exp.yaml"
    path.write_text(dump_yaml(to_dict(exp)))
    cli("submit", str(path))
    status = check(cli("status", "yamllocal", "-o", "yaml"))
    space = status["spec"]["parameters"][0]["feasibleSpace"]
    assert (space["min"], space["max"]) == ("1e-4", "3e-3")
    best = status["status"]["currentOptimalTrial"]
    assert {m["name"]: m["min"] for m in best["observation"]["metrics"]}["accuracy"] == "1e-2"
    trials = check(cli("trials", "yamllocal", "-o", "yaml"))
    assert trials["items"][0]["spec"]["parameterAssignments"][1] == {"name": "tag", "value": "a;touch PWNED"}


def test_cluster_status_trials_and_dry_run(cli, tmp_path, k8s_standin, kubeconfig, monkeypatch):  # noqa: F811
    from tests.experiments.backends.cluster.katib_world import (
        NS,
        Outcome,
        cluster_experiment,
        experiment_file,
        install_platform,
        play_katib,
    )

    install_platform(k8s_standin)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    dry = check(cli("submit", str(experiment_file(tmp_path)), "--backend", "cluster", "--dry-run"))
    assert dry["spec"]["parameters"][0]["feasibleSpace"]["min"] == "1e-4"
    exp = cluster_experiment(tmp_path)
    play_katib(k8s_standin, exp, [Outcome("aaaaaaaa", "1e-4", "16", accuracy=("1e-2", "0.5"))])
    flags = ("--backend", "cluster", "--namespace", NS)
    status = check(cli("status", "quickstart", *flags, "-o", "yaml"))
    assert status["status"]["currentOptimalTrial"]["parameterAssignments"][0] == {
        "name": "lr",
        "value": "1e-4",
    }
    trials = check(cli("trials", "quickstart", *flags, "-o", "yaml"))
    assert trials["items"][0]["status"]["observation"]["metrics"][0]["min"] == "1e-2"
