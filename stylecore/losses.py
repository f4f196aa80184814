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


def segments_style_loss(rows: tf.Tensor, mask_values: tf.Tensor, bounds: tf.Tensor, targets: tf.Tensor,
                        segment_weights: tf.Tensor) -> tf.Tensor:
    """One layer's L_s+ over all its segments: sum_k ``segment_weights[k] * ||G_k - targets[k]||^2``.

    ``rows`` (R, C): the features at every segment's positions, segment after segment; segment k's
    are rows ``bounds[k]`` to ``bounds[k + 1]`` (``bounds`` (K + 1,) int32, from 0 to R), its mask
    values there ``mask_values`` (R,), and G_k = gram_matrix(its rows, its mask values). ``targets``
    (K, C, C) are symmetric Grams; ``segment_weights`` (K,) each segment's weight (its share of the
    content image, mean(M^content_k), times the layer's normalisation, :mod:`stylecore.objective`).
    K may be 0 (the loss is then 0): the segment count is a tensor dimension, looped over in the
    graph, so one compiled program serves any number of segments.

    The gradient is written out: with X = F * m and D = G - target, dL/dF = 4 w m * X D / (C sum(m)),
    one (P, C) x (C, C) product per segment and one product by m for all. Autodiff takes two products
    and a dozen small operations per segment, a quarter of an iteration at 350 px where each
    operation's dispatch costs more than its work.
    """
    channels = rows.shape[-1] if rows.shape[-1] is not None else tf.shape(rows)[-1]
    count = tf.shape(segment_weights)[0]
    masked = rows * mask_values[:, None]

    def segment(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Segment ``index``'s masked rows (P, C) and 1 / (C sum(m))."""
        start, end = bounds[index], bounds[index + 1]
        scale = 1.0 / (tf.cast(channels, rows.dtype) * tf.reduce_sum(mask_values[start:end]))
        return masked[start:end], scale

    @tf.custom_gradient
    def loss(rows: tf.Tensor) -> tf.Tensor:
        def forward(index, total, slopes):
            features, scale = segment(index)
            difference = tf.matmul(features, features, transpose_a=True) * scale - targets[index]
            return (index + 1, total + segment_weights[index] * tf.reduce_sum(tf.square(difference)),
                    slopes.write(index, difference * (4.0 * scale * segment_weights[index])))

        slopes = tf.TensorArray(rows.dtype, size=count, element_shape=(channels, channels))
        _, total, slopes = tf.while_loop(lambda index, *_: index < count, forward,
                                         (tf.constant(0), tf.zeros((), rows.dtype), slopes))
        slopes = slopes.stack()

        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            def backward(index, parts):
                features, _ = segment(index)
                return index + 1, parts.write(index, tf.matmul(features, slopes[index]))

            parts = tf.TensorArray(rows.dtype, size=count, infer_shape=False, element_shape=(None, channels))
            _, parts = tf.while_loop(lambda index, *_: index < count, backward, (tf.constant(0), parts))
            gathered = tf.cond(count > 0, parts.concat, lambda: tf.zeros_like(rows))
            return gathered * (mask_values[:, None] * upstream)

        return total, gradient

    return loss(rows)


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
