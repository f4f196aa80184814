"""``python -m ray_jobs.report RUN [--output DIR] [--top N] [--sample N] [--full-table-below N] [--seed N]
[--alert-on-drift FRACTION]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ray_jobs.report import __doc__ as REPORT_DOC
from ray_jobs.report.build import build_report
from ray_jobs.report.selection import ReportOptions
from stylecore.errors import StorageError


def main(argv: Sequence[str] | None = None) -> int:
    """Build the report; exit status 0, or 1 with one sentence when the run cannot be read."""
    defaults = ReportOptions()
    parser = argparse.ArgumentParser(prog="python -m ray_jobs.report", description=REPORT_DOC.splitlines()[0])
    parser.add_argument("run_dir", help="the job's output folder or URI (holds metadata/ and images/)")
    parser.add_argument("--output", type=Path, default=None,
                        help="local report folder (default RUN_DIR/report; required when RUN_DIR is a URI)")
    parser.add_argument("--top", type=_count, default=defaults.top, metavar="N",
                        help=f"worst and best N rows shown per output metric (default {defaults.top})")
    parser.add_argument("--sample", type=_count, default=defaults.sample, metavar="N",
                        help=f"rows in the random sample (default {defaults.sample})")
    parser.add_argument("--full-table-below", type=_count, default=defaults.full_table_below, metavar="N",
                        help="a run with fewer rows shows every row instead of the worst, best and sample "
                             f"(default {defaults.full_table_below})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"chooses the sample; the same seed shows the same rows (default {defaults.seed})")
    parser.add_argument("--alert-on-drift", type=float, metavar="FRACTION",
                        help="flag each run whose median of an output metric moved by more than FRACTION (0.05: "
                             "5 %%) against the previous run with medians, recomputed from the run records "
                             "(default: the threshold each run's job was given)")
    arguments = parser.parse_args(argv)
    if arguments.alert_on_drift is not None and not arguments.alert_on_drift > 0:
        parser.error("--alert-on-drift must be a positive fraction, e.g. 0.05 for 5 %")
    options = ReportOptions(top=arguments.top, sample=arguments.sample,
                            full_table_below=arguments.full_table_below, seed=arguments.seed)
    try:
        page = build_report(arguments.run_dir, output=arguments.output, options=options,
                            alert_on_drift=arguments.alert_on_drift)
    except (FileNotFoundError, StorageError, ValueError) as error:
        print(f"error: {error}")
        return 1
    print(f"\nreport: {page}\ncontact sheet: {page.parent / 'contact_sheet.png'}")
    return 0


def _count(text: str) -> int:
    """A non-negative whole number, for argparse."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows, 0 or more, not {text!r}")
    return value
