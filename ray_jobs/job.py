"""One run: manifest entries in; images, metadata files and a summary out.

1. take the output folder's lock (:class:`ray_jobs.metadata.OutputLock`): a second live run into
   the same local folder is refused (an object-store output is not locked: one run per prefix is
   the user's to ensure);
2. read the output's state (:mod:`ray_jobs.state`) and plan the run (:mod:`ray_jobs.plan`): the
   rows whose inputs, configuration, weights, code or image changed since they were done, with
   the reason for each (every row when ``force``); the rest are skipped, not written again;
3. plan actors node by node and start them (:mod:`ray_jobs.resources`, :mod:`ray_jobs.pool`); a
   job whose workers cannot start (weights, GPU, no room within the start timeout) stops here,
   having written no metadata;
4. as each row finishes, write its image (``OUTPUT/images/<id>.png``) and its automatic masks, whole
   or not at all (in an object store the worker has already written them, :mod:`ray_jobs.outputs`),
   and its metadata row (:mod:`ray_jobs.metadata`), and print a progress line;
5. stop the actors (or leave them to the caller's :class:`ray_jobs.pool.WarmActors`, for its next
   job); compact the metadata, with the count of skipped rows and the reasons in the
   run file's Parquet metadata; fold the run into the state; also when interrupted (Ctrl-C, or
   SIGTERM, which the command line turns into the same exception);
6. write the run record, ``OUTPUT/metadata/_summary-<run id>.json`` (:mod:`ray_jobs.run_record`):
   counts, medians and their drift against the last run, for alerts and the report's night-over-night view.

The caller connects to Ray first (``ray.init``): :func:`run_job` uses whichever cluster is
connected, so the command line, a notebook and the tests drive it the same way.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import posixpath
import secrets
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from ray_jobs.errors import one_line
from ray_jobs.manifest import Manifest, ManifestEntry
from ray_jobs.metadata import MetadataWriter, OutputLock, value_counts
from ray_jobs.outputs import workers_write_images, write_image
from ray_jobs.plan import Plan, make_plan
from ray_jobs.pool import PoolOptions, WarmActors, WorkerPool, describe_starts, live_nodes
from ray_jobs.progress import ProgressReporter, format_duration
from ray_jobs.records import Record, error_columns
from ray_jobs.resources import ActorPlan, NodeResources, plan_actors
from ray_jobs.run_record import RunRecord, drift_text, record_run
from ray_jobs.state import (HISTORY_COLUMNS, OutputState, fold, load_state, merged_files, state_counts,
                            with_image_identities, write_state)
from ray_jobs.worker import RenderOutcome, RenderTask, WorkerInfo
from stylecore.errors import StorageError


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """How a run is carried out; what each row computes is in its entry's configuration."""

    output: str
    """Folder (absolute path) or object-store prefix (URI) of the images and metadata; reruns into
    the same output skip finished rows."""
    actors: int | None = None
    """Number of actors (the target, kept while rows remain); ``None``: one per GPU, else as many as
    fit (:mod:`ray_jobs.resources`)."""
    min_actors: int = 1
    """Actors that must be up, within ``start_timeout``, before rows are handed out."""
    cpus_per_actor: int | None = None
    gpus_per_actor: int | None = None
    """GPUs of each actor whatever the nodes up at start have (0: CPU actors); ``None``: from those nodes."""
    memory_per_actor: float | None = None
    """GiB of Ray ``memory`` each actor reserves (0: none); ``None``: from the working size."""
    use_gpus: bool = True
    force: bool = False
    """Render every row, even those an earlier run finished."""
    rehash: bool = False
    """Hash every input file, not only those whose listing identity changed (:mod:`ray_jobs.plan`)."""
    rebuild_state: bool = False
    """Build the output's state anew from its run history instead of reading it (:mod:`ray_jobs.state`)."""
    weights: str | None = None
    """Weights file of the job's extractor (``None``: the extractor's own lookup)."""
    flush_seconds: float = 5.0
    """Longest time between two metadata part files (:mod:`ray_jobs.metadata`)."""
    max_retries: int = 2
    """Times a row whose worker process or node died is rendered again before it is an error row."""
    start_timeout: float = 300.0
    """Seconds to wait for ``min_actors`` actors to be up (a busy or autoscaling cluster) before giving up."""
    row_timeout: float = 1800.0
    """Seconds one row may take; then it is an error row and its actor is replaced."""
    alert_on_drift: float | None = None
    """Flag the run when a median of the output metrics moved by more than this fraction against the
    last run that rendered rows (:mod:`ray_jobs.run_record`); ``None``: record the change, flag nothing."""
    require_visible_gpu: bool = True
    """Refuse to start when an actor holds a GPU its TensorFlow cannot see. ``False`` only where GPUs
    are declared but absent on purpose (tests, fake autoscaler providers; ``RAY_JOBS_DECLARED_GPUS=1``)."""


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """What a run did."""

    run_id: str
    metadata_path: str
    ok: int
    failed: int
    skipped: int
    """Rows not rendered, as done already."""
    reasons: dict[str, int]
    """Rows rendered (or tried) by reason code (:data:`ray_jobs.plan.REASONS`)."""
    workers: tuple[WorkerInfo, ...]
    """Each live actor's report at the end of the run (empty when every row was skipped)."""
    seconds: float
    replaced_workers: int = 0
    """Actors started in place of ones that died, ran past the row timeout or were on a node that left."""
    added_workers: int = 0
    """Actors started for nodes that joined the cluster during the run."""
    record: RunRecord | None = None
    """The run record written at the end (:mod:`ray_jobs.run_record`)."""
    record_path: str | None = None
    """Where the run record is, ``OUTPUT/metadata/_summary-<run id>.json``."""


