"""Console progress: one line per finished row with done, failed and total, and the time left.

    [12/60] pair12 ok 41.2s | done 11, failed 1, skipped 0 | ETA 10m05s

The estimate is the run's own throughput so far (rows finished per second of wall time, which
already accounts for the actors working in parallel) applied to the rows still to do.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"10m05s"`` or ``"2h03m"``: compact, for a console line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressReporter:
    """Counts a run's finished rows and prints a line for each (module docstring)."""

    def __init__(self, *, total: int, skipped: int = 0, stream: TextIO = sys.stdout) -> None:
        self.total = total
        """Rows this run renders (skipped rows excluded)."""
        self.skipped = skipped
        self.done = 0
        self.failed = 0
        self._stream = stream
        self._started = time.monotonic()

    @property
    def finished(self) -> int:
        return self.done + self.failed

    def eta_seconds(self) -> float | None:
        """Seconds left at the throughput so far; ``None`` before the first row finishes."""
        if not self.finished:
            return None
        elapsed = time.monotonic() - self._started
        return elapsed / self.finished * (self.total - self.finished)

    def row_finished(self, row_id: str, status: str, seconds: float | None) -> str:
        """Count a row that ended with ``status`` after ``seconds`` of work, print its line and return it."""
        if status == "ok":
            self.done += 1
        else:
            self.failed += 1
        eta = self.eta_seconds()
        took = "" if seconds is None else f" {seconds:.1f}s"
        line = (f"[{self.finished}/{self.total}] {row_id} {status}{took} | done {self.done}, "
                f"failed {self.failed}, skipped {self.skipped} | ETA {format_duration(eta or 0)}")
        print(line, file=self._stream, flush=True)
        return line
