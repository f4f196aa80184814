"""The L-BFGS optimiser on problems with known minima."""

import numpy as np
import pytest

from stylecore.errors import OptimisationError
from stylecore.optimise import HISTORY_SIZE, CurvatureHistory, minimise


def quadratic(target: np.ndarray, curvature: np.ndarray):
    """f(x) = sum c (x - t)^2, an ill-conditioned bowl with its minimum at t."""

    def objective(image: np.ndarray):
        difference = image - target
        return float(np.sum(curvature * difference**2)), (2 * curvature * difference).astype(np.float32), {}

    return objective


def test_reaches_the_minimum_of_an_ill_conditioned_quadratic():
    rng = np.random.default_rng(0)
    target = rng.uniform(0.1, 0.9, (6, 5, 3))
    curvature = rng.uniform(1.0, 100.0, target.shape)
    outcome = minimise(quadratic(target, curvature), np.full(target.shape, 0.5, np.float32),
                       iterations=200, tolerance=0.0)
    np.testing.assert_allclose(outcome.image, target, atol=1e-3)
    losses = [record["total"] for record in outcome.history]
    assert min(losses) < 1e-5 * losses[0]
    assert outcome.losses["total"] == min(losses)  # the record of the image returned


def test_minimum_outside_the_box_lands_on_its_face():
    target = np.array([-0.5, 0.3, 1.7], np.float32).reshape(1, 1, 3)
    outcome = minimise(quadratic(target, np.ones(target.shape)), np.full(target.shape, 0.5, np.float32),
                       iterations=50, tolerance=0.0)
    np.testing.assert_allclose(outcome.image.ravel(), [0.0, 0.3, 1.0], atol=1e-4)


def test_stops_early_at_the_tolerance_and_zero_iterations_return_the_start():
    target = np.full((4, 4, 3), 0.25)
    outcome = minimise(quadratic(target, np.ones(target.shape)), np.full(target.shape, 0.75, np.float32),
                       iterations=500, tolerance=1e-3)
    assert 1 < len(outcome.history) < 500
    start = np.full((2, 2, 3), 0.75, np.float32)
    unchanged = minimise(quadratic(target[:2, :2], np.ones((2, 2, 3))), start, iterations=0, tolerance=0.0)
    assert unchanged.history == [] and np.array_equal(unchanged.image, start)


def test_non_finite_loss_is_an_optimisation_error():
    def diverging(image: np.ndarray):
        return float("nan"), np.zeros_like(image), {}

    with pytest.raises(OptimisationError, match="non-finite"):
        minimise(diverging, np.zeros((2, 2, 3), np.float32), iterations=3, tolerance=0.0)


@pytest.mark.parametrize("pairs", [0, 3, HISTORY_SIZE + 5])
def test_direction_is_minus_the_bfgs_inverse_hessian_times_the_gradient(pairs):
    # The two-loop recursion equals the dense BFGS update of H0 = scale I over the kept pairs, oldest
    # first (Nocedal and Wright, eq. 7.19): H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T.
    rng = np.random.default_rng(pairs)
    size, scale = 6, 0.7
    history, kept = CurvatureHistory(size), []
    for _ in range(pairs):
        step = rng.normal(size=size).astype(np.float32)
        change = (step * rng.uniform(0.5, 2.0, size)).astype(np.float32)
        rho = 1.0 / float(change @ step)
        history.add(step, change, rho)
        kept = [*kept, (step, change, rho)][-HISTORY_SIZE:]
    inverse_hessian = scale * np.eye(size)
    for step, change, rho in kept:
        left = np.eye(size) - rho * np.outer(step, change)
        inverse_hessian = left @ inverse_hessian @ left.T + rho * np.outer(step, step)
    gradient = rng.normal(size=size).astype(np.float32)
    np.testing.assert_allclose(history.direction(gradient, scale), -inverse_hessian @ gradient, rtol=1e-4, atol=1e-5)
