"""The HTML table of pairs: per row its id and status, five thumbnails, and its metrics beside the references'."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from ray_jobs.report.groups import NOTE_COLUMNS
from ray_jobs.report.thumbnails import IMAGES, PairView
from ray_jobs.run_summary import METRIC_LABELS, SUBJECTS, format_value
from ray_jobs.schema import metric_column
from stylecore.metrics import METRIC_NAMES

PAIR_COLUMN_WIDTHS = {"pair": 8, "content": 15, "output": 16, "style": 13, "content mask": 9, "style mask": 9,
                      "metrics": 30}
"""Share of the page width, in percent, of each column of the pair table, which fits the window:
the thumbnails shrink to their column (a 1400 px window shows every column)."""


def pair_table(pairs: Sequence[PairView], anchored: set[str]) -> str:
    """A table of ``pairs``; the first row of each id not yet in ``anchored`` gets the anchor
    ``row-<id>`` (an HTML id is unique on a page), and its id is added to ``anchored``."""
    columns = ("pair", *IMAGES, "metrics")
    widths = "".join(f'<col style="width: {PAIR_COLUMN_WIDTHS[name]}%">' for name in columns)
    header = "".join(f"<th>{html.escape(name)}</th>" for name in columns)
    body = [f"<colgroup>{widths}</colgroup><tr>{header}</tr>"]
    for pair in pairs:
        row_id = pair.row["id"]
        anchor = "" if row_id in anchored else f' id="row-{html.escape(row_id)}"'
        anchored.add(row_id)
        images = "".join(_image_cell(name, path, pair.output_link if name == "output" else None)
                         for name, path in pair.thumbnails.items())
        css = ' class="error"' if pair.row["status"] == "error" else ""
        body.append(f"<tr{anchor}{css}><td>{_pair_cell(pair.row)}</td>{images}"
                    f"<td>{_row_metrics_cell(pair.row)}</td></tr>")
    return f'<table class="pairs">{"".join(body)}</table>'


def _image_cell(name: str, thumbnail: str | None, link: str | None) -> str:
    if thumbnail is None:
        return '<td class="missing">—</td>'
    image = f'<img src="{html.escape(thumbnail)}" alt="{html.escape(name)}" loading="lazy">'
    return f'<td><a href="{html.escape(link)}">{image}</a></td>' if link else f"<td>{image}</td>"


def _pair_cell(row: Mapping[str, Any]) -> str:
    seconds = f"<br>{format_value(row['seconds'])} s" if row.get("seconds") is not None else ""
    error = (f"<br><b>{html.escape(row.get('error_type') or '')}</b>: {html.escape(row.get('error_message') or '')}"
             if row["status"] == "error" else "")
    return f"<b>{html.escape(row['id'])}</b><br>{html.escape(row['status'])}{seconds}{error}{_notes(row)}"


def _notes(row: Mapping[str, Any]) -> str:
    """The row's :data:`~ray_jobs.report.groups.NOTE_COLUMNS` that it has and that are not empty."""
    notes = []
    for column in NOTE_COLUMNS:
        value = row.get(column)
        text = "; ".join(map(str, value)) if isinstance(value, list) else str(value or "")
        if text:
            notes.append(f'<br><span class="note">{html.escape(column.replace("_", " "))}: {html.escape(text)}</span>')
    return "".join(notes)


def _row_metrics_cell(row: Mapping[str, Any]) -> str:
    header = "".join(f"<th>{html.escape(name)}</th>" for name in SUBJECTS.values())
    lines = [f"<tr><th></th>{header}</tr>"]
    for metric in METRIC_NAMES:
        cells = "".join(f'<td class="number">{format_value(row.get(metric_column(subject, metric)))}</td>'
                        for subject in SUBJECTS)
        lines.append(f"<tr><th>{html.escape(METRIC_LABELS[metric])}</th>{cells}</tr>")
    return f"<table>{''.join(lines)}</table>"
