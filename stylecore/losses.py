"""The four loss terms of Deep Photo Style Transfer (Luan et al. 2017) as TensorFlow functions: three of
the network's features or the image, and the photorealism term, a quadratic form of the image.

Shapes: a feature map is (h, w, C) for one image (batch axis dropped); a mask is (h, w) with
values in [0, 1] on the same grid; an image is (H, W, 3) RGB with values in [0, 1].
"""

from __future__ import annotations

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
    """
    channels = tf.cast(tf.shape(features)[-1], features.dtype)
    if weights is None:
        return tf.matmul(features, features, transpose_a=True) / (channels * tf.cast(tf.shape(features)[0],
                                                                                       features.dtype))
    masked = features * weights[:, None]
    return tf.matmul(masked, masked, transpose_a=True) / (channels * tf.reduce_sum(weights))


def segment_style_loss(features: tf.Tensor, weights: tf.Tensor, target: tf.Tensor, segment_weight: tf.Tensor) -> tf.Tensor:
    """One segment's share of a layer's L_s+: ``segment_weight * ||G - target||^2``, G = gram_matrix(features, weights).

    A layer's L_s+ is the sum over its segments, each weighed by mean(M^content_k), the segment's
    share of the content image (times the layer's normalisation, :mod:`stylecore.objective`).
    ``target`` is a symmetric (C, C) Gram (or a scalar 0). The gradient is written out: with
    X = F * m and D = G - target, dL/dF = 4 w m * X D / (C sum(m)), one (P, C) x (C, C) product
    and two products by m. Autodiff takes two products and a dozen small operations per segment,
    a quarter of an iteration at 350 px where each operation's dispatch costs more than its work.
    """
    scale = 1.0 / (tf.cast(tf.shape(features)[-1], features.dtype) * tf.reduce_sum(weights))

    @tf.custom_gradient
    def loss(features: tf.Tensor) -> tf.Tensor:
        masked = features * weights[:, None]
        difference = tf.matmul(masked, masked, transpose_a=True) * scale - target

        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            return tf.matmul(masked, difference) * (weights[:, None] * (4.0 * scale * segment_weight * upstream))

        return segment_weight * tf.reduce_sum(tf.square(difference)), gradient

    return loss(features)


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


def photorealism_loss(image: tf.Tensor, stencil: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """L_m = sum_c V_c^T L V_c and its gradient 2 L V, V_c channel c of ``image`` (H, W, 3) in [0, 1].

    ``stencil`` is the content photo's matting Laplacian L at exactly the image's size, as
    :func:`stylecore.laplacian.laplacian_stencil` stores it; L is symmetric positive semi-definite,
    so L_m >= 0, and 0 for locally affine recolourings of the content. A quadratic form needs no
    autodiff: the one product L V gives the loss and the gradient.
    """
    product = apply_laplacian(stencil, image)
    return tf.reduce_sum(image * product), 2.0 * product
