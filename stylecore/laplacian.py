"""The matting Laplacian of Levin, Lischinski and Weiss (2006), "A closed-form solution to natural
image matting", as used by the photorealism loss of Luan et al. (2017).

For every (2r+1)x(2r+1) window w_k with colour mean mu_k and covariance Sigma_k,

    L_ij = sum_{k: (i,j) in w_k} ( delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/|w_k| I_3)^-1 (I_j - mu_k)) / |w_k| )

so that L is N x N (N = H*W), symmetric, positive semi-definite, with L 1 = 0, and
V^T L V = 0 exactly when V is a locally affine function of the image's colours.

pymatting's numba kernel builds it; it is the maintained implementation of this formula and
builds a 700 px image in well under a second once compiled (see ``benchmarks/``).

The optimisation multiplies by L once per iteration. Every pixel's row has its entries at the same
(4r+1)^2 neighbour offsets, so :func:`laplacian_stencil` stores L as one coefficient map per offset
and :func:`apply_laplacian` multiplies with a stencil: no indices to read (a sparse matrix in
TensorFlow carries two int64 indices per entry, 122 MB at 700 px), and a quarter of the time of
``tf.sparse.sparse_dense_matmul`` there (``benchmarks/transfer_speed.py``).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse
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


def laplacian_stencil(laplacian: scipy.sparse.csr_matrix, shape: tuple[int, int]) -> np.ndarray:
    """The matting Laplacian of an image of ``shape`` = (H, W) as (K, H, W) float32 coefficient maps.

    ``stencil[k, y, x]`` is the entry of pixel (y, x)'s row at the neighbour (y + dy, x + dx), with
    (dy, dx) the k-th offset of the (2R+1)^2 grid in row-major order, R = 2r the farthest neighbour a
    (2r+1)^2 window reaches (K = 25 for r = 1); entries beyond the image are 0.
    """
    height, width = shape
    if laplacian.shape != (height * width,) * 2:
        raise ValueError(f"laplacian {laplacian.shape} does not fit a {height}x{width} image")
    reach = _reach(laplacian.indptr, laplacian.indices, width)
    side = 2 * reach + 1
    stencil = np.zeros((side * side, height * width), np.float32)
    _fill_stencil(laplacian.indptr, laplacian.indices, laplacian.data, width, reach, stencil)
    return stencil.reshape(side * side, height, width)


@numba.njit(cache=True, nogil=True)
def _reach(indptr, indices, width):  # pragma: no cover - compiled
    reach = 0
    for row in range(len(indptr) - 1):
        for entry in range(indptr[row], indptr[row + 1]):
            offset_y = indices[entry] // width - row // width
            offset_x = indices[entry] % width - row % width
            reach = max(reach, abs(offset_y), abs(offset_x))
    return reach


@numba.njit(cache=True, parallel=True, nogil=True)
def _fill_stencil(indptr, indices, data, width, reach, stencil):  # pragma: no cover - compiled
    side = 2 * reach + 1
    for row in numba.prange(len(indptr) - 1):
        for entry in range(indptr[row], indptr[row + 1]):
            offset_y = indices[entry] // width - row // width
            offset_x = indices[entry] % width - row % width
            stencil[(offset_y + reach) * side + offset_x + reach, row] = data[entry]


def apply_laplacian(stencil: np.ndarray, image: np.ndarray) -> np.ndarray:
    """L V for each channel V of ``image`` (H, W, 3): (H, W, 3) float32, L given as :func:`laplacian_stencil`."""
    if stencil.shape[1:] != image.shape[:2]:
        raise ValueError(f"stencil {stencil.shape} does not fit image {image.shape}")
    product = np.empty(image.shape, np.float32)
    _stencil_kernel(stencil, np.ascontiguousarray(image, np.float32), product)
    return product


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _stencil_kernel(stencil, image, product):  # pragma: no cover - compiled
    count, height, width = stencil.shape
    side = round(np.sqrt(count))
    reach = side // 2
    for y in numba.prange(height):
        row = np.zeros((width, 3), np.float32)
        for k in range(count):
            source_y = y + k // side - reach
            offset_x = k % side - reach
            if source_y < 0 or source_y >= height:
                continue
            for x in range(max(0, -offset_x), min(width, width - offset_x)):
                weight = stencil[k, y, x]
                for channel in range(3):
                    row[x, channel] += weight * image[source_y, x + offset_x, channel]
        product[y] = row
