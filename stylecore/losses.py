"""The four loss terms of Deep Photo Style Transfer (Luan et al. 2017): three TensorFlow functions of
the network's features or the image, and the photorealism term, a quadratic form in NumPy.

Shapes: a feature map is (h, w, C) for one image (batch axis dropped); a mask is (h, w) with
values in [0, 1] on the same grid; an image is (H, W, 3) RGB with values in [0, 1].
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from stylecore.laplacian import apply_laplacian


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """L_c = ||F(x) - F(p)||^2 / (N M), N channels and M positions of the layer; 0 for identical inputs."""
    channels = tf.cast(tf.shape(features)[-1], features.dtype)
    positions = tf.cast(tf.reduce_prod(tf.shape(features)[:-1]), features.dtype)
    return tf.reduce_sum(tf.square(features - target)) / (channels * positions)


def gram_matrix(features: tf.Tensor, weights: tf.Tensor | None = None) -> tf.Tensor:
    """Area-normalised Gram matrix of masked features (ALGORITHM.md, "masked Gram").

    ``features``: (P, C) activations at P positions; ``weights``: (P,) mask values in [0, 1] at
    those positions (all ones when ``None``). Returns (C, C):

        G = (F * m)^T (F * m) / (C * sum(m)),

    which equals ALGORITHM.md's (F M)(F M)^T / (N_l M_l mean(M)) with the positions outside the
    mask left out (they contribute zero). Passing only the positions inside a segment is how
    :mod:`stylecore.objective` keeps the cost of all segments together near one full Gram.

    The gradient is written out: with X = F * m, dL/dF = m * X (dL/dG + dL/dG^T) / (C sum(m)),
    one (P, C) x (C, C) product. Autodiff differentiates the product's two operands separately,
    two such products; the Grams of the five style layers cost more than SqueezeNet itself at
    700 px, so the third product is a quarter of a stage's time (``benchmarks/transfer_speed.py``).
    """
    channels = tf.cast(tf.shape(features)[-1], features.dtype)
    if weights is None:
        weights = tf.ones(tf.shape(features)[:1], features.dtype)
    return _masked_gram(features, weights, channels * tf.reduce_sum(weights))


@tf.custom_gradient
def _masked_gram(features: tf.Tensor, weights: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    masked = features * weights[:, None]

    def gradient(upstream: tf.Tensor) -> tuple[tf.Tensor, None, None]:
        symmetric = (upstream + tf.transpose(upstream)) / scale
        return tf.matmul(masked, symmetric) * weights[:, None], None, None

    return tf.matmul(masked, masked, transpose_a=True) / scale, gradient


def style_loss(grams: list[tf.Tensor], targets: list[tf.Tensor], segment_weights: list[float]) -> tf.Tensor:
    """One layer's L_s+ term: sum_k mean(M^content_k) * ||G_k(x) - G_k(a)||^2 over the paired segments.

    ``segment_weights[k]`` is mean(M^content_k), the segment's share of the content image, so a
    segment weighs by its area in the output while each Gram is normalised by that same area.
    """
    terms = [weight * tf.reduce_sum(tf.square(gram - target))
             for gram, target, weight in zip(grams, targets, segment_weights, strict=True)]
    return tf.add_n(terms) if terms else tf.constant(0.0)


@tf.custom_gradient
def total_variation(image: tf.Tensor) -> tf.Tensor:
    """L_tv = sum (x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2 over pixels and channels.

    The gradient, 2 (D_h^T D_h + D_v^T D_v) x, is written out: each difference enters the two
    pixels it joins with opposite signs. Autodiff through the slices built padded copies and cost
    six times as much at 700 px (12 ms against 2 ms).
    """
    horizontal = image[:, 1:, :] - image[:, :-1, :]
    vertical = image[1:, :, :] - image[:-1, :, :]

    def gradient(upstream: tf.Tensor) -> tf.Tensor:
        along_rows = tf.pad(horizontal, [[0, 0], [1, 0], [0, 0]]) - tf.pad(horizontal, [[0, 0], [0, 1], [0, 0]])
        along_columns = tf.pad(vertical, [[1, 0], [0, 0], [0, 0]]) - tf.pad(vertical, [[0, 1], [0, 0], [0, 0]])
        return 2.0 * upstream * (along_rows + along_columns)

    return tf.reduce_sum(tf.square(horizontal)) + tf.reduce_sum(tf.square(vertical)), gradient


def photorealism_loss(image: np.ndarray, stencil: np.ndarray) -> tuple[float, np.ndarray]:
    """L_m = sum_c V_c^T L V_c and its gradient 2 L V, V_c channel c of ``image`` (H, W, 3) in [0, 1].

    ``stencil`` is the content photo's matting Laplacian L at exactly the image's size, as
    :func:`stylecore.laplacian.laplacian_stencil` stores it; L is symmetric positive semi-definite,
    so L_m >= 0, and 0 for locally affine recolourings of the content. A quadratic form needs no
    autodiff: the one product L V gives the loss and the gradient, computed outside TensorFlow's
    graph with the stencil (the network's terms are the graph's).
    """
    product = apply_laplacian(stencil, image)
    return float(np.vdot(image, product)), 2.0 * product
