"""The Ray actor that renders rows, holding one loaded feature extractor for all of them.

Building the extractor and reading and checking its weights is the slow part of starting; an
actor does it once, in ``__init__``, for the job's extractor, and reuses it for every row it is
given. A row is always rendered with the weights of its own extractor, weights source and (for
random weights) seed: a row that names others loads those the first time and keeps them too.
:class:`WorkerInfo` counts the loads, so the job (and its tests) can see it happened once. The
identity of the weights the actor holds must equal the one in the row's fingerprint, or the row
fails rather than record a resume key that does not describe it.

The constructor then compiles ahead (:func:`stylecore.warm_up.warm_up`): a tiny transfer traces the
stage programs and compiles the numba kernels, so that the actor's first row costs what its later
rows cost. :class:`WorkerInfo` reports the warm-up's seconds and the process's trace count.

:meth:`TransferWorker.render` never raises: any failure of a row (an unreadable photo, an
unusable mask, a loss that became NaN, or an exception nobody foresaw) comes back as that row's
error record, so one bad row cannot take the others down. A missing weights file at start is not
a row's failure but the job's: the actor reports it in :attr:`WorkerInfo.startup_error` and the
job stops before handing out rows. So does an actor that Ray gave a GPU but whose TensorFlow
finds none (a CPU-only TensorFlow on a GPU node), unless the job allows it: it would hold the GPU
and run on the CPU.

``RAY_JOBS_TEST_FAULT`` makes a worker fail the way real clusters do, for the tests only:
``kill:<row id>`` SIGKILLs the worker's process when it is handed that row (``kill:<row id>:<file>``:
only while ``<file>`` does not exist, which the worker first creates holding its pid, so once), and
``hang:<row id>`` makes the row never finish. ``RAY_JOBS_TEST_SLOW=prepare:S,device:S,finish:S``
adds S seconds of waiting to each phase of every row (any of the three), so that a test can tell
overlapped phases from consecutive ones whatever the machine's load. ``RAY_JOBS_TEST_GATE=<folder>``
makes every row, as its device phase starts, write ``<folder>/<row id>@<node id>`` and wait until
``<folder>/open`` exists, so that a test can change the cluster while it knows which node holds which
row, whatever the load.

A GPU actor is given two rows at once (:mod:`ray_jobs.pool`), each on its own thread: the transfer
runs as its three phases (:func:`stylecore.transfer.prepare_transfer`, ``optimise_transfer``,
``finish_transfer``), and only the optimisation holds the device, one row at a time, so that one
row's host work (decoding, masks, the Laplacian, the local affine finish, encoding and upload)
overlaps the other row's device work. Its CPU share is the host threads'.

The driver imports this module too, for the actor class and the dataclasses it exchanges, so
the modules that load TensorFlow (the extractors, the transfer) are imported inside the methods
that run in the actor, after :func:`ray_jobs.devices.configure_tensorflow` has loaded TensorFlow
quietly; the driver never pays TensorFlow's 600 MiB and seconds of start-up.

The finished image, at the row's output size (by default its content photo's own), is a PNG
carrying the content's EXIF (and sRGB's profile when the content had one); automatically matched
label maps become colour-coded mask PNGs (a few kB each), for the report's mask columns and for a
user to fix and give back as hand masks. Where the output is an object store, the actor writes
them there itself and returns only its record; for a local output folder the PNG bytes travel back
to the driver, which writes them, so the folder need only exist where the driver runs
(:mod:`ray_jobs.outputs`).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import ray

from ray_jobs.devices import DECLARED_GPU_DEVICE, DeviceInfo, configure_tensorflow
from ray_jobs.errors import one_line
from ray_jobs.fingerprint import RANDOM_WEIGHTS, Fingerprint, bytes_sha256, loaded_weights_identity
from ray_jobs.manifest import ManifestEntry
from ray_jobs.outputs import encode_preview, write_image
from ray_jobs.records import (Record, empty_record, error_columns, identity_columns, metric_columns, now,
                              result_columns, worker_columns)
from stylecore.errors import StyleCoreError
from stylecore.masks import label_map_to_rgb
from stylecore.output import encode_image

if TYPE_CHECKING:
    from stylecore.extractors import FeatureExtractor
    from stylecore.transfer import TransferResult


@dataclasses.dataclass(frozen=True)
class RenderTask:
    """One row to render, as the driver hands it to an actor."""

    entry: ManifestEntry
    fingerprint: Fingerprint
    run_id: str
    image_output: str | None = None
    """The output URI the actor writes the image (and masks) to itself, or ``None``: it returns the PNG bytes."""
    weights: str | None = None
    """Weights source of the row's extractor (``--weights``; ``None``: the extractor's own lookup)."""
    attempt: int = 1
    """1 for the first time the row is handed out; more when a worker died holding it."""


@dataclasses.dataclass(frozen=True)
class RenderOutcome:
    """A rendered (or failed) row: its metadata record and, when it succeeded, the PNG-encoded image."""

    record: Record
    png: bytes | None
    masks: dict[str, bytes] = dataclasses.field(default_factory=dict)
    """Automatic label maps as colour-coded PNGs, ``{"content": ..., "style": ...}``; empty for hand masks."""
    preview: bytes | None = None
    """The image's preview JPEG (:func:`ray_jobs.outputs.encode_preview`), with ``png``."""


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """What an actor reports about itself."""

    worker: str
    """host:pid of the actor's process."""
    node_id: str
    """The Ray node the actor runs on."""
    device: DeviceInfo
    extractor_loads: dict[str, int]
    """How many times each extractor was built and its weights loaded: 1 each, in a healthy actor."""
    rendered: int
    """Rows this actor has rendered (ok or error)."""
    startup_error: str | None
    """Why the job's extractor could not be loaded, or ``None``."""
    warm_up_seconds: float = 0.0
    """Seconds the actor spent in its constructor compiling ahead (:func:`stylecore.warm_up.warm_up`)."""
    start_seconds: float | None = None
    """Seconds from the pool asking for the actor to its being ready (process start, TensorFlow, the
    extractor, the warm-up); filled by :mod:`ray_jobs.pool`, ``None`` where it was not measured."""
    traces: int = 0
    """Traces of the stage programs this process has made (:func:`stylecore.optimise.trace_count`)."""
    traces_at_start: int = 0
    """:attr:`traces` when the actor was ready: all of them, where its rows use the job's extractor, its
    default layers and Laplacian radius (a row of other layers traces its own, once)."""