def new_run_id() -> str:
    """UTC start time to the millisecond and a random suffix, e.g. ``20250101T120000.123Z-3fa2c1``:
    unique, and sorts by time, which the run history's order (the state's folding, the run records'
    drift) relies on. Whole seconds were not enough: a rerun with nothing to render starts within the
    second of the run before it, and then the random suffix decided their order. (Runs of wave 4's
    earlier versions have ids of whole seconds; one sorts after a new id of the same second.)"""
    started = datetime.datetime.now(datetime.timezone.utc)
    return f"{started:%Y%m%dT%H%M%S}.{started.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def run_job(manifest: Manifest | Sequence[ManifestEntry], *, options: JobOptions,
            stream: TextIO = sys.stdout, warm: WarmActors | None = None) -> JobSummary:
    """Render ``manifest`` (module docstring) on the connected Ray cluster and summarise the run.

    ``warm``: actors kept up between this driver's jobs; the job takes those that fit before it starts
    new ones, and leaves its own there when it finishes (:class:`ray_jobs.pool.WarmActors`).

    Raises :class:`JobError` when the output folder is in use, when its state cannot be read, when
    the workers cannot start, and when a metadata file cannot be written (the files written before stay).
    """
    started = time.monotonic()
    run_id = new_run_id()
    manifest = manifest if isinstance(manifest, Manifest) else Manifest.of(manifest)
    extractor, seed = _job_extractor(manifest)
    with OutputLock(options.output, run_id):
        state, plan = plan_run(manifest, options=options, stream=stream)
        image_output = options.output if workers_write_images(options.output) else None
        tasks = [RenderTask(entry, fingerprint, run_id, image_output=image_output,
                            weights=options.weights if entry.config.extractor == extractor else None)
                 for entry, fingerprint in plan.entries()]
        print(f"run {run_id}: {plan_text(plan)}", file=stream, flush=True)
        pool = _start_pool(tasks, extractor=extractor, seed=seed, options=options, stream=stream,
                           warm=warm) if tasks else None
        writer = MetadataWriter(options.output, run_id, flush_seconds=options.flush_seconds)
        progress = ProgressReporter(total=len(tasks), skipped=plan.skipped, stream=stream)
        workers: tuple[WorkerInfo, ...] = ()
        try:
            for outcome in pool.render_all(tasks, on_tick=writer.flush_if_due) if pool else ():
                record = store_image(outcome, output=options.output)
                writer.add(record)
                progress.row_finished(record["id"], record["status"], record["seconds"])
            workers = tuple(pool.describe()) if pool else ()
            for problem in pool.start_errors if pool else ():
                print(f"warning: an actor that came up late could not work and was stopped: {problem}", file=stream)
            if pool:
                pool.finish()
        finally:
            if pool:
                pool.stop()
            run_rows = writer.close(run_facts={"skipped": plan.skipped, "reasons": plan.counts()})
            state_rows = save_run_state(options.output, state, plan, run_rows, run_file=writer.path, stream=stream)
    summary = JobSummary(run_id=run_id, metadata_path=writer.path, ok=progress.done, failed=progress.failed,
                         skipped=plan.skipped, reasons=plan.counts(), workers=workers,
                         seconds=time.monotonic() - started,
                         replaced_workers=pool.replaced if pool else 0, added_workers=pool.added if pool else 0)
    record, record_path = record_run(
        options.output, run_id=run_id, seconds=summary.seconds, reasons=summary.reasons,
        rows={"ok": summary.ok, "error": summary.failed, "skipped": summary.skipped},
        metadata_path=summary.metadata_path, output_state=state_counts(state_rows),
        alert_on_drift=options.alert_on_drift)
    summary = dataclasses.replace(summary, record=record, record_path=record_path)
    replaced = f"; {summary.replaced_workers} worker(s) replaced" if summary.replaced_workers else ""
    replaced += f"; {summary.added_workers} worker(s) added for nodes that joined" if summary.added_workers else ""
    print(f"finished in {format_duration(summary.seconds)}: {summary.ok} ok, {summary.failed} failed, "
          f"{summary.skipped} skipped{replaced}; metadata {summary.metadata_path}", file=stream, flush=True)
    if workers:
        print(describe_starts(workers), file=stream, flush=True)
    print(f"{drift_text(record)}; run record {record_path}", file=stream, flush=True)
    return summary


