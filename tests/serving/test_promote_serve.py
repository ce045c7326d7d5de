"""``promote-best EXP --to DIR --serve --predict TEXT``: the main job's last step in one command —
promote, start the local predictor, answer, stop it again."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from serving.cli import main
from tests.serving.conftest import TrialSpec

pytestmark = pytest.mark.slow  # starts the real predictor (kserve ModelServer) in a subprocess

TOPICS = {
    "Society & Culture", "Science & Mathematics", "Health", "Education & Reference", "Computers & Internet",
    "Sports", "Business & Finance", "Entertainment & Music", "Family & Relationships", "Politics & Government",
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_and_predict_answers_with_topic_names_then_stops_the_server(recorded, tmp_path: Path, capsys):
    storage = recorded("exp", [TrialSpec("exp-a", (0.4, 0.6))])
    port = free_port()
    argv = [
        "exp",
        "--to",
        str(tmp_path / "models" / "yahoo"),
        "--storage",
        storage,
        "--serve",
        "--http-port",
        str(port),
        "--predict",
        "Who won the cup final?",
        "--predict",
        "How do I fix my PC?",
    ]
    code = main([*argv, "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert (result["version"], result["served"]["model"]) == ("v1", "yahoo")
    assert [row["text"] for row in result["predictions"]] == ["Who won the cup final?", "How do I fix my PC?"]
    assert {row["label"] for row in result["predictions"]} <= TOPICS
    with socket.socket() as probe:  # the server is gone: nothing listens on its port
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    # Again, as text: already promoted, served and answered once more.
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "already promoted: v1" in out
    assert sum(line.startswith("predict: ") for line in out.splitlines()) == 2


def test_a_busy_port_is_one_line_naming_the_flag(recorded, tmp_path: Path, capsys):
    storage = recorded("exp", [TrialSpec("exp-a", (0.4, 0.6))])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["exp", "--to", str(tmp_path / "m"), "--storage", storage, "--serve", "--http-port",
                     str(port), "--predict", "x"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2
    assert f"cannot serve on 127.0.0.1:{port}" in err and "--http-port" in err and "Traceback" not in err


def test_predict_without_a_server_is_a_usage_error(recorded, tmp_path: Path, capsys):
    storage = recorded("exp", [TrialSpec("exp-a", (0.4, 0.6))])
    code = main(["exp", "--to", str(tmp_path / "m"), "--storage", storage, "--predict", "x"])
    _, err = capsys.readouterr()
    assert code == 2 and "add --serve" in err
    assert not (tmp_path / "m").exists()  # refused before anything was written
