"""The device L-BFGS: known minima, the compact direction against dense BFGS, agreement with the
host loop it replaced (a plain NumPy two-loop recursion, kept here as the reference), and the proof
that no image-sized tensor crosses to the host inside a stage."""

import contextlib

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops

from stylecore.architectures import layer_choice
from stylecore.config import TransferConfig
from stylecore.errors import OptimisationError
from stylecore.extractors import load_extractor
from stylecore.objective import StageObjective
from stylecore.optimise import _CURVATURE_FLOOR, HISTORY_SIZE, compact_coefficients, minimise
from stylecore.segment_matching import automatic_pair
from stylecore.transfer import photorealism_stencil

SPEC = tf.TensorSpec((None, None, 3), tf.float32)


@tf.function(input_signature=(SPEC, SPEC, SPEC))
def _quadratic(image, target, curvature):
    difference = image - target
    loss = tf.reduce_sum(curvature * difference**2)
    return loss, 2 * curvature * difference, tf.stack([loss])


@tf.function(input_signature=(SPEC,))
def _diverging(image):
    return tf.constant(float("nan")), tf.zeros_like(image), tf.zeros((1,))


class Quadratic:
    """f(x) = sum c (x - t)^2, an ill-conditioned bowl with its minimum at t, as a compiled objective."""

    term_names = ("distance",)

    def __init__(self, target: np.ndarray, curvature: np.ndarray) -> None:
        self.function = _quadratic  # an instance attribute: a tf.function on the class would bind as a method
        self.arguments = (tf.constant(target, tf.float32), tf.constant(curvature, tf.float32))


class Diverging:
    term_names = ("distance",)
    arguments = ()

    def __init__(self) -> None:
        self.function = _diverging


def reference_minimise(evaluate, initial, iterations, tolerance):
    """The host loop this project ran before its device loop, in plain NumPy (two-loop recursion)."""
    image = np.clip(initial, 0.0, 1.0).astype(np.float32).ravel()
    loss, gradient = evaluate(image)
    best_loss, best_image, history, pairs = loss, image, [], []
    direction, step_size, scale = -gradient, min(1.0, 1.0 / max(float(np.abs(gradient).sum()), 1e-12)), 1.0
    for _ in range(iterations):
        candidate = np.clip(image + step_size * direction, 0.0, 1.0)
        new_loss, new_gradient = evaluate(candidate)
        history.append(new_loss)
        if new_loss < best_loss:
            best_loss, best_image = new_loss, candidate
        step, change = candidate - image, new_gradient - gradient
        curvature = float(change @ step)
        if curvature > _CURVATURE_FLOOR:
            pairs = [*pairs, (step, change, 1.0 / curvature)][-HISTORY_SIZE:]
            scale = curvature / float(change @ change)
        converged = abs(new_loss - loss) <= tolerance * max(abs(loss), abs(new_loss), 1e-30)
        image, loss, gradient = candidate, new_loss, new_gradient
        if converged or not step.any():
            break
        direction, alphas = -gradient.astype(np.float64), []
        for step_i, change_i, rho in reversed(pairs):
            alphas.append(rho * (step_i @ direction))
            direction -= alphas[-1] * change_i
        direction *= scale
        for (step_i, change_i, rho), alpha in zip(pairs, reversed(alphas), strict=True):
            direction += (alpha - rho * (change_i @ direction)) * step_i
        direction, step_size = direction.astype(np.float32), 1.0
    return best_image, history


def test_reaches_the_minimum_of_an_ill_conditioned_quadratic():
    rng = np.random.default_rng(0)
    target = rng.uniform(0.1, 0.9, (6, 5, 3))
    curvature = rng.uniform(1.0, 100.0, target.shape)
    outcome = minimise(Quadratic(target, curvature), np.full(target.shape, 0.5, np.float32),
                       iterations=200, tolerance=0.0)
    np.testing.assert_allclose(outcome.image, target, atol=1e-3)
    losses = [record["total"] for record in outcome.history]
    assert min(losses) < 1e-5 * losses[0]
    assert outcome.losses["total"] == min(losses)  # the record of the image returned


