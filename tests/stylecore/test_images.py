"""Photos of every common kind load as float RGB in [0, 1]."""

import numpy as np
import pytest
from PIL import Image

from stylecore.errors import InputImageError
from stylecore.images import load_image, read_image, save_png, working_shape


def test_working_shape_keeps_aspect():
    assert working_shape(437, 700, 350) == (218, 350)
    assert working_shape(800, 400, 100) == (100, 50)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    image = read_image(path)
    assert image.shape == (40, 20, 3)
    assert image[2, 10, 0] > 0.9 and image[-3, 10, 0] < 0.1  # red half now on top


def test_greyscale_alpha_and_16_bit(tmp_path):
    Image.fromarray(np.full((8, 8), 128, np.uint8), mode="L").save(tmp_path / "grey.png")
    grey = read_image(tmp_path / "grey.png")
    assert grey.shape == (8, 8, 3) and np.allclose(grey, 128 / 255)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :4, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    alpha = read_image(tmp_path / "alpha.png")
    assert np.allclose(alpha[:, :4], (1, 0, 0)) and np.allclose(alpha[:, 4:], (1, 1, 1))
    Image.fromarray(np.full((8, 8), 65535 // 4, np.uint16)).save(tmp_path / "deep.png")
    deep = read_image(tmp_path / "deep.png")
    assert deep.dtype == np.float32 and np.allclose(deep, (65535 // 4) / 65535, atol=1e-6)


def test_resize_and_round_trip(tmp_path):
    source = np.random.default_rng(0).uniform(size=(30, 60, 3)).astype(np.float32)
    save_png(tmp_path / "a.png", source)
    reopened = read_image(tmp_path / "a.png")
    assert np.abs(reopened - source).max() <= 0.5 / 255 + 1e-6
    resized = load_image(tmp_path / "a.png", 20)
    assert resized.shape == (10, 20, 3) and 0.0 <= resized.min() and resized.max() <= 1.0
    assert list(tmp_path.iterdir()) == [tmp_path / "a.png"]  # no temporary file left behind


def test_missing_and_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(InputImageError, match="not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputImageError, match="cannot read image"):
        read_image(tmp_path / "bad.jpg")
