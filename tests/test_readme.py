"""The README's commands run as written (issue 7): every ``katib ...``, ``promote-best ...`` and
``python -m ...`` in its code blocks, inline code and command tables is parsed by the real argparse
parser; the cheap ones (``validate``, ``render``) also run for real.

A usage synopsis in a table (``katib experiment status NAME [-o text|json|yaml]``) is expanded into one
concrete command: every optional group included, the first of its alternatives, each placeholder
(FILE, NAME, TRIAL, N, ...) replaced by a real value of its kind.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
PROGRAMS = ("katib", "promote-best", "python")

PLACEHOLDERS = {
    "FILE": "experiments/quickstart.yaml",
    "S": "search_spaces/lr-batch.yaml",
    "NAME": "quickstart",
    "TRIAL": "quickstart-abcdefgh",
    "<trial>": "quickstart-abcdefgh",
    "URL": "sqlite:///readme-test.db",
    "N": "3",
    "P": "8080",
    "K": "3",
    "PCT": "10",
    "METRIC": "eval_loss",
    "PARAM": "lr",
    "DEST": "models/quickstart",
    "TEXT": "hello",
    "...": "json",
}
# A placeholder's value depends on the flag before it: `--name N` is a name, `--max-trials N` a number.
AFTER_FLAG = {"--name": "renamed", "--trial-name": "quickstart-abcdefgh", "--rollback": "roberta-yahoo"}


def _fenced_blocks(text: str, shell: bool = True) -> list[str]:
    """The shell code blocks (```bash, ```sh or bare ```), or with ``shell=False`` every block."""
    blocks, current, language = [], None, ""
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, language = [], line[3:].strip()
            else:
                if not shell or language in ("", "bash", "sh", "console", "shell"):
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _shell_commands(block: str) -> list[str]:
    joined = block.replace("\\\n", " ")
    out = []
    starts = ("katib ", "promote-best ", "python ", ".venv/bin/", "bash ", "KATIB_STORAGE=")
    for line in joined.splitlines():
        if not line.strip().startswith(starts):
            continue  # YAML, output, prose in a block
        words = shlex.split(line, comments=True)
        command: list[str] = []
        redirect = False
        for word in [*words, "&&"]:
            if word in ("&&", "||", ";", "|"):
                if command:
                    out.append(shlex.join(command))
                command = []
            elif word in (">", ">>", "<", "2>"):
                redirect = True  # the next word is the file, not an argument
            elif redirect:
                redirect = False
            else:
                command.append(word)
    return out


def _inline_commands(text: str) -> list[str]:
    """`katib ...` spans outside code blocks; `logs NAME ...` after a `katib experiment ...` span on the
    same line inherits its prefix (the README's table shortens a row of verbs that way)."""
    blocks = set(_fenced_blocks(text, shell=False))
    prose = [line for line in text.splitlines() if not any(line in b for b in blocks) or line.startswith("|")]
    out = []
    for line in prose:
        prefix = None
        for span in re.findall(r"`([^`]+)`", line):
            span = span.replace("\\|", "|")
            if span.startswith("katib experiment "):
                prefix = "katib experiment"
                if len(span.split()) > 3 or span.split()[2] == "list":
                    out.append(span)  # a bare `katib experiment VERB` in prose names the verb
            elif span.startswith(("promote-best ", "python -m ")):
                out.append(span)
            elif prefix and re.match(r"^[a-z]+ [A-Z]", span):
                out.append(f"{prefix} {span}")
    return out


def _expand(synopsis: str) -> list[str]:
    """One concrete argv from a usage synopsis."""

    def group(match: re.Match) -> str:
        return match.group(1)

    text = synopsis
    while re.search(r"\[([^\[\]]*)\]", text):
        text = re.sub(r"\[([^\[\]]*)\]", group, text)
    argv: list[str] = []
    for word in shlex.split(text):
        word = word.split("|")[0] if "|" in word and not word.startswith("-") else word
        if argv and argv[-1] in AFTER_FLAG and word.isupper():
            word = AFTER_FLAG[argv[-1]]
        argv.append(PLACEHOLDERS.get(word, word))
    return argv


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    commands = [c for block in _fenced_blocks(text) for c in _shell_commands(block)]
    commands += _inline_commands(text)
    out = []
    for command in commands:
        argv = _expand(command)
        while argv and "=" in argv[0] and not argv[0].startswith("-"):
            argv = argv[1:]  # KATIB_STORAGE=... katib ...
        if argv and argv[0].startswith(".venv/bin/"):
            argv[0] = argv[0].removeprefix(".venv/bin/")
        if argv and argv[0] in PROGRAMS:
            out.append(argv)
    return out


COMMANDS = readme_commands()


def test_the_readme_has_the_commands_this_test_knows_how_to_check():
    programs = {argv[0] for argv in COMMANDS}
    assert programs == set(PROGRAMS), programs
    verbs = {argv[2] for argv in COMMANDS if argv[0] == "katib"}
    assert {
        "validate",
        "render",
        "submit",
        "status",
        "trials",
        "logs",
        "delete",
        "resume",
        "compare",
    } <= verbs


def parse(argv: list[str]) -> None:
    if argv[0] == "katib":
        from experiments.cli import _parse, build_parser

        _parse(build_parser(), argv[1:])
    elif argv[0] == "promote-best":
        from serving.cli import build_parser as promote_parser

        promote_parser().parse_args(argv[1:])
    else:
        assert argv[1] == "-m", argv
        assert importlib.util.find_spec(argv[2]) is not None, f"no module {argv[2]}"


@pytest.mark.parametrize("argv", COMMANDS, ids=[shlex.join(a)[:80] for a in COMMANDS])
def test_every_readme_command_parses(argv, capsys):
    try:
        parse(argv)
    except SystemExit as exit_:
        err = capsys.readouterr().err
        pytest.fail(f"README command {shlex.join(argv)!r} does not parse (exit {exit_.code}): {err}")


CHEAP = [a for a in COMMANDS if a[0] == "katib" and a[2] in ("validate", "render")]


@pytest.mark.parametrize("argv", CHEAP, ids=[shlex.join(a)[:80] for a in CHEAP])
def test_cheap_readme_commands_run_for_real(argv, capsys, monkeypatch):
    from experiments.cli import main

    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(argv[1:])
    out, err = capsys.readouterr()
    assert code == 0, f"{shlex.join(argv)} exited {code}: {err}"
    assert out.strip() and "Traceback" not in err


def test_a_command_the_parsers_reject_is_caught(capsys):
    # What the README had before issue 7: `validate ... -o json` was not accepted by that verb.
    with pytest.raises(SystemExit):
        parse(["katib", "experiment", "validate", "experiments/quickstart.yaml", "--frobnicate"])
    with pytest.raises(SystemExit):
        parse(["promote-best", "quickstart", "--to"])
    assert _expand("katib experiment status NAME [-o text|json|yaml]") == [
        "katib",
        "experiment",
        "status",
        "quickstart",
        "-o",
        "text",
    ]
