"""The report's HTML page: summary with histograms, runs night over night, errors, medians by group,
then the sections of pairs.

One static file, ``REPORT/index.html``: no script, no network, every link relative (thumbnails in
``REPORT/thumbnails/``, full-size outputs in ``RUN/images/``), so it opens from disk. Its size is
bounded by the sections' row counts, not by the run's (:mod:`ray_jobs.report.selection`).
"""

from __future__ import annotations

import dataclasses
import datetime
import html
from collections.abc import Sequence

import pyarrow as pa

from ray_jobs.report.groups import ERRORS_LISTED, ErrorGroup, GroupTable, error_groups
from ray_jobs.report.history import RUNS_LISTED, History, drift_notice, history_table
from ray_jobs.report.pair_table import pair_table
from ray_jobs.report.selection import Section
from ray_jobs.report.thumbnails import PairView
from ray_jobs.run_summary import METRIC_LABELS, SUBJECTS, Summary, format_value, spread_text, time_text
from stylecore.metrics import BETTER, METRIC_NAMES

ERRORS_FILE = "errors.csv"
"""Every error row's id, type and message, beside the page, for a run with more errors than it lists."""

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.error { background: #fff0f0; }
img { display: block; max-height: 160px; max-width: 100%; height: auto; }
table.pairs { width: 100%; table-layout: fixed; }
table.pairs td { overflow-wrap: anywhere; }
table.pairs table { margin: 0; font-size: 12px; }
table.pairs table th, table.pairs table td { padding: 2px 4px; overflow-wrap: normal; }
table.pairs table td { white-space: nowrap; }
.missing, .note, .example { color: #777; }
.note { font-size: 12px; }
nav a { margin-right: 1em; }
tr.drift { background: #fff4e0; }
.alert { color: #a04000; font-weight: bold; }
img.chart { max-height: none; max-width: 100%; }
"""


@dataclasses.dataclass(frozen=True)
class PageContent:
    """Everything the page shows."""

    run_name: str
    summary: Summary
    errors: pa.Table
    """``id``, ``error_type``, ``error_message`` of every error row (:func:`~ray_jobs.report.groups.error_rows`)."""
    by_style: GroupTable
    by_configuration: GroupTable
    history: History
    charts: dict[str, str | None]
    """``runs`` and ``histograms`` to their PNG relative to the page, ``None`` where there is nothing to draw."""
    notes: dict[str, list[tuple[str, int]]]
    sections: list[tuple[Section, list[PairView]]]
    sheet_rows: int
    """Rows drawn on the contact sheet."""


def html_page(content: PageContent) -> str:
    """The whole report page."""
    escape = html.escape
    total = sum(content.summary.status_counts.values())
    shown = len({pair.row["id"] for _, pairs in content.sections for pair in pairs})
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    headings = [("summary", "Summary"), ("runs", f"Runs ({len(content.history.records)})"),
                ("errors", f"Errors ({content.errors.num_rows})"),
                ("by-style", "Medians by style photo"), ("by-configuration", "Medians by configuration"),
                *([("notes", "Notes")] if content.notes else []),
                *((section.anchor, section.label) for section, _ in content.sections)]
    anchored: set[str] = set()
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Report: {escape(content.run_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Run report: {escape(content.run_name)}</h1>",
        f"<p>{total} pairs, latest row per id, {shown} of them shown below; generated {generated}. "
        f'<a href="contact_sheet.png">Contact sheet</a> ({content.sheet_rows} rows).</p>',
        "<nav>" + "".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in headings) + "</nav>",
        '<h2 id="summary">Summary</h2>', _status_table(content.summary), _metric_table(content.summary),
        f"<p>{escape(time_text(content.summary))}</p>", _chart(content.charts["histograms"], "histograms"),
        _METRIC_LEGEND,
        *[f"<p>Unreadable metadata file {escape(str(path))}: {escape(reason)}</p>"
          for path, reason in content.summary.unreadable],
        f'<h2 id="runs">Runs night over night ({len(content.history.records)})</h2>', _runs(content),
        f'<h2 id="errors">Errors ({content.errors.num_rows})</h2>', _errors(content),
        '<h2 id="by-style">Medians by style photo</h2>', _group_table(content.by_style, "style photo"),
        '<h2 id="by-configuration">Medians by configuration</h2>',
        _group_table(content.by_configuration, "configuration"),
        *(['<h2 id="notes">Notes</h2>', _notes_tables(content.notes)] if content.notes else []),
        *(f'<h2 id="{escape(section.anchor)}">{escape(section.title)}</h2>'
          + (pair_table(pairs, anchored) if pairs else "<p>None.</p>") for section, pairs in content.sections),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


_METRIC_LEGEND = """<p><b>style distance</b>: per content segment, Wasserstein-2 distance between Gaussians fitted
to the CIELAB colours of the image inside the segment and of the matching style segment, averaged by segment
area; in ΔE*ab (about 1 is a just-noticeable difference); lower is better.
<b>SSIM</b>: structural similarity of the image's luma to the content photo's (1 = same structure; it also
drops with global changes of brightness and contrast); higher is better.
<b>photorealism energy</b>: matting-Laplacian energy of the image w.r.t. the content photo, per pixel
(RGB in [0, 1]); 0 for locally affine recolourings of the content; lower is better.
<i>content photo</i> is the unstyled content (style distance to beat, SSIM 1, energy ~0);
<i>colour transfer</i> is the per-segment mean/std colour transfer, the simple method to beat.
All three are computed at the working size (the optimised result and the photos at <code>size</code>),
not on the written output, which the local affine maps carry to the output size
(<code>benchmarks/full_resolution.py</code> scores outputs at their own size).</p>"""


def _status_table(summary: Summary) -> str:
    cells = "".join(f"<th>{html.escape(status)}</th>" for status in summary.status_counts)
    counts = "".join(f'<td class="number">{count}</td>' for count in summary.status_counts.values())
    return f"<table><tr>{cells}<th>total</th></tr><tr>{counts}" \
           f'<td class="number">{sum(summary.status_counts.values())}</td></tr></table>'


def _metric_table(summary: Summary) -> str:
    header = "".join(f"<th>{html.escape(name)}</th>" for name in SUBJECTS.values())
    body = []
    for metric in METRIC_NAMES:
        cells = "".join(f'<td class="number">{html.escape(spread_text(summary.metrics[(subject, metric)]))}</td>'
                        for subject in SUBJECTS)
        body.append(f"<tr><th>{html.escape(METRIC_LABELS[metric])}, {BETTER[metric]} better</th>{cells}</tr>")
    return f"<table><tr><th>median (IQR), n</th>{header}</tr>{''.join(body)}</table>"


def _errors(content: PageContent) -> str:
    """Every error listed, or grouped by message pattern when there are more than :data:`ERRORS_LISTED`."""
    errors = content.errors
    if errors.num_rows == 0:
        return "<p>None.</p>"
    shown = {pair.row["id"] for _, pairs in content.sections for pair in pairs}
    download = f'<p>Every error row: <a href="{ERRORS_FILE}">{ERRORS_FILE}</a> (id, error type, message).</p>'
    if errors.num_rows <= ERRORS_LISTED:
        body = "".join(f"<tr><td>{_id_link(row['id'], shown)}</td><td>{html.escape(row['error_type'] or '')}</td>"
                       f"<td>{html.escape(row['error_message'] or '')}</td></tr>" for row in errors.to_pylist())
        return f"<table><tr><th>id</th><th>error</th><th>message</th></tr>{body}</table>{download}"
    groups = error_groups(errors)
    return (f"<p>{errors.num_rows} errors in {len(groups)} groups of one error type and message, paths and "
            f"numbers replaced by …; largest first.</p>{_error_group_table(groups, shown)}{download}")


def _error_group_table(groups: Sequence[ErrorGroup], shown: set[str]) -> str:
    body = "".join(
        f'<tr><td class="number">{group.count}</td><td>{html.escape(group.error_type)}</td>'
        f"<td>{html.escape(group.pattern)}<br><span class=\"example\">for example: "
        f"{html.escape(group.example_message)}</span></td>"
        f"<td>{', '.join(_id_link(row_id, shown) for row_id in group.example_ids)}"
        f"{' …' if group.count > len(group.example_ids) else ''}</td></tr>" for group in groups)
    return f"<table><tr><th>rows</th><th>error</th><th>message</th><th>ids</th></tr>{body}</table>"


def _id_link(row_id: str, shown: set[str]) -> str:
    """The id, linked to its row where the page shows it."""
    escaped = html.escape(row_id)
    return f'<a href="#row-{escaped}">{escaped}</a>' if row_id in shown else escaped


def _runs(content: PageContent) -> str:
    """The runs' chart beside their table, or a sentence when the output has no run records."""
    history = content.history
    unreadable = "".join(f"<p>Unreadable run record {html.escape(path)}: {html.escape(reason)}</p>"
                         for path, reason in history.unreadable)
    if not history.records:
        return ("<p>No run records (<code>metadata/_summary-*.json</code>): runs write one when they end, "
                f"from this version on.</p>{unreadable}")
    listed = (f"the latest {RUNS_LISTED}, newest first" if len(history.records) > RUNS_LISTED else "newest first")
    return (f"{drift_notice(history)}{_chart(content.charts['runs'], 'runs night over night')}"
            f"<p>Each run ({listed}): its rows, the medians of the output metrics over the rows it rendered "
            "with their change against the previous run that had medians, its time, and the output's "
            f"state after it. Read from the run records, not the rows.</p>{history_table(history)}{unreadable}")


def _chart(relative: str | None, name: str) -> str:
    if relative is None:
        return ""
    escaped = html.escape(relative)
    return f'<a href="{escaped}"><img class="chart" src="{escaped}" alt="{html.escape(name)} chart"></a>'


def _group_table(table: GroupTable, kind: str) -> str:
    """Per group of more than one row: rows, errors, and the medians of the output metrics and seconds
    over its rendered rows; a sentence for the groups of one row."""
    escaped = html.escape(kind)
    single = (f"<p>{table.single} {escaped}s have one row each: their metrics are the rows' own, in the "
              "pairs below.</p>" if table.single else "")
    if not table.groups:
        return single or "<p>None.</p>"
    metrics = "".join(f"<th>{html.escape(METRIC_LABELS[metric])}, {BETTER[metric]} better</th>"
                      for metric in METRIC_NAMES)
    body = "".join(
        f'<tr><td title="{html.escape(group.detail)}">{html.escape(group.label)}</td>'
        f'<td class="number">{group.rows}</td><td class="number">{group.errors}</td>'
        + "".join(f'<td class="number">{format_value(group.medians[name])}</td>' for name in (*METRIC_NAMES, "seconds"))
        + "</tr>" for group in table.groups)
    more = (f"<p>{table.left_out} smaller {escaped} groups are not shown (the {len(table.groups)} largest "
            "are).</p>" if table.left_out else "")
    return (f"<table><tr><th>{escaped}</th><th>rows</th><th>errors</th>{metrics}<th>seconds</th></tr>"
            f"{body}</table>{more}{single}")


def _notes_tables(notes: dict[str, list[tuple[str, int]]]) -> str:
    return "".join(f"<table><tr><th>{html.escape(column.replace('_', ' '))}</th><th>count</th></tr>"
                   + "".join(f'<tr><td>{html.escape(value)}</td><td class="number">{count}</td></tr>'
                             for value, count in values) + "</table>"
                   for column, values in notes.items())
