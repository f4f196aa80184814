"""One run: manifest entries in; images, a metadata file and a summary out.

1. fingerprint every row and find the rows earlier runs already finished (:mod:`ray_jobs.resume`),
   unless ``force``; they are recorded as ``skipped`` and not rendered again;
2. start actors for the rest (:mod:`ray_jobs.resources`, :mod:`ray_jobs.pool`); a job whose
   workers cannot load their extractor stops here, having written nothing;
3. as each row finishes, write its image (``OUTPUT/images/<id>.png``, whole or not at all; in an
   object store the worker has already written it, :mod:`ray_jobs.outputs`) and its metadata row
   (:mod:`ray_jobs.metadata`), and print a progress line;
4. stop the actors; write the metadata file a last time, also when interrupted.

The caller connects to Ray first (``ray.init``): :func:`run_job` uses whichever cluster is
connected, so the command line, a notebook and the tests drive it the same way.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import secrets
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import ray

from ray_jobs.fingerprint import Fingerprint, fingerprint
from ray_jobs.manifest import ManifestEntry
from ray_jobs.metadata import MetadataWriter, read_rows, run_file
from ray_jobs.outputs import workers_write_images, write_image
from ray_jobs.pool import cluster_resources, describe_workers, render_all, start_workers, stop_workers
from ray_jobs.progress import ProgressReporter, format_duration
from ray_jobs.records import Record, error_columns, skipped_record
from ray_jobs.resources import plan_actors
from ray_jobs.resume import done_rows
from ray_jobs.worker import RenderOutcome, RenderTask, WorkerInfo
from stylecore.errors import StorageError


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """How a run is carried out; what each row computes is in its entry's configuration."""

    output: str
    """Folder (absolute path) or object-store prefix (URI) of the images and metadata; reruns into
    the same output skip finished rows."""
    actors: int | None = None
    """Number of actors; ``None``: one per GPU, else as many as fit (:mod:`ray_jobs.resources`)."""
    cpus_per_actor: int | None = None
    use_gpus: bool = True
    force: bool = False
    """Render every row, even those an earlier run finished."""
    weights: str | None = None
    """Weights file of the job's extractor (``None``: the extractor's own lookup)."""
    flush_seconds: float = 5.0
    """Longest time between two writes of the metadata file (:mod:`ray_jobs.metadata`)."""


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """What a run did."""

    run_id: str
    metadata_path: str
    ok: int
    failed: int
    skipped: int
    workers: tuple[WorkerInfo, ...]
    """Each actor's report at the end of the run (empty when every row was skipped)."""
    seconds: float


def new_run_id() -> str:
    """UTC start time and a random suffix, e.g. ``20250101T120000Z-3fa2c1``: unique, and sorts by time."""
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def run_job(entries: Sequence[ManifestEntry], *, options: JobOptions, stream: TextIO = sys.stdout) -> JobSummary:
    """Render ``entries`` (module docstring) on the connected Ray cluster and summarise the run."""
    started = time.monotonic()
    run_id = new_run_id()
    fingerprints = {entry.id: fingerprint(entry) for entry in entries}
    done = {} if options.force else _done_rows(fingerprints, output=options.output, stream=stream)
    image_output = options.output if workers_write_images(options.output) else None
    tasks = [RenderTask(entry, fingerprints[entry.id], run_id, image_output)
             for entry in entries if entry.id not in done]
    print(f"run {run_id}: {len(entries)} rows, {len(tasks)} to render, {len(done)} skipped as already done"
          f"{' (--force redoes them)' if done else ''}", file=stream, flush=True)
    actors = _start_actors(tasks, options=options, stream=stream) if tasks else []
    writer = MetadataWriter(run_file(options.output, run_id), flush_seconds=options.flush_seconds)
    for previous in done.values():
        writer.add(skipped_record(previous, run_id=run_id))
    progress = ProgressReporter(total=len(tasks), skipped=len(done), stream=stream)
    try:
        for outcome in render_all(tasks, actors):
            record = store_image(outcome, output=options.output)
            writer.add(record)
            progress.row_finished(record["id"], record["status"], record["seconds"])
        workers = tuple(describe_workers(actors)) if actors else ()
    finally:
        writer.flush()
        stop_workers(actors)
    summary = JobSummary(run_id=run_id, metadata_path=writer.path, ok=progress.done, failed=progress.failed,
                         skipped=len(done), workers=workers, seconds=time.monotonic() - started)
    print(f"finished in {format_duration(summary.seconds)}: {summary.ok} ok, {summary.failed} failed, "
          f"{summary.skipped} skipped; metadata {summary.metadata_path}", file=stream, flush=True)
    return summary


def _done_rows(fingerprints: dict[str, Fingerprint], *, output: str, stream: TextIO) -> dict[str, Record]:
    previous, unreadable = read_rows(output)
    for path, reason in unreadable:
        print(f"warning: ignoring unreadable metadata file {path} ({reason}); its rows will be redone",
              file=stream)
    return done_rows(list(fingerprints.items()), previous, output=output)


def _start_actors(tasks: Sequence[RenderTask], *, options: JobOptions, stream: TextIO) -> list[ray.actor.ActorHandle]:
    cpus, gpus = cluster_resources()
    plan = plan_actors(cluster_cpus=cpus, cluster_gpus=gpus, rows=len(tasks), actors=options.actors,
                       cpus_per_actor=options.cpus_per_actor, use_gpus=options.use_gpus)
    extractor, seed = _job_extractor(tasks)
    print(f"starting {plan.count} {'GPU' if plan.num_gpus else 'CPU'} actor(s), {plan.num_cpus} CPU(s) each, "
          f"extractor {extractor}", file=stream, flush=True)
    return start_workers(plan, extractor=extractor, weights=options.weights, seed=seed)


def _job_extractor(tasks: Sequence[RenderTask]) -> tuple[str, int]:
    """The extractor most rows use, which every actor loads at start, and the seed of its first row."""
    name = collections.Counter(task.entry.config.extractor for task in tasks).most_common(1)[0][0]
    return name, next(task.entry.config.seed for task in tasks if task.entry.config.extractor == name)


def store_image(outcome: RenderOutcome, *, output: str) -> Record:
    """Write an ok outcome's image to ``OUTPUT/images/<id>.png`` (whole or not at all); its complete record.

    An outcome without PNG bytes is complete already (an error, or an image its worker wrote).
    A write that fails (a full disk, no permission, a store that refuses) turns the row into an error row.
    """
    if outcome.png is None:
        return outcome.record
    try:
        return {**outcome.record, **write_image(output, outcome.record["id"], outcome.png)}
    except (OSError, StorageError) as error:
        return {**outcome.record, **error_columns(error)}
