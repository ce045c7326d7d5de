"""``katib experiment validate|render``: exit codes, every problem printed, never a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.cli import main
from experiments.spec import dump_yaml, load_yaml
from tests.experiments.spec.conftest import QUICKSTART, REPO


def run(capsys, *argv):
    code = main(["experiment", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_valid_file(capsys):
    code, out, _ = run(
        capsys, "validate", str(QUICKSTART), "--search-space", str(REPO / "search_spaces/lr-batch.yaml")
    )
    assert code == 0 and "valid Katib Experiment 'quickstart'" in out


def test_validate_broken_file_prints_every_problem(tmp_path, capsys, quickstart):
    quickstart["spec"]["maxTrialCount"] = 0
    quickstart["spec"]["algorithm"]["algorithmName"] = "tpee"
    quickstart["spec"]["trialTemplate"]["primaryContainerName"] = "trainer"
    path = tmp_path / "broken.yaml"
    path.write_text(dump_yaml(quickstart))
    code, _, err = run(capsys, "validate", str(path))
    assert code == 1
    assert f"Experiment {path} is not valid, found" in err
    for field in (
        "spec.maxTrialCount",
        "spec.algorithm.algorithmName",
        "spec.trialTemplate.primaryContainerName",
    ):
        assert field in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--output", "-o"])  # the README spells it -o
def test_validate_json_output(tmp_path, capsys, quickstart, flag):
    quickstart["spec"]["parallelTrialCount"] = 9
    path = tmp_path / "x.yaml"
    path.write_text(dump_yaml(quickstart))
    code, out, _ = run(capsys, "validate", str(path), flag, "json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert [p["path"] for p in report["problems"]] == ["spec.parallelTrialCount"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("spec: [unclosed", "not valid YAML at line 1"),
        ("", "is empty"),
        ("a: 1\n---\nb: 2\n", "2 YAML documents"),
    ],
)
def test_malformed_yaml_is_one_clear_line(tmp_path, capsys, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, _, err = run(capsys, "validate", str(path))
    assert code == 1 and fragment in err and "Traceback" not in err


def test_missing_file(capsys):
    code, _, err = run(capsys, "validate", "nope.yaml")
    assert code == 1 and "does not exist" in err


def test_render_yaml_and_json(capsys):
    code, out, _ = run(capsys, "render", str(QUICKSTART), "--assign", "lr=2e-5", "--assign", "batch_size=32")
    job = load_yaml(out)
    assert code == 0 and job["metadata"]["name"] == "quickstart-rendered"
    assert (
        "--global_batch_size=32"
        in job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
    )
    code, out, _ = run(
        capsys,
        "render",
        str(QUICKSTART),
        "--assign",
        "lr=2e-5",
        "--assign",
        "batch_size=32",
        "--trial-name",
        "q-1",
        "--output",
        "json",
    )
    assert code == 0 and json.loads(out)["metadata"] == {"name": "q-1", "namespace": "default"}


def test_render_usage_errors_exit_2(capsys):
    code, _, err = run(capsys, "render", str(QUICKSTART), "--assign", "lr")
    assert code == 2 and "NAME=VALUE" in err
    with pytest.raises(SystemExit) as info:
        main(["experiment", "validate", str(QUICKSTART), "--output", "xml"])
    assert info.value.code == 2


def test_render_missing_assignment_exit_1(capsys):
    code, _, err = run(capsys, "render", str(QUICKSTART), "--assign", "lr=2e-5")
    assert code == 1 and "--assign batch_size=<value>" in err


_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=True), st.text(max_size=12)
)
_yamlish = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow
@_FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_random_text_never_tracebacks(tmp_path_factory, capsys, text):
    path = tmp_path_factory.mktemp("fuzz") / "f.yaml"
    path.write_text(text, encoding="utf-8")
    assert run(capsys, "validate", str(path))[0] in (0, 1)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


_QS = load_yaml(QUICKSTART.read_text())
_ALL_PATHS = [p for p in _paths(_QS) if p]


@pytest.mark.slow
@_FUZZ
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(_ALL_PATHS), st.one_of(_yamlish, st.just("__delete__"))),
        min_size=1,
        max_size=4,
    )
)
def test_fuzz_mutated_spec_never_tracebacks(tmp_path_factory, capsys, mutations):
    import copy

    doc = copy.deepcopy(_QS)
    for path, value in mutations:
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            if value == "__delete__":
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    file = tmp_path_factory.mktemp("fuzz") / "m.yaml"
    file.write_text(dump_yaml(doc))
    code, out, err = run(capsys, "validate", str(file), "--output", "json")
    assert code in (0, 1)
    assert json.loads(out)["valid"] is (code == 0)
    code, _, err = run(capsys, "render", str(file), "--assign", "lr=2e-5", "--assign", "batch_size=32")
    assert code in (0, 1) and "Traceback" not in err


def test_render_says_when_a_value_is_outside_the_search_space(capsys):
    code, out, err = run(capsys, "render", str(QUICKSTART), "--assign", "lr=abc", "--assign", "batch_size=23")
    assert code == 0 and "--learning_rate=abc" in out  # rendered as asked: a what-if is legitimate
    assert "note: lr=abc is not a number but the parameter is double" in err
    assert "note: batch_size=23 is not in its list ['16', '32', '64']" in err
    code, _, err = run(capsys, "render", str(QUICKSTART), "--assign", "lr=5e-2", "--assign", "batch_size=32")
    assert "note: lr=5e-2 is outside its feasible space [1e-4, 3e-3]" in err
    code, _, err = run(capsys, "render", str(QUICKSTART), "--assign", "lr=1e-3", "--assign", "batch_size=32")
    assert err == ""
