"""Night over night: every run of an output from its run records, never from its rows.

Each run that reached its rows left ``OUTPUT/metadata/_summary-<run id>.json``
(:mod:`ray_jobs.run_record`), a few hundred bytes; a year of nightly runs is 365 small reads, however
many rows each run had. The report charts them (:mod:`ray_jobs.report.charts`) and tables the
latest :data:`RUNS_LISTED`, flagging a run whose medians drifted past the threshold against the
previous run with medians: the threshold the run itself was given (``--alert-on-drift`` of the job),
or, when the report is given one, that one for every run, so that the history can be looked at again
with another threshold.
"""

from __future__ import annotations

import dataclasses
import html

from ray_jobs.run_record import RunRecord, drift, read_records
from ray_jobs.run_summary import METRIC_LABELS, format_value
from stylecore.metrics import BETTER, METRIC_NAMES

RUNS_LISTED = 30
"""Latest runs in the table; the chart shows every run."""


@dataclasses.dataclass(frozen=True)
class History:
    """The output's runs, oldest first, each with its drift under the threshold in force."""

    records: list[RunRecord]
    unreadable: list[tuple[str, str]]
    threshold: float | None
    """The report's ``--alert-on-drift``; ``None``: each run's own."""

    @property
    def flagged(self) -> list[RunRecord]:
        return [record for record in self.records if record.drifted]


def read_history(run_dir: str, *, alert_on_drift: float | None = None) -> History:
    """The run records of ``run_dir``; with ``alert_on_drift``, each run's drift recomputed with it."""
    records, unreadable = read_records(run_dir)
    if alert_on_drift is not None:
        records = [dataclasses.replace(record, drift=drift(record.medians, records[:index], alert_on_drift))
                   for index, record in enumerate(records)]
    return History(records, unreadable, alert_on_drift)


def history_table(history: History) -> str:
    """The latest :data:`RUNS_LISTED` runs, newest first: rows by status, medians with their change, time."""
    metrics = "".join(f"<th>{html.escape(METRIC_LABELS[metric])}, {BETTER[metric]} better</th>"
                      for metric in METRIC_NAMES)
    header = f"<tr><th>run</th><th>started (UTC)</th><th>rendered</th><th>skipped</th><th>failed</th>{metrics}" \
             "<th>time</th><th>output after</th></tr>"
    body = "".join(_run_row(record) for record in reversed(history.records[-RUNS_LISTED:]))
    return f"<table>{header}{body}</table>"


def _run_row(record: RunRecord) -> str:
    css = ' class="drift"' if record.drifted else ""
    cells = [html.escape(record.run_id), f"{record.started_at:%Y-%m-%d %H:%M}"]
    cells += [str(record.rows[status]) for status in ("ok", "skipped", "error")]
    cells += [_median_cell(record, metric) for metric in METRIC_NAMES]
    cells += [f"{record.seconds / 60:.1f} min",
              f"{record.output['ok']} ok, {record.output['error']} failed of {record.output['rows']}"]
    return f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _median_cell(record: RunRecord, metric: str) -> str:
    """The median, its change against the previous run, and a flag when it drifted."""
    median, change = record.medians.get(metric), record.drift.change.get(metric)
    text = format_value(median)
    if change is not None:
        text += f" <span class=\"note\">({change:+.1%})</span>"
    if metric in record.drift.flagged:
        text += f" <b>drift past {record.drift.threshold:.0%}</b>"
    return text


def drift_notice(history: History) -> str:
    """A sentence on the flagged runs (the latest first), or on there being none, for the top of the page."""
    if not history.records:
        return ""
    threshold = (f"the report's threshold of {history.threshold:.1%}" if history.threshold is not None
                 else "each run's own --alert-on-drift threshold")
    if not history.flagged:
        return f"<p>No run's medians drifted past {threshold}.</p>"
    latest = history.flagged[-1]
    return (f'<p class="alert">{len(history.flagged)} run(s) drifted past {threshold}, latest '
            f"{html.escape(latest.run_id)} ({', '.join(map(METRIC_LABELS.get, latest.drift.flagged))} against "
            f"{html.escape(latest.drift.previous_run or '')}).</p>")
