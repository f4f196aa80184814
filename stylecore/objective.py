"""One stage's objective: L = alpha L_c + beta L_s+ + gamma L_tv + lambda L_m, with its gradient.

Everything that depends only on the content and style photos (content features, each segment's
style Gram, the positions each content segment covers on each layer's grid) is computed once when
the objective is built and kept as tensors on the device, with the matting Laplacian's stencil
(built on the host in the transfer's preparation, :func:`stylecore.transfer.photorealism_stencil`); each evaluation then runs the network once forward and backward and multiplies by the
Laplacian once, all in one compiled graph (:mod:`stylecore.optimise` runs it in its loop).

The graph is one per network, layer choice and Laplacian reach (:func:`_compiled_terms`), taking
the photos' targets as arguments of any shape: it is traced once and serves every pair and both
stages (stage 1 passes an empty stencil, and the graph's branch on it skips the product). Tracing
costs about 1.5 s, as much as ten iterations at 700 px; a graph per objective retraced it twice a
pair, and a graph per stage traced, optimised and compiled everything twice in a new process. The
number of segments is a tensor dimension too (:class:`LayerSegments`): each layer's segments are
looped over inside the graph (:func:`stylecore.losses.segments_style_loss`), so a pair with a
segment count not seen before traces nothing. (A graph per power-of-two bucket of segment counts traced each stage again for
every new bucket, about 5 s a time, and the optimiser's two programs with it.)

The style terms stay one gather per layer and one Gram per segment and layer. All segments of a
layer at once (one gather of every segment's positions, one scatter of their gradients) was
measured at the same CPU time at 500 px as a gather per segment; the Grams' multiply-adds, 1.7 G an
iteration against the network's 1.1 G forward and backward, are the cost, not the operations'
count; padding segments to one batch would multiply them. On a GPU the loop costs a few more
kernel launches per layer.

Normalisation (fixed per pair and stage, so that one set of weights suits every pair and size):
each content layer's term is divided by the mean square of the content photo's features on it;
each style layer's term by the squared Frobenius norm of the whole style photo's Gram on it;
L_tv and L_m by the pixel count H*W. Every term then starts near 1 or below whatever the
extractor's activation scale, the image size, or the number of segments.
"""

from __future__ import annotations

import functools
import typing

import numpy as np
import tensorflow as tf

from stylecore import fallbacks, losses
from stylecore.config import TransferConfig
from stylecore.architectures import LayerChoice
from stylecore.extractors import FeatureExtractor
from stylecore.laplacian import stencil_offsets
from stylecore.masks import PairDiagnostics, one_hot


class SegmentTarget(typing.NamedTuple):
    """One segment on one style layer, on the host: where it lies in the output, and the Gram it must match."""

    positions: np.ndarray
    """(P,) int32 flat indices of the layer's grid where the content mask is non-zero."""
    mask_values: np.ndarray
    """(P,) float32 content mask values in (0, 1] at those positions."""
    target_gram: tf.Tensor
    """(C, C) masked Gram of the style photo's matching segment."""
    area_weight: float
    """mean(M^content): the segment's share of the layer's grid."""


class LayerSegments(typing.NamedTuple):
    """All segments of one style layer as tensors whose segment count is a dimension, not a structure:
    one compiled graph serves any number of segments (:func:`stylecore.losses.segments_style_loss`).

    One gather serves every segment. Segments overlap only where area-resized masks share a boundary
    position, so most positions belong to one segment: the gather's gradient is then a gather too
    (:func:`_segment_rows`)."""

    positions: tf.Tensor
    """(R,) int32: the segments' positions, one segment after the other."""
    mask_values: tf.Tensor
    """(R,) float32: the content mask's values at ``positions``."""
    bounds: tf.Tensor
    """(K + 1,) int32: segment k holds rows ``bounds[k]`` to ``bounds[k + 1]`` of ``positions``."""
    target_grams: tf.Tensor
    """(K, C, C) float32: each segment's target Gram."""
    area_weights: tf.Tensor
    """(K,) float32: each segment's share of the grid, mean(M^content_k)."""
    first: tf.Tensor
    """(h w,) int32: per grid position, the row of ``positions`` holding it first, or R where none does."""
    repeats: tf.Tensor
    """(E,) int32: the rows of ``positions`` that hold a position an earlier row holds."""


