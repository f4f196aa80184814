"""Which rows an earlier run already finished, so that a rerun renders only the rest.

A row is done when some earlier metadata row for the same id

- has status ``ok`` or ``skipped`` (a skipped row is a copy of an ok one),
- has the same fingerprint: the SHA-256 of each input file and the configuration hash
  (:mod:`ray_jobs.fingerprint`), and
- names an output image that still exists with the SHA-256 recorded for it (in an object store:
  with the size and entity tag recorded for it, so nothing is downloaded; :mod:`ray_jobs.outputs`).

Anything else is redone: failed rows, rows whose photo, mask or configuration changed, rows whose
image was deleted, overwritten by another configuration's render, or left torn by a crash. Every
row is checked against every earlier run, not only the latest, so going back to an earlier
configuration reuses its images as long as they are still on disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ray_jobs.fingerprint import Fingerprint
from ray_jobs.outputs import ImageCheck
from ray_jobs.records import Record

DONE_STATUSES = ("ok", "skipped")
_FINGERPRINT_COLUMNS = tuple(field.name for field in dataclasses.fields(Fingerprint))


def _key(row_id: str, fingerprint: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row_id, *(fingerprint[name] for name in _FINGERPRINT_COLUMNS))


def done_rows(rows_and_fingerprints: Sequence[tuple[str, Fingerprint]], previous: Iterable[Record], *,
              output: str) -> dict[str, Record]:
    """Map each done id (module docstring) to the earlier row that rendered its image.

    ``rows_and_fingerprints`` are this run's (id, fingerprint) pairs; ``previous`` every row of
    earlier runs; ``output`` the folder their ``output_path`` is relative to.
    """
    candidates: dict[tuple[Any, ...], list[Record]] = {}
    for row in previous:
        if row["status"] in DONE_STATUSES and row["output_path"] and row["output_sha256"]:
            candidates.setdefault(_key(row["id"], row), []).append(row)
    images = ImageCheck(output)
    done = {}
    for row_id, fingerprint in rows_and_fingerprints:
        for row in candidates.get(_key(row_id, dataclasses.asdict(fingerprint)), []):
            if images.holds(row):
                done[row_id] = row
                break
    return done
