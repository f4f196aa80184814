"""A run's report: a static HTML page and a PNG contact sheet that stay small however large the run.

``python -m ray_jobs.report OUTPUT [--output DIR]`` (or :func:`build_report`) takes the latest row
per id of the run folder ``OUTPUT`` and writes into ``DIR`` (default ``OUTPUT/report``):

- ``index.html``: the summary (counts by status; median and interquartile range of each metric for
  the outputs and the two references; time; a histogram of each metric), the output's runs night
  over night from their run records (a chart and a table, runs whose medians drifted flagged),
  every error (grouped by message when there are many), medians per style photo and per
  configuration where one has several rows, then the pairs: every row of a run of fewer than
  ``--full-table-below`` rows (500), else the ``--top`` (10) worst and best rows by each output
  metric and a seeded random sample of ``--sample`` (100) rows. Each pair row shows content,
  output, style and both masks as thumbnails (in ``thumbnails/``, made only for the rows shown, once
  each), and its metrics beside the references'. Every link is relative (an output thumbnail links
  to the full-size image in ``OUTPUT/images/``), so the page works opened from disk; no script, no
  network. For 100,000 rows: under a minute and a few MB (``benchmarks/report_scale.py``).
- ``charts/``: ``histograms.png`` and ``runs.png``, drawn with matplotlib.
- ``contact_sheet.png``: the page's rows (the first 200 distinct) as one image.
- ``errors.csv``: every error row's id, type and message, when there are errors.

and prints the summary as a text table.

``OUTPUT`` may be an object-store URI (``s3://renders/nightly``): the metadata and images are read
from the store, and the report is written to a local ``--output`` folder, which is then required.
It stays local because it is a page to open from disk, with relative links to its thumbnails; in a
bucket it could only be viewed through a web server or signed URLs. Its full-size links then point
nowhere and are left out (the page names each image's URI in its metadata columns).

Modules: :mod:`~ray_jobs.report.selection` (which rows are shown), :mod:`~ray_jobs.report.groups`
(errors by message, medians by group, notes), :mod:`~ray_jobs.report.history` (the runs, from
their records), :mod:`~ray_jobs.report.charts`, :mod:`~ray_jobs.report.thumbnails`,
:mod:`~ray_jobs.report.page` and :mod:`~ray_jobs.report.pair_table` (HTML),
:mod:`~ray_jobs.report.contact_sheet`, :mod:`~ray_jobs.report.build` (the steps in order),
:mod:`~ray_jobs.report.cli`.
"""

from ray_jobs.report.build import build_report
from ray_jobs.report.selection import ReportOptions

__all__ = ["ReportOptions", "build_report"]
