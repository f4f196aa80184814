"""The render version guards: output that moves, or a default that shapes it, must come with a
bump of RENDER_VERSION.

The defaults (configuration, module constants, keyword defaults) are compared with those recorded
for the current version in ``render_defaults.json`` (:mod:`tests.stylecore.render_defaults` says
which, and how to record them). One small example pair is rendered with fixed settings and a 4x4
thumbnail of the result (mean of each block, RGB in [0, 1]) is compared with the one recorded for
the current version. When this fails after a change to stylecore that changes output on purpose, bump
``stylecore.render_version.RENDER_VERSION`` and record the new thumbnail here (the failure prints
it): every batch row rendered by the old code is then redone by the next rerun, as it must be.
"""

from __future__ import annotations

import json

import numpy as np
from conftest import example_pair_paths

from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.render_version import RENDER_VERSION
from stylecore.transfer import transfer
from tests.stylecore.render_defaults import RECORD, output_defaults

CONFIG = TransferConfig(size=64, coarse_scale=1.0, stage1_iterations=3, stage2_iterations=3)
TOLERANCE = 0.01
"""Largest difference per thumbnail value that is round-off (thread counts, CPU instruction sets), not a change."""
THUMBNAILS = {
    2: [
        [[0.583, 0.121, 0.22], [0.564, 0.121, 0.213], [0.547, 0.097, 0.203], [0.521, 0.065, 0.188]],
        [[0.569, 0.178, 0.151], [0.528, 0.169, 0.154], [0.525, 0.163, 0.152], [0.515, 0.171, 0.135]],
        [[0.173, 0.036, 0.031], [0.182, 0.063, 0.055], [0.192, 0.074, 0.064], [0.204, 0.065, 0.043]],
        [[0.317, 0.054, 0.082], [0.324, 0.059, 0.079], [0.352, 0.073, 0.097], [0.376, 0.075, 0.123]],
    ],
    3: [
        [[0.582, 0.12, 0.22], [0.563, 0.122, 0.213], [0.547, 0.097, 0.203], [0.521, 0.065, 0.188]],
        [[0.569, 0.178, 0.151], [0.527, 0.169, 0.153], [0.525, 0.162, 0.151], [0.514, 0.171, 0.135]],
        [[0.173, 0.036, 0.031], [0.182, 0.064, 0.055], [0.193, 0.074, 0.064], [0.204, 0.065, 0.043]],
        [[0.317, 0.054, 0.081], [0.323, 0.059, 0.079], [0.352, 0.073, 0.097], [0.376, 0.075, 0.123]],
    ],
}
"""The recorded thumbnail of each render version: example pair 1 at 64 px, 3+3 iterations, SqueezeNet;
from version 2 on, of the written output (the content photo's own size, 700 x 437). Version 3 changed
automatic masks (segment_matching's snapping and network input size, 4 segments by default; this
pair has hand masks) and made the working copy of a photo over 6 times the working size by block
means before the Lanczos filter. Version 4 keeps 10 L-BFGS curvature pairs instead of 20, which
changes nothing within 3 iterations (the same thumbnail) but does over a default transfer's 200 + 60.
Version 5 runs the optimisation on the device (compact L-BFGS direction, the Laplacian's product by
XLA, TensorFlow's float32 sums): float rounding only, which moves a default transfer's iterates.
Version 6 sums the style layers' gradients in another order (one gather per layer, its gradient a
gather): float rounding again, the same thumbnail. Version 7 sums each layer's segments in a loop of
the compiled graph (the segment count a tensor dimension, not a trace per count): float rounding, the
same thumbnail."""
THUMBNAILS[4] = THUMBNAILS[3]
THUMBNAILS[5] = [
    [[0.582, 0.122, 0.22], [0.564, 0.121, 0.213], [0.547, 0.097, 0.203], [0.521, 0.066, 0.188]],
    [[0.57, 0.176, 0.151], [0.529, 0.168, 0.153], [0.523, 0.163, 0.152], [0.517, 0.169, 0.135]],
    [[0.173, 0.04, 0.031], [0.181, 0.065, 0.054], [0.189, 0.076, 0.063], [0.201, 0.067, 0.043]],
    [[0.319, 0.054, 0.084], [0.325, 0.06, 0.08], [0.357, 0.073, 0.097], [0.378, 0.074, 0.125]],
]
THUMBNAILS[6] = THUMBNAILS[7] = THUMBNAILS[5]


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(4, 4, 3) block means of ``image`` (H, W, 3), cropped to multiples of 4."""
    height, width = image.shape[0] // 4 * 4, image.shape[1] // 4 * 4
    return image[:height, :width].reshape(4, height // 4, 4, width // 4, 3).mean(axis=(1, 3))


def test_the_output_is_the_one_recorded_for_the_current_render_version():
    paths = example_pair_paths(1)
    result = transfer(paths["content"], paths["style"], paths["content_mask"], paths["style_mask"], config=CONFIG,
                      extractor=load_extractor("squeezenet"))
    assert RENDER_VERSION in THUMBNAILS, f"record the thumbnail of render version {RENDER_VERSION}"
    measured = thumbnail(result.output.astype(np.float64) / 255.0)  # what is written: the output size
    difference = float(np.abs(measured - np.array(THUMBNAILS[RENDER_VERSION])).max())
    assert difference <= TOLERANCE, (
        f"the output changed (largest thumbnail difference {difference:.3f}) but RENDER_VERSION is still "
        f"{RENDER_VERSION}: bump it and record this thumbnail: {np.round(measured, 3).tolist()}")


def changed_defaults(recorded: dict, current: dict) -> list[str]:
    """``name: recorded -> current`` for every default that differs, was added or was removed."""
    return [f"{name}: {recorded.get(name, '(none)')} -> {current.get(name, '(none)')}"
            for name in sorted(recorded.keys() | current.keys()) if recorded.get(name) != current.get(name)]


def test_the_defaults_that_shape_output_are_the_ones_recorded_for_the_current_render_version():
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    assert recorded["render_version"] == RENDER_VERSION, (
        f"RENDER_VERSION is {RENDER_VERSION} but {RECORD.name} holds the defaults of version "
        f"{recorded['render_version']}: record them with python -m tests.stylecore.render_defaults")
    changed = changed_defaults(recorded["defaults"], output_defaults())
    assert not changed, (
        f"defaults that may change output changed while RENDER_VERSION is still {RENDER_VERSION}: "
        f"{'; '.join(changed)}. Bump RENDER_VERSION and record them with python -m tests.stylecore.render_defaults "
        "(record without a bump only when no output pixel can change, e.g. a new option whose default keeps the "
        "old behaviour)")


def test_the_defaults_guard_sees_the_optimisers_history_and_automatic_masks(monkeypatch):
    from stylecore import optimise, segment_matching

    before = output_defaults()
    monkeypatch.setattr(optimise, "HISTORY_SIZE", optimise.HISTORY_SIZE * 2)
    monkeypatch.setattr(segment_matching, "GROUP_WEIGHTS", {**segment_matching.GROUP_WEIGHTS, "colour": 0.5})
    changed = changed_defaults(before, output_defaults())
    assert [entry.split(":")[0] for entry in changed] == ["stylecore.optimise.HISTORY_SIZE",
                                                         "stylecore.segment_matching.GROUP_WEIGHTS"]
    assert before["TransferConfig.photorealism_weight"] == TransferConfig().photorealism_weight
