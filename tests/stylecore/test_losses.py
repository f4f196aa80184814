"""Known answers for the loss terms."""

import numpy as np
import pytest
import tensorflow as tf

from stylecore import losses
from stylecore.laplacian import laplacian_stencil, matting_laplacian


def test_gram_of_hand_built_features():
    # Two channels at three positions: F = [[1, 2], [0, 1], [3, 0]] (P=3, C=2).
    features = tf.constant([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    gram = losses.gram_matrix(features).numpy()
    # F^T F = [[10, 2], [2, 5]], divided by C * P = 6.
    np.testing.assert_allclose(gram, np.array([[10.0, 2.0], [2.0, 5.0]]) / 6.0, rtol=1e-6)


def test_masked_gram_weighs_positions_and_normalises_by_area():
    features = tf.constant([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    weights = tf.constant([1.0, 0.5, 0.0])
    # (F*m)^T (F*m) = [[1, 2], [2, 4.25]], area sum(m) = 1.5, C = 2.
    expected = np.array([[1.0, 2.0], [2.0, 4.25]]) / 3.0
    np.testing.assert_allclose(losses.gram_matrix(features, weights).numpy(), expected, rtol=1e-6)


def test_segments_style_loss_gradient_matches_finite_differences():
    """Three segments of 3, 1 and 3 rows: the written-out gradient is the loss's slope at every row."""
    rng = np.random.default_rng(3)
    features, weights = rng.normal(size=(7, 4)), rng.uniform(0.2, 1.0, size=7)
    targets = rng.normal(size=(3, 4, 4))
    targets = tf.constant(targets + targets.transpose(0, 2, 1))

    def loss(values: tf.Tensor) -> tf.Tensor:
        return losses.segments_style_loss(values, tf.constant(weights), tf.constant([0, 3, 4, 7]), targets,
                                          tf.constant([0.3, 0.5, 0.2], tf.float64))

    with tf.GradientTape() as tape:
        tensor = tf.constant(features)
        tape.watch(tensor)
        value = loss(tensor)
    gradient = tape.gradient(value, tensor).numpy()
    step = 1e-6
    for index in [(0, 0), (2, 3), (3, 2), (6, 3), (5, 1)]:
        bumped = features.copy()
        bumped[index] += step
        numeric = (float(loss(tf.constant(bumped))) - float(value)) / step
        assert gradient[index] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_segments_style_loss_of_no_segments_is_zero_with_an_empty_gradient():
    rows = tf.zeros((0, 5))
    with tf.GradientTape() as tape:
        tape.watch(rows)
        value = losses.segments_style_loss(rows, tf.zeros(0), tf.constant([0]), tf.zeros((0, 5, 5)), tf.zeros(0))
    assert float(value) == 0.0
    assert tape.gradient(value, rows).shape == (0, 5)


def test_total_variation_of_checkerboard():
    # A 4x5 checkerboard of 0 and 1 on all 3 channels: every neighbour differs by 1.
    board = (np.indices((4, 5)).sum(axis=0) % 2).astype(np.float32)
    image = tf.constant(np.repeat(board[..., None], 3, axis=2))
    horizontal_pairs, vertical_pairs = 4 * 4, 3 * 5
    assert float(losses.total_variation(image)) == pytest.approx(3 * (horizontal_pairs + vertical_pairs))


def test_total_variation_gradient_matches_finite_differences():
    image = np.random.default_rng(6).uniform(size=(5, 6, 3))
    with tf.GradientTape() as tape:
        tensor = tf.constant(image)
        tape.watch(tensor)
        loss = losses.total_variation(tensor)
    gradient = tape.gradient(loss, tensor).numpy()
    step = 1e-6
    for index in [(0, 0, 0), (2, 3, 1), (4, 5, 2), (0, 5, 1), (3, 0, 2)]:
        bumped = image.copy()
        bumped[index] += step
        numeric = (float(losses.total_variation(tf.constant(bumped))) - float(loss)) / step
        assert gradient[index] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_total_variation_of_constant_image_is_zero():
    assert float(losses.total_variation(tf.fill((6, 7, 3), 0.3))) == 0.0


def test_content_loss_identical_is_zero_and_known_otherwise():
    features = tf.random.stateless_uniform((4, 5, 8), seed=(1, 2))
    assert float(losses.content_loss(features, features)) == 0.0
    shifted = features + 0.5
    assert float(losses.content_loss(shifted, features)) == pytest.approx(0.25, rel=1e-5)


def test_segments_style_loss_of_hand_built_features():
    # Segment 1: F = [[1, 2], [0, 1], [3, 0]], m = 1: G = [[10, 2], [2, 5]] / 6; against a zero target its
    # loss is w ||G||^2 = 0.5 * (100 + 4 + 4 + 25) / 36. Segment 2: F = [[2, 0]], m = 1: G = [[2, 0], [0, 0]],
    # 0.25 * 4 = 1 against a zero target.
    features = tf.constant([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0], [2.0, 0.0]])
    value = losses.segments_style_loss(features, tf.ones(4), tf.constant([0, 3, 4]), tf.zeros((2, 2, 2)),
                                       tf.constant([0.5, 0.25]))
    assert float(value) == pytest.approx(0.5 * 133.0 / 36.0 + 1.0, rel=1e-6)


def test_photorealism_loss_and_gradient_are_the_laplacian_quadratic_form():
    rng = np.random.default_rng(0)
    content = rng.uniform(size=(9, 11, 3))
    laplacian = matting_laplacian(content)
    image = rng.uniform(size=(9, 11, 3)).astype(np.float32)
    loss, gradient = losses.photorealism_loss(image, laplacian_stencil(laplacian, (9, 11), radius=1))
    loss, gradient = float(loss), gradient.numpy()
    pixels = image.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(gradient.reshape(-1, 3), 2.0 * (laplacian @ pixels), rtol=1e-4, atol=1e-4)
    assert loss == pytest.approx(float(np.sum(pixels * (laplacian @ pixels))), rel=1e-4)