def layer_segments(segments: typing.Sequence[SegmentTarget], grid_size: int, channels: int) -> LayerSegments:
    """The :class:`LayerSegments` of one layer's ``segments`` (any number, 0 included) on a grid of
    ``grid_size`` positions with ``channels`` channels."""
    positions = np.concatenate([np.zeros(0, np.int32), *(segment.positions for segment in segments)])
    rows = np.arange(len(positions), dtype=np.int32)
    first = np.full(grid_size, len(positions), np.int32)
    first[positions[::-1]] = rows[::-1]  # the last assignment wins: the earliest row
    bounds = np.cumsum([0, *(len(segment.positions) for segment in segments)], dtype=np.int32)
    grams = tf.stack([segment.target_gram for segment in segments]) if segments else tf.zeros((0, channels, channels))
    return LayerSegments(tf.constant(positions), tf.constant(np.concatenate(
        [np.zeros(0, np.float32), *(segment.mask_values for segment in segments)])), tf.constant(bounds), grams,
        tf.constant([segment.area_weight for segment in segments], tf.float32, shape=(len(segments),)),
        tf.constant(first), tf.constant(rows[first[positions] != rows]))


def _segment_rows(flat: tf.Tensor, rows: LayerSegments) -> tf.Tensor:
    """``flat``'s rows at ``rows.positions`` (R, C), whose gradient gathers rather than scatters.

    TensorFlow's gradient of a gather sums its rows into a zero tensor (UnsortedSegmentSum), 10 ms of
    an evaluation at 500 px on one thread; a gather through ``rows.first`` of the same rows, with
    the few repeated positions added after, takes about a third of that.
    """

    @tf.custom_gradient
    def gather(flat: tf.Tensor) -> tf.Tensor:
        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            dense = tf.gather(tf.concat([upstream, tf.zeros((1, tf.shape(upstream)[1]), upstream.dtype)], 0), rows.first)
            return tf.tensor_scatter_nd_add(dense, tf.gather(rows.positions, rows.repeats)[:, None],
                                            tf.gather(upstream, rows.repeats))

        return tf.gather(flat, rows.positions), gradient

    return gather(flat)


