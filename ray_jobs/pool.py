"""Hands rows to actors and collects their outcomes as they finish: Ray Core actors and a ``ray.wait`` loop.

Why not Ray Data's ``map_batches`` with an actor pool, the ecosystem's convention for batch inference?
That convention pays off when an item is a cheap forward pass and throughput comes from streaming
and batching millions of rows. Here an item is a whole two-stage optimisation (seconds to minutes)
and a job has tens to thousands of them, so the loop's overhead is nil, and what matters is
what a plain loop gives and Ray Data does not:

- every item is seen by the driver the moment it ends, to print progress with a time estimate and
  to persist its row at once, so a crash loses no finished work;
- a failure stays one row's failure: the actor returns an error record for a row that fails
  (bad input, NaN), and that row is not retried, since it would fail again; Ray Data would retry
  the block or fail the dataset, or with ``max_errored_blocks`` drop its rows without a trace;
- skipping done rows happens on the driver before anything is scheduled, and rows may differ in
  configuration, even in extractor.

The part of the convention that matters is kept: a callable class that loads its model once in
``__init__`` (:class:`ray_jobs.worker.TransferWorker`). One row at a time per CPU actor: an item
takes far longer than a round trip, so queueing more would only unbalance the actors near the end,
and a dead actor takes only the one row it held. A GPU actor holds :data:`GPU_ACTOR_ROWS`: one
row's host work (decoding, masks, the Laplacian; the finish, encoding, upload) runs on its own
thread while the other row holds the device, so the GPU does not wait for the host between rows.

Following the cluster (an autoscaler adding and removing nodes under the job):

- actors the nodes cannot hold yet stay pending: Ray reports them to the autoscaler as demand, and
  each actor gets rows the moment it is up (``--min-actors`` of them before any row is handed out);
- when the live nodes change, actors on a node that left are replaced, and the plan is made again
  for the nodes now up and the rows left (the job's ``--actors`` or, by default, what the nodes
  hold), starting the actors it adds, so a node that joins gets rows;
- once no row is queued, every actor without a row is released at once (actors still starting
  too), so the autoscaler can remove idle nodes while the last rows finish.

One driver's jobs in turn (a notebook's runs, a test module's) may share their actors
(:class:`WarmActors`): a job given them takes the idle actors of its actors' kind, up and compiled
already, before it starts new ones, and leaves its own to them at its end (and when it releases them
early) instead of stopping them. They hold their CPUs and GPUs between the jobs, so an autoscaler
cannot remove their nodes meanwhile; closing them stops them. The command line runs one job per
process and does not keep actors.

Lost work (:class:`WorkerPool`):

- a row whose actor died (its process was killed, ran out of memory or crashed; its node was
  lost; for a GPU actor, both rows it held) goes back to the front of the queue, up to ``max_retries`` more times, then becomes an
  error row saying it was retried; the dead actor gets no more rows and a new actor of its shape
  is started in its place while rows remain;
- a row past ``row_timeout`` becomes an error row and its actor is killed and replaced;
- when no actor is left and none is starting, the rows left become error rows saying so;
- no call waits without a limit: the loop wakes every :data:`TICK_SECONDS` to check the limits.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import ray

from ray_jobs.errors import JobError
from ray_jobs.progress import format_duration
from ray_jobs.records import Record, empty_record, error_columns, identity_columns, now
from ray_jobs.resources import GPU_ACTOR_ROWS, ActorGroup, ActorPlan, NodeResources, describe_request
from ray_jobs.worker import TEST_VARIABLES, RenderOutcome, RenderTask, TransferWorker, WorkerInfo
from stylecore.storage import ENDPOINT_VARIABLE
from stylecore.weights import WEIGHTS_DIR_VARIABLE

TICK_SECONDS = 1.0
"""Longest the driver waits on Ray before checking its time limits again."""
DESCRIBE_TIMEOUT = 60.0
"""Longest the final report of the workers may take; an actor that does not answer is left out."""
LOST_WORKER_ERRORS = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                      ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError,
                      ray.exceptions.LocalRayletDiedError)
"""Ray's ways of saying that the process (or node) holding a row is gone: the row is retried."""


RemoteWorker = ray.remote(TransferWorker)
Planner = Callable[[Sequence[NodeResources], int], ActorPlan]
"""The plan for ``rows`` rows on the given live nodes (:func:`ray_jobs.resources.plan_actors` with the job's options)."""


