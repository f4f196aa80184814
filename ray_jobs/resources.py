"""How many actors a job starts and what share of the cluster each one reserves.

- A cluster with GPUs gets one actor per GPU (``num_gpus=1``), each with an equal share of the
  CPUs for the work TensorFlow leaves on the host (image loading, mask cleaning, the matting
  Laplacian). One optimisation keeps a GPU busy; two on one card would only contend for it.
- A cluster without GPUs (or a job told not to use them) gets CPU actors of
  :data:`DEFAULT_CPUS_PER_ACTOR` CPUs each, as many as fit: the optimisation is a sequence of
  small operations, so several actors with a few threads each finish a batch sooner than one
  actor with all the cores (:mod:`ray_jobs.devices` sizes each actor's thread pools to its share).

Never more actors than rows: each one costs a process and a loaded extractor.
"""

from __future__ import annotations

import dataclasses

from ray_jobs.errors import JobError

DEFAULT_CPUS_PER_ACTOR = 2


@dataclasses.dataclass(frozen=True)
class ActorPlan:
    """``count`` actors, each reserving ``num_cpus`` CPUs and ``num_gpus`` GPUs (0 or 1)."""

    count: int
    num_cpus: int
    num_gpus: int


def plan_actors(*, cluster_cpus: float, cluster_gpus: float, rows: int, actors: int | None = None,
                cpus_per_actor: int | None = None, use_gpus: bool = True) -> ActorPlan:
    """The actors for ``rows`` rows on a cluster with ``cluster_cpus`` CPUs and ``cluster_gpus`` GPUs.

    ``actors`` and ``cpus_per_actor`` override the choice of the module docstring; a request the
    cluster cannot hold raises :class:`JobError` instead of waiting for resources that never come.
    """
    cpus, gpus = int(cluster_cpus), int(cluster_gpus) if use_gpus else 0
    if actors is not None and actors < 1 or cpus_per_actor is not None and cpus_per_actor < 1:
        raise JobError("--actors and --cpus-per-actor must be at least 1.")
    if gpus:
        count = actors or gpus
        if count > gpus:
            raise JobError(f"{count} actors asked for but the cluster has {gpus} GPU(s): "
                           "one actor per GPU; use --no-gpus to run CPU actors instead.")
        num_cpus = cpus_per_actor or max(1, cpus // count)
    else:
        num_cpus = cpus_per_actor or (max(1, cpus // actors) if actors
                                      else min(DEFAULT_CPUS_PER_ACTOR, max(1, cpus)))
        count = actors or max(1, cpus // num_cpus)
    if count * num_cpus > max(cpus, 1):
        raise JobError(f"{count} actors of {num_cpus} CPU(s) each need {count * num_cpus} CPUs "
                       f"but the cluster has {cpus}.")
    return ActorPlan(count=min(count, rows), num_cpus=num_cpus, num_gpus=1 if gpus else 0)