def test_minimum_outside_the_box_lands_on_its_face():
    target = np.array([-0.5, 0.3, 1.7], np.float32).reshape(1, 1, 3)
    outcome = minimise(Quadratic(target, np.ones(target.shape)), np.full(target.shape, 0.5, np.float32),
                       iterations=50, tolerance=0.0)
    np.testing.assert_allclose(outcome.image.ravel(), [0.0, 0.3, 1.0], atol=1e-4)


def test_stops_early_at_the_tolerance_and_zero_iterations_return_the_start():
    target = np.full((4, 4, 3), 0.25)
    outcome = minimise(Quadratic(target, np.ones(target.shape)), np.full(target.shape, 0.75, np.float32),
                       iterations=500, tolerance=1e-3)
    assert 1 < len(outcome.history) < 500
    start = np.full((2, 2, 3), 0.75, np.float32)
    unchanged = minimise(Quadratic(target[:2, :2], np.ones((2, 2, 3))), start, iterations=0, tolerance=0.0)
    assert unchanged.history == [] and unchanged.losses is None and np.array_equal(unchanged.image, start)


def test_when_no_step_improves_the_start_is_returned_with_its_own_record():
    # Starting at the minimum: every step moves away (or nowhere), so the best iterate is the start.
    target = np.full((3, 3, 3), 0.5, np.float32)
    outcome = minimise(Quadratic(target, np.ones(target.shape)), target, iterations=5, tolerance=0.0)
    np.testing.assert_array_equal(outcome.image, target)
    assert outcome.losses == {"total": 0.0, "distance": 0.0}


def test_non_finite_loss_is_an_optimisation_error():
    with pytest.raises(OptimisationError, match="non-finite"):
        minimise(Diverging(), np.zeros((2, 2, 3), np.float32), iterations=3, tolerance=0.0)


@pytest.mark.parametrize("pairs", [1, 3, HISTORY_SIZE + 5])
def test_compact_direction_is_minus_the_bfgs_inverse_hessian_times_the_gradient(pairs):
    # H g by the compact form equals the dense BFGS update of H0 = scale I over the kept pairs, oldest
    # first (Nocedal and Wright, eq. 7.19): H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T.
    rng = np.random.default_rng(pairs)
    size, scale = 6, 0.7
    steps, changes = np.zeros((HISTORY_SIZE, size)), np.zeros((HISTORY_SIZE, size))
    kept = []
    for count in range(pairs):
        step = rng.normal(size=size)
        change = step * rng.uniform(0.5, 2.0, size)
        steps[count % HISTORY_SIZE], changes[count % HISTORY_SIZE] = step, change
        kept = [*kept, (step, change, 1.0 / (change @ step))][-HISTORY_SIZE:]
    inverse_hessian = scale * np.eye(size)
    for step, change, rho in kept:
        left = np.eye(size) - rho * np.outer(step, change)
        inverse_hessian = left @ inverse_hessian @ left.T + rho * np.outer(step, step)
    gradient = rng.normal(size=size)
    coefficients = compact_coefficients(tf.constant(steps @ gradient), tf.constant(changes @ gradient),
                                        tf.constant(np.stack([steps @ changes.T, changes @ changes.T])),
                                        tf.constant(pairs), tf.constant(scale, tf.float64)).numpy()
    direction = scale * gradient + np.concatenate([steps, changes]).T @ coefficients
    np.testing.assert_allclose(direction, inverse_hessian @ gradient, rtol=1e-8, atol=1e-10)


@pytest.fixture(scope="module")
def extractors():
    return {"squeezenet": load_extractor("squeezenet"), "vgg19": load_extractor("vgg19", weights="random")}


def stage_objective(pair, extractor, *, photorealism: bool) -> StageObjective:
    stencil = photorealism_stencil(pair.content, TransferConfig()) if photorealism else None
    return StageObjective(extractor, layer_choice(extractor.name, None, None, None), content=pair.content,
                          style=pair.style, content_labels=pair.content_labels, style_labels=pair.style_labels,
                          pairing=pair.diagnostics, config=TransferConfig(), stencil=stencil)


