"""``katib`` command line: the root only wires the noun groups; each verb lives in its own module.

katib experiment validate experiments/quickstart.yaml
katib experiment submit experiments/quickstart.yaml --search-space search_spaces/lr-batch.yaml
"""

from __future__ import annotations

import argparse
import os
import sys

from experiments.errors import KatibSuiteError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="katib",
        description="Katib Experiments for distributed fine-tuning, on a cluster or embedded on this machine.",
    )
    nouns = parser.add_subparsers(dest="noun", required=True, metavar="{experiment}")
    experiment = nouns.add_parser(
        "experiment",
        help="validate, render, submit and inspect Katib Experiments",
        description="Validate, render, run and inspect Katib Experiments (kubeflow.org/v1beta1 YAML).\n"
        "`submit` runs one embedded on this machine; state is kept in --storage URL or $KATIB_STORAGE\n"
        "(default: sqlite:///.katib/experiments.db in this directory).",
        epilog="a first session:\n"
        "  katib experiment validate experiments/quickstart.yaml\n"
        "  katib experiment submit experiments/quickstart.yaml      # Ctrl-C keeps finished trials\n"
        "  katib experiment resume quickstart                       # continue after Ctrl-C\n"
        "  katib experiment trials quickstart\n"
        "  katib experiment logs quickstart <trial>\n"
        "run `katib experiment VERB --help` for a verb's flags",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = experiment.add_subparsers(dest="verb", required=True, metavar="VERB")
    from experiments.cli import _compare_cmds, _run_cmds, _spec_cmds

    _spec_cmds.register(verbs)
    _run_cmds.register(verbs)
    _compare_cmds.register(verbs)
    parser.set_defaults(_verbs=verbs.choices)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    # argparse reports a stray flag from the root parser, with the root's usage line ("katib [-h]
    # {experiment} ..."); the verb's own usage is the one that shows the flags it takes.
    args, extra = parser.parse_known_args(argv)
    if extra:
        verb = args._verbs[args.verb]
        verb.error(f"unrecognized arguments: {' '.join(extra)} (see `{verb.prog} --help`)")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    try:
        return int(args.handler(args) or 0)
    except KatibSuiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # A storage that opened fine can still refuse a write (read-only file, lock, server gone).
        converted = _storage_failure(args, error)
        if converted is None:
            raise
        print(f"error: {converted}", file=sys.stderr)
        return converted.exit_code


def _storage_failure(args: argparse.Namespace, error: Exception) -> KatibSuiteError | None:
    """A StorageError naming the storage URL and the fix when ``error`` came from the database layer."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if not any(
        type(e).__module__.startswith(("sqlalchemy", "sqlite3")) or type(e).__name__ == "StorageInternalError"
        for e in chain
    ):
        return None
    from pathlib import Path

    from experiments.backends.local._store import STORAGE_ENV, storage_error

    url = getattr(args, "storage", None) or os.environ.get(STORAGE_ENV)
    url = url or f"sqlite:///{Path.cwd() / '.katib' / 'experiments.db'}"
    return storage_error(url, error)


if __name__ == "__main__":
    sys.exit(main())
