"""What the run verbs show a person: the live progress view, trial tables, the end-of-run summary.

Pure helpers (objective value, durations, ETA) are separate from rendering so they can be table-tested.
rich is imported here only; this module is imported by the CLI when a run verb executes.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from experiments.backends._protocol import (
    REASON_KILLED,
    REASON_MAX_TRIALS_REACHED,
    TRIAL_EARLY_STOPPED,
    TRIAL_FAILED,
    TRIAL_FINISHED,
    TRIAL_KILLED,
    TRIAL_METRICS_UNAVAILABLE,
    TRIAL_RUNNING,
    TRIAL_SUCCEEDED,
    ExperimentStatus,
    ExperimentSummary,
    TrialRecord,
)
from experiments.spec import Experiment

_STYLE = {
    TRIAL_SUCCEEDED: "green",
    TRIAL_RUNNING: "cyan",
    TRIAL_FAILED: "red",
    TRIAL_METRICS_UNAVAILABLE: "red",
    TRIAL_KILLED: "yellow",
    TRIAL_EARLY_STOPPED: "magenta",
    "Succeeded": "green",
    "Failed": "red",
}


def escape(text: Any) -> str:
    """User and trial text (names, parameter values, messages) printed literally, never read as rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def styled(condition: str) -> str:
    """A condition in its colour; one without a colour (Created, Restarting) plain, so no empty ``[]`` tag."""
    style = _STYLE.get(condition)
    return f"[{style}]{escape(condition)}[/]" if style else escape(condition)


# ---------------------------------------------------------------- pure helpers


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def duration(trial: TrialRecord, now: datetime | None = None) -> float | None:
    """Seconds a trial ran (so far, if it is still running); None before it started."""
    if trial.start_time is None:
        return None
    end = trial.completion_time or (now if trial.condition not in TRIAL_FINISHED else None)
    if end is None:
        return None
    return max(0.0, (_utc(end) - _utc(trial.start_time)).total_seconds())


def objective_value(trial: TrialRecord, experiment: Experiment) -> str | None:
    """The value Katib ranks this trial by (experiments.ranking); None before any observation."""
    from experiments.ranking import objective_string

    if trial.metric(experiment.objective.objective_metric_name) is None:
        return None
    return objective_string(trial, experiment.objective)


def latest_objective(trial: TrialRecord, experiment: Experiment) -> str | None:
    summary = trial.metric(experiment.objective.objective_metric_name)
    return summary.latest if summary else None


def interrupted(trial: TrialRecord) -> bool:
    """Killed by Ctrl-C / a dead runner: not the trial's doing, so it does not use up maxTrialCount
    (resume runs a new trial in its place) and its partial duration says nothing about a trial's cost."""
    return trial.condition == TRIAL_KILLED and trial.reason == REASON_KILLED


def counted_finished(status: ExperimentStatus) -> int:
    """Finished trials that count toward maxTrialCount, as the runner counts them."""
    return sum(1 for t in status.trials if t.condition in TRIAL_FINISHED and not interrupted(t))


def estimate_eta(
    status: ExperimentStatus, parallelism: int, max_trials: int | None, now: datetime | None = None
) -> float | None:
    """Seconds until the budget is spent, from the mean duration of finished trials.

    Trials still to start cost a mean duration each, running ones what is left of theirs; the work is
    spread over ``parallelism`` slots. None while no trial has finished (nothing to go on), with no
    trial budget, or once the experiment has ended.
    """
    if not max_trials or status.finished:
        return None
    now = now or now_utc()
    finished = [
        d
        for t in status.trials
        if t.condition in TRIAL_FINISHED and not interrupted(t) and (d := duration(t)) is not None
    ]
    if not finished:
        return None
    mean = sum(finished) / len(finished)
    done = counted_finished(status)
    running = [t for t in status.trials if t.condition not in TRIAL_FINISHED]
    to_start = max(0, max_trials - done - len(running))
    left_running = sum(max(0.0, mean - (duration(t, now) or 0.0)) for t in running)
    slots = max(1, min(parallelism, to_start + len(running)))
    return (to_start * mean + left_running) / slots


