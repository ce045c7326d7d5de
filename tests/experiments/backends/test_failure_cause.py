"""Why a trial failed, as the first line of its Katib message: found in the replica's log under torchrun's noise."""

from __future__ import annotations

import pytest

from experiments.backends._protocol import ExperimentStatus, TrialRecord
from experiments.backends.local._trial import failure_cause
from experiments.cli._views import status_lines
from tests.experiments.test_cli_run import bare_experiment

# What torchrun leaves in master-0.log when the trainer rejects its input (captured from a real run).
TORCHRUN_TAIL = """\
E1129 00:59:54.638000 18842 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 2) local_rank: 0
Traceback (most recent call last):
  File "/work/main/.venv/bin/torchrun", line 6, in <module>
    sys.exit(main())
  File "/work/main/.venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 383, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
trainer.train FAILED
------------------------------------------------------------
  exitcode  : 2 (pid: 18845)
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================
"""

CHILD_TRACEBACK = """\
Traceback (most recent call last):
  File "/work/main/trainer/train.py", line 200, in run
    trainer.train()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB
"""


@pytest.mark.parametrize(
    ("log", "cause"),
    [
        (
            "error: --learning_rate must be > 0, e.g. 2e-5; got: -0.0018\n" + TORCHRUN_TAIL,
            "--learning_rate must be > 0, e.g. 2e-5; got: -0.0018",
        ),
        (
            CHILD_TRACEBACK + TORCHRUN_TAIL,
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        ),
        (TORCHRUN_TAIL, None),  # only the launcher's wrapper: no cause to name
        ("standin: failing on purpose\n", None),
    ],
)
def test_failure_cause_skips_the_launchers_traceback(tmp_path, log, cause):
    path = tmp_path / "master-0.log"
    path.write_text(log)
    assert failure_cause(path) == cause


def test_failure_cause_of_a_missing_log_is_none(tmp_path):
    assert failure_cause(tmp_path / "never-written.log") is None


def test_status_text_names_why_each_failed_trial_failed():
    failed = TrialRecord(
        "exp-a",
        {},
        "Failed",
        reason="TrialFailed",
        message="replica master-0 exited with code 2: --learning_rate must be > 0 [sic]\nmore detail",
    )
    status = ExperimentStatus(name="exp", condition="Failed", trials=(failed,))
    lines = status_lines(status, bare_experiment())
    assert (
        "  failed:   exp-a: replica master-0 exited with code 2: --learning_rate must be > 0 \\[sic]" in lines
    )
