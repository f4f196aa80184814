"""The metadata schema: one row per item and run, the same columns in every file of every run.

Every run writes ``OUTPUT/metadata/run-<run id>.parquet`` (part files ``run-<run id>.part-<n>.parquet``
while it goes, :mod:`ray_jobs.metadata`) with exactly :data:`METADATA_SCHEMA`, so all runs into one
output read together as one dataset, with no Ray::

    pyarrow.dataset.dataset("OUTPUT/metadata", format="parquet")
    pandas.read_parquet("OUTPUT/metadata")
    duckdb.sql("SELECT * FROM read_parquet('OUTPUT/metadata/*.parquet', union_by_name=true)")

(``union_by_name`` keeps files of an older schema version readable beside newer ones.) Each field
carries its description in its Parquet metadata under ``doc``; :func:`describe` lists them.

Statuses: ``ok`` (rendered in this run), ``error`` (this run tried and failed: see ``error_type``
and ``error_message``). A run writes only the rows it rendered or tried; the rows it skipped as
done are a count in its file's Parquet metadata (:data:`ray_jobs.metadata.RUN_FACTS_KEY`). Files
written before the output had a state (:mod:`ray_jobs.state`) also hold ``skipped`` rows, copies of
the row that rendered the image but for ``run_id`` and ``status``: sum ``seconds`` over ``ok``
rows only.
"""

from __future__ import annotations

import pyarrow as pa

from stylecore.metrics import BETTER, METRIC_NAMES, SUBJECTS

SCHEMA_VERSION = 4
STATUSES = ("ok", "error", "skipped")
STAGES = (1, 2)
LOSS_TERMS = ("total", "content", "style", "tv", "photorealism")
INPUTS = {"content": "content photo", "style": "style photo", "content_mask": "content mask",
          "style_mask": "style mask"}
"""Manifest path columns and what each file is."""

_TIMESTAMP = pa.timestamp("us", tz="UTC")


