"""The stage objective: one compiled graph for every pair of a structure, per stage."""

import numpy as np
import pytest
import tensorflow as tf

from stylecore.architectures import layer_choice
from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.objective import SegmentTarget, StageObjective, _segment_rows, layer_rows
from stylecore.optimise import _device_minimiser, minimise
from stylecore.transfer import photorealism_stencil


@pytest.fixture(scope="module")
def squeezenet():
    return load_extractor("squeezenet")


def objective_for(pair, extractor, *, stencil=None):
    return StageObjective(extractor, layer_choice("squeezenet", None, None, None), content=pair.content,
                          style=pair.style, content_labels=pair.content_labels, style_labels=pair.style_labels,
                          pairing=pair.diagnostics, config=TransferConfig(), stencil=stencil)


def test_pairs_of_other_sizes_share_one_trace_per_stage_and_the_loop_too(example_pair, squeezenet):
    small, large = example_pair(1, 64), example_pair(1, 96)
    stage1 = [objective_for(small, squeezenet), objective_for(large, squeezenet)]
    stage2 = [objective_for(small, squeezenet, stencil=photorealism_stencil(small.content, TransferConfig())),
              objective_for(large, squeezenet, stencil=photorealism_stencil(large.content, TransferConfig()))]
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


def test_segment_rows_gradient_is_the_gathers_with_overlapping_segments():
    """Three segments of a 12-position grid, overlapping at 3 and 4 (a resized mask's boundary) and
    at 0 (a spare slot's one position): the rows are the gather's, and so is the gradient, repeats summed."""
    positions = [[0, 1, 2, 3, 4], [3, 4, 5, 9], [0]]
    segments = [SegmentTarget(tf.constant(rows, tf.int32), None, None, None) for rows in positions]
    rows = layer_rows(segments, 12)
    assert rows.positions.numpy().tolist() == [0, 1, 2, 3, 4, 3, 4, 5, 9, 0]
    assert rows.first.numpy().tolist() == [0, 1, 2, 3, 4, 7, 10, 10, 10, 8, 10, 10]
    assert rows.repeats.numpy().tolist() == [5, 6, 9]
    flat = tf.constant(np.random.default_rng(0).standard_normal((12, 4)), tf.float32)
    weights = tf.constant(np.random.default_rng(1).standard_normal((10, 4)), tf.float32)
    gradients = []
    for gather in (lambda features: _segment_rows(features, rows), lambda features: tf.gather(features, rows.positions)):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            gathered = gather(flat)
            loss = tf.reduce_sum(weights * gathered ** 2)
        np.testing.assert_array_equal(gathered.numpy(), tf.gather(flat, rows.positions).numpy())
        gradients.append(tf.convert_to_tensor(tape.gradient(loss, flat)).numpy())
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-6)
    assert np.all(gradients[0][[6, 7, 8, 10, 11]] == 0.0) and np.all(gradients[0][[0, 3, 4]] != 0.0)
