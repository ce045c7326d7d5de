"""``katib experiment validate`` and ``katib experiment render``.

katib experiment validate experiments/quickstart.yaml --search-space search_spaces/lr-batch.yaml
katib experiment render experiments/quickstart.yaml --assign lr=2e-5 --assign batch_size=32
"""

from __future__ import annotations

import argparse
import json
import sys

from experiments.errors import UsageError


def _add_source_arguments(parser) -> None:
    """FILE and --search-space: where the Experiment comes from, the same for every spec verb."""
    parser.add_argument("file", metavar="FILE", help="Katib Experiment YAML")
    parser.add_argument(
        "--search-space", metavar="S", help="search-space YAML whose parameters replace the file's"
    )


def register(verbs) -> None:
    """Add this module's verbs to ``katib experiment``."""
    validate = verbs.add_parser(
        "validate",
        help="check an Experiment against Katib's webhook rules and the run-time footguns",
        description="Report every problem in a Katib Experiment at once (exit 0 valid, 1 invalid, 2 usage).",
        epilog="example: katib experiment validate experiments/quickstart.yaml --search-space search_spaces/lr-batch.yaml",
    )
    _add_source_arguments(validate)
    validate.add_argument(
        "--output", "-o", choices=("text", "json"), default="text", help="text (default) or json"
    )
    validate.add_argument(
        "--backend",
        choices=("local", "cluster"),
        default="local",
        help="also check what this backend can run (default: local; cluster: Katib's rules only)",
    )
    validate.set_defaults(handler=_validate)

    render = verbs.add_parser(
        "render",
        help="print the trial manifest Katib would create for given parameter values",
        description="Substitute trial parameters exactly as Katib does and print the trial's job manifest.",
        epilog="example: katib experiment render experiments/quickstart.yaml --assign lr=2e-5 --assign batch_size=32",
    )
    _add_source_arguments(render)
    render.add_argument(
        "--assign",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter value; repeat per parameter",
    )
    render.add_argument("--trial-name", metavar="N", help="trial name (default: <experiment>-rendered)")
    render.add_argument(
        "--namespace", metavar="NS", help="trial namespace (default: the experiment's, or default)"
    )
    render.add_argument(
        "--output", "-o", choices=("yaml", "json"), default="yaml", help="yaml (default) or json"
    )
    render.set_defaults(handler=_render)


def _validate(args: argparse.Namespace) -> int:
    from experiments.spec import InvalidExperimentError, SpecError, load_experiment

    try:
        exp = load_experiment(args.file, search_space=args.search_space, backend=args.backend)
    except InvalidExperimentError as error:
        if args.output == "json":
            print(
                json.dumps(
                    {"valid": False, "file": args.file, "problems": [p.to_json() for p in error.problems]}
                )
            )
            return 1
        raise
    except SpecError as error:
        if args.output == "json":
            print(json.dumps({"valid": False, "file": args.file, "error": str(error)}))
            return 1
        raise
    if args.output == "json":
        print(json.dumps({"valid": True, "file": args.file, "name": exp.name, "problems": []}))
    else:
        kind = exp.trial_template.kind or "configMap template"
        params = ", ".join(p.name for p in exp.parameters) or "nasConfig"
        print(
            f"{args.file}: valid Katib Experiment {exp.name!r} "
            f"({exp.algorithm.algorithm_name} over {params}; {kind} trials; "
            f"maxTrialCount {exp.max_trial_count}, parallelTrialCount {exp.parallel_trial_count})"
        )
    return 0


def _assignments(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--assign {item!r} must be NAME=VALUE, e.g. --assign lr=2e-5")
        out[name.strip()] = value
    return out


def _outside_feasible_space(exp, assignments: dict[str, str]) -> list[str]:
    """Values Katib's suggestion service would never produce: rendered anyway (a what-if is useful), but
    said on stderr so a typo (lr=2e5, batch_size=23) is not mistaken for a manifest Katib would create."""
    notes = []
    for parameter in exp.parameters:
        value = assignments.get(parameter.name)
        if value is None:
            continue
        space = parameter.feasible_space
        if parameter.parameter_type in ("discrete", "categorical"):
            if space.list and value not in space.list:
                notes.append(f"{parameter.name}={value} is not in its list {list(space.list)}")
            continue
        try:
            number = float(value)
        except ValueError:
            notes.append(
                f"{parameter.name}={value} is not a number but the parameter is {parameter.parameter_type}"
            )
            continue
        if parameter.parameter_type == "int" and number != int(number):
            notes.append(f"{parameter.name}={value} is not an integer")
        if space.min is not None and space.max is not None and not space.low <= number <= space.high:
            notes.append(f"{parameter.name}={value} is outside its feasible space [{space.min}, {space.max}]")
    if notes:
        notes.append("Katib would never suggest these values; the manifest is rendered as asked")
    return notes


def _render(args: argparse.Namespace) -> int:
    from experiments.spec import load_experiment, render_trial

    assignments = _assignments(args.assign)
    exp = load_experiment(args.file, search_space=args.search_space)
    for note in _outside_feasible_space(exp, assignments):
        print(f"note: {note}", file=sys.stderr)
    name = args.trial_name or f"{exp.name}-rendered"
    namespace = args.namespace or exp.namespace or "default"
    manifest = render_trial(exp, assignments, trial_name=name, namespace=namespace)
    if args.output == "json":
        print(json.dumps(manifest, indent=2))
    else:
        from experiments.spec import dump_yaml  # kubectl reads it back as the same object

        sys.stdout.write(dump_yaml(manifest))
    return 0