class TransferWorker:
    """Renders rows with ``stylecore.transfer``; wrapped by ``ray.remote`` in :mod:`ray_jobs.pool`."""

    def __init__(self, *, extractor: str, weights: str | None, seed: int, cpu_threads: int,
                 environment: dict[str, str], require_visible_gpu: bool = True) -> None:
        os.environ.update(environment)  # before TensorFlow's import, which reads its log level
        gpu_ids = ray.get_gpu_ids()
        self._device = configure_tensorflow(cpu_threads=cpu_threads, gpu_ids=gpu_ids)
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._node_id = ray.get_runtime_context().get_node_id()
        self._extractors: dict[tuple[str, str | None, int | None], FeatureExtractor] = {}
        self._loads: collections.Counter[str] = collections.Counter()
        self._rendered = 0
        self._lock = threading.Lock()
        """Guards the extractors and the counters against a GPU actor's second row."""
        self._device_turn = threading.Lock()
        """Held by the row whose optimisation runs: one at a time on the device."""
        self._startup_error: str | None = None
        self._warm_up_seconds, self._traces_at_start = 0.0, 0
        if self._device.device == DECLARED_GPU_DEVICE and require_visible_gpu:
            self._startup_error = (f"the worker {self._worker} reserved GPU {','.join(map(str, gpu_ids))} but its "
                                   "TensorFlow finds no GPU (a CPU-only TensorFlow, or no CUDA driver); install "
                                   "with pip install \"stylecore[gpu]\" on the GPU nodes, or run with --no-gpus "
                                   "(RAY_JOBS_DECLARED_GPUS=1 where the GPUs are only declared).")
            return
        try:
            loaded = self._extractor(extractor, weights, seed)
        except StyleCoreError as error:
            self._startup_error = one_line(error)
            return
        from stylecore.optimise import trace_count  # noqa: PLC0415  (module docstring)
        from stylecore.warm_up import warm_up  # noqa: PLC0415
        self._warm_up_seconds = warm_up(loaded)
        self._traces_at_start = trace_count()

    def describe(self) -> WorkerInfo:
        """This actor's process, device, extractor loads and rows rendered."""
        from stylecore.optimise import trace_count  # noqa: PLC0415  (module docstring)
        return WorkerInfo(worker=self._worker, node_id=self._node_id, device=self._device,
                          extractor_loads=dict(self._loads), rendered=self._rendered,
                          startup_error=self._startup_error, warm_up_seconds=self._warm_up_seconds,
                          traces=trace_count(), traces_at_start=self._traces_at_start)

    def render(self, task: RenderTask) -> RenderOutcome:
        """Run the two-stage transfer on ``task``'s row; a failure becomes an error record, never an exception."""
        _inject_test_fault(task.entry.id)
        started_at, clock = now(), time.perf_counter()
        entry = task.entry
        record = {**empty_record(), **identity_columns(entry, task.fingerprint, run_id=task.run_id)}
        png, masks, preview, waited = None, {}, None, 0.0
        try:
            extractor = self._extractor(entry.config.extractor, task.weights, entry.config.seed)
            held = loaded_weights_identity(extractor.weights_sha256)
            if held != task.fingerprint.extractor_weights_sha256:
                raise WeightsMismatchError(f"the worker's {extractor.name} weights are {held} but the job "
                                           f"expected {task.fingerprint.extractor_weights_sha256}: the nodes "
                                           "do not share one weights file.")
            result, waited = self._transfer(entry, extractor)
            columns = {**result_columns(result), **metric_columns(result)}
            encoded = encode_image(result.output, "PNG", result.content_metadata)
            preview = encode_preview(result.output, bytes_sha256(encoded))
            automatic = {side: encode_image(label_map_to_rgb(getattr(result, f"{side}_labels")), "PNG")
                         for side in ("content", "style")} if result.diagnostics.automatic else {}
            if task.image_output is None:
                png, masks = encoded, automatic
            else:
                columns.update(write_image(task.image_output, entry.id, encoded, automatic, preview))
            record.update(columns)
        except Exception as error:  # every failure of a row, foreseen or not, becomes its error record
            record.update(error_columns(error))
        with self._lock:
            self._rendered += 1
        record.update(worker_columns(self._device, worker=self._worker, started_at=started_at,
                                     finished_at=now(), seconds=time.perf_counter() - clock,
                                     wait_seconds=waited, attempts=task.attempt))
        return RenderOutcome(record=record, png=png, masks=masks, preview=preview if png is not None else None)

    def _transfer(self, entry: ManifestEntry, extractor: FeatureExtractor) -> tuple[TransferResult, float]:
        """The row's transfer in its three phases, the optimisation alone holding the device (module
        docstring); and the seconds it waited for the device while the actor's other row held it."""
        from stylecore.transfer import finish_transfer, optimise_transfer, prepare_transfer  # noqa: PLC0415
        _test_slowness("prepare")
        prepared = prepare_transfer(entry.content, entry.style, entry.content_mask, entry.style_mask,
                                    config=entry.config, extractor=extractor)
        asked = time.perf_counter()
        with self._device_turn:
            waited = time.perf_counter() - asked
            _test_slowness("device")
            _test_gate(entry.id, self._node_id)
            optimised = optimise_transfer(prepared)
        _test_slowness("finish")
        return finish_transfer(prepared, optimised), waited

    def _extractor(self, name: str, weights: str | None, seed: int) -> FeatureExtractor:
        """The extractor ``name`` with ``weights``; the seed matters to random weights only."""
        key = (name, weights, seed if weights == RANDOM_WEIGHTS else None)
        with self._lock:
            if key not in self._extractors:
                from stylecore.extractors import load_extractor  # noqa: PLC0415  (module docstring)
                self._extractors[key] = load_extractor(name, weights=weights, seed=seed)
                self._loads[name] += 1
            return self._extractors[key]


