"""The stage objective: one compiled graph for every pair of a structure, per stage."""

import numpy as np
import pytest
import tensorflow as tf

from stylecore.architectures import layer_choice
from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.objective import SegmentTarget, StageObjective, _segment_rows, layer_segments
from stylecore.masks import PairDiagnostics
from stylecore.optimise import _device_minimiser, minimise
from stylecore.transfer import photorealism_stencil


@pytest.fixture(scope="module")
def squeezenet():
    return load_extractor("squeezenet")


def objective_for(pair, extractor, *, stencil=None):
    return StageObjective(extractor, layer_choice("squeezenet", None, None, None), content=pair.content,
                          style=pair.style, content_labels=pair.content_labels, style_labels=pair.style_labels,
                          pairing=pair.diagnostics, config=TransferConfig(), stencil=stencil)


def test_pairs_of_other_sizes_and_both_stages_share_one_trace_and_the_loop_too(example_pair, squeezenet):
    small, large = example_pair(1, 64), example_pair(1, 96)
    stage1 = [objective_for(small, squeezenet), objective_for(large, squeezenet)]
    stage2 = [objective_for(small, squeezenet, stencil=photorealism_stencil(small.content, TransferConfig())),
              objective_for(large, squeezenet, stencil=photorealism_stencil(large.content, TransferConfig()))]
    [function] = {objective.function for objective in (*stage1, *stage2)}
    for objective, pair in zip([*stage1, *stage2], [small, large, small, large], strict=True):
        loss, gradient, terms = objective(pair.content)
        assert np.isfinite(loss) and gradient.shape == pair.content.shape
        assert (terms["photorealism"] > 0.0) == (objective in stage2)
        minimise(objective, pair.content, iterations=3, tolerance=0.0)
    minimiser = _device_minimiser(function)
    assert [program.experimental_get_tracing_count() for program in
            (function, minimiser._reset, minimiser._block)] == [1, 1, 1]


def test_pairs_of_any_segment_count_trace_each_stage_once_in_one_process(example_pair, squeezenet):
    """Pairs of 1, 2, 3, 5 and 9 segments, one after the other (a trace per power-of-two bucket of segment
    counts traced each stage four times over them): one objective and one optimiser trace for both stages."""
    functions, segment_counts = [], set()
    for number in (9, 4, 1, 26, 25):
        pair = example_pair(number, 64)
        segment_counts.add(len(pair.diagnostics.matched) + len(pair.diagnostics.content_only))
        for stencil in (None, photorealism_stencil(pair.content, TransferConfig())):
            objective = objective_for(pair, squeezenet, stencil=stencil)
            functions.append(objective.function)
            outcome = minimise(objective, pair.content, iterations=2, tolerance=0.0)
            assert len(outcome.history) == 2 and np.isfinite(outcome.history[-1]["style"])
    assert segment_counts == {1, 2, 3, 5, 9}
    assert functions == [functions[0]] * 10
    minimiser = _device_minimiser(functions[0])
    assert [program.experimental_get_tracing_count() for program in
            (functions[0], minimiser._reset, minimiser._block, minimiser._write_pair)] == [1, 1, 1, 1]


def test_a_layer_without_segments_has_no_style_term(squeezenet):
    """Masks sharing no label (the content-only policy ``content_only``): zero segments on every layer,
    the same compiled program, a style term of 0 and a finite gradient."""
    rng = np.random.default_rng(0)
    content, style = rng.uniform(0.0, 1.0, (48, 64, 3)).astype(np.float32), rng.uniform(0.0, 1.0, (48, 64, 3)).astype(np.float32)
    pairing = PairDiagnostics(None, None, matched=(), content_only=("blue",), style_only=("green",))
    objective = StageObjective(squeezenet, layer_choice("squeezenet", None, None, None), content=content, style=style,
                               content_labels=np.zeros((48, 64), np.uint8), style_labels=np.ones((48, 64), np.uint8),
                               pairing=pairing, config=TransferConfig(content_only_policy="content_only"))
    loss, gradient, terms = objective(content)
    assert terms["style"] == 0.0 and np.isfinite(loss) and np.isfinite(gradient).all()
    assert all(layer.target_grams.shape[0] == 0 for layer in objective.arguments[3])


def test_segment_rows_gradient_is_the_gathers_with_overlapping_segments():
    """Three segments of a 12-position grid, overlapping at 3 and 4 (a resized mask's boundary) and
    at 0: the rows are the gather's, and so is the gradient, repeats summed."""
    positions = [[0, 1, 2, 3, 4], [3, 4, 5, 9], [0]]
    segments = [SegmentTarget(np.array(rows, np.int32), np.ones(len(rows), np.float32), tf.eye(4), 0.5)
                for rows in positions]
    rows = layer_segments(segments, 12, 4)
    assert rows.bounds.numpy().tolist() == [0, 5, 9, 10] and rows.target_grams.shape == (3, 4, 4)
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
