"""Progress lines: counts of done, failed and skipped rows, and a time estimate in a compact form."""

from __future__ import annotations

import io
import re

import pytest

from ray_jobs.progress import ProgressReporter, format_duration


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (44.6, "45s"), (605, "10m05s"), (7380, "2h03m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_a_line_per_finished_row_with_counts_and_estimate():
    stream = io.StringIO()
    progress = ProgressReporter(total=3, skipped=4, stream=stream)
    assert progress.eta_seconds() is None
    progress.row_finished("pair01", "ok", 41.25)
    progress.row_finished("pair02", "error", 0.5)
    last = progress.row_finished("pair03", "ok", None)
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"\[1/3\] pair01 ok 41\.2s \| done 1, failed 0, skipped 4 \| ETA \d+s", lines[0])
    assert lines[1].startswith("[2/3] pair02 error 0.5s | done 1, failed 1, skipped 4 | ETA ")
    assert last == lines[2] == "[3/3] pair03 ok | done 2, failed 1, skipped 4 | ETA 0s"
    assert (progress.done, progress.failed) == (2, 1)
