"""The stage objective: one compiled graph for every pair and stage of a structure."""

import numpy as np
import pytest

from stylecore.architectures import layer_choice
from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.laplacian import matting_laplacian
from stylecore.objective import StageObjective


@pytest.fixture(scope="module")
def squeezenet():
    return load_extractor("squeezenet")


def objective_for(pair, extractor, *, laplacian=None):
    return StageObjective(extractor, layer_choice("squeezenet", None, None, None), content=pair.content,
                          style=pair.style, content_labels=pair.content_labels, style_labels=pair.style_labels,
                          pairing=pair.diagnostics, config=TransferConfig(), laplacian=laplacian)


def test_pairs_of_other_sizes_and_both_stages_share_one_trace(example_pair, squeezenet):
    small, large = example_pair(1, 64), example_pair(1, 96)
    objectives = [objective_for(small, squeezenet), objective_for(large, squeezenet),
                  objective_for(large, squeezenet, laplacian=matting_laplacian(large.content))]
    compiled = objectives[0]._compiled
    assert all(objective._compiled is compiled for objective in objectives)
    before = compiled.experimental_get_tracing_count()
    for objective, pair in zip(objectives, [small, large, large], strict=True):
        loss, gradient, terms = objective(pair.content)
        assert np.isfinite(loss) and gradient.shape == pair.content.shape
    assert compiled.experimental_get_tracing_count() - before <= 1
    assert terms["photorealism"] > 0.0 and objectives[1](large.content)[2]["photorealism"] == 0.0