def live_nodes() -> list[NodeResources]:
    """What each live node of the connected cluster offers."""
    return [NodeResources(node_id=node["NodeID"], address=node["NodeManagerAddress"],
                          cpus=node["Resources"].get("CPU", 0.0), gpus=node["Resources"].get("GPU", 0.0),
                          memory=node["Resources"].get("memory", 0.0))
            for node in ray.nodes() if node["Alive"]]


@dataclasses.dataclass(eq=False)
class _Actor:
    handle: ray.actor.ActorHandle
    shape: ActorGroup
    started: float
    """``time.monotonic()`` when it was asked for."""
    ready: ray.ObjectRef | None
    """Its first ``describe`` call while it is starting; ``None`` once it is up."""
    node_id: str | None = None
    """The node it runs on, once it is up."""
    start_seconds: float | None = None
    """Seconds from being asked for to being up (its constructor's compiles included), once it is up."""
    kind: tuple = ()
    """What makes it fit a job: its shape, extractor, weights, seed, GPU rule and environment."""
    rendered_before: int = 0
    """Rows it had rendered for earlier jobs when this one took it (:class:`WarmActors`)."""

    @property
    def slots(self) -> int:
        """Rows it holds at once: :data:`GPU_ACTOR_ROWS` for a GPU actor, else one."""
        return GPU_ACTOR_ROWS if self.shape.num_gpus else 1


@dataclasses.dataclass(frozen=True)
class _Running:
    task: RenderTask
    actor: _Actor
    started: float
    """``time.monotonic()`` when the row was handed out."""


@dataclasses.dataclass(frozen=True)
class PoolOptions:
    """How the pool starts actors and treats lost and slow rows."""

    extractor: str
    """The extractor every actor loads at start (rows may name others)."""
    weights: str | None
    seed: int
    start_timeout: float
    """Seconds to wait for ``min_actors`` actors to be up before the job gives up."""
    row_timeout: float
    """Seconds a row may take on its actor."""
    max_retries: int
    """Times a row whose actor died is handed out again."""
    min_actors: int = 1
    """Actors that must be up before rows are handed out (at most the planned count)."""
    require_visible_gpu: bool = True
    """An actor given a GPU that its TensorFlow cannot see refuses to start (:mod:`ray_jobs.worker`)."""


