"""Photos of every common kind load as RGB, right (8-bit as decoded, or float in [0, 1]); unusable ones
are one sentence."""

import io
import struct
import zlib

import numpy as np
import png
import pytest
from PIL import Image

from stylecore.errors import InputImageError
from stylecore.images import (check_photo_size, load_image, probe_image, read_image, read_photo, resize_image,
                             to_float, to_uint8, working_shape)
from stylecore.output import write_image


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
    write_image(tmp_path / "a.png", to_uint8(source))
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


def quadrants(height: int = 48, width: int = 64) -> np.ndarray:
    """An (H, W, 3) uint8 photo with four solid quadrants of different colours: any flip or turn shows."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:height // 2, :width // 2] = (220, 30, 30)
    pixels[:height // 2, width // 2:] = (30, 200, 40)
    pixels[height // 2:, :width // 2] = (40, 60, 210)
    pixels[height // 2:, width // 2:] = (240, 230, 60)
    return pixels


# Stored pixels that display as ``upright`` under each EXIF orientation, from the EXIF 2.3 table
# (orientation 6: the stored image's top row is displayed as its right column, and so on).
STORED_FOR = {1: lambda up: up, 2: lambda up: up[:, ::-1], 3: lambda up: up[::-1, ::-1], 4: lambda up: up[::-1],
              5: lambda up: up.transpose(1, 0, 2), 6: lambda up: np.rot90(up, 1),
              7: lambda up: up[::-1, ::-1].transpose(1, 0, 2), 8: lambda up: np.rot90(up, -1)}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_reads_upright(tmp_path, orientation):
    upright = quadrants()
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = np.ascontiguousarray(STORED_FOR[orientation](upright))
    Image.fromarray(stored).save(tmp_path / "stored.jpg", quality=95, exif=exif)
    expected, image = read_image(tmp_path / "upright.jpg"), read_image(tmp_path / "stored.jpg")
    assert probe_image(tmp_path / "stored.jpg") == image.shape[:2] == upright.shape[:2]
    assert np.abs(image - expected).mean() < 0.01  # JPEG noise only; a wrong turn moves whole quadrants


def test_cmyk_jpeg_colours_are_right(tmp_path):
    cmyk = np.zeros((32, 128, 4), np.uint8)
    cmyk[:, :32] = (255, 0, 0, 0)  # cyan
    cmyk[:, 32:64] = (0, 255, 0, 0)  # magenta
    cmyk[:, 64:96] = (0, 0, 255, 0)  # yellow
    cmyk[:, 96:] = (0, 0, 0, 255)  # black
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    image = read_image(tmp_path / "cmyk.jpg")
    for column, rgb in ((16, (0, 1, 1)), (48, (1, 0, 1)), (80, (1, 1, 0)), (112, (0, 0, 0))):
        np.testing.assert_allclose(image[16, column], rgb, atol=0.03)


def test_palette_photo_keeps_its_colours(tmp_path):
    pixels = quadrants()
    Image.fromarray(pixels).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_allclose(read_image(tmp_path / "p.png"), pixels / 255.0, atol=1e-6)


def write_png16(path, pixels: np.ndarray, orientation: int = 1) -> None:
    """A 16-bit PNG (Pillow cannot write 48-bit colour) with an eXIf chunk for ``orientation``."""
    height, width, planes = pixels.shape
    buffer = io.BytesIO()
    png.Writer(width, height, greyscale=planes < 3, alpha=planes in (2, 4), bitdepth=16).write(
        buffer, pixels.reshape(height, -1))
    exif = Image.Exif()
    exif[0x0112] = orientation
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    chunks.insert(1, (b"eXIf", exif.tobytes()))
    with open(path, "wb") as file:
        png.write_chunks(file, chunks)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16_bit_rgb_png_keeps_precision_and_orientation(tmp_path, orientation):
    upright = np.random.default_rng(orientation).integers(0, 65536, (12, 20, 3)).astype(np.uint16)
    write_png16(tmp_path / "deep.png", np.ascontiguousarray(STORED_FOR[orientation](upright)), orientation)
    image = read_image(tmp_path / "deep.png")
    assert image.dtype == np.float32 and image.shape == (12, 20, 3)
    np.testing.assert_allclose(image, upright / 65535.0, atol=1e-7)  # 8 bits would be off by up to 1/255


def test_truncated_16_bit_png_is_one_sentence(tmp_path):
    write_png16(tmp_path / "deep.png", np.random.default_rng(0).integers(0, 65536, (64, 64, 3)).astype(np.uint16))
    (tmp_path / "cut.png").write_bytes((tmp_path / "deep.png").read_bytes()[:9000])
    with pytest.raises(InputImageError, match="cannot decode image .*cut.png, truncated or corrupt"):
        read_image(tmp_path / "cut.png")


def test_16_bit_rgba_png_is_composited_onto_white(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint16)
    pixels[..., 0] = 65535
    pixels[..., 3] = 32768  # half-transparent red
    write_png16(tmp_path / "deep.png", pixels)
    np.testing.assert_allclose(read_image(tmp_path / "deep.png")[0, 0], (1.0, 0.5, 0.5), atol=1e-4)


def _icc_profile_rgb(colorants_d50: np.ndarray, gamma: float) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix and gamma curves) with the given D50-adapted colorants."""
    def s15f16(values) -> bytes:
        return b"".join(struct.pack(">i", round(value * 65536)) for value in values)

    description = b"test profile\0"
    tags = {b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(description)) + description + bytes(4 + 4 + 3 + 67),
            b"wtpt": b"XYZ \0\0\0\0" + s15f16((0.9642, 1.0, 0.8249)),
            b"cprt": b"text\0\0\0\0none\0"}
    for name, colorant in zip((b"rXYZ", b"gXYZ", b"bXYZ"), colorants_d50.T, strict=True):
        tags[name] = b"XYZ \0\0\0\0" + s15f16(colorant)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags.update({b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for name, body in tags.items():
        body += bytes(-len(body) % 4)
        table += name + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"none" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
              + bytes(24) + struct.pack(">I", 0) + s15f16((0.9642, 1.0, 0.8249)) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


ADOBE_RGB_TO_XYZ = np.array([[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741],
                             [0.0270343, 0.0706872, 0.9911085]])  # D65, Adobe RGB (1998) specification
XYZ_TO_SRGB = np.linalg.inv(np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                                      [0.0193339, 0.1191920, 0.9503041]]))  # IEC 61966-2-1
BRADFORD_D65_TO_D50 = np.array([[1.0478112, 0.0228866, -0.0501270], [0.0295424, 0.9904844, -0.0170491],
                                [-0.0092345, 0.0150436, 0.7521316]])


