"""Actor plans, node by node: one actor per GPU on the GPU nodes with those nodes' CPUs, CPU actors
of a fixed share otherwise, a memory reservation from the working size, never more actors than
rows, ``--actors`` beyond what the nodes hold now (for autoscaling clusters), and the shape fixed by
``--gpus-per-actor`` and ``--memory-per-actor`` whatever the nodes alive at start have."""

from __future__ import annotations

import pytest

from ray_jobs.errors import JobError
from ray_jobs.resources import (ACTOR_BASE_MEMORY, ACTOR_MEMORY_PER_PIXEL, DEFAULT_CPUS_PER_ACTOR, ActorGroup,
                                ActorPlan, NodeResources, actor_memory_bytes, describe_request, plan_actors)

GIB = 2**30
MEMORY = actor_memory_bytes(700)
GPU_MEMORY = actor_memory_bytes(700, rows=2)
"""A GPU actor holds two rows at once (:data:`ray_jobs.resources.GPU_ACTOR_ROWS`)."""


def node(cpus: float, gpus: float = 0, memory: float = 64 * GIB, name: str = "n") -> NodeResources:
    return NodeResources(node_id=name, address=name, cpus=cpus, gpus=gpus, memory=memory)


def test_memory_request_grows_with_the_working_pixels():
    assert actor_memory_bytes(0) == ACTOR_BASE_MEMORY
    assert actor_memory_bytes(700) == ACTOR_BASE_MEMORY + ACTOR_MEMORY_PER_PIXEL * 490_000
    assert 2 * GIB < actor_memory_bytes(700) < 3 * GIB
    assert actor_memory_bytes(700, rows=2) - ACTOR_BASE_MEMORY == 2 * (actor_memory_bytes(700) - ACTOR_BASE_MEMORY)


@pytest.mark.parametrize("nodes, options, groups", [
    # the cluster: a 2-CPU head and a 1-CPU, 1-GPU worker: one GPU actor with 1 CPU
    ([node(2, name="head"), node(1, 1, name="gpu")], {}, [ActorGroup(1, 1, 1, GPU_MEMORY)]),
    ([node(16, 4)], {}, [ActorGroup(4, 4, 1, GPU_MEMORY)]),
    ([node(2, 2)], {}, [ActorGroup(2, 1, 1, GPU_MEMORY)]),
    ([node(16, 4)], {"rows": 3}, [ActorGroup(3, 4, 1, GPU_MEMORY)]),
    # unequal GPU nodes: each actor gets its own node's share
    ([node(8, 2, name="a"), node(4, 1, name="b"), node(32)], {}, [ActorGroup(3, 4, 1, GPU_MEMORY)]),
    ([node(8, 1, name="a"), node(4, 1, name="b")], {}, [ActorGroup(1, 8, 1, GPU_MEMORY), ActorGroup(1, 4, 1, GPU_MEMORY)]),
    ([node(16, 4)], {"use_gpus": False},
     [ActorGroup(16 // DEFAULT_CPUS_PER_ACTOR, DEFAULT_CPUS_PER_ACTOR, 0, MEMORY)]),
    ([node(16), node(1)], {}, [ActorGroup(17, 1, 0, MEMORY)]),
    ([node(2)], {}, [ActorGroup(2, 1, 0, MEMORY)]),
    ([node(2)], {"cpus_per_actor": 2}, [ActorGroup(1, 2, 0, MEMORY)]),
    ([node(2)], {"actors": 2}, [ActorGroup(2, 1, 0, MEMORY)]),
    ([node(12)], {"cpus_per_actor": 3}, [ActorGroup(4, 3, 0, MEMORY)]),
    # memory bounds the count: 5 GiB holds two actors of 2.4 GiB
    ([node(16, memory=5 * GIB)], {}, [ActorGroup(2, 1, 0, MEMORY)]),
    # more actors than the nodes hold now: the rest wait for an autoscaler in the common shape
    ([node(2, 1)], {"actors": 3}, [ActorGroup(3, 2, 1, GPU_MEMORY)]),
    # a node too small for even one: one actor anyway, which the start timeout then judges
    ([node(16, memory=1 * GIB)], {}, [ActorGroup(1, 1, 0, MEMORY)]),
    # a cluster scaled to zero (a CPU head only): the shape asked for, to be met by the nodes an autoscaler starts
    ([node(2, name="head")], {"gpus_per_actor": 1, "actors": 2}, [ActorGroup(2, 1, 1, GPU_MEMORY)]),
    ([node(0, name="head")], {"gpus_per_actor": 1, "memory_per_actor": 0}, [ActorGroup(1, 1, 1, 0)]),
    ([node(8, 4)], {"gpus_per_actor": 2}, [ActorGroup(2, 4, 2, GPU_MEMORY)]),
    ([node(8, 4)], {"gpus_per_actor": 0}, [ActorGroup(8, 1, 0, MEMORY)]),
    # no memory reserved: memory no longer bounds the count, even on nodes that declare none
    ([node(4, memory=0)], {"memory_per_actor": 0}, [ActorGroup(4, 1, 0, 0)]),
    ([node(4)], {"memory_per_actor": 1.5}, [ActorGroup(4, 1, 0, 3 * GIB // 2)]),
    ([node(0, name="head")], {"actors": 2, "memory_per_actor": 0}, [ActorGroup(2, 1, 0, 0)]),
])
def test_plan(nodes, options, groups):
    assert plan_actors(nodes, **{"rows": 60, "size": 700, **options}) == ActorPlan(tuple(groups))


def test_the_request_is_described_with_what_each_node_has():
    nodes = [node(2, name="10.0.0.1"), node(1, 1, name="10.0.0.2")]
    plan = plan_actors(nodes, rows=4, size=700, cpus_per_actor=3)
    text = describe_request(plan, nodes)
    assert text.startswith("asked for 1 actor(s) of 3 CPU(s), 1 GPU(s) and 3.8 GiB of memory per actor")
    assert "10.0.0.1 2 CPU(s), 0 GPU(s), 64.0 GiB; 10.0.0.2 1 CPU(s), 1 GPU(s), 64.0 GiB" in text


@pytest.mark.parametrize("options, message", [
    ({"actors": 0}, "must be at least 1"), ({"cpus_per_actor": 0}, "must be at least 1"),
    ({"gpus_per_actor": -1}, "must not be negative"), ({"memory_per_actor": -0.5}, "must not be negative")])
def test_impossible_shapes_are_refused(options, message):
    with pytest.raises(JobError, match=message):
        plan_actors([node(4)], rows=60, size=700, **options)
