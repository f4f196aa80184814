"""TensorFlow set up inside one actor: its CPU share as thread pools, its GPU with memory growth.

Ray gives every actor a share of the node (``num_cpus``, ``num_gpus``) but TensorFlow ignores it
and sizes its thread pools to all the node's cores, so N CPU actors would run N x cores threads
and slow each other down. Sizing the pools to the actor's share must happen before TensorFlow runs
its first operation, which is why :func:`configure_tensorflow` is the first thing an actor does.
numba's parallel kernels (the matting Laplacian's stencil, the local affine fit, the energy
metric) likewise start one thread per core; the same call sizes them to the share. numba's count
is per calling thread: it holds for the actor's methods, which Ray runs on the thread that built it.

For a GPU actor Ray sets ``CUDA_VISIBLE_DEVICES`` to the GPU it assigned, so TensorFlow sees that
one GPU as ``GPU:0``; memory growth keeps TensorFlow from taking the whole card at start. A CPU
actor hides every GPU from TensorFlow so that it never competes with the GPU actors for one. When
Ray assigns a GPU that TensorFlow cannot use (a CPU-only build, a missing driver), ``device`` is
``"CPU"`` and the actor refuses to start (:mod:`ray_jobs.worker`), unless the job was told the GPUs
are only declared (tests on machines without GPUs), where it runs on the CPU and says so in the
``device`` column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numba

from stylecore.tensorflow_runtime import load_tensorflow

DECLARED_GPUS_VARIABLE = "RAY_JOBS_DECLARED_GPUS"
"""Set to ``1``: a GPU actor whose TensorFlow finds no GPU runs on its CPU instead of refusing."""
DECLARED_GPU_DEVICE = "CPU (declared GPU)"
"""``device`` of an actor Ray gave a GPU that its TensorFlow cannot see, running on its CPU."""


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """Where an actor's TensorFlow runs."""

    device: str
    """``"GPU:0"`` (the actor's GPU, whichever physical card it is), ``"CPU"``, or
    :data:`DECLARED_GPU_DEVICE` (a GPU assigned by Ray that TensorFlow cannot see)."""
    gpu_ids: tuple[str, ...]
    """The GPU ids Ray assigned to the actor; empty for a CPU actor."""
    cpu_threads: int
    """TensorFlow's intra-op thread count, the actor's CPU share."""
    numba_threads: int
    """Threads numba's parallel kernels use: the actor's CPU share, at most numba's own limit (the cores)."""


def configure_tensorflow(*, cpu_threads: int, gpu_ids: Sequence[int | str]) -> DeviceInfo:
    """Size TensorFlow's thread pools and numba's kernels to ``cpu_threads`` and set up the GPUs Ray
    assigned, if any.

    Must run before TensorFlow executes anything in this process (TensorFlow refuses changes after).
    """
    tf = load_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(cpu_threads)
    tf.config.threading.set_inter_op_parallelism_threads(cpu_threads)
    numba.set_num_threads(max(1, min(cpu_threads, numba.config.NUMBA_NUM_THREADS)))
    visible = tf.config.list_physical_devices("GPU") if gpu_ids else []
    if gpu_ids:
        for gpu in visible:
            tf.config.experimental.set_memory_growth(gpu, True)
    else:
        tf.config.set_visible_devices([], "GPU")
    device = "GPU:0" if visible else DECLARED_GPU_DEVICE if gpu_ids else "CPU"
    return DeviceInfo(device=device, gpu_ids=tuple(str(gpu) for gpu in gpu_ids),
                      cpu_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                      numba_threads=numba.get_num_threads())

