"""L-BFGS over the pixels of the image, as in Gatys et al. and Luan et al.

SciPy's L-BFGS-B runs the iterations (the loop stays in Python, the loss and gradient in one
compiled TensorFlow call, as in keras-io's style transfer example). Its box constraints keep
every pixel in [0, 1], so no clipping or rescaling of the result is ever needed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import scipy.optimize

from stylecore.errors import OptimisationError

Objective = Callable[[np.ndarray], tuple[float, np.ndarray, dict[str, float]]]
IterationCallback = Callable[[int, dict[str, float]], None]


@dataclasses.dataclass(frozen=True)
class StageOutcome:
    """The optimised image and one loss record per completed iteration."""

    image: np.ndarray
    """(H, W, 3) float32 in [0, 1]."""
    history: list[dict[str, float]]
    """Per iteration: "total" and each unweighted term, at the iterate the step accepted."""


def minimise(objective: Objective, initial: np.ndarray, *, iterations: int, tolerance: float,
             on_iteration: IterationCallback | None = None) -> StageOutcome:
    """Run up to ``iterations`` L-BFGS-B steps from ``initial`` (H, W, 3) within [0, 1].

    Stops early when a step lowers the loss by less than ``tolerance`` relative to its size.
    Raises :class:`OptimisationError` as soon as the loss or gradient is not finite.
    """
    shape = initial.shape
    last: dict[str, float] = {}
    history: list[dict[str, float]] = []

    def evaluate(flat: np.ndarray) -> tuple[float, np.ndarray]:
        loss, gradient, terms = objective(flat.reshape(shape).astype(np.float32))
        if not math.isfinite(loss) or not np.isfinite(gradient).all():
            raise OptimisationError(f"the loss became non-finite ({loss}) after {len(history)} "
                                    "iterations; lower the loss weights or the image size.")
        last.clear()
        last.update(total=loss, **terms)
        return loss, gradient.ravel()

    def record(_: scipy.optimize.OptimizeResult) -> None:
        history.append(dict(last))
        if on_iteration is not None:
            on_iteration(len(history), dict(last))

    start = np.clip(initial, 0.0, 1.0).astype(np.float64).ravel()
    if iterations == 0:
        return StageOutcome(start.reshape(shape).astype(np.float32), history)
    result = scipy.optimize.minimize(
        evaluate, start, jac=True, method="L-BFGS-B", bounds=scipy.optimize.Bounds(0.0, 1.0),
        callback=record,
        options={"maxiter": iterations, "maxfun": 2 * iterations + 20, "ftol": tolerance,
                 "gtol": 0.0, "maxcor": 20})
    return StageOutcome(result.x.reshape(shape).astype(np.float32), history)
