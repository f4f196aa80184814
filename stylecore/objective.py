"""One stage's objective: L = alpha L_c + beta L_s+ + gamma L_tv + lambda L_m, with its gradient.

Everything that depends only on the content and style photos (content features, each segment's
style Gram, the positions each content segment covers on each layer's grid) is computed once
when the objective is built; each call then runs the network once forward and backward.

The network's terms are one compiled graph per network, layer choice and number of segment
slots (:func:`_compiled_terms`), taking the photos' targets as arguments of any shape: it is traced
once and serves every pair and both stages. Tracing costs about 1.5 s, as much as ten iterations
at 700 px; a graph per objective retraced it twice a pair. The slots are the segment count rounded
up to a power of two, the spare ones filled with a segment of weight 0, so that a batch of pairs
with 1 to 8 segments needs at most four traces.

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
import scipy.sparse
import tensorflow as tf

from stylecore import fallbacks, losses
from stylecore.config import TransferConfig
from stylecore.architectures import LayerChoice
from stylecore.extractors import FeatureExtractor
from stylecore.laplacian import laplacian_stencil
from stylecore.masks import PairDiagnostics, one_hot


class SegmentTarget(typing.NamedTuple):
    """One segment on one style layer: where it lies in the output, and the Gram it must match.

    A named tuple of tensors, so that the compiled graph takes it as an argument."""

    positions: tf.Tensor
    """(P,) int32 flat indices of the layer's grid where the content mask is non-zero."""
    mask_values: tf.Tensor
    """(P,) float32 content mask values in (0, 1] at those positions."""
    target_gram: tf.Tensor
    """(C, C) masked Gram of the style photo's matching segment."""
    area_weight: tf.Tensor
    """() float32 mean(M^content): the segment's share of the layer's grid."""


@functools.cache
def _empty_slot() -> SegmentTarget:
    """A spare segment slot: one position, a 1 x 1 target that broadcasts against any Gram, area weight 0.

    Made on first use, not at import: a tensor made at import would fix TensorFlow's thread pools
    before a caller could size them (:mod:`ray_jobs.devices`)."""
    return SegmentTarget(tf.constant([0], tf.int32), tf.constant([1.0]), tf.zeros((1, 1)), tf.constant(0.0))


