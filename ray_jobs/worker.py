"""The Ray actor that renders rows, holding one loaded feature extractor for all of them.

Building the extractor and reading and checking its weights is the slow part of starting; an
actor does it once, in ``__init__``, for the job's extractor, and reuses it for every row it is
given. A row whose configuration names another extractor loads that one the first time and keeps
it too. :class:`WorkerInfo` counts the loads, so the job (and its tests) can see it happened once.

:meth:`TransferWorker.render` never raises: any failure of a row (an unreadable photo, an
unusable mask, a loss that became NaN, or an exception nobody foresaw) comes back as that row's
error record, so one bad row cannot take the others down. A missing weights file at start is not
a row's failure but the job's: the actor reports it in :attr:`WorkerInfo.startup_error` and the
job stops before handing out rows.

The finished image, at the row's output size (by default its content photo's own), is a PNG
carrying the content's ICC profile and EXIF. Where the output is an object store, the actor writes
it there itself and returns only its record; for a local output folder the PNG bytes travel back
to the driver, which writes them, so the folder need only exist where the driver runs
(:mod:`ray_jobs.outputs`).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import socket
import time

import ray

from ray_jobs.devices import DeviceInfo, configure_tensorflow
from ray_jobs.errors import one_line
from ray_jobs.fingerprint import Fingerprint
from ray_jobs.manifest import ManifestEntry
from ray_jobs.outputs import write_image
from ray_jobs.records import (Record, empty_record, error_columns, identity_columns, metric_columns, now,
                              result_columns, worker_columns)
from stylecore.errors import StyleCoreError
from stylecore.extractors import FeatureExtractor, load_extractor
from stylecore.output import encode_image
from stylecore.transfer import transfer


@dataclasses.dataclass(frozen=True)
class RenderTask:
    """One row to render, as the driver hands it to an actor."""

    entry: ManifestEntry
    fingerprint: Fingerprint
    run_id: str
    image_output: str | None = None
    """The output URI the actor writes the image to itself, or ``None``: it returns the PNG bytes."""


@dataclasses.dataclass(frozen=True)
class RenderOutcome:
    """A rendered (or failed) row: its metadata record and, when it succeeded, the PNG-encoded image."""

    record: Record
    png: bytes | None


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """What an actor reports about itself."""

    worker: str
    """host:pid of the actor's process."""
    device: DeviceInfo
    extractor_loads: dict[str, int]
    """How many times each extractor was built and its weights loaded: 1 each, in a healthy actor."""
    rendered: int
    """Rows this actor has rendered (ok or error)."""
    startup_error: str | None
    """Why the job's extractor could not be loaded, or ``None``."""


class TransferWorker:
    """Renders rows with ``stylecore.transfer``; wrapped by ``ray.remote`` in :mod:`ray_jobs.pool`."""

    def __init__(self, *, extractor: str, weights: str | None, seed: int, cpu_threads: int) -> None:
        self._device = configure_tensorflow(cpu_threads=cpu_threads, gpu_ids=ray.get_gpu_ids())
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._weights = {extractor: weights}
        self._seed = seed
        self._extractors: dict[str, FeatureExtractor] = {}
        self._loads: collections.Counter[str] = collections.Counter()
        self._rendered = 0
        self._startup_error: str | None = None
        try:
            self._extractor(extractor)
        except StyleCoreError as error:
            self._startup_error = one_line(error)

    def describe(self) -> WorkerInfo:
        """This actor's process, device, extractor loads and rows rendered."""
        return WorkerInfo(worker=self._worker, device=self._device, extractor_loads=dict(self._loads),
                          rendered=self._rendered, startup_error=self._startup_error)

    def render(self, task: RenderTask) -> RenderOutcome:
        """Run the two-stage transfer on ``task``'s row; a failure becomes an error record, never an exception."""
        started_at, clock = now(), time.perf_counter()
        entry = task.entry
        record = {**empty_record(), **identity_columns(entry, task.fingerprint, run_id=task.run_id)}
        png = None
        try:
            extractor = self._extractor(entry.config.extractor)
            result = transfer(entry.content, entry.style, entry.content_mask, entry.style_mask,
                              config=entry.config, extractor=extractor)
            columns = {**result_columns(result, extractor), **metric_columns(result)}
            encoded = encode_image(result.output, "PNG", result.content_metadata)
            if task.image_output is None:
                png = encoded
            else:
                columns.update(write_image(task.image_output, entry.id, encoded))
            record.update(columns)
        except Exception as error:  # every failure of a row, foreseen or not, becomes its error record
            record.update(error_columns(error))
        self._rendered += 1
        record.update(worker_columns(self._device, worker=self._worker, started_at=started_at,
                                     finished_at=now(), seconds=time.perf_counter() - clock))
        return RenderOutcome(record=record, png=png)

    def _extractor(self, name: str) -> FeatureExtractor:
        if name not in self._extractors:
            self._extractors[name] = load_extractor(name, weights=self._weights.get(name), seed=self._seed)
            self._loads[name] += 1
        return self._extractors[name]

