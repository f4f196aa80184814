"""Fallbacks: what a transfer did instead of what it was asked, each said in one short sentence.

A transfer never fails for want of a matching segment; it falls back (ALGORITHM.md, "style") and
says so here. The command line prints each note as a line ``note: ...`` on stderr and the batch
job stores them in the metadata column ``fallbacks``. The notes are:

- the masks share no label, so the whole content is styled by the whole style photo (or, with
  ``content_only_policy`` content_only, not styled);
- the segments were matched automatically (:mod:`stylecore.segment_matching`), not read from mask files;
- a mask's segment was dropped as too small (every piece of it under ``min_segment_fraction``);
- a segment only the content has is styled by the whole style photo (or left unstyled);
- a segment covers no position of a layer's feature grid (a sliver at a small working size) and
  drops out of that layer's style term.

The first four follow from the pair's :class:`~stylecore.masks.PairDiagnostics`
(:func:`pair_fallbacks`). The last is found where each layer's segment targets are built, deep
inside a stage's objective; rather than thread a list through every call on the way, the objective
calls :func:`record` and :func:`stylecore.transfer.transfer` gathers the notes with
:func:`collecting`, the pattern of :func:`warnings.catch_warnings` kept per thread and task by a
:class:`contextvars.ContextVar`. A note recorded outside :func:`collecting` (an objective built
directly, as in tests) is dropped.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from stylecore.config import TransferConfig
from stylecore.masks import PairDiagnostics

_collected: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("stylecore_fallbacks", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[list[str]]:
    """The notes :func:`record` receives inside the ``with`` block, in order, each once."""
    notes: list[str] = []
    token = _collected.set(notes)
    try:
        yield notes
    finally:
        _collected.reset(token)


def record(note: str) -> None:
    """Add ``note`` to the innermost :func:`collecting` block's notes (once; dropped outside any block)."""
    notes = _collected.get()
    if notes is not None and note not in notes:
        notes.append(note)


def pair_fallbacks(diagnostics: PairDiagnostics, config: TransferConfig) -> list[str]:
    """The notes that follow from how a pair's segments were found and paired (module docstring)."""
    styled_by_whole = config.content_only_policy == "global_style"
    notes = []
    if diagnostics.automatic:
        notes.append("automatic masks used: the segments were matched between the photos automatically")
    for side, mask in (("content", diagnostics.content), ("style", diagnostics.style)):
        for label in mask.dropped_labels if mask is not None else ():
            notes.append(f"{side} mask's segment {label} dropped as too small (every piece under "
                         f"{config.min_segment_fraction:.2%} of the image)")
    if not diagnostics.matched:
        notes.append("masks share no label: the whole content photo is " + (
            "styled by the whole style photo" if styled_by_whole else "left unstyled (content_only_policy)"))
        return notes
    for label in diagnostics.content_only:
        notes.append(f"content-only segment {label} " + (
            "styled by the whole style photo" if styled_by_whole else "left unstyled (content_only_policy)"))
    return notes
