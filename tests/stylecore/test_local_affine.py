"""Local affine colour models: known recolourings fitted back, and carried to a larger size."""

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from stylecore.images import resize_image, to_float, to_uint8
from stylecore.local_affine import apply_coefficients, apply_local_affine, fit_local_affine, local_affine_smoothing
from stylecore.metrics import photorealism_energy

SLOPES = np.array([[0.8, 0.1, 0.0], [0.05, 0.7, 0.1], [0.0, 0.2, 0.6]])
OFFSETS = np.array([0.05, 0.0, 0.02])
"""With SLOPES, maps [0, 1]^3 into [0, 1]^3 (no clipping), as OTHER_SLOPES and OTHER_OFFSETS do."""
OTHER_SLOPES = np.array([[0.3, 0.0, 0.2], [0.1, 0.5, 0.0], [0.2, 0.1, 0.4]])
OTHER_OFFSETS = np.array([0.4, 0.0, 0.3])


def noise(shape, seed=0):
    """Colour noise: every window has a well-conditioned colour covariance."""
    return np.random.default_rng(seed).uniform(0.0, 1.0, (*shape, 3)).astype(np.float32)


def recoloured(image, slopes, offsets):
    return (image.astype(np.float64) @ slopes + offsets).astype(np.float32)


def textbook_fit(content, result, radius, epsilon):
    """He, Sun and Tang's eq. 14-16 as written, with scipy's box filter and numpy's solver."""
    def box(values):
        return ndimage.uniform_filter(values, size=(2 * radius + 1, 2 * radius + 1) + (1,) * (values.ndim - 2),
                                      mode="reflect")
    guide, target = content.astype(np.float64), result.astype(np.float64)
    guide_mean, target_mean = box(guide), box(target)
    covariance = box(guide[..., :, None] * guide[..., None, :]) - guide_mean[..., :, None] * guide_mean[..., None, :]
    cross = box(guide[..., :, None] * target[..., None, :]) - guide_mean[..., :, None] * target_mean[..., None, :]
    slopes = np.linalg.solve(covariance + epsilon * np.eye(3), cross)
    offsets = target_mean - np.einsum("hwi,hwic->hwc", guide_mean, slopes)
    return box(np.concatenate([slopes, offsets[:, :, None, :]], axis=2))


@pytest.mark.parametrize(("shape", "radius"), [((30, 40), 1), ((9, 7), 2), ((5, 4), 6)])
def test_the_fit_is_the_textbook_guided_filter_mirrored_at_the_border(shape, radius):
    content, result = noise(shape, seed=6), noise(shape, seed=7)  # (5, 4) at radius 6: windows wider than it
    np.testing.assert_allclose(fit_local_affine(content, result, radius=radius, epsilon=1e-3),
                               textbook_fit(content, result, radius, 1e-3), rtol=1e-5, atol=1e-6)


def test_a_global_affine_recolouring_is_fitted_exactly():
    content = noise((40, 50))
    coefficients = fit_local_affine(content, recoloured(content, SLOPES, OFFSETS), radius=1, epsilon=1e-9)
    assert coefficients.shape == (40, 50, 4, 3) and coefficients.dtype == np.float32
    np.testing.assert_allclose(coefficients[:, :, :3], np.broadcast_to(SLOPES, (40, 50, 3, 3)), atol=1e-4)
    np.testing.assert_allclose(coefficients[:, :, 3], np.broadcast_to(OFFSETS, (40, 50, 3)), atol=1e-4)
    np.testing.assert_allclose(apply_coefficients(coefficients, content), recoloured(content, SLOPES, OFFSETS),
                               atol=1e-4)


@pytest.mark.parametrize("radius", [1, 2])
def test_a_piecewise_recolouring_is_fitted_exactly_away_from_its_edge(radius):
    content = noise((30, 60), seed=1)
    target = recoloured(content, SLOPES, OFFSETS)
    target[:, 30:] = recoloured(content[:, 30:], OTHER_SLOPES, OTHER_OFFSETS)
    coefficients = fit_local_affine(content, target, radius=radius, epsilon=1e-9)
    fitted = apply_coefficients(coefficients, content)
    reach = 2 * radius  # a window of radius r, then the mean over the windows covering a pixel
    np.testing.assert_allclose(fitted[:, :30 - reach], target[:, :30 - reach], atol=1e-4)
    np.testing.assert_allclose(fitted[:, 30 + reach:], target[:, 30 + reach:], atol=1e-4)
    assert np.abs(fitted[:, 30 - reach:30 + reach] - target[:, 30 - reach:30 + reach]).max() > 0.01


