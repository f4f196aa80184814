"""L-BFGS over the pixels of the image, as in Gatys et al. and Luan et al., run on the device.

The variant is the one neural-style and Deep Photo Style Transfer ran (torch's ``optim.lbfgs``
with its defaults): the last ``HISTORY_SIZE`` curvature pairs, a fixed unit step (the first scaled
by the gradient's size) and no line search, so one iteration costs one loss-and-gradient
evaluation. SciPy's L-BFGS-B was measured at 3 to 5 times an evaluation per iteration at 700 px
(line-search evaluations and its O(n log n) Cauchy-point search over 1 M bounded variables;
``benchmarks/transfer_speed.py``). The box [0, 1] is kept by projecting each step; the lowest-loss
iterate is returned, so a rare uphill step without line search costs nothing.

Where it runs. Every iteration (the objective, the direction, the projected step, the best
iterate) is one TensorFlow program on the device TensorFlow places it on: a GPU when the process
has one. The host starts a stage with :meth:`DeviceMinimiser.minimise`, which runs blocks of
``block_size`` iterations as one compiled call each (a ``tf.while_loop``), and reads back only
each block's loss records (a few floats per iteration) and, at the end, the best image. Between
calls the iterate, gradient, direction and curvature history stay on the device in variables of
any shape, so one trace serves every pair. The objective is called from one place only, the loop's
body: TensorFlow instantiates and optimises a function once for each call site, at its first call
(about 2 s of CPU for the objective, in every new process), so the stage's start is the first pass of
its first block rather than a program of its own.

The direction is the compact form of Byrd, Nocedal and Schnabel (1994, eq. 3.1 for H), not the
two-loop recursion (Nocedal and Wright, algorithm 7.4): both give H g exactly, with H the BFGS
inverse Hessian of H0 = gamma I updated by the kept pairs, but the compact form reads the history
in two matrix products, ``[S; Y] [g, y]`` and ``[S; Y]^T c``, where the two-loop recursion makes
4m dependent passes over single vectors. The small (m x m) algebra between them is in float64.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import typing
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from stylecore.errors import OptimisationError

IterationCallback = Callable[[int, dict[str, float]], None]
HISTORY_SIZE = 10
"""Curvature pairs kept by L-BFGS. Reading the history is bound by memory bandwidth: 10 rather than 20
saved about 1.3 s a pair (10.8 s against 12.2 s, pairs 1, 4 and 20 at the defaults), and the 60
pairs' medians did not worsen (style distance 3.98 against 4.02, SSIM 0.710 against 0.708, energy
4.1e-5 against 4.2e-5, 700 px outputs)."""
BLOCK_SIZE = 20
"""Iterations per compiled call: the host sees the losses (for progress) once per block. A round trip
costs well under a millisecond, so the figure only bounds how stale progress is."""
_CURVATURE_FLOOR = 1e-10
"""A step whose y.s is below this carries no usable curvature and is not kept (torch's rule)."""


class CompiledObjective(typing.Protocol):
    """What :func:`minimise` needs of an objective: a compiled function and its per-problem arguments."""

    function: tf.types.experimental.PolymorphicFunction
    """``function(image, *arguments) -> (total, gradient, terms)``: image (H, W, 3) float32, total (),
    gradient (H, W, 3), terms (T,) float32, the unweighted terms named by ``term_names``. It has an
    ``input_signature`` of any image size."""
    arguments: tuple
    term_names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class StageOutcome:
    """The optimised image and one loss record per completed iteration."""

    image: np.ndarray
    """(H, W, 3) float32 in [0, 1]: the iterate with the lowest loss."""
    history: list[dict[str, float]]
    """Per iteration: "total" and each unweighted term, at that iteration's new iterate."""
    losses: dict[str, float] | None
    """The record of ``image`` itself; ``None`` when no iteration ran."""
    device_seconds: float = 0.0
    """Wall time inside the compiled calls, each from its start to its results on the host: the stage's
    time less this is the host's share (Python, callbacks, copies), which a GPU would wait through."""


def minimise(objective: CompiledObjective, initial: np.ndarray, *, iterations: int, tolerance: float,
             on_iteration: IterationCallback | None = None, block_size: int = BLOCK_SIZE) -> StageOutcome:
    """Run up to ``iterations`` L-BFGS steps of ``objective`` from ``initial`` (H, W, 3) within [0, 1].

    Stops early when an iteration changes the loss by less than ``tolerance`` relative to its size,
    or when a step leaves the image unchanged. Raises :class:`OptimisationError` as soon as the
    loss or gradient is not finite. ``on_iteration(iteration, record)`` is called for every
    iteration, after the block holding it has run.
    """
    image = np.clip(initial, 0.0, 1.0).astype(np.float32)
    if iterations == 0:
        return StageOutcome(image, [], None)
    minimiser = _device_minimiser(objective.function)
    return minimiser.minimise(objective, image, iterations=iterations, tolerance=tolerance,
                              on_iteration=on_iteration, block_size=block_size)


_minimisers: dict[tf.types.experimental.PolymorphicFunction, DeviceMinimiser] = {}
_minimisers_lock = threading.Lock()


def _device_minimiser(function: tf.types.experimental.PolymorphicFunction) -> DeviceMinimiser:
    """One minimiser (its variables and traces) per compiled objective function, reused by every pair:
    one per network, layer choice and Laplacian reach, serving both stages (:mod:`stylecore.objective`)."""
    with _minimisers_lock:
        if function not in _minimisers:
            _minimisers[function] = DeviceMinimiser(function)
        return _minimisers[function]


def trace_count() -> int:
    """How many times this process has traced the objectives it optimised and the optimiser's programs.

    Each is traced once, at its first use; a count that grows over a sequence of pairs is a defect (a
    retrace), which the tests and ``benchmarks/first_rows.py`` look for."""
    with _minimisers_lock:
        minimisers = list(_minimisers.values())
    return sum(program.experimental_get_tracing_count() for minimiser in minimisers
               for program in (minimiser._function, minimiser._reset, minimiser._block, minimiser._write_pair))


class DeviceMinimiser:
    """L-BFGS of one compiled objective function, its state held on the device between calls.

    Not re-entrant: a lock makes concurrent stages on the same function take turns (an actor
    optimises one row at a time; its host threads only prepare and finish rows).
    """

    def __init__(self, function: tf.types.experimental.PolymorphicFunction) -> None:
        self._function = function
        self._lock = threading.Lock()

        def state(dtype: tf.DType) -> tf.Variable:
            return tf.Variable(tf.zeros((0,), dtype), shape=tf.TensorShape(None), trainable=False)

        self._image, self._gradient, self._direction, self._best_image = (state(tf.float32) for _ in range(4))
        self._history = state(tf.float32)
        """(2m, n): rows 0..m-1 the steps s, rows m..2m-1 the gradient changes y, in ring order."""
        self._products = state(tf.float64)
        """(2, m, m): S^T Y (entry i, j: s_i . y_j, valid for i <= j in time) and Y^T Y, ring order."""
        self._loss, self._step_size, self._scale, self._best_loss = (state(tf.float32) for _ in range(4))
        self._best_terms = state(tf.float32)
        self._count = state(tf.int32)
        arguments = tuple(function.input_signature[1:])
        self._write_pair = tf.function(self._write_pair_in_place, jit_compile=True, autograph=False,
                                       input_signature=(tf.TensorSpec((), tf.int32), tf.TensorSpec((2, None), tf.float32)))
        self._reset = tf.function(self._reset_stage, autograph=False,
                                  input_signature=(function.input_signature[0], tf.TensorSpec((), tf.int32)))
        self._block = tf.function(self._run_block, autograph=False, input_signature=(
            tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.bool), *arguments))

    def minimise(self, objective: CompiledObjective, image: np.ndarray, *, iterations: int, tolerance: float,
                 on_iteration: IterationCallback | None, block_size: int) -> StageOutcome:
        with self._lock:
            try:
                return self._run_stage(objective, image, iterations=iterations, tolerance=tolerance,
                                       on_iteration=on_iteration, block_size=block_size)
            finally:
                self._release()

    def _run_stage(self, objective: CompiledObjective, image: np.ndarray, *, iterations: int, tolerance: float,
                   on_iteration: IterationCallback | None, block_size: int) -> StageOutcome:
        names = ("total", *objective.term_names)
        history: list[dict[str, float]] = []
        started = time.perf_counter()
        self._reset(tf.constant(image), len(names) - 1)
        # The start is the first block's first pass (module docstring).
        records, done = self._block(1 + min(block_size, iterations), tolerance, True, *objective.arguments)
        start, *records = records.numpy().tolist()
        device_seconds = time.perf_counter() - started
        _raise_unless_finite(start[0], history)
        while True:
            for record in records:
                _raise_unless_finite(record[0], history)
                history.append(dict(zip(names, record, strict=True)))
                if on_iteration is not None:
                    on_iteration(len(history), history[-1])
            if bool(done) or len(history) >= iterations:
                break
            started = time.perf_counter()
            records, done = self._block(min(block_size, iterations - len(history)), tolerance, False,
                                        *objective.arguments)
            records = records.numpy().tolist()
            device_seconds += time.perf_counter() - started
        # The first of equal losses, as the device's strict comparison kept it; the start counts.
        best = min([dict(zip(names, start, strict=True)), *history], key=lambda record: record["total"])
        started = time.perf_counter()
        result = self._best_image.numpy()
        return StageOutcome(result, history, best, device_seconds + time.perf_counter() - started)

    def _release(self) -> None:
        """Empty the state, so that a process holding minimisers for several structures holds no images:
        the history alone is 2m image-sized vectors (40 MB at 500 px)."""
        for variable in (self._image, self._gradient, self._direction, self._best_image, self._history):
            variable.assign(tf.zeros((0,), tf.float32))

    def _reset_stage(self, image: tf.Tensor, term_count: tf.Tensor) -> None:
        """Set the state for a stage from ``image``: the iterate, an empty history of its size, a zero
        direction and step, so that the first block's first pass evaluates the start (:meth:`_run_block`)."""
        size = tf.size(image)
        self._image.assign(image)
        self._best_image.assign(image)
        self._best_loss.assign(tf.constant(np.inf, tf.float32))
        self._best_terms.assign(tf.zeros((term_count,)))
        self._loss.assign(tf.constant(np.inf, tf.float32))
        self._gradient.assign(tf.zeros_like(image))
        self._direction.assign(tf.zeros_like(image))
        self._step_size.assign(tf.constant(0.0))
        self._scale.assign(tf.constant(1.0))
        self._count.assign(tf.constant(0))
        self._history.assign(tf.zeros((2 * HISTORY_SIZE, size)))
        self._products.assign(tf.zeros((2, HISTORY_SIZE, HISTORY_SIZE), tf.float64))

    def _run_block(self, iterations: tf.Tensor, tolerance: tf.Tensor, starting: tf.Tensor,
                   *arguments: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Up to ``iterations`` passes: their records (k, 1 + T) and whether the stage is done.

        When ``starting`` (after :meth:`_reset_stage`), the first pass evaluates the start itself: its step
        is zero, so it keeps no curvature pair, ends nothing by convergence, and sets the first direction,
        -g, and torch's first step size. A non-finite loss or gradient ends the stage; its record, the
        last, has a NaN total.
        """
        records = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

        def keep_going(index, done, records, image, loss, gradient, direction, step_size, scale, count, best):
            return (index < iterations) & ~done

        def iterate(index, done, records, image, loss, gradient, direction, step_size, scale, count, best):
            first = starting & tf.equal(index, 0)
            candidate = tf.clip_by_value(image + step_size * direction, 0.0, 1.0)
            new_loss, new_gradient, terms = self._function(candidate, *arguments)
            finite = _finite(new_loss, new_gradient)
            records = records.write(index, _record(finite, new_loss, terms))
            # The best iterate rides in the loop as tensors, written to its variables once a block:
            # an assignment per improving iteration cost 30 ms of an iteration at 500 px on one thread.
            best = tf.cond(finite & (new_loss < best[1]), lambda: (candidate, new_loss, terms), lambda: best)
            step = tf.reshape(candidate - image, (-1,))
            change = tf.reshape(new_gradient - gradient, (-1,))
            curvature = tf.reduce_sum(change * step)
            kept = finite & (curvature > _CURVATURE_FLOOR)
            scale = tf.where(kept, curvature / tf.reduce_sum(change * change), scale)
            count = self._remember(kept, count, step, change)
            converged = tf.abs(new_loss - loss) <= tolerance * tf.reduce_max(
                tf.stack([tf.abs(loss), tf.abs(new_loss), 1e-30]))
            done = ~finite | (~first & (converged | ~tf.reduce_any(tf.not_equal(step, 0.0))))
            direction = self._direction_of(tf.reshape(new_gradient, (-1,)), change, kept, count, scale)
            step_size = tf.cond(
                first, lambda: tf.minimum(1.0, 1.0 / tf.maximum(tf.reduce_sum(tf.abs(new_gradient)), 1e-12)),
                lambda: tf.constant(1.0))
            return (index + 1, done, records, candidate, new_loss, new_gradient,
                    tf.reshape(direction, tf.shape(image)), step_size, scale, count, best)

        state = (tf.constant(0), tf.constant(False), records, _shaped(self._image, (None, None, 3)),
                 _shaped(self._loss, ()), _shaped(self._gradient, (None, None, 3)),
                 _shaped(self._direction, (None, None, 3)), _shaped(self._step_size, ()), _shaped(self._scale, ()),
                 _shaped(self._count, ()), (_shaped(self._best_image, (None, None, 3)), _shaped(self._best_loss, ()),
                                            _shaped(self._best_terms, (None,))))
        _, done, records, *final, best = tf.while_loop(keep_going, iterate, state, parallel_iterations=1)
        for variable, value in zip((self._image, self._loss, self._gradient, self._direction, self._step_size,
                                    self._scale, self._count, self._best_image, self._best_loss, self._best_terms),
                                   (*final, *best), strict=True):
            variable.assign(value)
        return tf.reshape(records.stack(), (-1, tf.shape(self._best_terms)[0] + 1)), done

    def _remember(self, kept: tf.Tensor, count: tf.Tensor, step: tf.Tensor, change: tf.Tensor) -> tf.Tensor:
        """Write the pair (s, y) into the oldest slot when ``kept``; the new pair count."""
        tf.cond(kept, lambda: self._write_pair(count % HISTORY_SIZE, tf.stack([step, change])), lambda: None)
        return count + tf.cast(kept, tf.int32)

    def _write_pair_in_place(self, slot: tf.Tensor, pair: tf.Tensor) -> None:
        """History rows ``slot`` and m + ``slot`` := ``pair`` (2, n), compiled by XLA (once per n, about 45 ms).

        XLA updates the variable's buffer in place. TensorFlow's own scatter into a variable puts the
        variable in copy-on-read mode, after which every read copied the whole history: 4 ms an
        iteration at 500 px, for 40 MB that the loop then reads twice more."""
        self._history.scatter_nd_update([[slot], [HISTORY_SIZE + slot]], pair)

    def _direction_of(self, gradient: tf.Tensor, change: tf.Tensor, kept: tf.Tensor, count: tf.Tensor,
                      scale: tf.Tensor) -> tf.Tensor:
        """-H g for the flat gradient, updating S^T Y and Y^T Y with the newest pair when ``kept``."""
        history = self._history.value()
        # (2, n) x (n, 2m) rather than (2m, n) x (n, 2): oneDNN takes 2 ms of CPU for it, not 10 (n = 0.5 M).
        projections = tf.transpose(tf.cast(tf.matmul(tf.stack([gradient, change]), history, transpose_b=True),
                                           tf.float64))
        slot = (count - 1) % HISTORY_SIZE
        products = tf.cond(kept, lambda: _with_newest(self._products.value(), projections[:, 1], slot),
                           lambda: self._products.value())
        self._products.assign(products)
        coefficients = tf.cond(count > 0, lambda: compact_coefficients(
            projections[:HISTORY_SIZE, 0], projections[HISTORY_SIZE:, 0], products, count, tf.cast(scale, tf.float64)),
            lambda: tf.zeros((2 * HISTORY_SIZE,), tf.float64))
        correction = tf.linalg.matvec(history, tf.cast(coefficients, tf.float32), transpose_a=True)
        return -(scale * gradient + correction)


def _with_newest(products: tf.Tensor, projections: tf.Tensor, slot: tf.Tensor) -> tf.Tensor:
    """S^T Y's column ``slot`` and Y^T Y's row and column ``slot`` from [S; Y] y_new (ring order)."""
    steps_dot_change, changes_dot_change = projections[:HISTORY_SIZE], projections[HISTORY_SIZE:]
    rows = tf.range(HISTORY_SIZE)
    column = tf.stack([tf.zeros_like(rows), rows, tf.fill([HISTORY_SIZE], slot)], 1)
    row = tf.stack([tf.ones_like(rows), tf.fill([HISTORY_SIZE], slot), rows], 1)
    column_of_yty = tf.stack([tf.ones_like(rows), rows, tf.fill([HISTORY_SIZE], slot)], 1)
    return tf.tensor_scatter_nd_update(products, tf.concat([column, row, column_of_yty], 0),
                                       tf.concat([steps_dot_change, changes_dot_change, changes_dot_change], 0))


def compact_coefficients(steps_dot_gradient: tf.Tensor, changes_dot_gradient: tf.Tensor, products: tf.Tensor,
                         count: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """The (2m,) weights c of the rows of [S; Y] in H g = gamma g + [S; Y]^T c (compact form).

    With the kept pairs in time order, a = S^T g, b = Y^T g, R the upper triangle of S^T Y and D
    its diagonal (Byrd, Nocedal and Schnabel 1994, eq. 3.1):

        q = -R^-1 a,    p = R^-T ((D + gamma Y^T Y) R^-1 a - gamma b),    c = [p; gamma q].

    All arguments float64 in ring order; slots not yet filled get weight 0.
    """
    kept = tf.minimum(count, HISTORY_SIZE)
    order = (count - kept + tf.range(kept)) % HISTORY_SIZE

    def in_time_order(matrix: tf.Tensor) -> tf.Tensor:
        return tf.gather(tf.gather(matrix, order), order, axis=1)

    steps_dot_changes, changes_dot_changes = in_time_order(products[0]), in_time_order(products[1])
    upper = tf.linalg.band_part(steps_dot_changes, 0, -1)
    a = tf.gather(steps_dot_gradient, order)[:, None]
    b = tf.gather(changes_dot_gradient, order)[:, None]
    r_inverse_a = tf.linalg.triangular_solve(upper, a, lower=False)
    inner = (tf.linalg.diag_part(steps_dot_changes)[:, None] * r_inverse_a
             + scale * tf.matmul(changes_dot_changes, r_inverse_a) - scale * b)
    p = tf.linalg.triangular_solve(upper, inner, lower=False, adjoint=True)
    return tf.scatter_nd(tf.concat([order, order + HISTORY_SIZE], 0)[:, None],
                         tf.concat([p[:, 0], -scale * r_inverse_a[:, 0]], 0), [2 * HISTORY_SIZE])


def _shaped(variable: tf.Variable, shape: tuple[int | None, ...]) -> tf.Tensor:
    """The value of a state variable (declared of any shape, so one trace serves every size) with its known shape."""
    return tf.ensure_shape(variable.value(), shape)


def _finite(loss: tf.Tensor, gradient: tf.Tensor) -> tf.Tensor:
    return tf.math.is_finite(loss) & tf.reduce_all(tf.math.is_finite(gradient))


def _record(finite: tf.Tensor, loss: tf.Tensor, terms: tf.Tensor) -> tf.Tensor:
    """(1 + T,): the total (NaN unless ``finite``: loss and gradient finite) and the terms."""
    total = tf.where(finite, loss, tf.constant(float("nan")))
    return tf.concat([[total], terms], 0)


def _raise_unless_finite(total: float, history: Sequence[dict[str, float]]) -> None:
    if not np.isfinite(total):
        raise OptimisationError(f"the loss became non-finite (or its gradient did) after {len(history)} "
                                "iterations; lower the loss weights or the image size.")
