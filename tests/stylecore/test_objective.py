"""The stage objective: one compiled graph for every pair of a structure, per stage."""

import numpy as np
import pytest

from stylecore.architectures import layer_choice
from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.laplacian import matting_laplacian
from stylecore.objective import StageObjective
from stylecore.optimise import _device_minimiser, minimise


@pytest.fixture(scope="module")
def squeezenet():
    return load_extractor("squeezenet")


def objective_for(pair, extractor, *, laplacian=None):
    return StageObjective(extractor, layer_choice("squeezenet", None, None, None), content=pair.content,
                          style=pair.style, content_labels=pair.content_labels, style_labels=pair.style_labels,
                          pairing=pair.diagnostics, config=TransferConfig(), laplacian=laplacian)


def test_pairs_of_other_sizes_share_one_trace_per_stage_and_the_loop_too(example_pair, squeezenet):
    small, large = example_pair(1, 64), example_pair(1, 96)
    stage1 = [objective_for(small, squeezenet), objective_for(large, squeezenet)]
    stage2 = [objective_for(small, squeezenet, laplacian=matting_laplacian(small.content)),
              objective_for(large, squeezenet, laplacian=matting_laplacian(large.content))]
    assert stage1[0].function is stage1[1].function and stage2[0].function is stage2[1].function
    assert stage1[0].function is not stage2[0].function
    for objective, pair in zip([*stage1, *stage2], [small, large, small, large], strict=True):
        loss, gradient, terms = objective(pair.content)
        assert np.isfinite(loss) and gradient.shape == pair.content.shape
        assert (terms["photorealism"] > 0.0) == (objective in stage2)
        minimise(objective, pair.content, iterations=3, tolerance=0.0)
    for function in (stage1[0].function, stage2[0].function):
        assert function.experimental_get_tracing_count() == 1
        minimiser = _device_minimiser(function)
        assert minimiser._start.experimental_get_tracing_count() == 1
        assert minimiser._block.experimental_get_tracing_count() == 1
