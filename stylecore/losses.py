"""The four loss terms of Deep Photo Style Transfer (Luan et al. 2017), as pure TensorFlow functions.

Shapes: a feature map is (h, w, C) for one image (batch axis dropped); a mask is (h, w) with
values in [0, 1] on the same grid; an image is (H, W, 3) RGB with values in [0, 1].
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import tensorflow as tf


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
        area = tf.cast(tf.shape(features)[0], features.dtype)
    else:
        features = features * weights[:, None]
        area = tf.reduce_sum(weights)
    return tf.matmul(features, features, transpose_a=True) / (channels * area)


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


def sparse_laplacian(laplacian: scipy.sparse.spmatrix) -> tf.SparseTensor:
    """A scipy matting Laplacian (N x N) as a canonically ordered float32 ``tf.SparseTensor``."""
    coo = laplacian.tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    sparse = tf.SparseTensor(indices, coo.data.astype(np.float32), coo.shape)
    return tf.sparse.reorder(sparse)


def photorealism_loss(image: tf.Tensor, laplacian: tf.SparseTensor) -> tf.Tensor:
    """L_m = sum_c V_c^T L V_c, V_c the flattened channel c of ``image`` (H, W, 3) in [0, 1].

    ``laplacian`` is the content photo's matting Laplacian at exactly the image's size, (HW, HW),
    symmetric positive semi-definite, so L_m >= 0 and is 0 for locally affine recolourings of
    the content. The gradient is 2 L V, computed with the one sparse product the loss already
    needs (autodiff through ``sparse_dense_matmul`` would transpose L on every call).
    """

    @tf.custom_gradient
    def loss_and_gradient(image: tf.Tensor) -> tf.Tensor:
        pixels = tf.reshape(image, (-1, 3))
        product = tf.sparse.sparse_dense_matmul(laplacian, pixels)

        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            return tf.reshape(2.0 * upstream * product, tf.shape(image))

        return tf.reduce_sum(pixels * product), gradient

    return loss_and_gradient(image)
