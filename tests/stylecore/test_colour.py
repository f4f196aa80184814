"""sRGB <-> CIELAB against published values (Lindbloom's calculator, D65, sRGB) and round trips."""

import numpy as np
import pytest

from stylecore.colour import lab_to_srgb, srgb_to_lab

# (sRGB in [0, 1], CIELAB) pairs from Bruce Lindbloom's colour calculator (sRGB, D65).
KNOWN_COLOURS = [
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize(("rgb", "lab"), KNOWN_COLOURS)
def test_srgb_to_lab_matches_published_values(rgb, lab):
    np.testing.assert_allclose(srgb_to_lab(np.array(rgb)), lab, atol=1e-3)


def test_greys_are_neutral_and_lightness_is_monotonic():
    greys = np.linspace(0.0, 1.0, 11)[:, None].repeat(3, axis=1)
    lab = srgb_to_lab(greys)
    np.testing.assert_allclose(lab[:, 1:], 0.0, atol=1e-9)
    assert np.all(np.diff(lab[:, 0]) > 0)


def test_round_trip_is_exact_on_random_colours():
    rgb = np.random.default_rng(0).random((50, 40, 3))
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-12)


def test_out_of_gamut_lab_comes_back_finite_and_outside_the_unit_range():
    rgb = lab_to_srgb(np.array([[50.0, 120.0, -120.0], [2.0, -60.0, 60.0]]))
    assert np.all(np.isfinite(rgb))
    assert rgb.min() < 0.0 or rgb.max() > 1.0
