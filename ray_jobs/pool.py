"""Hands rows to actors and collects their outcomes as they finish: Ray Core actors and a ``ray.wait`` loop.

Why not Ray Data's ``map_batches`` with an actor pool, the ecosystem's convention for batch inference?
That convention pays off when an item is a cheap forward pass and throughput comes from streaming
and batching millions of rows. Here an item is a whole two-stage optimisation (seconds to minutes)
and a job has tens to thousands of them, so the loop's overhead is nil, and what matters is
what a plain loop gives and Ray Data does not:

- every item is seen by the driver the moment it ends, to print progress with a time estimate and
  to persist its row at once, so a crash loses no finished work (Ray Data yields per block, in its
  own order, and writes its Parquet files itself, with no write-then-rename a rerun could trust);
- a failure stays one row's failure: the actor returns an error record, and an actor that dies
  (out of memory, a segfault in a native library) costs the one row it held, which is recorded as
  an error; Ray Data would retry the block or fail the dataset, or with ``max_errored_blocks`` drop
  its rows without a trace;
- skipping done rows happens on the driver before anything is scheduled, and rows may differ in
  configuration, even in extractor.

The part of the convention that matters is kept: a callable class that loads its model once in
``__init__`` (:class:`ray_jobs.worker.TransferWorker`). One row at a time per actor: an item takes
far longer than a round trip, so queueing more would only unbalance the actors near the end.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Iterator

import ray

from ray_jobs.errors import JobError
from ray_jobs.records import empty_record, error_columns, identity_columns, now
from ray_jobs.resources import ActorPlan
from ray_jobs.worker import RenderOutcome, RenderTask, TransferWorker, WorkerInfo
from stylecore.extractors import WEIGHTS_DIR_VARIABLE
from stylecore.storage import ENDPOINT_VARIABLE

MAX_RESTARTS = 3
"""Times Ray restarts an actor whose process died; the row it held is recorded as an error."""

RemoteWorker = ray.remote(TransferWorker)


def start_workers(plan: ActorPlan, *, extractor: str, weights: str | None, seed: int) -> list[ray.actor.ActorHandle]:
    """Start ``plan.count`` actors and wait until each has loaded its extractor.

    Raises :class:`JobError` with the first actor's message when the extractor cannot be loaded,
    or when an actor's process dies while starting.
    """
    options = {"num_cpus": plan.num_cpus, "num_gpus": plan.num_gpus, "max_restarts": MAX_RESTARTS,
               "runtime_env": {"env_vars": _worker_environment()}}
    actors = [RemoteWorker.options(**options).remote(extractor=extractor, weights=weights, seed=seed,
                                                     cpu_threads=plan.num_cpus)
              for _ in range(plan.count)]
    try:
        problems = [info.startup_error for info in describe_workers(actors) if info.startup_error]
    except ray.exceptions.RayActorError:
        problems = ["an actor's process died while starting (see the Ray logs)"]
    if problems:
        stop_workers(actors)
        raise JobError(f"the workers cannot start: {problems[0]}")
    return actors


def _worker_environment() -> dict[str, str]:
    # TensorFlow's start-up chatter would repeat once per actor on the console; the weights folder
    # of the driver's environment is where a local run's workers should look too, and its object-store
    # endpoint (--storage-endpoint) is where they read and write. Credentials are not forwarded: a
    # runtime environment is shown in the dashboard; each node has its own (see README).
    environment = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    for variable in (WEIGHTS_DIR_VARIABLE, ENDPOINT_VARIABLE):
        if variable in os.environ:
            environment[variable] = os.environ[variable]
    return environment


def describe_workers(actors: Iterable[ray.actor.ActorHandle]) -> list[WorkerInfo]:
    """Each actor's :class:`WorkerInfo`, in order."""
    return ray.get([actor.describe.remote() for actor in actors])


def stop_workers(actors: Iterable[ray.actor.ActorHandle]) -> None:
    """End the actors' processes."""
    for actor in actors:
        ray.kill(actor)


def render_all(tasks: Iterable[RenderTask], actors: list[ray.actor.ActorHandle]) -> Iterator[RenderOutcome]:
    """Render every task on the actors, one at a time each; yield each outcome as soon as it is ready."""
    pending = collections.deque(tasks)
    idle = list(actors)
    running: dict[ray.ObjectRef, tuple[RenderTask, ray.actor.ActorHandle]] = {}
    while pending or running:
        while idle and pending:
            actor, task = idle.pop(), pending.popleft()
            running[actor.render.remote(task)] = (task, actor)
        [ready], _ = ray.wait(list(running), num_returns=1)
        task, actor = running.pop(ready)
        idle.append(actor)
        try:
            yield ray.get(ready)
        except ray.exceptions.RayError as error:
            yield lost_outcome(task, error)


def lost_outcome(task: RenderTask, error: ray.exceptions.RayError) -> RenderOutcome:
    """The error record of a row whose actor died or whose call failed inside Ray."""
    record = {**empty_record(), **identity_columns(task.entry, task.fingerprint, run_id=task.run_id),
              "finished_at": now()}
    if isinstance(error, ray.exceptions.RayActorError):
        record.update({"status": "error", "error_type": type(error).__name__,
                       "error_message": "the worker process died while rendering this row "
                                        "(out of memory, or a crash in a native library); see the Ray logs."})
    else:
        record.update(error_columns(getattr(error, "cause", None) or error))
    return RenderOutcome(record=record, png=None)


def cluster_resources() -> tuple[float, float]:
    """(CPUs, GPUs) of the connected Ray cluster."""
    resources = ray.cluster_resources()
    return resources.get("CPU", 0.0), resources.get("GPU", 0.0)