def test_the_regulariser_flattens_windows_flatter_than_it():
    variation = 0.001 * noise((20, 20))  # a variance of about 1e-7 per channel
    target = recoloured(variation, SLOPES * 50, OFFSETS)  # a steep map of the tiny variations
    flat = fit_local_affine(0.5 + variation, target, radius=1, epsilon=1e-2)
    assert np.abs(flat[:, :, :3]).max() < 0.01
    assert (apply_coefficients(flat, 0.5 + variation).std(axis=(0, 1)) < 0.3 * target.std(axis=(0, 1))).all()
    steep = fit_local_affine(0.5 + variation, target, radius=1, epsilon=1e-12)
    np.testing.assert_allclose(apply_coefficients(steep, 0.5 + variation), target, atol=1e-3)


def test_a_recolouring_carried_to_four_times_the_size_stays_that_recolouring():
    large = resize_image(noise((30, 40), seed=2), (240, 320))  # smooth detail the small copy cannot hold
    small = resize_image(large, (60, 80))
    coefficients = fit_local_affine(small, recoloured(small, SLOPES, OFFSETS), radius=1, epsilon=1e-6)
    output = apply_local_affine(coefficients, large)
    assert output.shape == (240, 320, 3) and output.dtype == np.uint8
    expected = to_uint8(recoloured(large, SLOPES, OFFSETS))
    assert np.abs(output.astype(int) - expected).max() <= 2
    same_from_bytes = apply_local_affine(coefficients, to_uint8(large))
    assert np.abs(same_from_bytes.astype(int) - output).max() <= 2


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_a_photo_as_decoded_gives_exactly_what_its_float_copy_gives(dtype):
    coefficients = fit_local_affine(noise((20, 30), seed=3), noise((20, 30), seed=4), radius=1, epsilon=1e-3)
    photo = to_uint8(noise((150, 220), seed=5))
    from_bytes = apply_local_affine(coefficients, photo, dtype=dtype)
    assert from_bytes.dtype == dtype and from_bytes.shape == (150, 220, 3)
    np.testing.assert_array_equal(from_bytes, apply_local_affine(coefficients, to_float(photo), dtype=dtype))


def test_coefficients_are_interpolated_bilinearly_between_pixel_centres():
    coefficients = np.zeros((1, 2, 4, 3), np.float32)
    coefficients[0, 1, 3] = 1.0  # offset 0 in the left pixel, 1 in the right one
    output = apply_local_affine(coefficients, np.zeros((1, 8, 3), np.float32))[0, :, 0]
    # target centres 0.5..7.5 map to source positions -0.25..1.75: clamped at both ends, linear between
    np.testing.assert_array_equal(output, to_uint8(np.clip((np.arange(8) + 0.5) / 4 - 0.5, 0, 1)))


def test_the_finish_removes_speckle_and_keeps_a_locally_affine_result():
    content = np.asarray(Image.effect_mandelbrot((64, 48), (-2, -1.2, 1, 1.2), 60).convert("RGB"),
                         np.float32) / 255.0
    styled = np.clip(recoloured(content, SLOPES, OFFSETS), 0, 1)
    speckled = np.clip(styled + 0.03 * np.random.default_rng(3).standard_normal(styled.shape), 0, 1)
    finished = local_affine_smoothing(content, speckled, radius=1, epsilon=1e-4)
    assert photorealism_energy(finished, content) < 0.2 * photorealism_energy(speckled, content)
    assert np.abs(finished - styled).mean() < 0.6 * np.abs(speckled - styled).mean()


def test_a_one_channel_fit_keeps_a_constant_and_follows_the_guide_edge():
    # The fit of K maps other than colours, as segment_matching snaps one-hot labels with it.
    guide = np.zeros((20, 20, 3), np.float32)
    guide[:, 10:] = 1.0
    coefficients = fit_local_affine(guide, np.full((20, 20, 1), 0.3, np.float32), radius=3, epsilon=1e-3)
    slopes, offsets = coefficients[:, :, :3], coefficients[:, :, 3]
    np.testing.assert_allclose(slopes, 0.0, atol=1e-5)
    np.testing.assert_allclose(offsets, 0.3, atol=1e-5)
    blurred_step = np.clip((np.arange(20) - 6) / 8, 0, 1)[None, :, None].repeat(20, axis=0).astype(np.float32)
    coefficients = fit_local_affine(guide, blurred_step, radius=3, epsilon=1e-4)
    slopes, offsets = coefficients[:, :, :3], coefficients[:, :, 3]
    filtered = (np.einsum("hwck,hwc->hwk", slopes, guide) + offsets)[..., 0]  # q = mean(a)^T I + mean(b)
    assert filtered[:, 8].max() < 0.2 and filtered[:, 11].min() > 0.6
