"""Local affine colour models: fitted where the optimisation ran, applied at any size.

Photorealism, in the matting-Laplacian sense the photorealism loss enforces (Levin et al. 2006;
Luan et al. 2017), means the result is in every small window an affine function of the content's
colours: ``result(x) = A(x) content(x) + b(x)`` with ``A`` 3x3 and ``b`` 3, varying slowly. So the
transfer optimises at a small working size, fits ``A`` and ``b`` there, and applies them to the
content at its own resolution, where the content supplies the detail and ``A``, ``b`` the look.

The fit is the guided filter with a colour guide (He, Sun, Tang 2010/2013, "Guided image
filtering", eq. 14-16), per output channel c, over every (2r+1)^2 window w_k:

    a_k,c = (Sigma_k + epsilon U)^-1 cov_k(I, p_c),    b_k,c = mean_k(p_c) - a_k,c^T mean_k(I)

with I the content (guide), p the optimised result, Sigma_k the guide's 3x3 colour covariance in
the window and U the identity: ridge-regularised least squares, computed for all windows at once
with box filters. Each pixel's coefficients are then the mean over the windows covering it (the
filter's second box pass), which makes them smooth enough to interpolate. Upsampling is He and
Sun's fast guided filter (2015): the coefficient maps are resized bilinearly and applied to the
full-resolution guide. Chen et al.'s bilateral guided upsampling (2016) fits the same affine model
in a bilateral grid, which is edge-aware in the coefficients themselves; here the edges come from
the full-resolution content that ``A`` multiplies, the 12 maps are smooth already, and the box
filter needs no grid, solver or extra parameters, so the simpler method was chosen.

Applying the coefficients at the working size is the local affine smoothing DPST ran last
(its "best local affine" step, with a box rather than an edge-aware filter of the coefficients).

Images are float RGB in [0, 1], shape (H, W, 3). Coefficients are (h, w, 4, 3) float32: for a
pixel, ``output = [r, g, b, 1] @ coefficients[y, x]`` (rows 0-2: the transposed ``A``, row 3: ``b``).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window of every pixel, over the first two axes, mirrored at the border."""
    size = (2 * radius + 1, 2 * radius + 1) + (1,) * (values.ndim - 2)
    return ndimage.uniform_filter(values, size=size, mode="reflect")


def fit_local_affine(content: np.ndarray, result: np.ndarray, *, radius: int, epsilon: float) -> np.ndarray:
    """Per-pixel affine maps taking ``content`` to ``result``, both (h, w, 3) in [0, 1] (module docstring).

    ``radius``: window radius r (windows of (2r+1)^2 pixels); ``epsilon``: the ridge regulariser,
    in squared RGB units: a window whose colour variance is well below it gets a flat fit (its
    mean colour) rather than an amplified copy of its noise. Returns (h, w, 4, 3) float32.
    Exact (up to epsilon's bias) where ``result`` is an affine function of ``content`` over a window.
    """
    if content.shape != result.shape or content.ndim != 3 or content.shape[2] != 3:
        raise ValueError(f"content {content.shape} and result {result.shape} must be the same (h, w, 3)")
    guide, target = content.astype(np.float64), result.astype(np.float64)
    guide_mean, target_mean = _box_mean(guide, radius), _box_mean(target, radius)
    guide_covariance = (_box_mean(guide[..., :, None] * guide[..., None, :], radius)
                        - guide_mean[..., :, None] * guide_mean[..., None, :])
    cross_covariance = (_box_mean(guide[..., :, None] * target[..., None, :], radius)
                        - guide_mean[..., :, None] * target_mean[..., None, :])
    slopes = np.linalg.solve(guide_covariance + epsilon * np.eye(3), cross_covariance)
    offsets = target_mean - np.einsum("hwi,hwic->hwc", guide_mean, slopes)
    coefficients = np.concatenate([slopes, offsets[:, :, None, :]], axis=2)
    return _box_mean(coefficients, radius).astype(np.float32)


