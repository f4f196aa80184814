"""Building a run's report: read the run, choose the rows shown, make their thumbnails, write the files."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from ray_jobs.report.charts import histograms_chart, runs_chart
from ray_jobs.report.contact_sheet import contact_sheet
from ray_jobs.report.groups import configuration_labels, error_rows, group_medians, note_counts, style_labels
from ray_jobs.report.page import ERRORS_FILE, PageContent, html_page
from ray_jobs.report.history import read_history
from ray_jobs.report.selection import ReportOptions, Section, sections
from ray_jobs.report.thumbnails import row_views
from ray_jobs.run_record import drift_text
from ray_jobs.run_summary import load_run, summary_table
from stylecore.atomic import atomic_path, write_text_atomic
from stylecore.storage import absolute, is_local, resolve


def build_report(run_dir: str | Path, *, output: str | Path | None = None,
                 options: ReportOptions = ReportOptions(), alert_on_drift: float | None = None) -> Path:
    """Write the report of ``run_dir`` into ``output`` (default ``run_dir/report``); return index.html's path.

    ``run_dir`` may be an object-store URI; ``output`` is a local folder, required for such a run.
    ``alert_on_drift`` flags the runs whose medians moved past it (:mod:`ray_jobs.report.history`;
    ``None``: the threshold each run was given). Prints the summary table to stdout.
    """
    run_dir = absolute(run_dir)
    if output is None and not is_local(run_dir):
        raise ValueError(f"{run_dir} is in an object store: give a local report folder with --output.")
    report_dir = Path(output) if output is not None else Path(resolve(run_dir)[1]) / "report"
    table, summary = load_run(run_dir)
    chosen = sections(table, options)
    rows = _rows(table, chosen)
    views = row_views([row for section_rows in rows for row in section_rows], run_dir, report_dir)
    section_views = [(section, [views[row["id"]] for row in section_rows])
                     for section, section_rows in zip(chosen, rows, strict=True)]
    sheet_views = list(views.values())[:options.sheet_rows]
    with atomic_path(report_dir / "contact_sheet.png") as temporary:
        contact_sheet(sheet_views, report_dir).save(temporary, format="PNG")
    history = read_history(run_dir, alert_on_drift=alert_on_drift)
    charts = {"runs": runs_chart(history, report_dir) if history.records else None,
              "histograms": histograms_chart(table, summary, report_dir)}
    errors = error_rows(table)
    _write_errors(errors, report_dir / ERRORS_FILE)
    page = report_dir / "index.html"
    write_text_atomic(page, html_page(PageContent(
        run_name=posixpath.basename(run_dir.rstrip("/")), summary=summary, errors=errors,
        by_style=group_medians(table, "style_path", style_labels),
        by_configuration=group_medians(table, "config_hash", configuration_labels), history=history, charts=charts,
        notes=note_counts(table), sections=section_views, sheet_rows=len(sheet_views))))
    print(summary_table(summary))
    for record in history.flagged:
        print(f"drift: run {record.run_id}: {drift_text(record)}")
    return page


def _write_errors(errors: pa.Table, path: Path) -> None:
    """``errors`` as CSV at ``path``; none there (not even a rebuild's stale one) when there are none."""
    if errors.num_rows == 0:
        path.unlink(missing_ok=True)
        return
    with atomic_path(path) as temporary:
        pa_csv.write_csv(errors, temporary)


def _rows(table: pa.Table, chosen: list[Section]) -> list[list[dict]]:
    """Each section's rows as dicts: only the rows shown ever leave the columnar table."""
    return [table.take(section.rows).to_pylist() for section in chosen]
