"""Compare trials and experiments: rows for notebooks, a terminal table, and an offline HTML report.

    import experiments
    rows = experiments.compare(["lr-tpe", "lr-random"])            # list[TrialRow], no pandas needed
    experiments.write_report("report.html", ["lr-tpe", "lr-random"])  # one self-contained HTML file

The same rows serve local and cluster experiments: they are built from the backend protocol's records.
"""

from __future__ import annotations

import sys
import types

from experiments.compare._rows import (
    ExperimentView,
    TrialRow,
    best_so_far,
    build_rows,
    compare,
    compute_saved,
    compute_spent,
    load,
    sort_rows,
    top_rows,
    view_of,
)

__all__ = [
    "ExperimentView",
    "TrialRow",
    "best_so_far",
    "build_rows",
    "compare",
    "compute_saved",
    "compute_spent",
    "load",
    "sort_rows",
    "top_rows",
    "view_of",
    "write_report",
]


def write_report(path, names_or_views, **options):
    """Write the HTML report for experiment names (read via the backend) or ExperimentViews; returns the path."""
    from experiments.compare._report import write_report as write

    return write(path, names_or_views, **options)


class _CallablePackage(types.ModuleType):
    """``experiments.compare(names)`` is the API and ``experiments.compare`` is also this package: importing
    a submodule makes the package an attribute of ``experiments``, replacing the function. Calling the
    package calls ``compare`` so both spellings keep working in a notebook."""

    def __call__(self, *args, **kwargs):
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
