"""One metadata row per item, as plain dicts keyed by the columns of :data:`ray_jobs.schema.METADATA_SCHEMA`.

A row is assembled from independent groups of columns, each from the one place that knows it:
the manifest entry and its fingerprint (:func:`identity_columns`), the transfer's result
(:func:`result_columns`, :func:`metric_columns`), a failure (:func:`error_columns`), the worker
(:func:`worker_columns`) and, once the image is written (:mod:`ray_jobs.outputs`), :func:`output_columns`.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import stylecore
from ray_jobs.errors import one_line
from ray_jobs.fingerprint import Fingerprint
from ray_jobs.manifest import ManifestEntry
from ray_jobs.schema import INPUTS, LOSS_TERMS, METADATA_SCHEMA, SCHEMA_VERSION, metric_column
from stylecore.metrics import evaluate_with_references

if TYPE_CHECKING:  # the driver imports this module and never loads TensorFlow
    from ray_jobs.devices import DeviceInfo
    from stylecore.transfer import TransferResult

Record = dict[str, Any]


def empty_record() -> Record:
    """Every column, set to null."""
    return dict.fromkeys(METADATA_SCHEMA.names)


def identity_columns(entry: ManifestEntry, fingerprint: Fingerprint, *, run_id: str) -> Record:
    """What the row is: id, inputs with their hashes, configuration, and the code that renders it."""
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "id": entry.id,
        **{f"{name}_path": _text(getattr(entry, name)) for name in INPUTS},
        **{f"{name}_sha256": getattr(fingerprint, f"{name}_sha256") for name in INPUTS},
        "config_json": entry.config.to_json(), "config_hash": fingerprint.config_hash,
        "extractor_weights_sha256": fingerprint.extractor_weights_sha256,
        "render_version": fingerprint.render_version,
        "extractor": entry.config.extractor, "version": stylecore.__version__,
    }


def result_columns(result: TransferResult) -> Record:
    """What a successful transfer reports: mask diagnostics, per-stage losses and times, image size."""
    diagnostics = result.diagnostics
    columns: Record = {
        "status": "ok",
        "output_height": int(result.output.shape[0]), "output_width": int(result.output.shape[1]),
        "working_height": int(result.image.shape[0]), "working_width": int(result.image.shape[1]),
        "mask_diagnostics_json": json.dumps(diagnostics.to_dict(), sort_keys=True),
        "matched_labels": list(diagnostics.matched), "content_only_labels": list(diagnostics.content_only),
        "style_only_labels": list(diagnostics.style_only), "automatic_masks": diagnostics.automatic,
        "fallbacks": list(result.fallbacks),
        "masks_found": diagnostics.masks_found,
        "timings_json": json.dumps(result.timings, sort_keys=True),
    }
    for stage in result.stages:
        prefix = f"stage{stage['stage']}_"
        columns.update({prefix + "iterations_run": stage["iterations"], prefix + "seconds": stage["seconds"],
                        prefix + "device_seconds": stage["device_seconds"], prefix + "height": stage["height"], prefix + "width": stage["width"]})
        columns.update({f"{prefix}loss_{term}": float(stage["losses"][term]) for term in LOSS_TERMS})
    return columns


def metric_columns(result: TransferResult) -> Record:
    """Per-row quality metrics, one entry per :data:`ray_jobs.schema.METRIC_FIELDS` column.

    The result is scored beside its two references, the content photo and the per-segment
    colour-statistics transfer, at the working size (``working_height`` x ``working_width``), not
    the output size.
    """
    scores = evaluate_with_references(result.image, result.content_image, result.style_image,
                                      result.content_labels, result.style_labels,
                                      content_only_policy=result.config.content_only_policy)
    columns: Record = {}
    for subject, values in scores.items():
        columns.update({metric_column(subject, metric): value for metric, value in values.items()})
    return columns


def error_columns(error: BaseException) -> Record:
    """A failed row: the error's class name and its one-line message."""
    return {"status": "error", "error_type": type(error).__name__, "error_message": one_line(error)}


def worker_columns(device: DeviceInfo, *, worker: str, started_at: datetime.datetime,
                   finished_at: datetime.datetime, seconds: float, wait_seconds: float, attempts: int) -> Record:
    """Who ran the row, where and when, and on which attempt; its ``seconds`` split into the part it
    waited (``wait_seconds``) and the part it worked."""
    return {"device": device.device, "gpu_ids": list(device.gpu_ids), "worker": worker,
            "started_at": started_at, "finished_at": finished_at, "seconds": seconds,
            "wait_seconds": wait_seconds, "work_seconds": seconds - wait_seconds, "attempts": attempts}


def output_columns(relative_path: str, sha256: str, *, size: int, etag: str | None) -> Record:
    """The written image: its path relative to the output, the SHA-256 and size of its bytes, and the
    object store's entity tag (``None`` on a local file system); see :mod:`ray_jobs.outputs`."""
    return {"output_path": relative_path, "output_sha256": sha256, "output_bytes": size, "output_etag": etag}


def automatic_mask_columns(relative_paths: Mapping[str, str]) -> Record:
    """The written automatic label maps, ``{"content": path, "style": path}`` relative to the output folder."""
    return {f"automatic_{side}_mask_path": path for side, path in relative_paths.items()}


def now() -> datetime.datetime:
    """The current time, UTC, the unit of ``started_at`` and ``finished_at``."""
    return datetime.datetime.now(datetime.timezone.utc)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
