"""Objective scores of a photo style transfer: style taken, structure kept, photorealism.

The seed paper left evaluation to future work (ALGORITHM.md, "What good looks like"); these
three numbers make a result comparable with the content photo itself and with the per-segment
colour-statistics transfer (:mod:`stylecore.colour_transfer`). Images are float RGB in [0, 1],
shape (H, W, 3); label maps are integer (H, W) palette indices (:mod:`stylecore.masks`).

- ``style_distance`` (lower is better, CIELAB units, i.e. CIE76 Delta E*ab): per content segment,
  the Wasserstein-2 distance between Gaussians fitted to the Lab colours of the output inside the
  segment and of the matching style segment, averaged with weights = segment area in the content.
- ``ssim`` (higher is better, at most 1): structural similarity of the output's luma to the
  content's (Wang, Bovik, Sheikh, Simoncelli 2004).
- ``photorealism_energy`` (lower is better, >= 0, (RGB value)^2 per pixel): the matting-Laplacian
  energy of the output with respect to the content (Luan et al. 2017, eq. 2) per pixel; 0 for a
  locally affine recolouring of the content.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage

from stylecore.colour import srgb_to_lab
from stylecore.colour_transfer import check_segmented_pair, colour_statistics_transfer
from stylecore.config import ContentOnlyPolicy

METRIC_NAMES = ("style_distance", "ssim", "photorealism_energy")
"""The keys of :func:`evaluate_output`, in this order."""
BETTER = {"style_distance": "lower", "ssim": "higher", "photorealism_energy": "lower"}
"""Which direction of each metric is better."""

_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
"""Gaussian window truncated at 3.5 sigma: radius 5, the 11 x 11 window of Wang et al."""
_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_REC601_LUMA = np.array([0.299, 0.587, 0.114])


def evaluate_output(output: np.ndarray, content: np.ndarray, style: np.ndarray,
                    content_labels: np.ndarray, style_labels: np.ndarray, *,
                    content_only_policy: ContentOnlyPolicy = "global_style", epsilon: float = 1e-7,
                    radius: int = 1) -> dict[str, float]:
    """All three scores of ``output`` (H, W, 3) for the pair (``content`` (H, W, 3), ``style`` (H', W', 3)).

    Returns ``{'style_distance', 'ssim', 'photorealism_energy'}`` (module docstring); ``epsilon``
    and ``radius`` are the matting Laplacian's (:func:`photorealism_energy`).
    """
    return {
        "style_distance": style_distance(output, style, content_labels, style_labels,
                                         content_only_policy=content_only_policy),
        "ssim": structural_similarity(output, content),
        "photorealism_energy": photorealism_energy(output, content, epsilon=epsilon, radius=radius),
    }


SUBJECTS = ("output", "content", "reference")
"""What :func:`evaluate_with_references` scores: the result, the content photo unchanged (doing
nothing) and the per-segment colour-statistics transfer (the simplest alternative)."""


def evaluate_with_references(output: np.ndarray, content: np.ndarray, style: np.ndarray,
                             content_labels: np.ndarray, style_labels: np.ndarray, *,
                             content_only_policy: ContentOnlyPolicy = "global_style") -> dict[str, dict[str, float]]:
    """:func:`evaluate_output` of ``output`` and of its two references, keyed by :data:`SUBJECTS`."""
    reference = colour_statistics_transfer(content, style, content_labels, style_labels,
                                           content_only_policy=content_only_policy)
    images = dict(zip(SUBJECTS, (output, content, reference), strict=True))
    return {subject: evaluate_output(image, content, style, content_labels, style_labels,
                                     content_only_policy=content_only_policy)
            for subject, image in images.items()}


def style_distance(output: np.ndarray, style: np.ndarray, content_labels: np.ndarray,
                   style_labels: np.ndarray, *,
                   content_only_policy: ContentOnlyPolicy = "global_style") -> float:
    """Area-weighted Gaussian Wasserstein-2 distance of output segments to style segments, in Lab units.

    ``sum_k a_k W2(output_k, style_k) / sum_k a_k`` over content segments k, a_k the segment's
    pixel count in ``content_labels`` (the output's label map) and ``W2`` as in
    :func:`gaussian_wasserstein`. A segment absent from ``style_labels`` is compared with the
    whole style photo (``'global_style'``) or left out (``'content_only'``). 0 when each output
    segment has its style segment's Lab mean and covariance; NaN when no segment is scored.
    """
    check_segmented_pair(output, content_labels, style, style_labels, content_only_policy)
    output_lab, style_lab = srgb_to_lab(output), srgb_to_lab(style)
    distances, areas = [], []
    for label in np.unique(content_labels):
        in_style = style_labels == label
        if not in_style.any() and content_only_policy == "content_only":
            continue
        style_pixels = style_lab[in_style] if in_style.any() else style_lab.reshape(-1, 3)
        segment_pixels = output_lab[content_labels == label]
        distances.append(gaussian_wasserstein(segment_pixels, style_pixels))
        areas.append(len(segment_pixels))
    return float(np.average(distances, weights=areas)) if distances else float("nan")


def gaussian_wasserstein(pixels: np.ndarray, reference_pixels: np.ndarray) -> float:
    """Wasserstein-2 distance between Gaussians fitted to two colour samples (N, 3) and (M, 3).

    With means m, r and population covariances S, R (Dowson and Landau 1982; the Frechet distance):

        W2^2 = ||m - r||^2 + tr(S + R - 2 (R^1/2 S R^1/2)^1/2),

    in the samples' units (CIELAB here). Equals the distance between the means when both
    covariances are equal, so a uniform colour cast of d Delta E*ab scores d.
    """
    mean_gap = pixels.mean(axis=0) - reference_pixels.mean(axis=0)
    covariance = np.atleast_2d(np.cov(pixels, rowvar=False, bias=True))
    reference_covariance = np.atleast_2d(np.cov(reference_pixels, rowvar=False, bias=True))
    reference_root = _psd_sqrt(reference_covariance)
    cross_root = _psd_sqrt(reference_root @ covariance @ reference_root)
    squared = mean_gap @ mean_gap + np.trace(covariance + reference_covariance - 2.0 * cross_root)
    return float(np.sqrt(max(squared, 0.0)))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (round-off negatives to 0)."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def luma(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma Y' = 0.299 R' + 0.587 G' + 0.114 B' of gamma-encoded RGB (H, W, 3) in [0, 1];
    (H, W) float64 in [0, 1]. The grey level of MATLAB's ``rgb2gray`` and Pillow's mode "L"."""
    return np.einsum("hwc,c->hw", np.asarray(image, dtype=np.float64), _REC601_LUMA)


def structural_similarity(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM of the lumas (:func:`luma`) of two (H, W, 3) images in [0, 1] (Wang et al. 2004).

    Local statistics under a Gaussian window (sigma 1.5, 11 x 11), data range L = 1:

        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
        C1 = (0.01 L)^2, C2 = (0.03 L)^2,

    averaged over the pixels whose window lies inside the image (a 5 px border is left out).
    In [-1, 1], 1 only for identical lumas. Matches scikit-image's ``structural_similarity``
    with ``gaussian_weights=True, use_sample_covariance=False, data_range=1`` to 1e-6; written with
    ``scipy.ndimage`` to avoid that dependency for twenty lines.
    """
    if image.shape != reference.shape:
        raise ValueError(f"images differ in shape: {image.shape} and {reference.shape}")
    x, y = luma(image), luma(reference)
    border = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
    if min(x.shape) <= 2 * border:
        raise ValueError(f"SSIM needs images larger than {2 * border} px, got {x.shape}")

    def local_mean(values: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(values, _SSIM_SIGMA, truncate=_SSIM_TRUNCATE)

    mean_x, mean_y = local_mean(x), local_mean(y)
    variance_x = local_mean(x * x) - mean_x ** 2
    variance_y = local_mean(y * y) - mean_y ** 2
    covariance = local_mean(x * y) - mean_x * mean_y
    c1, c2 = _SSIM_K1 ** 2, _SSIM_K2 ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)
                / ((mean_x ** 2 + mean_y ** 2 + c1) * (variance_x + variance_y + c2)))
    return float(ssim_map[border:-border, border:-border].mean())


def photorealism_energy(output: np.ndarray, content: np.ndarray, *, epsilon: float = 1e-7, radius: int = 1) -> float:
    """Matting-Laplacian energy per pixel, ``sum_c V_c^T L V_c / (H W)``, of ``output`` (H, W, 3).

    ``V_c`` is output channel c in [0, 1]; ``L`` is the matting Laplacian of ``content`` (H, W, 3)
    with ``epsilon`` and ``radius``, as :func:`stylecore.laplacian.matting_laplacian` builds it. It is
    the photorealism loss L_m of Luan et al. (2017) divided by the pixel count: about 0 when the
    output is, in every (2r+1)^2 window, an affine function of the content's colours. Unit: squared
    RGB value ([0, 1] scale) per pixel.

    Computed in Levin et al.'s (2006) own form of the same energy, not as the quadratic form: per
    window w_k, the squared residuals of the ridge-regularised affine fit of the output to the content,

        sum_k min_{A, b} sum_{i in w_k} ||V_i - A I_i - b||^2 + epsilon ||A||_F^2,

    over the windows inside the image (those L sums). A sum of squares, it is >= 0 by construction
    and accurate to round-off of the residuals themselves. The quadratic form subtracts numbers of
    order 1 to get ones of order 1e-7: its L inverts covariances as small as epsilon / (2r+1)^2,
    and the content photo's own energy, about 3e-7 per pixel, came out as low as -5e-6 at 500 px.
    A slightly wrong fit only raises a window's sum (its minimum is flat to first order).
    """
    if output.shape != content.shape or output.ndim != 3 or output.shape[2] != 3:
        raise ValueError(f"output {output.shape} and content {content.shape} must both be (H, W, 3)")
    per_row = _window_fit_residuals(np.ascontiguousarray(content, np.float64),
                                    np.ascontiguousarray(output, np.float64), float(epsilon), int(radius))
    return float(per_row.sum() / (output.shape[0] * output.shape[1]))


@numba.njit(cache=True, parallel=True, nogil=True)
def _window_fit_residuals(guide, target, epsilon, radius):  # pragma: no cover - compiled
    """Per row of windows, the sum over its windows of the regularised affine fit's squared residuals.

    Each window's pixels are centred on their means (the optimal offset b), then A solves
    (G^T G + epsilon U) A = G^T T, G and T the centred guide and target (n, 3), by Cholesky;
    no arrays are made per window (numba's allocations cost more than the arithmetic).
    """
    height, width, _ = guide.shape
    side = 2 * radius + 1
    rows = max(0, height - 2 * radius)
    per_row = np.zeros(rows)
    for row in numba.prange(rows):
        centred = np.empty((6, side * side))  # guide's 3 channels, then the target's
        normal = np.empty((3, 3))
        coefficients = np.empty((3, 3))
        for left in range(width - 2 * radius):
            _centred_window(guide, target, row, left, side, centred)
            for i in range(3):
                for j in range(3):
                    normal[i, j] = np.sum(centred[i] * centred[j]) + (epsilon if i == j else 0.0)
                    coefficients[i, j] = np.sum(centred[i] * centred[3 + j])
            _cholesky_solve(normal, coefficients)
            energy = epsilon * np.sum(coefficients * coefficients)
            for pixel in range(side * side):
                for channel in range(3):
                    residual = centred[3 + channel, pixel]
                    for i in range(3):
                        residual -= centred[i, pixel] * coefficients[i, channel]
                    energy += residual * residual
            per_row[row] += energy
    return per_row


@numba.njit(cache=True, nogil=True)
def _centred_window(guide, target, top, left, side, out):  # pragma: no cover - compiled
    """The window's guide and target pixels, each channel minus its window mean, into ``out`` (6, n)."""
    for dy in range(side):
        for dx in range(side):
            for channel in range(3):
                out[channel, dy * side + dx] = guide[top + dy, left + dx, channel]
                out[3 + channel, dy * side + dx] = target[top + dy, left + dx, channel]
    for channel in range(6):
        out[channel] -= out[channel].mean()


@numba.njit(cache=True, nogil=True)
def _cholesky_solve(matrix, right):  # pragma: no cover - compiled
    """Solve ``matrix`` X = ``right`` in place of ``right`` (3, 3), ``matrix`` symmetric positive definite."""
    l00 = np.sqrt(matrix[0, 0])
    l10 = matrix[1, 0] / l00
    l20 = matrix[2, 0] / l00
    l11 = np.sqrt(matrix[1, 1] - l10 * l10)
    l21 = (matrix[2, 1] - l20 * l10) / l11
    l22 = np.sqrt(matrix[2, 2] - l20 * l20 - l21 * l21)
    for column in range(right.shape[1]):
        y0 = right[0, column] / l00
        y1 = (right[1, column] - l10 * y0) / l11
        y2 = (right[2, column] - l20 * y0 - l21 * y1) / l22
        right[2, column] = y2 / l22
        right[1, column] = (y1 - l21 * right[2, column]) / l11
        right[0, column] = (y0 - l10 * right[1, column] - l20 * right[2, column]) / l00
