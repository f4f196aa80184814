"""The matting Laplacian of Levin, Lischinski and Weiss (2006), "A closed-form solution to natural
image matting", as used by the photorealism loss of Luan et al. (2017).

For every (2r+1)x(2r+1) window w_k with colour mean mu_k and covariance Sigma_k,

    L_ij = sum_{k: (i,j) in w_k} ( delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/|w_k| I_3)^-1 (I_j - mu_k)) / |w_k| )

so that L is N x N (N = H*W), symmetric, positive semi-definite, with L 1 = 0, and
V^T L V = 0 exactly when V is a locally affine function of the image's colours.

pymatting's numba kernel builds it; it is the maintained implementation of this formula and
builds a 700 px image in well under a second once compiled (see ``benchmarks/``).

The optimisation multiplies by L once per iteration, on the device. Every pixel's row has its
entries at the same (4r+1)^2 neighbour offsets, so :func:`laplacian_stencil` stores L as one
coefficient map per offset and :func:`apply_laplacian` multiplies with a stencil: no indices to
read (a sparse matrix in TensorFlow carries two int64 indices per entry, 122 MB at 700 px).

The product is compiled with XLA, which fuses the 25 shifted multiply-adds into one pass: 1.8 ms at
500 x 334 against 17 ms as separate TensorFlow operations (2 threads, this project's machines).
XLA compiles once per shape (about 60 ms) and keeps every compiled shape for the life of the
process, so the stencil is stored padded to a multiple of :data:`STENCIL_BUCKET` on each side: a
batch of photos of any sizes needs a bounded number of compilations (at most (500 / 32)^2 at a
500 px working size, a handful in practice), for a few per cent more arithmetic.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import tensorflow as tf
from pymatting import cf_laplacian


def matting_laplacian(image: np.ndarray, *, epsilon: float = 1e-7, radius: int = 1) -> scipy.sparse.csr_matrix:
    """Matting Laplacian of an (H, W, 3) RGB image with values in [0, 1].

    Returns a float64 CSR matrix of shape (H*W, H*W), pixels in row-major order, with sorted
    indices and no stored zeros (about (4r+1)^2 = 25 entries per pixel for r = 1).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    laplacian = cf_laplacian(np.ascontiguousarray(image, dtype=np.float64), epsilon, radius)
    # pymatting pads out-of-image neighbours as explicit zeros in column 0; drop them so the
    # matrix is canonical (sorted, no duplicates), which tf.sparse requires.
    laplacian.eliminate_zeros()
    laplacian.sum_duplicates()
    laplacian.sort_indices()
    return laplacian


STENCIL_BUCKET = 32
"""The stencil's height and width are rounded up to a multiple of this (see the module docstring)."""


def stencil_offsets(radius: int) -> int:
    """K, the number of coefficient maps of :func:`laplacian_stencil` for windows of ``radius``: (4r+1)^2."""
    return _stencil_side(radius) ** 2


def _stencil_side(radius: int) -> int:
    """2R + 1, the side of the grid of offsets, R = 2r the farthest neighbour a window of ``radius`` reaches."""
    return 4 * radius + 1


def laplacian_stencil(laplacian: scipy.sparse.csr_matrix, shape: tuple[int, int], *,
                      radius: int) -> np.ndarray:
    """The matting Laplacian of an image of ``shape`` = (H, W), built with windows of ``radius``, as
    (K, H', W') float32 coefficient maps, K = :func:`stencil_offsets` (``radius``) whatever the image's size.

    ``stencil[k, y, x]`` is the entry of pixel (y, x)'s row at the neighbour (y + dy, x + dx), with
    (dy, dx) the k-th offset of the (2R+1)^2 grid in row-major order, R = 2r the farthest neighbour a
    (2r+1)^2 window reaches (K = 25 for r = 1); entries beyond the image are 0, and so are the
    rows and columns that pad H and W up to H', W', multiples of :data:`STENCIL_BUCKET`.
    """
    height, width = shape
    if laplacian.shape != (height * width,) * 2:
        raise ValueError(f"laplacian {laplacian.shape} does not fit a {height}x{width} image")
    # Coordinates are looked up per pixel and offsets written to (K, H * W) first, then padded: dividing
    # each of the 4 M entries and writing them through three index arrays took 0.1 to 0.4 s at 500 px, this 0.07.
    rows = np.repeat(np.arange(height * width, dtype=np.int32), np.diff(laplacian.indptr))
    pixel_y, pixel_x = np.divmod(np.arange(height * width, dtype=np.int32), width)
    offset_y = pixel_y[laplacian.indices] - pixel_y[rows]
    offset_x = pixel_x[laplacian.indices] - pixel_x[rows]
    side = _stencil_side(radius)
    reach = side // 2
    if max(np.abs(offset_y).max(initial=0), np.abs(offset_x).max(initial=0)) > reach:
        raise ValueError(f"laplacian reaches farther than windows of radius {radius} do")
    flat = np.zeros((side * side, height * width), np.float32)
    flat[(offset_y + reach) * side + offset_x + reach, rows] = laplacian.data
    stencil = np.zeros((side * side, _bucketed(height), _bucketed(width)), np.float32)
    stencil[:, :height, :width] = flat.reshape(side * side, height, width)
    return stencil


def _bucketed(length: int) -> int:
    return -(-length // STENCIL_BUCKET) * STENCIL_BUCKET


def apply_laplacian(stencil: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """L V for each channel V of ``image`` (H, W, 3): (H, W, 3) float32, L given as :func:`laplacian_stencil`."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    padding = [[0, tf.shape(stencil)[1] - height], [0, tf.shape(stencil)[2] - width], [0, 0]]
    return _stencil_product(stencil, tf.pad(image, padding))[:height, :width]


@tf.function(jit_compile=True, autograph=False)
def _stencil_product(stencil: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """L V at the stencil's own size: the 25 (for r = 1) shifted multiply-adds, fused by XLA."""
    count = stencil.shape[0]
    side = round(count**0.5)
    reach = side // 2
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    padded = tf.pad(image, [[reach, reach], [reach, reach], [0, 0]])
    product = tf.zeros_like(image)
    for k in range(count):
        offset_y, offset_x = divmod(k, side)
        product += stencil[k][..., None] * padded[offset_y:offset_y + height, offset_x:offset_x + width]
    return product