def short(value: Any) -> str:
    """Parameter and metric values as a person reads them: 1.2345678e-05 -> 1.235e-05, 16 -> 16."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number == int(number) and "e" not in text.lower() and abs(number) < 1e15:
        return text if "." not in text else f"{number:g}"
    return f"{number:.4g}"


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def params_text(parameters: Mapping[str, str]) -> str:
    return " ".join(f"{k}={short(v)}" for k, v in parameters.items())


# ---------------------------------------------------------------- tables


def trials_table(
    trials: Sequence[TrialRecord], experiment: Experiment, now: datetime | None = None, reasons: bool = True
):
    from rich.table import Table

    now = now or now_utc()  # running trials show how long they have run so far
    objective = experiment.objective.objective_metric_name
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("TRIAL", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    if reasons:
        table.add_column("REASON")
    names = [p.name for p in experiment.parameters] or sorted({k for t in trials for k in t.parameters})
    for name in names:
        table.add_column(escape(name), justify="right")
    table.add_column(f"{escape(objective)} (latest)", justify="right")
    if reasons:
        table.add_column("min", justify="right")
        table.add_column("max", justify="right")
    table.add_column("DURATION", justify="right")
    for trial in trials:
        summary = trial.metric(objective)
        row = [escape(trial.name), styled(trial.condition)]
        if reasons:
            row.append(escape(trial.reason or ""))
        row += [escape(short(trial.parameters.get(n, ""))) for n in names]
        row.append(short(summary.latest) if summary else "-")
        if reasons:
            row += [short(summary.min) if summary else "-", short(summary.max) if summary else "-"]
        row.append(human_seconds(duration(trial, now)))
        table.add_row(*row)
    return table


def list_table(summaries: Sequence[ExperimentSummary]):
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("NAME", "STATUS", "REASON", "TRIALS", "SUCCEEDED", "BEST", "CREATED", "BACKEND"):
        table.add_column(column, no_wrap=column in ("NAME", "CREATED"))
    for s in summaries:
        created = _utc(s.created).strftime("%Y-%m-%d %H:%M:%S") if s.created else "-"
        table.add_row(
            escape(s.name),
            styled(s.condition),
            escape(s.reason),
            str(s.trials),
            str(s.succeeded),
            short(s.best_value) if s.best_value is not None else "-",
            created,
            escape(s.backend),
        )
    return table


def status_lines(status: ExperimentStatus, experiment: Experiment, now: datetime | None = None) -> list[str]:
    """The text form of ``status``: condition, counters, best trial, timing."""
    now = now or now_utc()
    lines = [f"Experiment [bold]{escape(status.name)}[/] ({escape(status.backend)})"]
    condition = styled(status.condition)
    lines.append(f"  status:   {condition}" + (f" ({escape(status.reason)})" if status.reason else ""))
    if status.message:
        lines.append(f"  message:  {escape(status.message)}")
    budget = f" of {status.max_trial_count}" if status.max_trial_count else ""
    # Trials interrupted by Ctrl-C do not use up maxTrialCount (resume replaces them): counted apart,
    # so a resumed run never reads "6 of 5".
    killed = sum(1 for t in status.trials if interrupted(t))
    tally = {c: status.count(c) for c in (*TRIAL_FINISHED, TRIAL_RUNNING)}
    tally[TRIAL_KILLED] -= killed
    counts = ", ".join(
        f"{tally[c]} {c}"
        for c in (
            TRIAL_SUCCEEDED,
            TRIAL_RUNNING,
            TRIAL_EARLY_STOPPED,
            TRIAL_FAILED,
            TRIAL_METRICS_UNAVAILABLE,
            TRIAL_KILLED,
        )
        if tally[c]
    )
    lines.append(
        f"  trials:   {len(status.trials) - killed}{budget}"
        + (f" ({counts})" if counts else "")
        + (f", plus {killed} interrupted (Killed; not counted)" if killed else "")
    )
    lines += best_lines(status, experiment)
    lines += failure_lines(status)
    if status.start_time:
        end = status.completion_time if status.finished and status.completion_time else now
        lines.append(f"  elapsed:  {human_seconds((_utc(end) - _utc(status.start_time)).total_seconds())}")
    return lines


def best_lines(status: ExperimentStatus, experiment: Experiment) -> list[str]:
    best = status.optimal_trial
    if best is None:
        return ["  best:     - (no trial has reported the objective yet)"]
    objective = experiment.objective.objective_metric_name
    value = objective_value(best, experiment)
    lines = [f"  best:     [bold]{escape(best.name)}[/] {escape(objective)}={short(value) if value else '-'}"]
    lines.append(f"            {escape(params_text(best.parameters))}")
    if best.output_dir:
        lines.append(f"            checkpoint: {escape(best.output_dir)}")
    return lines


def first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""


def failure_lines(status: ExperimentStatus, limit: int = 3) -> list[str]:
    """Why trials failed, one line each, so the reason is on screen without opening a log."""
    failed = [t for t in status.trials if t.condition in (TRIAL_FAILED, TRIAL_METRICS_UNAVAILABLE)]
    lines = [
        f"  failed:   {escape(t.name)}: {escape(first_line(t.message) or t.reason or t.condition)}"
        for t in failed[:limit]
    ]
    if len(failed) > limit:
        lines.append(
            f"            … and {len(failed) - limit} more (katib experiment trials {escape(status.name)})"
        )
    return lines


def next_steps(status: ExperimentStatus, experiment: Experiment, storage_flag: str = "") -> list[str]:
    name = status.name
    steps = [f"katib experiment trials {name}{storage_flag}"]
    if status.optimal_trial is not None:
        steps.append(f"katib experiment logs {name} {status.optimal_trial.name}{storage_flag}")
    failed = next(
        (t for t in status.trials if t.condition in (TRIAL_FAILED, TRIAL_METRICS_UNAVAILABLE)), None
    )
    if failed is not None:
        steps.append(
            f"katib experiment logs {name} {failed.name}{storage_flag}   # why it {failed.condition}"
        )
    steps.append(f"katib experiment status {name} --output yaml{storage_flag}")
    # Katib restarts only a MaxTrialsReached experiment whose resumePolicy allows it.
    resumable = experiment.resume_policy in ("LongRunning", "FromVolume")
    if status.finished and status.reason == REASON_MAX_TRIALS_REACHED and resumable:
        more = (status.max_trial_count or len(status.trials)) + 4
        steps.append(f"katib experiment resume {name} --max-trials {more}{storage_flag}   # run more trials")
    return steps


# ---------------------------------------------------------------- progress


def _stdin_tty() -> int | None:
    try:
        return sys.stdin.fileno() if sys.stdin.isatty() else None
    except (AttributeError, OSError, ValueError):  # no stdin, or a test's stand-in
        return None


def hide_control_echo(fd: int | None):
    """Stop the terminal echoing Ctrl-C as "^C" while the live view is drawn; returns what to restore.

    The echo lands after the table's last row; when that row fills the terminal width it wraps to a
    new line, rich's redraw then starts one line too low and the final frame leaves a stale header
    above it.
    """
    if fd is None:
        return None
    try:
        import termios
    except ImportError:  # not POSIX
        return None
    try:
        saved = termios.tcgetattr(fd)
        quiet = list(saved)
        quiet[3] = saved[3] & ~termios.ECHOCTL
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        return fd, saved
    except (OSError, termios.error):  # not a terminal after all
        return None


def restore_control_echo(fd: int, saved) -> None:
    import termios

    try:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
    except (OSError, termios.error):  # the terminal went away (ssh dropped): nothing to restore
        pass


class ProgressView:
    """Shows a running experiment. ``update`` is the backend's progress callback.

    On a terminal it is a rich Live table redrawn a few times a second (so elapsed time ticks); when
    stdout is a pipe or a file it prints one plain line per change, which reads well in CI logs.
    """

    def __init__(
        self,
        experiment: Experiment,
        name: str,
        parallelism: int,
        max_trials: int | None,
        stream: TextIO | None = None,
        live: bool | None = None,
        tty_fd: int | None = None,
    ) -> None:
        from rich.console import Console

        self.experiment = experiment
        self.name = name
        self.parallelism = max(1, parallelism)
        self.max_trials = max_trials
        self.console = Console(file=stream or sys.stdout, highlight=False)
        self.live_mode = self.console.is_terminal if live is None else live
        self.status: ExperimentStatus | None = None
        self.started = time.monotonic()
        self._seen: dict[str, tuple[str, str | None]] = {}
        self._best: str | None = None
        self._live = None
        self._echoctl = None
        self._tty_fd = tty_fd if tty_fd is not None else _stdin_tty()

    def __enter__(self) -> ProgressView:
        if self.live_mode:
            from rich.live import Live

            self._echoctl = hide_control_echo(self._tty_fd)

            self._live = Live(
                get_renderable=self.render, console=self.console, refresh_per_second=4, transient=False
            )
            self._live.start()
        else:
            budget = f", up to {self.max_trials} trials" if self.max_trials else ""
            self.console.print(
                f"experiment {self.name}: running {self.parallelism} trial(s) at a time{budget}"
            )
        return self

    def __exit__(self, *exc_info) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        if self._echoctl is not None:
            restore_control_echo(*self._echoctl)
            self._echoctl = None

    def update(self, status: ExperimentStatus) -> None:
        self.status = status
        if not self.live_mode:
            self._print_changes(status)

    # plain mode: one line per trial state change, and one per new best trial
    def _print_changes(self, status: ExperimentStatus) -> None:
        objective = self.experiment.objective.objective_metric_name
        for trial in status.trials:
            latest = latest_objective(trial, self.experiment)
            state = (trial.condition, latest)
            if self._seen.get(trial.name) == state:
                continue
            previous = self._seen.get(trial.name)
            self._seen[trial.name] = state
            if (
                previous is not None
                and previous[0] == trial.condition
                and trial.condition not in TRIAL_FINISHED
            ):
                line = f"  {trial.name} {objective}={short(latest)}"
            else:
                line = f"{trial.name} {trial.condition}"
                if trial.reason and trial.condition in TRIAL_FINISHED:
                    line += f" ({trial.reason})"
                line += f"  {params_text(trial.parameters)}"
                if latest is not None:
                    line += f"  {objective}={short(latest)}"
                if trial.condition in TRIAL_FINISHED:
                    line += f"  {human_seconds(duration(trial))}"
                if trial.condition in (TRIAL_FAILED, TRIAL_METRICS_UNAVAILABLE) and trial.message:
                    line += f"\n    {first_line(trial.message)}"
            self.console.print(line, markup=False, soft_wrap=True)
        best = status.optimal_trial
        if best is not None and best.name != self._best:
            self._best = best.name
            value = objective_value(best, self.experiment)
            self.console.print(
                f"best so far: {best.name} {objective}={short(value)}", markup=False, soft_wrap=True
            )

    def header(self, now: datetime | None = None) -> str:
        status = self.status
        elapsed = time.monotonic() - self.started
        if status is None:
            return f"[bold]{escape(self.name)}[/]  starting…  elapsed {human_seconds(elapsed)}"
        done = counted_finished(status)
        running = status.count(TRIAL_RUNNING)
        budget = f"/{self.max_trials}" if self.max_trials else ""
        eta = estimate_eta(status, self.parallelism, self.max_trials, now)
        condition = styled(status.condition)
        killed = sum(1 for t in status.trials if interrupted(t))
        text = (
            f"[bold]{escape(self.name)}[/]  {condition}  {done}{budget} done, {running} running"
            + (f", {killed} interrupted" if killed else "")
            + f"  elapsed {human_seconds(elapsed)}  ETA {human_seconds(eta) if eta is not None else '-'}"
        )
        best = status.optimal_trial
        if best is not None:
            value = objective_value(best, self.experiment)
            objective = self.experiment.objective.objective_metric_name
            text += (
                f"\nbest so far: [bold]{escape(best.name)}[/] {escape(objective)}={escape(short(value))}  "
                f"{escape(params_text(best.parameters))}"
            )
        return text

    def render(self):
        from rich.console import Group
        from rich.text import Text

        now = now_utc()
        parts: list[Any] = [Text.from_markup(self.header(now))]
        if self.status is not None and self.status.trials:
            parts.append(trials_table(self.status.trials, self.experiment, now, reasons=False))
        return Group(*parts)


def print_summary(console, status: ExperimentStatus, experiment: Experiment, storage_flag: str = "") -> None:
    console.print()
    for line in status_lines(status, experiment):
        # Soft wrap: a long failure reason stays one line in a CI log (the terminal wraps it on screen).
        console.print(line, soft_wrap=True)
    console.print("next:")
    for step in next_steps(status, experiment, storage_flag):
        console.print(f"  {step}", markup=False, soft_wrap=True)
