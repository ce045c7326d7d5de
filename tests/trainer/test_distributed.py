"""trainer.distributed.on_every_rank across two real gloo processes: any rank's failure fails them all, and
only rank 0 reports it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.conftest import REPO_ROOT, trainer_env

SCRIPT = """\
import json
import sys
from pathlib import Path

from trainer import distributed
from trainer.errors import TrainerInputError

env = distributed.detect()
distributed.init(env)


def fail_on(rank, error):
    def work():
        if env.rank == rank:
            raise error
        return f"ok from {env.rank}"

    return work


cases = {
    "all succeed": fail_on(None, None),
    "rank 1 bad input": fail_on(1, TrainerInputError("rank 1 cannot read its data; fix it")),
    "rank 0 bad input": fail_on(0, TrainerInputError("rank 0 cannot read its data; fix it")),
    "rank 1 bug": fail_on(1, ValueError("a bug")),
}
results = []
for case, work in cases.items():
    try:
        outcome = ["returned", distributed.on_every_rank(env, work)]
    except Exception as error:
        outcome = [type(error).__name__, str(error)]
    results.append({"case": case, "rank": env.rank, "outcome": outcome})
# One file per rank: two processes printing to one pipe can interleave within a line.
Path(sys.argv[1], f"rank{env.rank}.json").write_text(json.dumps(results))
distributed.destroy()
"""


@pytest.mark.slow
def test_on_every_rank_fails_every_rank_and_rank_zero_reports(cache_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "agree.py"
    script.write_text(SCRIPT)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
        str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=trainer_env(cache_dir), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = {}
    for rank in (0, 1):
        for record in json.loads((tmp_path / f"rank{rank}.json").read_text()):
            seen[record["case"], record["rank"]] = record["outcome"]
    assert seen == {
        ("all succeed", 0): ["returned", "ok from 0"],
        ("all succeed", 1): ["returned", "ok from 1"],
        # rank 0 names the other rank's problem; rank 1 stays quiet
        ("rank 1 bad input", 0): ["TrainerError", "rank 1 failed: rank 1 cannot read its data; fix it"],
        ("rank 1 bad input", 1): ["PeerRankFailed", "another rank failed"],
        ("rank 0 bad input", 0): ["TrainerInputError", "rank 0 cannot read its data; fix it"],
        ("rank 0 bad input", 1): ["PeerRankFailed", "another rank failed"],
        # a bug keeps its own exception (and traceback) where it happened
        ("rank 1 bug", 0): ["TrainerError", "rank 1 failed: ValueError: a bug"],
        ("rank 1 bug", 1): ["ValueError", "a bug"],
    }
