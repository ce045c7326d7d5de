"""``katib`` command line: the root only wires the noun groups; each verb lives in its own module.

    katib experiment validate experiments/quickstart.yaml
    katib experiment submit experiments/quickstart.yaml --search-space search_spaces/lr-batch.yaml
"""

from __future__ import annotations

import argparse
import sys

from experiments.errors import KatibSuiteError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="katib",
        description="Katib Experiments for distributed fine-tuning, on a cluster or embedded on this machine.",
    )
    nouns = parser.add_subparsers(dest="noun", required=True, metavar="{experiment}")
    experiment = nouns.add_parser("experiment", help="validate, render, submit and inspect Katib Experiments")
    verbs = experiment.add_subparsers(dest="verb", required=True, metavar="VERB")
    from experiments.cli import _run_cmds, _spec_cmds

    _spec_cmds.register(verbs)
    _run_cmds.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KatibSuiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