def apply_coefficients(coefficients: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``[content, 1] @ coefficients`` per pixel: (h, w, 4, 3) and (h, w, 3) to (h, w, 3) float32 in [0, 1]."""
    output = coefficients[:, :, 3, :].copy()
    for channel in range(3):
        output += content[:, :, channel, None] * coefficients[:, :, channel, :]
    return np.clip(output, 0.0, 1.0)


def local_affine_smoothing(content: np.ndarray, result: np.ndarray, *, radius: int, epsilon: float) -> np.ndarray:
    """The fit applied at its own size: ``result`` (h, w, 3) made locally affine in ``content``."""
    coefficients = fit_local_affine(content, result, radius=radius, epsilon=epsilon)
    return apply_coefficients(coefficients, content.astype(np.float32))


def _bilinear_taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``target`` positions resampled from ``source`` samples, pixel centres aligned (as
    Pillow's and OpenCV's resize): the two neighbouring indices and the weight of the second."""
    positions = np.clip((np.arange(target) + 0.5) * (source / target) - 0.5, 0.0, source - 1)
    lower = np.floor(positions).astype(np.intp)
    return lower, np.minimum(lower + 1, source - 1), (positions - lower).astype(np.float32)


def apply_local_affine(coefficients: np.ndarray, content: np.ndarray, *,
                       dtype: type[np.generic] = np.uint8) -> np.ndarray:
    """The coefficients (h, w, 4, 3), resized bilinearly to ``content`` (H, W, 3), applied to it.

    ``content`` is float in [0, 1] or uint8 (a photo as decoded: it is divided by 255 pixel by
    pixel, exactly as :func:`stylecore.images.to_float` would, so both give the same output).
    Returns (H, W, 3) ``dtype``: uint8 (rounded as :func:`stylecore.images.to_uint8`), or float32
    in [0, 1] for scoring. The coefficients are interpolated per pixel as the rows are written, so
    the output is the only full-size array allocated: no (H, W, 4, 3) map, not even in strips, and
    no float copy of the content. A numba kernel (as pymatting's) rather than numpy: the numpy
    version, which materialised the interpolated maps strip by strip, took 0.8 s per megapixel on
    the busy 2-core machine; the kernel takes about 0.04 s.
    """
    if coefficients.shape[2:] != (4, 3) or content.ndim != 3 or content.shape[2] != 3:
        raise ValueError(f"expected (h, w, 4, 3) coefficients and (H, W, 3) content, got "
                         f"{coefficients.shape} and {content.shape}")
    height, width = content.shape[:2]
    rows = _bilinear_taps(coefficients.shape[0], height)
    columns = _bilinear_taps(coefficients.shape[1], width)
    output = np.empty((height, width, 3), dtype)
    if content.dtype != np.uint8:
        content = content.astype(np.float32, copy=False)
    full_scale = np.float32(255.0 if content.dtype == np.uint8 else 1.0)
    _apply_kernel(np.ascontiguousarray(coefficients, np.float32), content, full_scale, *rows, *columns, output,
                  output.dtype == np.uint8)
    return output


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_kernel(coefficients, content, full_scale, top, bottom, row_weight,
                  left, right, column_weight, output, quantise):  # pragma: no cover - compiled
    height, width = output.shape[:2]
    for y in numba.prange(height):
        y0, y1, wy = top[y], bottom[y], row_weight[y]
        colour = np.empty(4, np.float32)
        colour[3] = 1.0
        for x in range(width):
            x0, x1, wx = left[x], right[x], column_weight[x]
            w00, w01 = (1 - wy) * (1 - wx), (1 - wy) * wx
            w10, w11 = wy * (1 - wx), wy * wx
            for term in range(3):
                colour[term] = np.float32(content[y, x, term]) / full_scale
            for channel in range(3):
                value = np.float32(0.0)
                for term in range(4):
                    coefficient = (w00 * coefficients[y0, x0, term, channel]
                                   + w01 * coefficients[y0, x1, term, channel]
                                   + w10 * coefficients[y1, x0, term, channel]
                                   + w11 * coefficients[y1, x1, term, channel])
                    value += coefficient * colour[term]
                value = min(max(value, np.float32(0.0)), np.float32(1.0))
                output[y, x, channel] = round(value * 255.0) if quantise else value