@pytest.mark.parametrize(("extractor", "number", "segments", "photorealism"),
                         [("squeezenet", 4, None, True), ("squeezenet", 4, None, False),
                          ("vgg19", 4, None, True), ("squeezenet", 20, 1, True), ("squeezenet", 20, 8, False)])
def test_iterates_follow_the_host_loop_it_replaced(example_pair, extractors, extractor, number, segments,
                                                   photorealism):
    pair = example_pair(number, 48)
    if segments is not None:  # 1 or 8 segments, matched automatically, whatever the hand masks hold
        pair = automatic_pair(pair, extractors["squeezenet"], segments=segments, min_segment_fraction=0.0, seed=0)
    objective = stage_objective(pair, extractors[extractor], photorealism=photorealism)

    def evaluate(flat):
        loss, gradient, _ = objective(flat.reshape(pair.content.shape))
        return loss, gradient.ravel()

    expected_image, expected_losses = reference_minimise(evaluate, pair.content, 12, 0.0)
    outcome = minimise(objective, pair.content, iterations=12, tolerance=0.0, block_size=5)
    totals = [record["total"] for record in outcome.history]
    np.testing.assert_allclose(totals, expected_losses, rtol=2e-3)
    np.testing.assert_allclose(outcome.image.ravel(), expected_image, atol=2e-3)
    assert outcome.losses["total"] == min(totals) and 0.0 <= outcome.image.min() <= outcome.image.max() <= 1.0
    assert (outcome.losses["photorealism"] > 0) == photorealism


def test_a_stage_of_one_iteration_and_a_block_boundary_at_every_iteration(example_pair, extractors):
    pair = example_pair(4, 48)
    objective = stage_objective(pair, extractors["squeezenet"], photorealism=True)
    whole = minimise(objective, pair.content, iterations=7, tolerance=0.0)
    split = minimise(objective, pair.content, iterations=7, tolerance=0.0, block_size=1)
    assert [record["total"] for record in split.history] == pytest.approx(
        [record["total"] for record in whole.history], rel=1e-5)
    one = minimise(objective, pair.content, iterations=1, tolerance=0.0)
    assert len(one.history) == 1 and one.history[0]["total"] == pytest.approx(whole.history[0]["total"], rel=1e-6)


@contextlib.contextmanager
def host_copies():
    """Record the element count of every tensor copied from TensorFlow to NumPy meanwhile."""
    sizes = []
    original = ops._EagerTensorBase._numpy

    def counted(tensor):
        sizes.append(tensor.shape.num_elements())
        return original(tensor)

    ops._EagerTensorBase._numpy = counted
    try:
        yield sizes
    finally:
        ops._EagerTensorBase._numpy = original


def test_no_image_sized_tensor_crosses_to_the_host_inside_a_stage(example_pair, extractors):
    # The host loop this replaced copied the gradient to NumPy at every iteration; now the stage
    # sends back its loss records (a few floats per iteration) and, once, the best image.
    pair = example_pair(4, 64)
    objective = stage_objective(pair, extractors["squeezenet"], photorealism=True)
    minimise(objective, pair.content, iterations=2, tolerance=0.0)  # traced and compiled before counting
    counts = {}
    for iterations in (10, 40):
        with host_copies() as sizes:
            outcome = minimise(objective, pair.content, iterations=iterations, tolerance=0.0, block_size=20)
        assert len(outcome.history) == iterations
        counts[iterations] = sizes
    image_size = pair.content.size
    for sizes in counts.values():
        assert sorted(size for size in sizes if size >= image_size) == [image_size]  # the result, once
        # one block's records, the first block's with the start's before them
        assert max(size for size in sizes if size < image_size) <= (1 + 20) * 5
    assert len(counts[40]) - len(counts[10]) <= 2  # one more block, not one copy per iteration
