"""Writing results: the format follows the extension, and ICC profile and EXIF round-trip."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from stylecore.errors import OutputError
from stylecore.output import PhotoMetadata, encode_image, read_metadata, write_image

ORIENTATION, MAKE, EXIF_IFD, PIXEL_X, PIXEL_Y = 0x0112, 0x010F, 0x8769, 0xA002, 0xA003


def gradient(height=48, width=64):
    rows, columns = np.mgrid[0:height, 0:width]
    return np.stack([rows * 255 // height, columns * 255 // width, np.full_like(rows, 128)],
                    axis=2).astype(np.uint8)


@pytest.fixture(scope="module")
def tagged_photo(tmp_path_factory):
    """A JPEG with an ICC profile (Lab-based, so that it is not mistaken for a default) and EXIF:
    rotated (orientation 6), a camera make, and its pixel dimensions."""
    path = tmp_path_factory.mktemp("photo") / "tagged.jpg"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    exif = Image.Exif()
    exif[ORIENTATION], exif[MAKE] = 6, "Test Camera"
    exif.get_ifd(EXIF_IFD).update({PIXEL_X: 64, PIXEL_Y: 48})
    Image.fromarray(gradient()).save(path, quality=95, icc_profile=profile, exif=exif.tobytes())
    return path, profile


@pytest.mark.parametrize(("name", "format_name"), [("out.png", "PNG"), ("out.JPG", "JPEG"), ("out.jpeg", "JPEG"),
                                                   ("out.tif", "TIFF"), ("out.tiff", "TIFF")])
def test_the_format_follows_the_extension(tmp_path, name, format_name):
    write_image(tmp_path / name, gradient())
    with Image.open(tmp_path / name) as written:
        assert written.format == format_name and written.size == (64, 48) and written.mode == "RGB"
        pixels = np.asarray(written)
    tolerance = 3 if format_name == "JPEG" else 0
    assert np.abs(pixels.astype(int) - gradient()).max() <= tolerance
    assert [path.name for path in tmp_path.iterdir()] == [name]  # no partial file left beside it


def test_an_unknown_extension_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(OutputError, match="extension must be one of"):
        write_image(tmp_path / "out.gif", gradient())
    assert not list(tmp_path.iterdir())


def test_jpeg_quality_is_applied():
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(encode_image(noisy, "JPEG", jpeg_quality=50)) < 0.6 * len(encode_image(noisy, "JPEG", jpeg_quality=95))


def profile_description(icc: bytes) -> str:
    return ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.profile_description


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.tif"])
def test_tagged_content_gives_an_srgb_tagged_result_with_its_exif_and_the_orientation_reset(tmp_path, tagged_photo, name):
    source, profile = tagged_photo
    metadata = read_metadata(source)
    assert profile_description(profile) != "sRGB built-in"
    assert profile_description(metadata.icc_profile) == "sRGB built-in"  # the readers convert tagged photos to sRGB
    write_image(tmp_path / name, gradient(30, 40), metadata)
    with Image.open(tmp_path / name) as written:
        assert written.info.get("icc_profile") == metadata.icc_profile
        exif = written.getexif()
        assert exif[MAKE] == "Test Camera"
        assert exif[ORIENTATION] == 1  # the pixels are written upright
        assert exif.get_ifd(EXIF_IFD)[PIXEL_X] == 40 and exif.get_ifd(EXIF_IFD)[PIXEL_Y] == 30


def test_a_photo_without_metadata_writes_none(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(gradient()).save(plain)
    assert read_metadata(plain) == PhotoMetadata()
    with Image.open(io.BytesIO(encode_image(gradient(), "PNG", read_metadata(plain)))) as written:
        assert "icc_profile" not in written.info and not written.getexif()


def test_a_png_s_metadata_is_read_from_its_header_without_decoding_its_pixels(tmp_path):
    """Pillow looks for EXIF after a PNG's pixels by decoding them all (a second decode of a 24 MP
    photo); the chunks before the pixels suffice: here the pixels are cut short, and never read."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    for name, exif in (("plain.png", None), ("camera.png", Image.Exif())):
        options = {"icc_profile": profile}
        if exif is not None:
            exif[MAKE] = "Test Camera"
            options["exif"] = exif.tobytes()
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(
            buffer, "PNG", **options)
        (tmp_path / name).write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        metadata = read_metadata(tmp_path / name)
        assert profile_description(metadata.icc_profile) == "sRGB built-in"
        if exif is None:
            assert metadata.exif is None
        else:
            tags = Image.Exif()
            tags.load(metadata.exif)
            assert tags[MAKE] == "Test Camera"