class WorkerPool:
    """The job's actors: started from an :class:`ActorPlan`, kept to the plan for the live nodes while
    rows remain, replaced when lost, released when idle with the queue drained, stopped at the end."""

    def __init__(self, plan: ActorPlan, options: PoolOptions, *, planner: Planner,
                 warm: WarmActors | None = None) -> None:
        self._plan, self._options, self._planner, self._warm = plan, options, planner, warm
        self._actors: list[_Actor] = []
        self._released: list[WorkerInfo] = []
        self._node_ids: frozenset[str] = frozenset()
        """The live nodes when the pool last planned for them."""
        self.replaced = 0
        """Actors started in place of lost ones."""
        self.added = 0
        """Actors started for nodes that joined the cluster during the job."""
        self.warm_taken = 0
        """Actors taken up already from the job's :class:`WarmActors` instead of started."""
        self.start_errors: list[str] = []
        """Why actors that came up after the first could not work (they were stopped, not replaced)."""

    def start(self) -> None:
        """Ask for every planned actor; return once ``min_actors`` are up, the others join as they come.

        Raises :class:`JobError` when an actor cannot load its extractor or use its GPU, when an
        actor dies while starting, or when none is up within ``start_timeout``; nothing keeps running then.
        """
        try:
            self._start()
        except BaseException:  # a refusal, Ctrl-C or SIGTERM while waiting: no actor stays behind
            self.stop()
            raise

    def _start(self) -> None:
        self._node_ids = frozenset(node.node_id for node in live_nodes())
        environment = _worker_environment()
        kinds = [self._kind(shape, environment) for shape in self._plan.shapes()]
        taken = self._warm.take(kinds) if self._warm is not None else {}
        for shape, kind in zip(self._plan.shapes(), kinds, strict=True):
            if taken.get(kind):
                self._actors.append(taken[kind].pop())
                self.warm_taken += 1
            else:
                self._launch(shape)
        deadline = time.monotonic() + self._options.start_timeout
        needed = min(self._options.min_actors, self._plan.count)
        while (up := sum(actor.ready is None for actor in self._actors)) < needed:
            starting = [actor.ready for actor in self._actors if actor.ready is not None]
            if not starting:
                raise JobError("the workers cannot start: every actor's process died while starting "
                               "(see the Ray logs).")
            left = deadline - time.monotonic()
            if left <= 0:
                started = f"only {up} of the {needed} actors of --min-actors" if up else "no actor"
                raise JobError(f"{started} started within --start-timeout "
                               f"{format_duration(self._options.start_timeout)}: "
                               f"{describe_request(self._plan, live_nodes())}.")
            ready, _ = ray.wait(starting, num_returns=1, timeout=min(left, TICK_SECONDS))
            for ref in ready:
                problem = self._came_up(ref)
                if problem:
                    raise JobError(f"the workers cannot start: {problem}")

    def render_all(self, tasks: Iterable[RenderTask], *,
                   on_tick: Callable[[], None] = lambda: None) -> Iterator[RenderOutcome]:
        """Render every task (:attr:`_Actor.slots` at a time per actor); yield each outcome as soon as it is ready.

        ``on_tick`` is called at least every :data:`TICK_SECONDS`, also while no row finishes.
        """
        pending = collections.deque(tasks)
        running: dict[ray.ObjectRef, _Running] = {}
        while pending or running:
            self._hand_out(pending, running)
            self._follow_cluster(queued=len(pending), running=running)
            starting = {actor.ready: actor for actor in self._actors if actor.ready is not None}
            if not running and not (starting and self._may_still_start()):
                yield from (_failed_outcome(task, _driver_error(
                    "NoWorkerError", "no worker was left to render this row: every actor died or could not start "
                    f"within --start-timeout {format_duration(self._options.start_timeout)} (see the Ray logs)."))
                            for task in pending)
                return
            ready, _ = ray.wait([*running, *starting], num_returns=1, timeout=TICK_SECONDS)
            on_tick()
            for ref in ready:
                if ref in starting:
                    problem = self._came_up(ref)
                    if problem:
                        self.start_errors.append(problem)
                else:
                    yield from self._collect(ref, running.pop(ref), pending, running)
            yield from self._stop_overdue(running, more_work=bool(pending))

    def _hand_out(self, pending: collections.deque[RenderTask], running: dict[ray.ObjectRef, _Running]) -> None:
        """Give queued rows to the actors that are up, filling every actor's first slot before any second."""
        load = collections.Counter(row.actor for row in running.values())
        up = [actor for actor in self._actors if actor.ready is None]
        for depth in range(1, max((actor.slots for actor in up), default=0) + 1):
            for actor in up:
                if pending and load[actor] < min(depth, actor.slots):
                    task = pending.popleft()
                    running[actor.handle.render.remote(task)] = _Running(task, actor, time.monotonic())
                    load[actor] += 1

    def _collect(self, ref: ray.ObjectRef, row: _Running, pending: collections.deque[RenderTask],
                 running: dict[ray.ObjectRef, _Running]) -> Iterator[RenderOutcome]:
        """The finished ``row``'s outcome; a row whose actor was lost goes back to the queue instead."""
        try:
            outcome = ray.get(ref, timeout=DESCRIBE_TIMEOUT)
        except LOST_WORKER_ERRORS:
            retried = row.task.attempt <= self._options.max_retries
            if retried:
                pending.appendleft(dataclasses.replace(row.task, attempt=row.task.attempt + 1))
            # after the row is queued again: the last row's retry needs a replacement too
            self._replace(row.actor, more_work=bool(pending or running))
            if not retried:
                yield _lost_outcome(row.task)
            return
        except ray.exceptions.RayError as error:
            outcome = _failed_outcome(row.task, error_columns(getattr(error, "cause", None) or error))
        yield dataclasses.replace(outcome, record={**outcome.record, "actor_start_seconds": row.actor.start_seconds})

    def _follow_cluster(self, *, queued: int, running: dict[ray.ObjectRef, _Running]) -> None:
        """Keep the pool fitted to the live cluster: once no row is queued, release every actor without a
        row (the autoscaler may then remove its node); else, when nodes joined or left since last
        time, replace the actors of the nodes gone and start those the plan for the nodes now adds."""
        if not queued:
            self._release(busy={row.actor for row in running.values()})
            return
        nodes = live_nodes()
        node_ids = frozenset(node.node_id for node in nodes)
        if node_ids == self._node_ids:
            return
        self._node_ids = node_ids
        for actor in [actor for actor in self._actors if actor.node_id and actor.node_id not in node_ids]:
            self._replace(actor, more_work=True)
        for shape in self._planner(nodes, queued + len(running)).shapes()[len(self._actors):]:
            self._launch(shape)
            self.added += 1

    def _may_still_start(self) -> bool:
        """Whether some actor asked for has been starting for less than ``start_timeout``."""
        return any(time.monotonic() - actor.started < self._options.start_timeout
                   for actor in self._actors if actor.ready is not None)

    def _release(self, *, busy: set[_Actor]) -> None:
        """Stop every actor not in ``busy``, started or not, keeping the report of those that were up;
        those that were up go to the :class:`WarmActors` instead, if the job has them."""
        for actor in [actor for actor in self._actors if actor not in busy]:
            if actor.ready is None:
                self._released.extend(self._reports([actor]))
            self._actors.remove(actor)
            self._leave(actor)

    def _stop_overdue(self, running: dict[ray.ObjectRef, _Running], *, more_work: bool) -> Iterator[RenderOutcome]:
        """Error rows for the rows past ``row_timeout``; their actors are replaced (a GPU actor's other
        row comes back as lost, and is retried)."""
        limit = self._options.row_timeout
        for ref, row in list(running.items()):
            if time.monotonic() - row.started > limit:
                del running[ref]
                self._replace(row.actor, more_work=more_work or bool(running))
                yield _failed_outcome(row.task, _driver_error(
                    "RowTimeoutError", f"the row took longer than --row-timeout {format_duration(limit)}; "
                                       "its worker was stopped and replaced."))

    def describe(self) -> list[WorkerInfo]:
        """The :class:`WorkerInfo` of each actor that was up and is live or was released when idle;
        actors that died or do not answer in time are left out."""
        return self._released + self._reports([actor for actor in self._actors if actor.ready is None])

    @staticmethod
    def _reports(actors: list[_Actor]) -> list[WorkerInfo]:
        """The reports of ``actors`` that answer within :data:`DESCRIBE_TIMEOUT`, with their start seconds
        and the rows they rendered for this job."""
        refs = {actor.handle.describe.remote(): actor for actor in actors}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=DESCRIBE_TIMEOUT) if refs else ([], [])
        infos = []
        for ref in ready:
            try:
                info = ray.get(ref, timeout=DESCRIBE_TIMEOUT)
                infos.append(dataclasses.replace(info, start_seconds=refs[ref].start_seconds,
                                                 rendered=info.rendered - refs[ref].rendered_before))
            except ray.exceptions.RayError:
                continue
        return infos

    def finish(self) -> None:
        """The job is done: its actors go to its :class:`WarmActors` (those up) or are stopped."""
        for actor in self._actors:
            self._leave(actor)
        self._actors = []

    def stop(self) -> None:
        """End every actor's process, started or not."""
        for actor in self._actors:
            ray.kill(actor.handle)
        self._actors = []

    def _leave(self, actor: _Actor) -> None:
        """An actor no longer the job's: kept warm if it is up and the job has :class:`WarmActors`, else stopped."""
        if self._warm is not None and actor.ready is None:
            self._warm.keep(actor)
        else:
            ray.kill(actor.handle)

    def _kind(self, shape: ActorGroup, environment: dict[str, str]) -> tuple:
        """What an actor of ``shape`` started with ``environment`` must match to serve this job warm."""
        return (shape, self._options.extractor, self._options.weights, self._options.seed,
                self._options.require_visible_gpu, tuple(sorted(environment.items())))

    def _launch(self, shape: ActorGroup) -> None:
        # a GPU actor's rows run on threads of its own (one more for describe); a CPU actor's one at a time
        options = {"num_cpus": shape.num_cpus, "num_gpus": shape.num_gpus, "max_restarts": 0,
                   "max_concurrency": GPU_ACTOR_ROWS + 1 if shape.num_gpus else 1}
        if shape.memory:
            options["memory"] = shape.memory
        environment = _worker_environment()
        handle = RemoteWorker.options(**options).remote(
            extractor=self._options.extractor, weights=self._options.weights, seed=self._options.seed,
            cpu_threads=shape.num_cpus, require_visible_gpu=self._options.require_visible_gpu,
            environment=environment)
        self._actors.append(_Actor(handle=handle, shape=shape, started=time.monotonic(),
                                   ready=handle.describe.remote(), kind=self._kind(shape, environment)))

    def _came_up(self, ref: ray.ObjectRef) -> str | None:
        """Mark the actor whose first ``describe`` is ``ref`` as up; why it cannot work, if it cannot."""
        actor = next(actor for actor in self._actors if actor.ready == ref)
        try:
            info = ray.get(ref, timeout=DESCRIBE_TIMEOUT)
        except ray.exceptions.RayError:
            self._actors.remove(actor)
            return "an actor's process died while starting (see the Ray logs)"
        if info.startup_error:
            ray.kill(actor.handle)
            self._actors.remove(actor)
            return info.startup_error
        actor.ready, actor.node_id, actor.start_seconds = None, info.node_id, time.monotonic() - actor.started
        return None

    def _replace(self, actor: _Actor, *, more_work: bool) -> None:
        """Kill ``actor`` (if it still runs) and start one of its shape in its place if rows remain;
        nothing if it was replaced already (a GPU actor's second row coming back)."""
        if actor not in self._actors:
            return
        ray.kill(actor.handle)
        self._actors.remove(actor)
        if more_work:
            self._launch(actor.shape)
            self.replaced += 1