def test_adobe_rgb_profile_is_converted_to_srgb(tmp_path):
    gamma = 563 / 256
    colours = np.array([[150, 100, 80], [110, 140, 100], [90, 110, 170], [128, 128, 128]], np.uint8)
    pixels = np.repeat(colours[:, None, :], 8, axis=1)
    profile = _icc_profile_rgb(BRADFORD_D65_TO_D50 @ ADOBE_RGB_TO_XYZ, gamma)
    Image.fromarray(pixels).save(tmp_path / "adobe.png", icc_profile=profile)
    Image.fromarray(pixels).save(tmp_path / "untagged.png")
    linear = XYZ_TO_SRGB @ ADOBE_RGB_TO_XYZ @ ((colours / 255.0) ** gamma).T
    expected = np.where(linear.T <= 0.0031308, 12.92 * linear.T, 1.055 * np.abs(linear.T) ** (1 / 2.4) - 0.055)
    converted = read_image(tmp_path / "adobe.png")[:, 0]
    np.testing.assert_allclose(converted, expected, atol=2.5 / 255)
    assert np.abs(read_image(tmp_path / "untagged.png")[:, 0] - expected).max() > 10 / 255  # it did convert


def test_an_8_bit_photo_is_read_as_its_bytes_and_its_float_copy_is_exactly_the_old_one(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (30, 40, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    photo = read_photo(tmp_path / "photo.png")
    assert photo.dtype == np.uint8
    np.testing.assert_array_equal(photo, pixels)
    np.testing.assert_array_equal(read_image(tmp_path / "photo.png"), pixels.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(resize_image(photo, (30, 40)), read_image(tmp_path / "photo.png"))


def test_the_8_bit_path_honours_orientation_and_colour_profile_and_16_bits_stay_float(tmp_path):
    upright = quadrants()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(STORED_FOR[6](upright))).save(tmp_path / "turned.jpg", quality=95, exif=exif)
    turned = read_photo(tmp_path / "turned.jpg")
    assert turned.dtype == np.uint8 and turned.shape == upright.shape
    assert np.abs(turned.astype(int) - upright).mean() < 3  # JPEG noise only
    profile = _icc_profile_rgb(BRADFORD_D65_TO_D50 @ ADOBE_RGB_TO_XYZ, 563 / 256)
    Image.fromarray(upright).save(tmp_path / "adobe.png", icc_profile=profile)
    converted = read_photo(tmp_path / "adobe.png")
    assert converted.dtype == np.uint8 and np.abs(converted.astype(int) - upright).max() > 10
    np.testing.assert_array_equal(to_float(converted), read_image(tmp_path / "adobe.png"))
    write_png16(tmp_path / "deep.png", np.full((12, 20, 3), 1000, np.uint16))
    assert read_photo(tmp_path / "deep.png").dtype == np.float32


def test_a_large_8_bit_photo_shrinks_by_block_means_then_lanczos_within_a_level_of_the_float_filter():
    rows, columns = np.meshgrid(np.linspace(0.0, 1.0, 560), np.linspace(0.0, 1.0, 840), indexing="ij")
    smooth = np.stack([columns, 0.5 + 0.4 * np.sin(6 * rows), 0.2 + 0.6 * rows * columns], axis=2)
    photo = to_uint8(smooth + np.random.default_rng(2).normal(0.0, 0.05, smooth.shape))
    for shape in ((80, 120), (200, 300)):  # 7 times smaller: reduced by 2 first; 2.8 times: filtered only
        shrunk = resize_image(photo, shape)
        assert shrunk.dtype == np.float32 and shrunk.shape == (*shape, 3)
        assert np.abs(shrunk - resize_image(to_float(photo), shape)).max() <= 1.5 / 255
    np.testing.assert_array_equal(resize_image(photo, (200, 300)), resize_image(to_float(photo), (200, 300)))


def test_file_that_is_not_a_usable_image_is_one_sentence(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "whole.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "whole.png").read_bytes()[:6000])
    for name, message in (("empty.png", "the file is empty"), ("text.png", "not an image"),
                          ("truncated.png", "truncated")):
        with pytest.raises(InputImageError, match=message) as caught:
            read_image(tmp_path / name)
        assert "\n" not in str(caught.value)
    assert probe_image(tmp_path / "truncated.png") == (64, 64)  # the header is fine; decoding is not


def bomb_png(path, width: int, height: int) -> None:
    """A 1x1 PNG whose header claims ``width`` x ``height``: what a decompression bomb looks like to a reader."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:33] = ihdr + struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))


def test_decompression_bomb_is_refused_with_both_figures(tmp_path):
    bomb_png(tmp_path / "bomb.png", 60000, 60000)
    with pytest.raises(InputImageError, match=r"3,600,000,000 pixels \(60000x60000\), more than the limit "
                                              r"of 150,000,000"):
        read_image(tmp_path / "bomb.png")
    with pytest.raises(InputImageError, match="3,600,000,000 pixels"):
        probe_image(tmp_path / "bomb.png")


def test_pixel_limit_is_the_option_not_pillows(tmp_path, monkeypatch):
    Image.fromarray(quadrants(100, 100)).save(tmp_path / "photo.png")
    with pytest.raises(InputImageError, match=r"10,000 pixels \(100x100\), more than the limit of 9,999"):
        read_image(tmp_path / "photo.png", max_pixels=9_999)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would refuse 10,000 px
    assert read_image(tmp_path / "photo.png", max_pixels=10_000).shape == (100, 100, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # Pillow's own limit is restored for everyone else


def test_photo_too_small_to_restyle_is_refused():
    check_photo_size((48, 64))
    with pytest.raises(InputImageError, match="3x3 px; a photo to restyle needs a long side of at least 64 px"):
        check_photo_size((3, 3))