def resize_masks(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, K) indicator maps to (h, w, K) with area averaging, values in [0, 1].

    K may be 0: two masks that share no label pair no segment. TensorFlow's area resize fails on
    zero channels (``InvalidArgumentError ... ResizeArea``), so the empty stack is built directly.
    """
    if masks.shape[-1] == 0:
        return np.zeros((*shape, 0), np.float32)
    resized = tf.image.resize(masks, shape, method="area", antialias=True).numpy()
    return np.clip(resized, 0.0, 1.0)


def _segment_positions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = mask.ravel()
    positions = np.flatnonzero(flat > 0)
    return positions.astype(np.int32), flat[positions].astype(np.float32)


def _left_out(label: str, content_mask: np.ndarray, style_mask: np.ndarray | None) -> bool:
    """Whether segment ``label`` covers no position of a layer's grid, (h, w) masks, on either side.

    A segment can vanish from a stage's labels (a sliver resized to the coarse stage) or from a
    deep layer's grid; its Gram there would be 0 / 0 and the loss NaN. It drops out of that
    layer's term instead, said aloud (:mod:`stylecore.fallbacks`).
    """
    empty = [f"the {side} photo's {mask.shape[0]}x{mask.shape[1]}" for side, mask in
             (("content", content_mask), ("style", style_mask)) if mask is not None and not mask.any()]
    if empty:
        fallbacks.record(f"segment {label} covers no position of {' or '.join(empty)} feature grid: "
                         "left out of that layer's style term")
    return bool(empty)


def _global_gram_energy(features: tf.Tensor) -> float:
    flat = tf.reshape(features, (-1, features.shape[-1]))
    return float(tf.reduce_sum(tf.square(losses.gram_matrix(flat))))


def _first(batch: tf.Tensor) -> tf.Tensor:
    """The one image of a batch of one, (1, ...) to (...), as a reshape: indexing ``[0]`` is a strided slice
    whose gradient writes a zero-filled copy, 2.5 ms of an evaluation at 500 px for conv1 alone."""
    return tf.reshape(batch, tf.shape(batch)[1:])


TERM_NAMES = ("content", "style", "tv", "photorealism")
"""The unweighted terms every evaluation reports, in this order (photorealism is 0 without a Laplacian)."""


class StageObjective:
    """One stage's compiled objective for one pair: :attr:`function` applied to an image and :attr:`arguments`.

    Calling it evaluates an (H, W, 3) float image in [0, 1] once, on the host's side of the device:
    (loss, gradient, per-term losses), for a single evaluation outside the optimiser's loop.
    """

    term_names = TERM_NAMES

    def __init__(self, extractor: FeatureExtractor, layers: LayerChoice, *, content: np.ndarray,
                 style: np.ndarray, content_labels: np.ndarray, style_labels: np.ndarray,
                 pairing: PairDiagnostics, config: TransferConfig,
                 stencil: np.ndarray | None = None) -> None:
        network = extractor.with_layers([*layers.content_layers, *layers.style_layers])
        content_features = network(tf.constant(content[None]))
        style_features = network(tf.constant(style[None]))
        content_targets = tuple(content_features[name][0] for name in layers.content_layers)
        content_scales = [1.0 / max(float(tf.reduce_mean(tf.square(target))), 1e-12) for target in content_targets]
        style_scales = [weight / max(_global_gram_energy(style_features[name][0]), 1e-12)
                        for name, weight in zip(layers.style_layers, layers.style_layer_weights, strict=True)]
        segments = [self._segment_targets(content_features[name][0], style_features[name][0],
                                          content_labels, style_labels, pairing, config)
                    for name in layers.style_layers]
        packed = tuple(layer_segments(layer, int(np.prod(content_features[name].shape[1:3])),
                                      content_features[name].shape[-1])
                       for layer, name in zip(segments, layers.style_layers, strict=True))
        weights = [config.content_weight, config.style_weight, config.tv_weight, config.photorealism_weight]
        self.arguments = (content_targets, tf.constant(content_scales, tf.float32),
                          tf.constant(style_scales, tf.float32), packed, tf.constant(weights, tf.float32),
                          tf.constant(1.0 / (content.shape[0] * content.shape[1]), tf.float32),
                          tf.constant(stencil if stencil is not None else
                                      np.zeros((stencil_offsets(config.laplacian_radius), 0, 0), np.float32)))
        self.function = _compiled_terms(network, layers, int(self.arguments[-1].shape[0]))

    @staticmethod
    def _segment_targets(content_features: tf.Tensor, style_features: tf.Tensor,
                         content_labels: np.ndarray, style_labels: np.ndarray,
                         pairing: PairDiagnostics, config: TransferConfig) -> list[SegmentTarget]:
        fallback = pairing.content_only if config.content_only_policy == "global_style" else ()
        styled = (*pairing.matched, *fallback)
        if not styled:
            return []
        content_masks = resize_masks(one_hot(content_labels, styled), content_features.shape[:2])
        style_masks = resize_masks(one_hot(style_labels, pairing.matched), style_features.shape[:2])
        style_flat = tf.reshape(style_features, (-1, style_features.shape[-1]))
        targets = []
        for index, label in enumerate(styled):
            style_mask = style_masks[..., pairing.matched.index(label)] if label in pairing.matched else None
            if _left_out(label, content_masks[..., index], style_mask):
                continue
            if style_mask is None:
                target = losses.gram_matrix(style_flat)
            else:
                positions, values = _segment_positions(style_mask)
                target = losses.gram_matrix(tf.gather(style_flat, positions), tf.constant(values))
            positions, values = _segment_positions(content_masks[..., index])
            targets.append(SegmentTarget(positions, values, target, float(content_masks[..., index].mean())))
        return targets

    def __call__(self, image: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        """Loss (float), gradient (same shape as ``image``, float32) and the unweighted terms."""
        total, gradient, terms = self.function(tf.constant(image, tf.float32), *self.arguments)
        return float(total), gradient.numpy(), dict(zip(TERM_NAMES, terms.numpy().tolist(), strict=True))


@functools.lru_cache(maxsize=32)
def _compiled_terms(network: FeatureExtractor, layers: LayerChoice, stencil_size: int):
    """The compiled (total, gradient, terms) of one evaluation, for any pair.

    Arguments: the image (H, W, 3); the content targets (one per content layer); the content and
    style scales (the latter times w_l); per style layer, its :class:`LayerSegments` (any number of
    segments); the weights (alpha, beta, gamma, lambda); 1 / (H W); and the Laplacian's
    (stencil_size, H, W) stencil, or an empty one (stencil_size, 0, 0) for no photorealism term
    (stage 1). Terms: (4,) in the order of :data:`TERM_NAMES`, unweighted.
    """
    signature = (tf.TensorSpec((None, None, 3), tf.float32),
                 tuple(tf.TensorSpec(None, tf.float32) for _ in layers.content_layers),
                 tf.TensorSpec((len(layers.content_layers),), tf.float32),
                 tf.TensorSpec((len(layers.style_layers),), tf.float32),
                 tuple(LayerSegments(tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32),
                                     tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, None, None), tf.float32),
                                     tf.TensorSpec((None,), tf.float32), tf.TensorSpec((None,), tf.int32),
                                     tf.TensorSpec((None,), tf.int32)) for _ in layers.style_layers),
                 tf.TensorSpec((len(TERM_NAMES),), tf.float32), tf.TensorSpec((), tf.float32),
                 tf.TensorSpec((stencil_size, None, None), tf.float32))

    def network_terms(image, content_targets, content_scales, style_scales, segments):
        features = network(image[None])
        content = tf.add_n([content_scales[index] * losses.content_loss(_first(features[name]), target)
                            for index, (name, target) in enumerate(zip(layers.content_layers, content_targets,
                                                                        strict=True))])
        style = tf.add_n([losses.segments_style_loss(
            _segment_rows(tf.reshape(features[name], (-1, features[name].shape[-1])), layer), layer.mask_values,
            layer.bounds, layer.target_grams, style_scales[index] * layer.area_weights)
            for index, (name, layer) in enumerate(zip(layers.style_layers, segments, strict=True))])
        return content, style

    # Not inlined into the optimiser's loop: there oneDNN's rewrite of MaxPoolGrad, which needs its forward
    # MaxPool rewritten first, met the two in either order across the loop's cycle, and in about one
    # process in three left the plain kernel (30 ms of a 500 px iteration on one thread, against 1 ms).
    # Called as a function of its own, the graph has no cycle and the forward pass always comes first.
    @tf.function(input_signature=signature, autograph=False, experimental_attributes={"_noinline": True})
    def loss_and_gradient(image, content_targets, content_scales, style_scales, segments, weights,
                          pixel_scale, stencil):
        with tf.GradientTape() as tape:
            tape.watch(image)
            content, style = network_terms(image, content_targets, content_scales, style_scales, segments)
            tv = pixel_scale * losses.total_variation(image)
            total = weights[0] * content + weights[1] * style + weights[2] * tv
        gradient = tape.gradient(total, image)
        energy, energy_gradient = tf.cond(tf.size(stencil) > 0, lambda: losses.photorealism_loss(image, stencil),
                                          lambda: (tf.constant(0.0), tf.zeros_like(image)))
        photorealism = pixel_scale * energy
        total += weights[3] * photorealism
        gradient += (weights[3] * pixel_scale) * energy_gradient
        return total, gradient, tf.stack([content, style, tv, photorealism])

    return loss_and_gradient