def resize_masks(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, K) indicator maps to (h, w, K) with area averaging, values in [0, 1].

    K may be 0: two masks that share no label pair no segment. TensorFlow's area resize fails on
    zero channels (``InvalidArgumentError ... ResizeArea``), so the empty stack is built directly.
    """
    if masks.shape[-1] == 0:
        return np.zeros((*shape, 0), np.float32)
    resized = tf.image.resize(masks, shape, method="area", antialias=True).numpy()
    return np.clip(resized, 0.0, 1.0)


def _segment_positions(mask: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
    flat = mask.ravel()
    positions = np.flatnonzero(flat > 0)
    return tf.constant(positions, tf.int32), tf.constant(flat[positions], tf.float32)


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


class StageObjective:
    """Callable mapping an (H, W, 3) float image in [0, 1] to (loss, gradient, per-term losses)."""

    def __init__(self, extractor: FeatureExtractor, layers: LayerChoice, *, content: np.ndarray,
                 style: np.ndarray, content_labels: np.ndarray, style_labels: np.ndarray,
                 pairing: PairDiagnostics, config: TransferConfig,
                 laplacian: scipy.sparse.spmatrix | None = None) -> None:
        network = extractor.with_layers([*layers.content_layers, *layers.style_layers])
        self._photorealism_weight = config.photorealism_weight
        self._stencil = laplacian_stencil(laplacian, content.shape[:2]) if laplacian is not None else None
        self._pixel_scale = 1.0 / (content.shape[0] * content.shape[1])
        content_features = network(tf.constant(content[None]))
        style_features = network(tf.constant(style[None]))
        content_targets = tuple(content_features[name][0] for name in layers.content_layers)
        content_scales = [1.0 / max(float(tf.reduce_mean(tf.square(target))), 1e-12) for target in content_targets]
        style_scales = [weight / max(_global_gram_energy(style_features[name][0]), 1e-12)
                        for name, weight in zip(layers.style_layers, layers.style_layer_weights, strict=True)]
        segments = [self._segment_targets(content_features[name][0], style_features[name][0],
                                          content_labels, style_labels, pairing, config)
                    for name in layers.style_layers]
        slots = 1 << max(0, max(len(layer) for layer in segments) - 1).bit_length()
        segments = tuple((*layer, *[_empty_slot()] * (slots - len(layer))) for layer in segments)
        self._arguments = (content_targets, tf.constant(content_scales, tf.float32),
                           tf.constant(style_scales, tf.float32), segments,
                           tf.constant([config.content_weight, config.style_weight, config.tv_weight], tf.float32),
                           tf.constant(self._pixel_scale, tf.float32))
        self._compiled = _compiled_terms(network, layers, slots)

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
                target = losses.gram_matrix(tf.gather(style_flat, positions), values)
            positions, values = _segment_positions(content_masks[..., index])
            targets.append(SegmentTarget(positions, values, target,
                                         tf.constant(content_masks[..., index].mean(), tf.float32)))
        return targets

    def __call__(self, image: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        """Loss (float), gradient (same shape as ``image``, float32) and the unweighted terms.

        The network's terms come from the compiled graph; the photorealism term, a quadratic form
        of the image alone, is added outside it (:func:`stylecore.losses.photorealism_loss`).
        """
        image = np.asarray(image, np.float32)
        total, gradient, terms = self._compiled(tf.constant(image), *self._arguments)
        total, gradient = float(total), gradient.numpy()
        terms = {name: float(value) for name, value in terms.items()}
        terms["photorealism"] = 0.0
        if self._stencil is not None:
            energy, energy_gradient = losses.photorealism_loss(image, self._stencil)
            terms["photorealism"] = self._pixel_scale * energy
            total += self._photorealism_weight * terms["photorealism"]
            gradient += (self._photorealism_weight * self._pixel_scale) * energy_gradient
        return total, gradient, terms


@functools.lru_cache(maxsize=32)
def _compiled_terms(network: FeatureExtractor, layers: LayerChoice, slots: int):
    """The compiled (total, gradient, terms) of the network's terms, for any pair of this structure.

    Arguments: the image (H, W, 3); the content targets (one per content layer); the content and
    style scales (the latter times w_l); per style layer, ``slots`` segments; the
    weights (alpha, beta, gamma); and 1 / (H W). Terms: "content", "style" and "tv", unweighted.
    """
    segment = SegmentTarget(tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32),
                            tf.TensorSpec((None, None), tf.float32), tf.TensorSpec((), tf.float32))
    signature = (tf.TensorSpec((None, None, 3), tf.float32),
                 tuple(tf.TensorSpec(None, tf.float32) for _ in layers.content_layers),
                 tf.TensorSpec((len(layers.content_layers),), tf.float32),
                 tf.TensorSpec((len(layers.style_layers),), tf.float32),
                 tuple((segment,) * slots for _ in layers.style_layers),
                 tf.TensorSpec((3,), tf.float32), tf.TensorSpec((), tf.float32))

    def terms(image, content_targets, content_scales, style_scales, segments, pixel_scale):
        features = network(image[None])
        content = tf.add_n([content_scales[index] * losses.content_loss(features[name][0], target)
                            for index, (name, target) in enumerate(zip(layers.content_layers, content_targets,
                                                                        strict=True))])
        style_terms = []
        for index, (name, layer_segments) in enumerate(zip(layers.style_layers, segments, strict=True)):
            flat = tf.reshape(features[name][0], (-1, features[name].shape[-1]))
            style_terms.extend(losses.segment_style_loss(tf.gather(flat, segment.positions), segment.mask_values,
                                                         segment.target_gram, style_scales[index] * segment.area_weight)
                               for segment in layer_segments)
        return {"content": content, "style": tf.add_n(style_terms),
                "tv": pixel_scale * losses.total_variation(image)}

    @tf.function(input_signature=signature)
    def loss_and_gradient(image, content_targets, content_scales, style_scales, segments, weights, pixel_scale):
        with tf.GradientTape() as tape:
            tape.watch(image)
            values = terms(image, content_targets, content_scales, style_scales, segments, pixel_scale)
            total = weights[0] * values["content"] + weights[1] * values["style"] + weights[2] * values["tv"]
        return total, tape.gradient(total, image), values

    return loss_and_gradient