class WarmActors:
    """Actors kept up between one driver's jobs (module docstring): ``with WarmActors() as warm:``,
    then ``run_job(..., warm=warm)`` for each job; the block's end stops those left.

    Not shared between threads, nor between drivers: the handles are this driver's, and its actors
    end with it.
    """

    def __init__(self) -> None:
        self._actors: list[_Actor] = []

    def __enter__(self) -> WarmActors:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._actors)

    def keep(self, actor: _Actor) -> None:
        self._actors.append(actor)

    def take(self, kinds: Sequence[tuple]) -> dict[tuple, list[_Actor]]:
        """For a job whose plan asks for actors of ``kinds`` (one entry per actor): the kept actors that
        fit, alive, by kind. Every other kept actor is stopped, so that the job's new actors get its
        resources."""
        wanted = collections.Counter(kinds)
        taken: dict[tuple, list[_Actor]] = collections.defaultdict(list)
        for actor in self._actors:
            info = _answer(actor) if len(taken[actor.kind]) < wanted[actor.kind] else None
            if info is None:
                ray.kill(actor.handle)
                continue
            taken[actor.kind].append(dataclasses.replace(actor, rendered_before=info.rendered))
        self._actors = []
        return taken

    def close(self) -> None:
        """Stop every kept actor."""
        for actor in self._actors:
            ray.kill(actor.handle)
        self._actors = []


