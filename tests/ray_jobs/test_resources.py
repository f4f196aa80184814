"""Actor plans: one actor per GPU where there are GPUs, CPU actors of a fixed share otherwise,
never more actors than rows, and a refusal for what the cluster cannot hold."""

from __future__ import annotations

import pytest

from ray_jobs.errors import JobError
from ray_jobs.resources import DEFAULT_CPUS_PER_ACTOR, ActorPlan, plan_actors


@pytest.mark.parametrize("request_, plan", [
    (dict(cluster_cpus=16, cluster_gpus=4, rows=60), ActorPlan(count=4, num_cpus=4, num_gpus=1)),
    (dict(cluster_cpus=2, cluster_gpus=2, rows=60), ActorPlan(count=2, num_cpus=1, num_gpus=1)),
    (dict(cluster_cpus=16, cluster_gpus=4, rows=3), ActorPlan(count=3, num_cpus=4, num_gpus=1)),
    (dict(cluster_cpus=16, cluster_gpus=4, rows=60, actors=2), ActorPlan(count=2, num_cpus=8, num_gpus=1)),
    (dict(cluster_cpus=16, cluster_gpus=4, rows=60, use_gpus=False),
     ActorPlan(count=16 // DEFAULT_CPUS_PER_ACTOR, num_cpus=DEFAULT_CPUS_PER_ACTOR, num_gpus=0)),
    (dict(cluster_cpus=16, cluster_gpus=0, rows=60), ActorPlan(count=8, num_cpus=2, num_gpus=0)),
    (dict(cluster_cpus=2, cluster_gpus=0, rows=60), ActorPlan(count=1, num_cpus=2, num_gpus=0)),
    (dict(cluster_cpus=2, cluster_gpus=0, rows=60, actors=2), ActorPlan(count=2, num_cpus=1, num_gpus=0)),
    (dict(cluster_cpus=12, cluster_gpus=0, rows=60, cpus_per_actor=3), ActorPlan(count=4, num_cpus=3, num_gpus=0)),
    (dict(cluster_cpus=1, cluster_gpus=0, rows=5), ActorPlan(count=1, num_cpus=1, num_gpus=0)),
])
def test_plan(request_, plan):
    assert plan_actors(**request_) == plan


@pytest.mark.parametrize("request_, message", [
    (dict(cluster_cpus=16, cluster_gpus=2, rows=60, actors=3), "3 actors asked for but the cluster has 2 GPU"),
    (dict(cluster_cpus=4, cluster_gpus=0, rows=60, actors=3, cpus_per_actor=2), "need 6 CPUs but the cluster has 4"),
    (dict(cluster_cpus=4, cluster_gpus=0, rows=60, actors=0), "must be at least 1"),
])
def test_requests_the_cluster_cannot_hold_are_refused(request_, message):
    with pytest.raises(JobError, match=message):
        plan_actors(**request_)
