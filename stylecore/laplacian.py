"""The matting Laplacian of Levin, Lischinski and Weiss (2006), "A closed-form solution to natural
image matting", as used by the photorealism loss of Luan et al. (2017).

For every (2r+1)x(2r+1) window w_k with colour mean mu_k and covariance Sigma_k,

    L_ij = sum_{k: (i,j) in w_k} ( delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/|w_k| I_3)^-1 (I_j - mu_k)) / |w_k| )

so that L is N x N (N = H*W), symmetric, positive semi-definite, with L 1 = 0, and
V^T L V = 0 exactly when V is a locally affine function of the image's colours.

pymatting's numba kernel builds it; it is the maintained implementation of this formula and
builds a 700 px image in well under a second once compiled (see ``benchmarks/``).
"""

from __future__ import annotations

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