def plan_run(manifest: Manifest, *, options: JobOptions, stream: TextIO) -> tuple[OutputState, Plan]:
    """The output's state and the plan of a run of ``manifest`` into it, reading nothing but
    listings, the state and the files that changed (:mod:`ray_jobs.plan`); writes nothing."""
    extractor, _ = _job_extractor(manifest)
    state = load_state(options.output, rebuild=options.rebuild_state)
    for path, reason in state.unreadable:
        print(f"warning: ignoring unreadable metadata file {path} ({reason}); its rows will be redone",
              file=stream)
    plan = make_plan(manifest, state, output=options.output, force=options.force, rehash=options.rehash,
                     weights_of=lambda name: options.weights if name == extractor else None)
    return state, plan


def plan_text(plan: Plan) -> str:
    """What a plan renders, as the console says it: counts, then the reasons and the files hashed."""
    text = (f"{len(plan.manifest)} rows, {len(plan.render)} to render, {plan.skipped} skipped as already done"
            f"{' (--force redoes them)' if plan.skipped else ''}")
    if len(plan.render):
        text += f"; why: {plan.describe()}"
    if plan.hashed_files:
        text += f"; hashed {plan.hashed_files} new or changed input file(s), {plan.hashed_bytes / 2**20:.1f} MiB"
    return text


def save_run_state(output: str, state: OutputState, plan: Plan, run_rows: pa.Table, *, run_file: str,
                   stream: TextIO) -> pa.Table:
    """Fold this run's rows (``run_rows``, as written to ``run_file``) and what the plan found into
    the output's state and write it, when any of it changed; a state that cannot be written is a
    warning, as the next run folds the run in. The state's rows after the run."""
    if not (state.changed or run_rows.num_rows or plan.image_identities.num_rows or plan.hashed_files):
        return state.rows
    rows = fold(with_image_identities(state.rows, plan.image_identities), run_rows.select(HISTORY_COLUMNS))
    files = merged_files(state.files, plan.files.filter(pc.is_valid(plan.files["sha256"])))
    try:
        write_state(output, dataclasses.replace(state, rows=rows, files=files,
                                                folded=state.folded | {posixpath.basename(run_file)}))
    except (OSError, StorageError) as error:
        print(f"warning: the state of {output} could not be written ({one_line(error)}); the next run "
              "rebuilds it from the run history", file=stream)
    return rows


def _start_pool(tasks: Sequence[RenderTask], *, extractor: str, seed: int, options: JobOptions,
                stream: TextIO, warm: WarmActors | None) -> WorkerPool:
    size = max(task.entry.config.size for task in tasks)

    def planner(nodes: Sequence[NodeResources], rows: int) -> ActorPlan:
        return plan_actors(nodes, rows=rows, size=size, actors=options.actors, cpus_per_actor=options.cpus_per_actor,
                           gpus_per_actor=options.gpus_per_actor, memory_per_actor=options.memory_per_actor,
                           use_gpus=options.use_gpus)

    nodes = live_nodes()
    plan = planner(nodes, len(tasks))
    shapes = "; ".join(f"{group.count} x ({group.describe()})" for group in plan.groups)
    print(f"starting {plan.count} actor(s) on {len(nodes)} node(s): {shapes}; extractor {extractor}",
          file=stream, flush=True)
    pool = WorkerPool(plan, PoolOptions(
        extractor=extractor, weights=options.weights, seed=seed, start_timeout=options.start_timeout,
        row_timeout=options.row_timeout, max_retries=options.max_retries, min_actors=options.min_actors,
        require_visible_gpu=options.require_visible_gpu), planner=planner, warm=warm)
    pool.start()
    if pool.warm_taken:
        print(f"{pool.warm_taken} of them up already, kept warm from an earlier job", file=stream, flush=True)
    return pool


def _job_extractor(manifest: Manifest) -> tuple[str, int]:
    """The extractor most rows use, which every actor loads at start and ``--weights`` applies to,
    and the seed of its first row."""
    rows = collections.Counter()
    for index, count in value_counts(manifest.table["config"]).items():
        rows[manifest.configs[index].extractor] += count
    name = rows.most_common(1)[0][0]
    return name, next(config.seed for config in manifest.configs if config.extractor == name)


def store_image(outcome: RenderOutcome, *, output: str) -> Record:
    """Write an ok outcome's image to ``OUTPUT/images/<id>.png``, its preview to ``OUTPUT/previews/<id>.jpg``
    and its automatic masks, if any, to ``OUTPUT/masks/<id>-content.png`` and ``-style.png`` (whole
    or not at all); its complete record.

    An outcome without PNG bytes is complete already (an error, or an image its worker wrote).
    A write that fails (a full disk, no permission, a store that refuses) turns the row into an error row.
    """
    if outcome.png is None:
        return outcome.record
    try:
        return {**outcome.record, **write_image(output, outcome.record["id"], outcome.png, outcome.masks,
                                                outcome.preview)}
    except (OSError, StorageError) as error:
        return {**outcome.record, **error_columns(error)}
