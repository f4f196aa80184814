"""TensorFlow loaded without its C++ start-up lines.

TensorFlow's C++ runtime writes straight to file descriptor 2, where neither Python's logging nor
``TF_CPP_MIN_LOG_LEVEL`` reaches (TensorFlow 2.21 prints the oneDNN notice and absl's
"All log messages before absl::InitializeLog()" line whatever it says). A CUDA build on a machine
with a driver library but no usable GPU also logs "failed call to cuInit" the first time it
looks for GPUs. A user of the command line, or of a batch job whose actors' output Ray forwards to
the driver, would see these lines before every run; they say nothing the caller does not report
better (:mod:`ray_jobs.devices` records where each actor runs).

:func:`load_tensorflow` imports TensorFlow and lets it look for GPUs once, with descriptor 2
pointed at the null device meanwhile; a Python exception raised there still shows, after the
restore. It must come before anything else in the process uses TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType


def load_tensorflow() -> ModuleType:
    """TensorFlow, imported and its GPU platform probed with standard error silenced (module docstring)."""
    with _native_stderr_silenced():
        import tensorflow  # noqa: PLC0415  (imported only where a transfer runs; see ray_jobs/__init__.py)

        tensorflow.config.list_physical_devices("GPU")
    return tensorflow


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at the null device for the block, then restored."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
