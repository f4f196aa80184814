"""sRGB to CIELAB and back (CIE 1976 L*a*b*, D65 white), for colour statistics that match perception.

CIELAB is roughly perceptually uniform: a Euclidean distance of 1 is about one just-noticeable
difference (the CIE76 colour difference Delta E*ab), L* is lightness in [0, 100], a* runs green to
red and b* blue to yellow, both about [-128, 127] for sRGB colours. Its channels are far less
correlated than R, G, B on natural images, which is why per-channel statistics are matched there
(Reinhard et al. 2001, "Color transfer between images").

Conversion (IEC 61966-2-1 sRGB, CIE 15 for Lab):

    linear = rgb / 12.92                         if rgb <= 0.04045
             ((rgb + 0.055) / 1.055) ** 2.4      otherwise
    XYZ    = M linear, M the sRGB-to-XYZ matrix (Lindbloom's values)
    f(t)   = t ** (1/3) if t > (6/29)^3 else t / (3 (6/29)^2) + 4/29
    L* = 116 f(Y/Yn) - 16,  a* = 500 (f(X/Xn) - f(Y/Yn)),  b* = 200 (f(Y/Yn) - f(Z/Zn))

The white point (Xn, Yn, Zn) is M (1, 1, 1), so sRGB white maps to exactly (100, 0, 0) and every
grey to a* = b* = 0. Written here rather than taken from scikit-image (``skimage.color.rgb2lab``)
because it is twenty lines and the project has no other use for that dependency.
"""

from __future__ import annotations

import numpy as np

_XYZ_FROM_LINEAR_RGB = np.array([[0.4124564, 0.3575761, 0.1804375],
                                 [0.2126729, 0.7151522, 0.0721750],
                                 [0.0193339, 0.1191920, 0.9503041]])
_LINEAR_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_LINEAR_RGB)
_WHITE_XYZ = _XYZ_FROM_LINEAR_RGB.sum(axis=1)
_DELTA = 6.0 / 29.0


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB of sRGB colours: (..., 3) values in [0, 1] to (..., 3) float64 (L*, a*, b*)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    relative_xyz = _apply_matrix(_XYZ_FROM_LINEAR_RGB, linear) / _WHITE_XYZ
    f = np.where(relative_xyz > _DELTA ** 3, np.cbrt(relative_xyz),
                 relative_xyz / (3 * _DELTA ** 2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0,
                     500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """sRGB of CIELAB colours: (..., 3) (L*, a*, b*) to (..., 3) float64, *not* clipped.

    Lab colours outside the sRGB gamut come back outside [0, 1]; clip where a displayable image
    is needed. ``lab_to_srgb(srgb_to_lab(x))`` equals ``x`` to about 1e-12.
    """
    lab = np.asarray(lab, dtype=np.float64)
    f_y = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([f_y + lab[..., 1] / 500.0, f_y, f_y - lab[..., 2] / 200.0], axis=-1)
    relative_xyz = np.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0))
    linear = _apply_matrix(_LINEAR_RGB_FROM_XYZ, relative_xyz * _WHITE_XYZ)
    # Extended as an odd function so that out-of-gamut negatives give no NaN (as in scRGB).
    encoded = np.sign(linear) * (1.055 * np.abs(linear) ** (1.0 / 2.4) - 0.055)
    return np.where(np.abs(linear) <= 0.0031308, 12.92 * linear, encoded)


def _apply_matrix(matrix: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``colours @ matrix.T`` for (..., 3) colours. ``einsum`` rather than ``@``: a (N, 3) x (3, 3)
    product through multithreaded BLAS took 2 to 100 ms on a busy 2-core machine, einsum 4 ms."""
    return np.einsum("ij,...j->...i", matrix, colours)
