"""How many actors a job starts and what each one reserves, planned node by node.

Ray places an actor on one node, so the plan is made from what each node has, not from the
cluster's totals (a 2-CPU head and a 1-CPU, 1-GPU worker do not make a 3-CPU GPU node):

- Where nodes have GPUs (and the job may use them), one actor per GPU (``num_gpus=1``), each with
  an equal share of its own node's CPUs for the work TensorFlow leaves on the host (image loading,
  mask cleaning, the matting Laplacian). One optimisation keeps a GPU busy; two on one card would
  only contend for it. CPU-only nodes (a head node) run no actors then.
- Without GPUs (or told not to use them), CPU actors of :data:`DEFAULT_CPUS_PER_ACTOR` CPUs each (at
  most a node's CPUs; with ``--actors N``, an N-th of the cluster's CPUs, at most the largest
  node's), as many as each node holds: the optimisation is a sequence of small
  operations, so several actors with a few threads each finish a batch sooner than one actor with
  all the cores (:mod:`ray_jobs.devices` sizes each actor's thread pools to its share).
- Every actor also reserves memory, :func:`actor_memory_bytes` of the largest working size it will
  render and of the rows it holds at once (a GPU actor :data:`GPU_ACTOR_ROWS`), so that Ray never packs more actors on a node than its memory holds; a node runs at most
  as many actors as its memory resource allows.
- ``--gpus-per-actor`` and ``--memory-per-actor`` fix the shape instead of deriving it from the
  nodes alive at start. A cluster scaled to zero GPU workers has only a CPU head up: derived from
  it, the plan would be CPU actors and never ask for a GPU, so the autoscaler would never start one.
  An autoscaler whose node types declare no ``memory`` (many do not; Ray's fake provider cannot)
  reports any memory reservation as infeasible and starts nothing: ``--memory-per-actor 0``.

Actors of one shape form an :class:`ActorGroup`; Ray places each on whichever node fits it, so
no actor is pinned to a node, and actors beyond what the nodes hold now (``--actors`` on an
autoscaling cluster) wait for nodes to come, while rows go to the actors that are up. Never more
actors than rows: each one costs a process and a loaded extractor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ray_jobs.errors import JobError

DEFAULT_CPUS_PER_ACTOR = 1
"""CPUs of a CPU actor. One: on the 2-core machine, 12 example pairs took 121 s on two 1-CPU actors
against 175 s on one 2-CPU actor (17 s a pair each against 12.5 s): a transfer's serial parts (the
L-BFGS bookkeeping, small TensorFlow operations, Python) leave a second thread idle half the time,
a second actor does not."""
ACTOR_BASE_MEMORY = 1 << 30
"""Bytes an actor needs before its first row: Python, TensorFlow, Ray and a loaded extractor
(measured: 753 MiB resident with SqueezeNet on TensorFlow 2.21 CPU), rounded up."""
ACTOR_MEMORY_PER_PIXEL = 3 << 10
"""Bytes more per working pixel during a transfer. Measured peak RSS above the loaded actor on
example pair 1 (5:8 photos, 5+5 iterations): 84, 140, 244 and 397 MiB at long sides 128, 256, 384
and 512, a slope of 2.1 KiB per pixel; 3 KiB leaves room for longer L-BFGS histories and is what
the full-size 1400 px run measured (3.6 GB)."""


@dataclasses.dataclass(frozen=True)
class NodeResources:
    """What one live node offers Ray: CPUs, GPUs and memory in bytes (Ray's ``memory`` resource)."""

    node_id: str
    address: str
    cpus: float
    gpus: float
    memory: float

    def describe(self) -> str:
        return (f"{self.address} {self.cpus:g} CPU(s), {self.gpus:g} GPU(s), "
                f"{self.memory / 2**30:.1f} GiB")


@dataclasses.dataclass(frozen=True)
class ActorGroup:
    """``count`` actors, each reserving ``num_cpus`` CPUs, ``num_gpus`` GPUs (0: a CPU actor) and
    ``memory`` bytes (0: no reservation)."""

    count: int
    num_cpus: int
    num_gpus: int
    memory: int

    def describe(self) -> str:
        return (f"{self.num_cpus} CPU(s), {self.num_gpus} GPU(s) and {self.memory / 2**30:.1f} GiB "
                "of memory per actor")


@dataclasses.dataclass(frozen=True)
class ActorPlan:
    """The job's actors, in groups of one shape each (largest first)."""

    groups: tuple[ActorGroup, ...]

    @property
    def count(self) -> int:
        return sum(group.count for group in self.groups)

    def shapes(self) -> list[ActorGroup]:
        """One actor of each group: what :func:`ray_jobs.pool.start_workers` starts, repeated."""
        return [dataclasses.replace(group, count=1) for group in self.groups for _ in range(group.count)]


GPU_ACTOR_ROWS = 2
"""Rows a GPU actor holds at once: one optimising on the device while the other's host work (decoding,
masks, the Laplacian before; the local affine finish, encoding and upload after) runs beside it
(:mod:`ray_jobs.worker`). More would only wait: one optimisation keeps a GPU busy."""


def actor_memory_bytes(size: int, rows: int = 1) -> int:
    """Memory an actor holding ``rows`` rows at once reserves to render at long side ``size`` px (worst
    case: a square image): ``ACTOR_BASE_MEMORY + rows * ACTOR_MEMORY_PER_PIXEL * size**2``; 1.7 GiB at the
    default 500 px for one row, 2.4 GiB for a GPU actor's two."""
    return ACTOR_BASE_MEMORY + rows * ACTOR_MEMORY_PER_PIXEL * size * size


def plan_actors(nodes: Sequence[NodeResources], *, rows: int, size: int, actors: int | None = None,
                cpus_per_actor: int | None = None, gpus_per_actor: int | None = None,
                memory_per_actor: float | None = None, use_gpus: bool = True) -> ActorPlan:
    """The actors for ``rows`` rows at working size ``size`` on ``nodes`` (module docstring).

    ``actors`` sets the count; beyond what the nodes hold, the extra actors take the most common
    shape and wait for capacity. ``cpus_per_actor`` overrides each actor's CPUs; ``gpus_per_actor``
    fixes each actor's GPUs (0: CPU actors) whatever the nodes alive now have, so that on a cluster
    scaled to zero the actors still ask for the GPU nodes an autoscaler would start;
    ``memory_per_actor`` (GiB, 0: none) replaces :func:`actor_memory_bytes`. Raises
    :class:`JobError` for counts below 1 and negative shapes.
    """
    if actors is not None and actors < 1 or cpus_per_actor is not None and cpus_per_actor < 1:
        raise JobError("--actors and --cpus-per-actor must be at least 1.")
    if gpus_per_actor is not None and gpus_per_actor < 0 or memory_per_actor is not None and memory_per_actor < 0:
        raise JobError("--gpus-per-actor and --memory-per-actor must not be negative.")
    gpus = _actor_gpus(nodes, gpus_per_actor=gpus_per_actor, use_gpus=use_gpus)
    memory = (actor_memory_bytes(size, GPU_ACTOR_ROWS if gpus else 1) if memory_per_actor is None
              else round(memory_per_actor * 2**30))
    hosts = [node for node in nodes if int(node.gpus) >= gpus] if gpus else list(nodes)
    if actors and not cpus_per_actor and not gpus and nodes:
        # CPU actors sharing the cluster: ``actors`` equal shares, none larger than the largest node
        total = sum(int(node.cpus) for node in nodes)
        cpus_per_actor = max(1, min(total // actors, max(int(node.cpus) for node in nodes)))
    per_node = [_node_group(node, gpus=gpus, cpus_per_actor=cpus_per_actor, memory=memory) for node in hosts]
    groups = _merge([group for group in per_node if group.count])
    if not groups:
        fallback = _node_group(max(hosts, key=lambda node: (node.gpus, node.cpus)), gpus=gpus,
                               cpus_per_actor=cpus_per_actor, memory=memory, at_least_one=True) \
            if hosts else ActorGroup(1, cpus_per_actor or DEFAULT_CPUS_PER_ACTOR, gpus, memory)
        groups = [fallback]
    wanted = min(actors or sum(group.count for group in groups), rows)
    return ActorPlan(tuple(_take(groups, wanted)))


def _actor_gpus(nodes: Sequence[NodeResources], *, gpus_per_actor: int | None, use_gpus: bool) -> int:
    """GPUs per actor: as given, else one where a node up now has a GPU and the job may use it."""
    if gpus_per_actor is not None:
        return gpus_per_actor
    return 1 if use_gpus and any(int(node.gpus) >= 1 for node in nodes) else 0


def _node_group(node: NodeResources, *, gpus: int, cpus_per_actor: int | None, memory: int,
                at_least_one: bool = False) -> ActorGroup:
    """The actors of ``gpus`` GPUs each (0: CPU actors) that ``node`` holds now, and their CPUs."""
    cpus = int(node.cpus)
    by_memory = int(node.memory // memory) if memory else cpus
    if gpus:
        slots = int(node.gpus) // gpus
        num_cpus = cpus_per_actor or max(1, cpus // max(slots, 1))
        count = min(slots, cpus // num_cpus, by_memory)
    else:
        num_cpus = cpus_per_actor or max(1, min(DEFAULT_CPUS_PER_ACTOR, cpus))
        count = min(cpus // num_cpus, by_memory)
    return ActorGroup(count=max(count, 1 if at_least_one else 0), num_cpus=num_cpus, num_gpus=gpus, memory=memory)


def _merge(groups: list[ActorGroup]) -> list[ActorGroup]:
    counts: dict[ActorGroup, int] = {}
    for group in groups:
        shape = dataclasses.replace(group, count=0)
        counts[shape] = counts.get(shape, 0) + group.count
    merged = [dataclasses.replace(shape, count=count) for shape, count in counts.items()]
    return sorted(merged, key=lambda group: -group.count)


def _take(groups: list[ActorGroup], wanted: int) -> list[ActorGroup]:
    """The first ``wanted`` actors of ``groups``; beyond their total, more of the largest group."""
    taken, left = [], wanted
    for group in groups:
        count = min(group.count, left)
        if count:
            taken.append(dataclasses.replace(group, count=count))
        left -= count
    if left > 0:
        taken[0] = dataclasses.replace(taken[0], count=taken[0].count + left)
    return taken


def describe_request(plan: ActorPlan, nodes: Sequence[NodeResources]) -> str:
    """One sentence's worth: what the plan asks for and what each node has."""
    asked = "; ".join(f"{group.count} actor(s) of {group.describe()}" for group in plan.groups)
    have = "; ".join(node.describe() for node in nodes) or "no live nodes"
    return f"asked for {asked}, and the nodes have: {have}"

