"""What a job refuses and how a failure is told: one sentence, never a traceback.

:class:`ManifestError` and :class:`JobError` stop a job before any row runs; the entry point prints
their message and exits with status 2. A failure of one row is not an exception at this level: it
becomes that row's ``error_type`` and ``error_message`` (see :func:`one_line`).
"""

from __future__ import annotations

import re

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
MAX_MESSAGE_LENGTH = 500
"""Longer messages (TensorFlow's can run to pages) are cut here, with an ellipsis."""


class ManifestError(ValueError):
    """The manifest cannot be used as it is; the message names the file, the line and the problem."""


class JobError(RuntimeError):
    """The job cannot start (no usable workers, a resource request the cluster cannot meet)."""


def one_line(error: BaseException) -> str:
    """``error``'s message on one line: whitespace collapsed, terminal colours removed, length capped."""
    text = " ".join(_ANSI_ESCAPE.sub("", str(error)).split()) or type(error).__name__
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[:MAX_MESSAGE_LENGTH - 1] + "…"