class WeightsMismatchError(StyleCoreError):
    """The weights a worker holds are not the ones the row's fingerprint names."""


TEST_FAULT_VARIABLE = "RAY_JOBS_TEST_FAULT"
TEST_SLOW_VARIABLE = "RAY_JOBS_TEST_SLOW"
TEST_GATE_VARIABLE = "RAY_JOBS_TEST_GATE"
TEST_VARIABLES = (TEST_FAULT_VARIABLE, TEST_SLOW_VARIABLE, TEST_GATE_VARIABLE)
"""The tests' settings (module docstring), which the job forwards to its actors."""


def _test_slowness(phase: str) -> None:
    """Wait the seconds ``$RAY_JOBS_TEST_SLOW`` gives ``phase``, if any (module docstring)."""
    for setting in filter(None, os.environ.get(TEST_SLOW_VARIABLE, "").split(",")):
        name, _, seconds = setting.partition(":")
        if name == phase:
            time.sleep(float(seconds))


def _test_gate(row_id: str, node_id: str) -> None:
    """Say that ``row_id`` reached the device on ``node_id`` and wait for the gate ``$RAY_JOBS_TEST_GATE``
    to open, if it is set (module docstring)."""
    folder = os.environ.get(TEST_GATE_VARIABLE)
    if not folder:
        return
    Path(folder, f"{row_id}@{node_id}").touch()
    while not Path(folder, "open").exists():
        time.sleep(0.2)


def _inject_test_fault(row_id: str) -> None:
    """The fault ``$RAY_JOBS_TEST_FAULT`` asks for on row ``row_id``, if any (module docstring)."""
    action, _, rest = os.environ.get(TEST_FAULT_VARIABLE, "").partition(":")
    target, _, marker = rest.partition(":")
    if target != row_id:
        return
    if action == "kill" and not (marker and Path(marker).exists()):
        if marker:
            Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "hang":
        time.sleep(10**6)

