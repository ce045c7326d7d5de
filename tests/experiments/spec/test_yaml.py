"""YAML read and written as kubectl reads it (go-yaml v2 via sigs.k8s.io/yaml): numbers as YAML 1.2 writes
them, YAML 1.1's booleans. Everything the project writes reads back as the same object under YAML 1.2
(ruamel.yaml, an independent reader), YAML 1.1 (PyYAML) and kubectl's rules, with Katib's string fields
still strings; what it reads means what it means to kubectl."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
import yaml as pyyaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from experiments.backends._protocol import ExperimentStatus, MetricSummary, Observation, TrialRecord
from experiments.cli import main
from experiments.spec import (
    dump_yaml,
    load_experiment,
    load_yaml,
    parse_experiment,
    render_trial,
    to_dict,
    to_yaml,
    validate_experiment,
)
from experiments.spec._parse import parse_search_space
from experiments.status import katib_experiment
from tests.experiments.spec.conftest import FEATURES, QUICKSTART, REPO

SHIPPED = sorted((REPO / "experiments").glob("*.yaml"))
SEARCH_SPACES = sorted((REPO / "search_spaces").glob("*.yaml"))
FIXTURES = sorted(FEATURES.rglob("*.yaml"))


def yaml12(text: str):
    return YAML(typ="safe", pure=True).load(text)


def readers(text: str) -> list:
    """The same text through kubectl's rules, YAML 1.2 and YAML 1.1."""
    return [load_yaml(text), yaml12(text), pyyaml.safe_load(text)]


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        ("1e-4", 1e-4),  # YAML 1.2 / go-yaml: a float (PyYAML 1.1: the string "1e-4")
        ("3e-3", 3e-3),
        ("1.5", 1.5),
        (".5", 0.5),
        ("42", 42),
        ("0x1F", 31),
        ("0o17", 15),
        ("017", 15),  # Go's ParseInt base 0: a leading 0 is octal
        ("1_000", 1000),
        ("yes", True),  # go-yaml v2 keeps YAML 1.1's booleans (YAML 1.2: a string)
        ("off", False),
        ("n", False),
        ("~", None),
        ("2026-01-01", "2026-01-01"),  # go-yaml leaves timestamps as strings for interface{}
        ("1e400", "1e400"),  # Go's ParseFloat overflows: a string
        ("+Inf", "+Inf"),
        (".inf", math.inf),
        ("hello", "hello"),
    ],
)
def test_plain_scalars_read_as_kubectl_reads_them(plain, expected):
    assert load_yaml(f"v: {plain}") == {"v": expected}


def test_keys_become_strings_as_sigs_k8s_yaml_makes_them():
    assert load_yaml("1: a\ntrue: b\nn: c\n") == {"1": "a", "true": "b", "false": "c"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12))
def test_every_string_written_reads_back_as_that_string_under_every_reader(text):
    out = dump_yaml({"v": text, "l": [text]})
    for back in readers(out):
        assert back == {"v": text, "l": [text]}, out


@pytest.mark.parametrize(
    "text", ["1e-4", "yes", "on", "0o17", "0x1F", "1_000", "089", ".5", "1e400", "2026-01-01", "null", ""]
)
def test_ambiguous_strings_are_quoted(text):
    assert dump_yaml({"v": text}).strip() in (f"v: '{text}'", f'v: "{text}"')


def _katib_strings(document) -> list:
    """Every value Katib's Go types keep as a string: feasible spaces, settings, assignments, metrics."""
    spec = document.get("spec", document)
    found = []
    for p in spec.get("parameters") or []:
        space = p.get("feasibleSpace") or {}
        found += [space[k] for k in ("min", "max", "step") if k in space] + list(space.get("list") or [])
    for block in ("algorithm", "earlyStopping"):
        found += [s["value"] for s in (spec.get(block) or {}).get("algorithmSettings") or []]
    status = document.get("status") or {}
    optimal = status.get("currentOptimalTrial") or {}
    found += [a["value"] for a in optimal.get("parameterAssignments") or []]
    for metric in (optimal.get("observation") or {}).get("metrics") or []:
        found += [metric[k] for k in ("min", "max", "latest")]
    return found


