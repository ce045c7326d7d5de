"""Issue 7's CLI faults: names from the command line, deletes that stay inside the experiment's folder,
deleting a running experiment, and experiments submitted from Python but not yet run.

Every test here failed before issue 7 (``--name '../x'`` was accepted and ``delete`` then removed files
outside ``.katib/``; ``list``/``status`` of a Created experiment raised rich's MarkupError; ``delete`` of
a running experiment left the runner with a traceback and its trials running).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.cli import main
from tests.experiments.test_cli_run import REPO_ROOT, write_experiment

BAD_NAMES = ["Bad Name ünï", "../outside", "x/../../y", "UPPER", "-lead", "trail-", "a" * 64, "", ".", ".."]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KATIB_STORAGE", raising=False)
    write_experiment(tmp_path / "exp.yaml", name="lc-exp", values=("0.2", "0.5"), max_trials=2)
    return tmp_path


def verbs_with(name: str) -> list[list[str]]:
    """Every verb's NAME / TRIAL argument (and submit's --name) given ``name``."""
    return [
        ["submit", "exp.yaml", "--name", name],
        ["status", name],
        ["trials", name],
        ["logs", name, "lc-exp-abcdefgh"],
        ["logs", "lc-exp", name],
        ["delete", name, "--yes"],
        ["resume", name],
        ["watch", name],
        ["compare", name],
        ["ui", name],
    ]


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(["experiment", *argv])
    except SystemExit as exit_:  # argparse's own exit (code 2)
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("name", BAD_NAMES)
def test_every_verb_refuses_a_name_katib_would_refuse(workspace, capsys, name):
    for argv in verbs_with(name):
        code, text = run(argv, capsys)
        assert code == 2, (argv, text)
        assert "Traceback" not in text, (argv, text)
        if name.startswith("-"):  # argparse reads it as a flag: its own one-line error, exit 2
            assert " error: " in text, (argv, text)
        else:
            assert "not a valid" in text and "metadata.name" in text, (argv, text)
    assert not (workspace / ".katib").exists()  # refused before any storage or folder was made


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.sampled_from("ab-./\\ Z\u00fc0_~*"), min_size=0, max_size=12))
def test_fuzzed_names_never_touch_anything_outside_the_experiments_folder(tmp_path_factory, capsys, name):
    import experiments

    root = tmp_path_factory.mktemp("fuzz")
    work = root / "work"
    (work / ".katib" / "other").mkdir(parents=True)
    for sentinel in (root / "sentinel.txt", work / "sentinel.txt", work / ".katib" / "other" / "keep.log"):
        sentinel.write_text("keep me")
    write_experiment(work / "exp.yaml", name="fz-exp", values=("0.2",), max_trials=1, parallel=1)
    experiments.submit(work / "exp.yaml", workdir=work)
    (work / ".katib" / "fz-exp" / "fz-exp-abcdefgh").mkdir(parents=True)
    (work / ".katib" / "fz-exp" / "fz-exp-abcdefgh" / "job-0.log").write_text("a trial's log")
    before = tree(root)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        for argv in [*verbs_with(name), ["delete", "fz-exp", "--yes"]]:
            if argv[0] == "submit":
                continue  # would run trials; its --name is checked by the same argparse type as NAME
            code, text = run(argv, capsys)
            assert "Traceback" not in text, (argv, text)
            assert code in (1, 2) or argv[:2] == ["delete", "fz-exp"], (argv, code, text)
            assert "error:" in text or code == 0, (argv, text)
    finally:
        os.chdir(cwd)
    after = tree(root)
    own = "work/.katib/fz-exp/"
    # Every file that was there is there, unchanged, except the deleted experiment's own folder.
    assert {k: v for k, v in after.items() if k in before} == {
        k: v for k, v in before.items() if not k.startswith(own)
    } | {k: v for k, v in after.items() if k == "work/.katib/experiments.db"}
    assert not any(k.startswith(own) for k in after) and set(after) <= set(before)


def test_delete_removes_only_the_experiments_own_folder_and_never_follows_a_link(workspace, capsys):
    import experiments

    outside = workspace / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("user data")
    experiments.submit("exp.yaml", storage=None, workdir=workspace)
    katib = workspace / ".katib"
    (katib / "lc-exp").symlink_to(outside, target_is_directory=True)
    (katib / "lc-exp-2").mkdir()
    (katib / "lc-exp-2" / "x.log").write_text("another experiment's")
    code, text = run(["delete", "lc-exp", "--yes"], capsys)
    assert code == 0, text
    assert (outside / "precious.txt").read_text() == "user data"
    assert not (katib / "lc-exp").exists() and (katib / "lc-exp-2" / "x.log").exists()


def test_list_and_status_of_an_experiment_submitted_from_python_but_not_run(workspace, capsys):
    import experiments

    experiments.submit("exp.yaml", workdir=workspace)  # no wait(): Created, no trials
    for argv in (["list"], ["status", "lc-exp"], ["trials", "lc-exp"]):
        code, text = run(argv, capsys)
        assert code == 0 and "Traceback" not in text and "MarkupError" not in text, (argv, text)
    code, text = run(["list"], capsys)
    assert "lc-exp" in text and "Created" in text


def test_status_prints_user_text_literally(workspace, capsys):
    import experiments

    handle = experiments.submit("exp.yaml", workdir=workspace)
    handle.backend.store.set_study_attrs("lc-exp", message="see [bold]this[/bold] and [/] too")
    code, text = run(["status", "lc-exp"], capsys)
    assert code == 0 and "see [bold]this[/bold] and [/] too" in text


@pytest.mark.slow
def test_delete_of_a_running_experiment_stops_it_first_and_leaves_no_process(workspace, capsys):
    write_experiment(workspace / "slow.yaml", name="slow", values=("0.1", "0.2"), parallel=2, sleep="20")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    runner = subprocess.Popen(
        [sys.executable, "-m", "experiments.cli", "experiment", "submit", "slow.yaml"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        folder = workspace / ".katib" / "slow"
        deadline = time.monotonic() + 60
        while len(list(folder.glob("*/job-0.pid"))) < 2:
            assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
            time.sleep(0.1)
        pids = [int(p.read_text()) for p in folder.glob("*/job-0.pid")]
        code, text = run(["delete", "slow", "--yes"], capsys)
        assert code == 0 and "slow is running: stopping it first" in text, text
        _, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert "Traceback" not in err, err
    # Stopped as by Ctrl-C. (Its exit code is not ours to read: the delete, in this process, reaped it.)
    assert "interrupted: running trials were stopped" in err, err
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not folder.exists()
    code, text = run(["status", "slow"], capsys)
    assert code == 1 and "no experiment named 'slow'" in text