def _answer(actor: _Actor) -> WorkerInfo | None:
    """``actor``'s report, or ``None`` when its process (or node) is gone."""
    try:
        return ray.get(actor.handle.describe.remote(), timeout=DESCRIBE_TIMEOUT)
    except ray.exceptions.RayError:
        return None


def _worker_environment() -> dict[str, str]:
    """The driver's variables an actor sets in its process first (:class:`ray_jobs.worker.TransferWorker`).

    TensorFlow's start-up chatter would repeat once per actor on the console; the weights folder
    of the driver's environment is where a local run's workers should look too, and its object-store
    endpoint (--storage-endpoint) is where they read and write. Credentials are not forwarded: each
    node has its own (see README). Arguments, not a Ray runtime environment: an actor of a runtime
    environment of its own cannot take one of the worker processes Ray starts ahead for the job, so
    it waits for a new one (0.7 s here) while those stay idle.
    """
    environment = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    for name in (WEIGHTS_DIR_VARIABLE, ENDPOINT_VARIABLE, *TEST_VARIABLES):
        if name in os.environ:
            environment[name] = os.environ[name]
    return environment


def _lost_outcome(task: RenderTask) -> RenderOutcome:
    """The error record of a row whose worker died on every attempt."""
    retries = task.attempt - 1
    return _failed_outcome(task, _driver_error(
        "WorkerDiedError", f"the worker process died while rendering this row (out of memory, a crash in a "
                           f"native library, or a lost node), on each of {task.attempt} attempt(s): "
                           f"retried {retries} time(s); see the Ray logs."))


def _failed_outcome(task: RenderTask, columns: Record) -> RenderOutcome:
    """An error record for ``task`` made on the driver (the worker could not make one), with ``columns``."""
    record = {**empty_record(), **identity_columns(task.entry, task.fingerprint, run_id=task.run_id),
              "finished_at": now(), "attempts": task.attempt, **columns}
    return RenderOutcome(record=record, png=None)


def _driver_error(error_type: str, message: str) -> Record:
    """The error columns of a failure the driver saw (no exception object to describe)."""
    return {"status": "error", "error_type": error_type, "error_message": message}


def describe_starts(workers: Sequence[WorkerInfo]) -> str:
    """One line on how long the actors took to start and how much of it was compiling ahead."""
    starts = sorted(worker.start_seconds for worker in workers if worker.start_seconds is not None)
    warm_ups = sorted(worker.warm_up_seconds for worker in workers)
    if not starts:
        return "actor starts: not measured"
    return (f"actor starts: {format_duration(starts[0])} to {format_duration(starts[-1])} from being asked for to "
            f"ready, of which compiling ahead {format_duration(warm_ups[0])} to {format_duration(warm_ups[-1])}")