def _field(name: str, type_: pa.DataType, doc: str, *, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def _stage_fields(stage: int) -> list[pa.Field]:
    prefix = f"stage{stage}_"
    return [
        _field(prefix + "iterations_run", pa.int32(),
               f"L-BFGS iterations stage {stage} ran (the configured limit is in config_json)"),
        _field(prefix + "seconds", pa.float64(), f"wall-clock seconds of stage {stage}"),
        _field(prefix + "device_seconds", pa.float64(),
               f"seconds of stage {stage} inside its compiled optimisation (the rest is host work)"),
        _field(prefix + "height", pa.int32(), f"image height stage {stage} optimised, px"),
        _field(prefix + "width", pa.int32(), f"image width stage {stage} optimised, px"),
        *[_field(f"{prefix}loss_{term}", pa.float64(),
                 f"stage {stage}'s final {term} loss" + (" (weighted sum)" if term == "total" else " (unweighted)"))
          for term in LOSS_TERMS],
    ]


_IDENTITY_FIELDS = [
    _field("schema_version", pa.int32(), f"version of this schema ({SCHEMA_VERSION})", nullable=False),
    _field("run_id", pa.string(), "the run that wrote this row: UTC start time and a random suffix", nullable=False),
    _field("id", pa.string(), "the manifest row's id", nullable=False),
    _field("status", pa.string(), "ok: rendered by this run; error: failed in this run; skipped (in runs "
           "before the output's state): done by an earlier run, whose row this copies", nullable=False),
    _field("error_type", pa.string(), "class name of the failure, for example InputImageError; null unless error"),
    _field("error_message", pa.string(), "one-line message of the failure; null unless error"),
]

_INPUT_FIELDS = [
    *[_field(f"{name}_path", pa.string(), f"absolute path or URI of the {what}; null if the row has none")
      for name, what in INPUTS.items()],
    *[_field(f"{name}_sha256", pa.string(), f"SHA-256 of the {what} file; null if none or unreadable")
      for name, what in INPUTS.items()],
    _field("config_json", pa.string(), "the row's full TransferConfig, canonical JSON", nullable=False),
    _field("config_hash", pa.string(), "TransferConfig.config_hash() of config_json", nullable=False),
    _field("extractor_weights_sha256", pa.string(), "SHA-256 of the extractor's weights file; 'imagenet' "
           "for Keras' VGG-19 download; 'random' for seeded random weights (the seed is in config_json)"),
    _field("render_version", pa.int32(), "stylecore.render_version.RENDER_VERSION of the code that rendered "
           "the row; bumped whenever output may change"),
]

_OUTPUT_FIELDS = [
    _field("output_path", pa.string(), "the image, relative to the output folder: images/<id>.png; null on error"),
    _field("output_sha256", pa.string(), "SHA-256 of the image file; null on error"),
    _field("output_bytes", pa.int64(), "size of the image file, bytes; null on error"),
    _field("output_etag", pa.string(), "the object store's entity tag of the image as written, which a rerun "
           "compares instead of downloading it; null for a local file and on error"),
    _field("output_height", pa.int32(), "height of the written image, px (the config's output_size)"),
    _field("output_width", pa.int32(), "width of the written image, px"),
    _field("working_height", pa.int32(), "height the optimisation ran at and the metrics score, px "
           "(the config's size; stage2_height)"),
    _field("working_width", pa.int32(), "width the optimisation ran at and the metrics score, px"),
]

_MASK_FIELDS = [
    _field("mask_diagnostics_json", pa.string(),
           "what mask cleaning did, stylecore.masks.PairDiagnostics as JSON; null on error"),
    _field("matched_labels", pa.list_(pa.string()), "segment labels in both masks, styled segment by segment"),
    _field("content_only_labels", pa.list_(pa.string()), "labels only in the content mask"),
    _field("style_only_labels", pa.list_(pa.string()), "labels only in the style mask (ignored)"),
    _field("automatic_masks", pa.bool_(), "true when the segments were matched automatically "
           "(stylecore.segment_matching) rather than read from mask files; null on error"),
    _field("fallbacks", pa.list_(pa.string()), "what the transfer did instead of what was asked, one short "
           "sentence each (stylecore.fallbacks): masks sharing no label, automatic masks, a segment dropped as "
           "too small, a content-only segment styled by the whole style photo, a segment left out of a layer's "
           "style term; empty when none; null on error"),
    _field("masks_found", pa.string(), "which side's label map automatic segment matching found: '' (both "
           "from mask files, or auto_masks off), 'content', 'style' (the other side's from its mask) or 'both'; "
           "null on error"),
    *[_field(f"automatic_{side}_mask_path", pa.string(), f"the automatic {side} label map as a colour-coded mask "
             f"PNG, relative to the output folder: masks/<id>-{side}.png (with masks_found content or style, "
             "both sides are written, the other as cleaned from its file); null unless automatic_masks")
      for side in ("content", "style")],
]

_RUN_FIELDS = [
    _field("timings_json", pa.string(), "TransferResult.timings (seconds per phase) as JSON"),
    _field("seconds", pa.float64(), "wall-clock seconds the worker spent on the row, reading to encoding: "
           "work_seconds plus wait_seconds"),
    _field("work_seconds", pa.float64(), "of seconds, those the row was being worked on: its time to compare "
           "between rows and runs"),
    _field("wait_seconds", pa.float64(), "of seconds, those the row waited for its actor's device while the "
           "actor's other row held it (GPU actors hold two rows; 0 on a CPU actor)"),
    _field("actor_start_seconds", pa.float64(), "seconds the row's actor took to start, from being asked for to "
           "ready (its process, TensorFlow, the extractor, compiling ahead): paid once per actor, in none of its "
           "rows' seconds; null for rows no actor returned"),
    _field("attempts", pa.int32(), "times this run handed the row to a worker: 1, or more where a worker "
           "process or node died while holding it and the row was retried"),
    _field("extractor", pa.string(), "feature extractor name", nullable=False),
    _field("device", pa.string(), "TensorFlow device that ran the row: GPU:0, CPU, or "
           "'CPU (declared GPU)' for a GPU Ray assigned that exists only as a declared resource (RAY_JOBS_DECLARED_GPUS=1)"),
    _field("gpu_ids", pa.list_(pa.string()), "GPU ids Ray assigned to the worker; empty for CPU workers"),
    _field("worker", pa.string(), "the worker process, host:pid"),
    _field("started_at", _TIMESTAMP, "when the worker started the row"),
    _field("finished_at", _TIMESTAMP, "when the row ended"),
    _field("version", pa.string(), "stylecore version that rendered the row", nullable=False),
]

METRIC_SUBJECTS = dict(zip(SUBJECTS, ("the result", "the content photo unchanged (doing nothing)",
                                       "the per-segment colour-statistics transfer (the simplest alternative)"),
                           strict=True))
"""What each metric column prefix scores: the row's result and its two reference points."""

def metric_column(subject: str, metric: str) -> str:
    """The metadata column of ``metric`` measured on ``subject``, e.g. ``output_ssim``."""
    return f"{subject}_{metric}"


METRIC_FIELDS: list[pa.Field] = [
    _field(metric_column(subject, metric), pa.float64(),
           f"stylecore.metrics {metric} of {what} at the working size ({BETTER[metric]} is better)")
    for subject, what in METRIC_SUBJECTS.items() for metric in METRIC_NAMES]
"""Per-row quality metrics from ``stylecore.metrics``, one column each, filled by
:func:`ray_jobs.records.metric_columns`; appended after every other column."""

METADATA_SCHEMA = pa.schema(
    [*_IDENTITY_FIELDS, *_INPUT_FIELDS, *_OUTPUT_FIELDS, *_MASK_FIELDS,
     *[field for stage in STAGES for field in _stage_fields(stage)], *_RUN_FIELDS, *METRIC_FIELDS],
    metadata={"ray_jobs.schema_version": str(SCHEMA_VERSION)},
)


def describe() -> list[tuple[str, str, str]]:
    """(column, type, description) for every column of :data:`METADATA_SCHEMA`, in order."""
    return [(field.name, str(field.type), field.metadata[b"doc"].decode()) for field in METADATA_SCHEMA]