@pytest.mark.parametrize("path", SHIPPED + SEARCH_SPACES + FIXTURES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_file_means_the_same_to_kubectl_and_yaml_1_2_with_katib_strings_strings(path):
    text = path.read_text()
    ours, as_12, _ = readers(text)
    assert ours == as_12
    strings = _katib_strings(ours)
    assert all(isinstance(v, str) for v in strings), strings


@pytest.mark.parametrize("path", SHIPPED + FIXTURES, ids=lambda p: str(p.relative_to(REPO)))
def test_to_yaml_reads_back_as_the_same_object(path):
    exp = parse_experiment(load_yaml(path.read_text()), source=str(path))
    written = to_yaml(exp)
    for back in readers(written):
        assert back == to_dict(exp)
    assert all(isinstance(v, str) for v in _katib_strings(load_yaml(written)))


def test_render_output_reads_back_as_the_manifest(tmp_path, capsys, quickstart):
    # An env var that receives a parameter verbatim: "1e-4" must stay a string (EnvVar.value is one).
    master = quickstart["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]["Master"]
    container = master["template"]["spec"]["containers"][0]
    container["env"] = [*container.get("env", []), {"name": "LR", "value": "${trialParameters.learningRate}"}]
    path = tmp_path / "env.yaml"
    path.write_text(dump_yaml(quickstart))
    argv = ["render", str(path), "--assign", "lr=1e-4", "--assign", "batch_size=32"]
    assert main(["experiment", *argv]) == 0
    out = capsys.readouterr().out
    manifest = render_trial(
        load_experiment(path), {"lr": "1e-4", "batch_size": "32"}, "quickstart-rendered", "default"
    )
    for back in readers(out):
        assert back == manifest
    assert "value: '1e-4'" in out


def test_status_document_reads_back_with_katib_strings_strings():
    t0 = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    best = TrialRecord(
        name="quickstart-abcdefgh",
        parameters={"lr": "3e-3", "batch_size": "32", "flag": "yes"},
        condition="Succeeded",
        metrics=(MetricSummary("eval_accuracy", "1e-2", "0.9", "0.9"),),
        observations=(Observation("eval_accuracy", "0.9", t0),),
        start_time=t0,
        completion_time=t0,
    )
    status = ExperimentStatus(
        "quickstart",
        "Succeeded",
        "ExperimentMaxTrialsReached",
        trials=(best,),
        optimal_trial=best,
        start_time=t0,
    )
    document = katib_experiment(status, to_dict(load_experiment(QUICKSTART)))
    written = dump_yaml(document)
    for back in readers(written):
        assert back == document
    strings = _katib_strings(load_yaml(written))
    assert "3e-3" in strings and "1e-2" in strings and "yes" in strings
    assert all(isinstance(v, str) for v in strings)


def test_an_unquoted_number_where_katib_wants_a_string_is_reported_with_the_fix(tmp_path):
    text = QUICKSTART.read_text()
    quoted = next(line for line in text.splitlines() if "min:" in line)
    unquoted = quoted.replace('"', "").replace("'", "")
    path = tmp_path / "unquoted.yaml"
    path.write_text(text.replace(quoted, unquoted, 1))
    from experiments.spec import InvalidExperimentError

    with pytest.raises(InvalidExperimentError) as error:
        load_experiment(path)
    (problem,) = [p for p in error.value.problems if p.path.endswith("feasibleSpace.min")]
    assert "must be a string in Katib's CRD; quote it" in problem.message


def test_a_search_space_with_an_unquoted_bound_is_reported_too():
    data = load_yaml(
        "parameters:\n- name: lr\n  parameterType: double\n  feasibleSpace: {min: 1e-5, max: '5e-5'}\n"
    )
    from experiments.spec import InvalidExperimentError

    with pytest.raises(InvalidExperimentError, match=r"feasibleSpace.min = 1e-05: must be a string"):
        parse_search_space(data, source="s.yaml")


def test_validate_on_an_unquoted_bound_via_the_cli(tmp_path, capsys):
    text = QUICKSTART.read_text()
    quoted = next(line for line in text.splitlines() if "max:" in line)
    path = tmp_path / "q.yaml"
    path.write_text(text.replace(quoted, quoted.replace('"', "").replace("'", ""), 1))
    assert main(["experiment", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "feasibleSpace.max" in err and "quote it" in err and "Traceback" not in err
    assert validate_experiment(load_experiment(QUICKSTART)) == []
