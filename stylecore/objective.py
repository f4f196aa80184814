"""One stage's objective: L = alpha L_c + beta L_s+ + gamma L_tv + lambda L_m, with its gradient.

Everything that depends only on the content and style photos (content features, each segment's
style Gram, the positions each content segment covers on each layer's grid) is computed once
when the objective is built; each call then runs the network once forward and backward.

Normalisation (fixed per pair and stage, so that one set of weights suits every pair and size):
each content layer's term is divided by the mean square of the content photo's features on it;
each style layer's term by the squared Frobenius norm of the whole style photo's Gram on it;
L_tv and L_m by the pixel count H*W. Every term then starts near 1 or below whatever the
extractor's activation scale, the image size, or the number of segments.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse
import tensorflow as tf

from stylecore import losses
from stylecore.config import TransferConfig
from stylecore.architectures import LayerChoice
from stylecore.extractors import FeatureExtractor
from stylecore.laplacian import laplacian_stencil
from stylecore.masks import PairDiagnostics, one_hot


@dataclasses.dataclass(frozen=True)
class SegmentTarget:
    """One segment on one style layer: where it lies in the output, and the Gram it must match."""

    positions: tf.Tensor
    """(P,) int32 flat indices of the layer's grid where the content mask is non-zero."""
    mask_values: tf.Tensor
    """(P,) float32 content mask values in (0, 1] at those positions."""
    target_gram: tf.Tensor
    """(C, C) masked Gram of the style photo's matching segment."""
    area_weight: float
    """mean(M^content): the segment's share of the layer's grid."""


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


def _global_gram_energy(features: tf.Tensor) -> float:
    flat = tf.reshape(features, (-1, features.shape[-1]))
    return float(tf.reduce_sum(tf.square(losses.gram_matrix(flat))))


class StageObjective:
    """Callable mapping an (H, W, 3) float image in [0, 1] to (loss, gradient, per-term losses)."""

    def __init__(self, extractor: FeatureExtractor, layers: LayerChoice, *, content: np.ndarray,
                 style: np.ndarray, content_labels: np.ndarray, style_labels: np.ndarray,
                 pairing: PairDiagnostics, config: TransferConfig,
                 laplacian: scipy.sparse.spmatrix | None = None) -> None:
        self._layers = layers
        self._extractor = extractor.with_layers([*layers.content_layers, *layers.style_layers])
        self._weights = {"content": config.content_weight, "style": config.style_weight,
                         "tv": config.tv_weight,
                         "photorealism": config.photorealism_weight if laplacian is not None else 0.0}
        self._stencil = laplacian_stencil(laplacian, content.shape[:2]) if laplacian is not None else None
        content_features = self._extractor(tf.constant(content[None]))
        style_features = self._extractor(tf.constant(style[None]))
        self._content_targets = {name: content_features[name][0] for name in layers.content_layers}
        self._content_scales = {name: 1.0 / max(float(tf.reduce_mean(tf.square(target))), 1e-12)
                                for name, target in self._content_targets.items()}
        self._style_scales = {name: 1.0 / max(_global_gram_energy(style_features[name][0]), 1e-12)
                              for name in layers.style_layers}
        self._pixel_scale = 1.0 / (content.shape[0] * content.shape[1])
        self._segments = {
            name: self._segment_targets(content_features[name][0], style_features[name][0],
                                        content_labels, style_labels, pairing, config)
            for name in layers.style_layers}
        self._compiled = tf.function(self._loss_and_gradient)

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
            if label in pairing.matched:
                positions, values = _segment_positions(style_masks[..., pairing.matched.index(label)])
                target = losses.gram_matrix(tf.gather(style_flat, positions), values)
            else:
                target = losses.gram_matrix(style_flat)
            positions, values = _segment_positions(content_masks[..., index])
            if positions.shape[0] == 0:
                continue
            targets.append(SegmentTarget(positions, values, target,
                                         float(content_masks[..., index].mean())))
        return targets

    def _terms(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        features = self._extractor(image[None])
        content = tf.add_n([self._content_scales[name] * losses.content_loss(features[name][0], target)
                            for name, target in self._content_targets.items()])
        style_terms = []
        for name, weight in zip(self._layers.style_layers, self._layers.style_layer_weights, strict=True):
            flat = tf.reshape(features[name][0], (-1, features[name].shape[-1]))
            grams = [losses.gram_matrix(tf.gather(flat, segment.positions), segment.mask_values)
                     for segment in self._segments[name]]
            targets = [segment.target_gram for segment in self._segments[name]]
            areas = [segment.area_weight for segment in self._segments[name]]
            style_terms.append(weight * self._style_scales[name] * losses.style_loss(grams, targets, areas))
        return {"content": content, "style": tf.add_n(style_terms),
                "tv": self._pixel_scale * losses.total_variation(image)}

    def _loss_and_gradient(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            terms = self._terms(image)
            total = tf.add_n([self._weights[name] * value for name, value in terms.items()])
        return total, tape.gradient(total, image), terms

    def __call__(self, image: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        """Loss (float), gradient (same shape as ``image``, float32) and the unweighted terms.

        The network's terms come from the compiled graph; the photorealism term, a quadratic form
        of the image alone, is added outside it (:func:`stylecore.losses.photorealism_loss`).
        """
        image = np.asarray(image, np.float32)
        total, gradient, terms = self._compiled(tf.constant(image))
        total, gradient = float(total), gradient.numpy()
        terms = {name: float(value) for name, value in terms.items()}
        terms["photorealism"] = 0.0
        if self._stencil is not None:
            energy, energy_gradient = losses.photorealism_loss(image, self._stencil)
            terms["photorealism"] = self._pixel_scale * energy
            total += self._weights["photorealism"] * terms["photorealism"]
            gradient += (self._weights["photorealism"] * self._pixel_scale) * energy_gradient
        return total, gradient, terms
