"""One self-contained HTML report: plotly.js embedded once, every figure inline, no network requests.

    write_report("report.html", ["lr-tpe", "lr-random"])       # names, read through the backend
    write_report("report.html", views, hidden=["tag"])          # or ExperimentViews already loaded

The page checks itself when it opens: a line at the top says how many plots drew, and the same
figures land in ``<body data-report-check="...">`` (JSON) for a headless browser to read.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.compare._rows import ExperimentView, compute_saved, compute_spent
from experiments.errors import KatibSuiteError

PLOTLY_PIP = "pip install 'plotly>=5.20'"

# Parallel-coordinates axes get a checkbox each: plotly's own UI reorders axes (drag) but cannot hide one.
_AXIS_TOGGLES_JS = """
function toggleAxis(box) {
  var gd = document.getElementById(box.dataset.plot);
  var update = {};
  update['dimensions[' + box.dataset.index + '].visible'] = box.checked;
  Plotly.restyle(gd, update, [Number(box.dataset.trace)]);
}
"""

# Counts what drew: traces per plot and drawn SVG marks / canvases, plus any network request the page made.
_SELF_CHECK_JS = """
function reportCheck() {
  var plots = Array.prototype.slice.call(document.querySelectorAll('.plotly-graph-div'));
  var summary = plots.map(function (gd) {
    var canvases = Array.prototype.slice.call(gd.querySelectorAll('canvas'));
    return {
      id: gd.id,
      expected: Number(gd.closest('.plot').dataset.expectedTraces),
      traces: (gd.data || []).length,
      drawn: gd.querySelectorAll('g.trace, g.parcoords .axis, path.point').length,
      svg: gd.querySelectorAll('svg.main-svg').length,
      canvases: canvases.length
    };
  });
  var requests = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  var ok = summary.filter(function (s) { return s.traces === s.expected && s.svg > 0 && s.drawn > 0; });
  var check = {plots: summary.length, ok: ok.length, requests: requests, details: summary};
  document.body.setAttribute('data-report-check', JSON.stringify(check));
  var line = document.getElementById('report-status');
  if (line) { line.textContent = ok.length + ' of ' + summary.length + ' plots drawn, offline (' +
      requests.length + ' network requests)'; }
}
window.addEventListener('load', function () { setTimeout(reportCheck, 300); });
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
table.trials { border-collapse: collapse; font-size: 0.85em; }
table.trials td, table.trials th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }
table.trials td.l, table.trials th.l { text-align: left; }
tr.best { background: #fff6d5; font-weight: bold; }
.note { color: #777; font-style: italic; } .axes label { margin-right: 1em; font-size: 0.85em; }
#report-status { color: #555; font-size: 0.85em; }
"""


def _plotly():
    try:
        import plotly
        import plotly.io
        import plotly.offline
    except ImportError:
        raise KatibSuiteError(f"the HTML report needs plotly, which is not installed: {PLOTLY_PIP}") from None
    return plotly


def _figure_html(fig, div_id: str) -> str:
    import plotly.io

    fig.update_layout(height=fig.layout.height or 480, margin={"t": 60})
    body = plotly.io.to_html(
        fig,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
        validate=False,
    )
    return f'<div class="plot" data-expected-traces="{len(fig.data)}">{body}</div>'


def _axis_toggles(fig, div_id: str) -> str:
    boxes = []
    index = next(i for i, t in enumerate(fig.data) if t.type == "parcoords")
    for axis, dimension in enumerate(fig.data[index].dimensions):
        checked = " checked" if dimension.visible is not False else ""
        boxes.append(
            f'<label><input type="checkbox" data-plot="{div_id}" data-trace="{index}" data-index="{axis}" '
            f'onchange="toggleAxis(this)"{checked}> {html.escape(str(dimension.label))}</label>'
        )
    return '<div class="axes">show axes: ' + "".join(boxes) + " (drag an axis title to reorder)</div>"


def _section(title: str, figure: Any, div_id: str) -> str:
    out = [f"<h3>{html.escape(title)}</h3>"]
    if isinstance(figure, str):
        out.append(f'<p class="note">{html.escape(figure)}</p>')
        return "".join(out)
    if title == "Parallel coordinates":
        out.append(_axis_toggles(figure, div_id))
    out.append(_figure_html(figure, div_id))
    return "".join(out)


def _cell(value: Any, left: bool = False) -> str:
    from experiments.cli._views import short

    text = "-" if value is None or value == "" else short(value) if not left else str(value)
    return f"<td{' class=l' if left else ''}>{html.escape(text)}</td>"


def trials_table(view: ExperimentView, hidden: set[str]) -> str:
    from experiments.compare._table import seconds_text as human_seconds

    params = [p for p in view.parameter_names if p not in hidden]
    metrics = [m for m in view.metric_names if m not in hidden]
    head = ["", "trial", "status", "why", *params, view.objective.objective_metric_name, *metrics]
    head += ["duration", "trial-seconds"]
    left = {"", "trial", "status", "why"}
    rows = [
        "<tr>"
        + "".join(f"<th{' class=l' if h in left else ''}>{html.escape(h)}</th>" for h in head)
        + "</tr>"
    ]
    for r in view.rows:
        cells = [_cell("*" if r.best else "", True), _cell(r.trial, True), _cell(r.status, True)]
        cells.append(_cell(r.detail, True))
        cells += [_cell(r.parameters.get(p)) for p in params]
        cells.append(_cell(r.objective))
        cells += [_cell(r.metrics.get(m)) for m in metrics]
        cells += [_cell(human_seconds(r.duration_s), True), _cell(human_seconds(r.trial_seconds), True)]
        rows.append(f"<tr{' class=best' if r.best else ''}>" + "".join(cells) + "</tr>")
    return '<table class="trials">' + "".join(rows) + "</table>"


def optimal_table(views: Sequence[ExperimentView]) -> str:
    from experiments.cli._views import short
    from experiments.compare._table import seconds_text as human_seconds

    head = ["experiment", "algorithm", "trials", "best trial", "objective", "parameters", "spent", "saved"]
    rows = ["<tr>" + "".join(f"<th class=l>{h}</th>" for h in head) + "</tr>"]
    for v in views:
        best = v.best
        params = " ".join(f"{k}={short(val)}" for k, val in best.parameters.items()) if best else "-"
        objective = f"{best.objective_metric}={best.objective}" if best else "-"
        cells = [v.name, v.algorithm, str(len(v.rows)), best.trial if best else "-", objective, params]
        cells += [human_seconds(compute_spent(v)), human_seconds(sum(compute_saved(v).values()))]
        rows.append("<tr>" + "".join(_cell(c, True) for c in cells) + "</tr>")
    return '<table class="trials">' + "".join(rows) + "</table>"


def render_html(views: Sequence[ExperimentView], hidden: Sequence[str] = ()) -> str:
    """The whole report as one HTML string."""
    from experiments.compare import _figures

    plotly = _plotly()
    hide = set(hidden)
    names = ", ".join(v.name for v in views)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>katib compare: {html.escape(names)}</title><style>{_CSS}</style>",
        # plotly.js inline: the file opens with no network at all.
        f"<script>{plotly.offline.get_plotlyjs()}</script><script>{_AXIS_TOGGLES_JS}{_SELF_CHECK_JS}</script>",
        "</head><body>",
        f"<h1>katib compare: {html.escape(names)}</h1><p id='report-status'>drawing plots…</p>",
    ]
    plot = 0
    if len(views) > 1:
        parts.append("<h2>Experiments side by side</h2><h3>Optimal trials</h3>" + optimal_table(views))
        for by in ("trials", "trial-seconds"):
            plot += 1
            parts.append(
                _section(f"Best so far vs {by}", _figures.best_so_far_overlay(views, by), f"plot-{plot}")
            )
    for view in views:
        objective = view.objective
        parts.append(
            f"<h2>{html.escape(view.name)}</h2><p>{html.escape(view.backend)}, algorithm "
            f"{html.escape(view.algorithm)}, {html.escape(view.condition or '-')} "
            f"{html.escape(view.reason)}; {objective.type} {html.escape(objective.objective_metric_name)}; "
            f"{len(view.rows)} trials</p>"
        )
        parts.append(trials_table(view, hide))
        for title, figure in _figures.experiment_figures(view, hide):
            plot += 1
            parts.append(_section(title, figure, f"plot-{plot}"))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    path: str | os.PathLike,
    names_or_views: Sequence[str] | Sequence[ExperimentView] | str,
    *,
    backend: str = "local",
    storage: str | None = None,
    workdir: Any = None,
    hidden: Sequence[str] = (),
) -> Path:
    """Write the report for experiment names (read via the backend) or views; the file is replaced whole."""
    from experiments.compare._rows import load

    if isinstance(names_or_views, str):
        names_or_views = [names_or_views]
    views = [v for v in names_or_views if isinstance(v, ExperimentView)]
    if len(views) != len(names_or_views):
        views = load(list(names_or_views), backend=backend, storage=storage, workdir=workdir)
    target = Path(path)
    if target.is_dir():
        raise KatibSuiteError(f"--html {target} is a folder; name a file, e.g. {target / 'report.html'}")
    if not target.parent.is_dir():
        raise KatibSuiteError(f"--html {target}: the folder {target.parent} does not exist; create it first")
    text = render_html(views, hidden)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)  # a reader never sees half a report
    return target


def report_check(dom: str) -> dict[str, Any] | None:
    """The self-check a browser wrote into ``data-report-check`` (for tests and tools), or None."""
    import re

    found = re.search(r'data-report-check="([^"]*)"', dom)
    return json.loads(html.unescape(found.group(1))) if found else None
