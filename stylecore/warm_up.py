"""Compiled ahead: a process's first real transfer traces nothing and compiles no kernel.

A transfer's first run in a process traces the stage program both stages share and the optimiser's
(tf.function, without AutoGraph: the programs' loops and branches are TensorFlow's own), has
TensorFlow optimise them on their first call (with the trace, most of the warm-up's 5 to 7 s on two
quiet CPUs), has XLA compile the history update, and has numba compile (or load
from its cache) the matting Laplacian's, the local affine maps' and the metrics' kernels. None of
that depends on the photos, their size or their number of segments (:mod:`stylecore.objective`),
only on the extractor, its layers and the Laplacian's radius. :func:`warm_up` pays it on a tiny
made-up pair, so that a batch actor does it while it starts (:mod:`ray_jobs.worker`) rather than
in its first row. A single ``stylecore transfer`` does not call it: there it would only add.

What stays for a first row: XLA's compile of the history update for each new image size (about
45 ms, :meth:`stylecore.optimise.DeviceMinimiser._write_pair_in_place`), and the traces of another
configuration's layers or Laplacian radius than the one warmed.
"""

from __future__ import annotations

import time

import numpy as np

from stylecore.config import MIN_STAGE_SIZE, TransferConfig
from stylecore.extractors import FeatureExtractor
from stylecore.masks import PALETTE
from stylecore.metrics import evaluate_with_references
from stylecore.transfer import transfer

WARM_UP_SHAPE = (3 * MIN_STAGE_SIZE, 5 * MIN_STAGE_SIZE // 2)
"""(H, W) of the made-up photos: larger than the working size, so that the output step runs its kernels."""


def warm_up(extractor: FeatureExtractor, config: TransferConfig | None = None) -> float:
    """Run a two-segment transfer of ``config`` (default: the extractor's defaults) on a tiny made-up
    pair, and score it; the seconds it took. Its traces and compiled kernels serve every later transfer
    in this process with the same extractor, layers and Laplacian radius."""
    started = time.perf_counter()
    config = config if config is not None else TransferConfig(extractor=extractor.name)
    tiny = config.replace(size=2 * MIN_STAGE_SIZE, coarse_scale=0.5, stage1_iterations=2, stage2_iterations=2,
                          output_size="content", finish="local_affine", auto_masks="off", mask_format="palette",
                          ignore_label=None, label_groups=None)
    rng = np.random.default_rng(0)
    photos = [rng.uniform(0.0, 1.0, (*WARM_UP_SHAPE, 3)).astype(np.float32) for _ in range(2)]
    mask = np.zeros((*WARM_UP_SHAPE, 3), np.uint8)
    mask[: WARM_UP_SHAPE[0] // 2], mask[WARM_UP_SHAPE[0] // 2:] = PALETTE["blue"], PALETTE["green"]
    result = transfer(*photos, mask, mask, config=tiny, extractor=extractor)
    evaluate_with_references(result.image, result.content_image, result.style_image, result.content_labels,
                             result.style_labels, content_only_policy=tiny.content_only_policy)
    return time.perf_counter() - started
