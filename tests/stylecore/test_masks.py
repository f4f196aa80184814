"""Messy masks, each case on a real file where the example data shows it."""

import numpy as np
import pytest
from PIL import Image

from stylecore import masks
from stylecore.errors import InputImageError
from stylecore.masks import (PALETTE, PALETTE_NAMES, check_mask_shape, clean_label_map, label_map_to_rgb, label_names,
                             load_label_map, merge_specks, snap_to_palette)
from stylecore.pair import masks_to_find, prepare_pair
from tests.conftest import DPST_DATA, example_pair_paths


def test_anti_aliased_mask_snaps_to_palette():
    path = DPST_DATA / "segmentation" / "in1.png"  # 1864 distinct colours from anti-aliasing
    labels, diagnostics = load_label_map(path, photo_shape=(437, 700), working_shape=(437, 700),
                                         min_segment_fraction=0.001)
    assert diagnostics.distinct_colours > 1000
    assert 0.0 < diagnostics.snapped_fraction < 0.05
    assert set(diagnostics.labels) == {"green", "black", "white"}
    assert labels.shape == (437, 700) and labels.max() < len(PALETTE)


def test_snapping_picks_nearest_palette_colour():
    pixels = np.array([[[254, 254, 254], [1, 1, 1], [64, 64, 64], [10, 240, 250]]], np.uint8)
    labels, distinct, snapped_fraction = snap_to_palette(pixels)
    names = [PALETTE_NAMES[index] for index in labels[0]]
    assert names == ["white", "black", "black", "lightblue"]
    assert distinct == 4 and snapped_fraction == 1.0


def test_anti_aliased_blend_snaps_to_colours_in_use_not_to_palette_grey():
    # A black/white border blended at 75 %: 191-grey is nearer the palette's grey (128) than white.
    pixels = np.zeros((10, 10, 3), np.uint8)
    pixels[:, 5:] = 255
    pixels[:, 5] = 191
    labels, _, snapped_fraction = snap_to_palette(pixels, min_fraction=0.05)
    assert {PALETTE_NAMES[index] for index in np.unique(labels)} == {"black", "white"}
    assert PALETTE_NAMES[labels[0, 5]] == "white" and snapped_fraction == pytest.approx(0.1)


def test_a_large_mask_counted_by_table_snaps_exactly_as_by_sorting(monkeypatch):
    """Masks over 4 MP count their colours in a table of all 2^24 rather than by sorting; here the
    threshold is lowered so that an example mask, with noise added, takes both ways."""
    pixels = np.array(Image.open(example_pair_paths(1)["content_mask"]).convert("RGB"))
    pixels[::7, ::5] = np.random.default_rng(0).integers(0, 256, pixels[::7, ::5].shape)
    sorted_way = snap_to_palette(pixels, min_fraction=0.002)
    monkeypatch.setattr(masks, "COUNTED_BY_TABLE_PIXELS", 0)
    table_way = snap_to_palette(pixels, min_fraction=0.002)
    np.testing.assert_array_equal(table_way[0], sorted_way[0])
    assert table_way[1:] == sorted_way[1:] and sorted_way[1] > 1000  # the noise made many distinct colours


def test_greyscale_mask_loads():
    path = DPST_DATA / "segmentation" / "in8.png"
    assert Image.open(path).mode == "L"
    labels, diagnostics = load_label_map(path, photo_shape=(463, 700), working_shape=(463, 700),
                                         min_segment_fraction=0.001)
    assert set(diagnostics.labels) <= {"black", "white", "grey"}
    assert len(diagnostics.labels) >= 2


def test_mask_one_pixel_short_is_resized_to_its_photo_and_reported():
    pair = prepare_pair(**example_pair_paths(7), long_side=700, min_segment_fraction=0.001)
    content = pair.diagnostics.content
    assert content.source_shape == (393, 700) and content.photo_shape == (394, 700)
    assert pair.content_labels.shape == pair.content.shape[:2] == (394, 700)


def test_specks_merge_into_their_surroundings():
    labels = np.zeros((40, 40), np.uint8)
    labels[20:, :] = 1
    labels[5, 5] = 2  # a one-pixel speck inside label 0
    labels[30:32, 30:32] = 0  # a 4-pixel island of label 0 inside label 1
    cleaned, components, relabelled = merge_specks(labels, min_pixels=10)
    assert cleaned[5, 5] == 0 and (cleaned[30:32, 30:32] == 1).all()
    assert components == 2 and relabelled == 5
    assert (cleaned[:20] == 0).all() and (cleaned[20:] == 1).all()


def test_labels_in_one_image_only_are_reported():
    pair = prepare_pair(**example_pair_paths(30), long_side=128, min_segment_fraction=0.001)
    assert pair.diagnostics.matched == ("blue", "green", "red", "yellow")
    assert pair.diagnostics.content_only == ("white",)
    assert pair.diagnostics.style_only == ("black",)


def test_every_example_mask_loads():
    for number in range(1, 61):
        pair = prepare_pair(**example_pair_paths(number), long_side=64, min_segment_fraction=0.001)
        assert pair.content_labels.shape == pair.content.shape[:2]
        assert pair.style_labels.shape == pair.style.shape[:2]
        assert pair.diagnostics.matched or pair.diagnostics.content_only


def test_pair_23_style_is_its_content():
    pair = prepare_pair(**example_pair_paths(23), long_side=64, min_segment_fraction=0.001)
    np.testing.assert_array_equal(pair.content, pair.style)
    assert pair.diagnostics.content_only == () and pair.diagnostics.style_only == ()


def test_no_masks_is_one_segment_and_one_mask_alone_is_refused_only_without_automatic_masks():
    paths = example_pair_paths(2)
    pair = prepare_pair(paths["content"], paths["style"], long_side=48, min_segment_fraction=0.001)
    assert pair.diagnostics.matched == ("blue",) and pair.diagnostics.content is None
    one_side = prepare_pair(paths["content"], paths["style"], paths["content_mask"], long_side=48,
                            min_segment_fraction=0.001)
    assert one_side.diagnostics.content is not None and one_side.diagnostics.style is None
    assert masks_to_find(paths["content_mask"], None, "when_missing") == "style"
    assert masks_to_find(None, paths["style_mask"], "on") == "content"
    assert masks_to_find(None, None, "when_missing") == "both" and masks_to_find(None, None, "off") == ""
    with pytest.raises(InputImageError, match="no style mask, which auto_masks off cannot find"):
        masks_to_find(paths["content_mask"], None, "off")


def test_unreadable_mask_is_a_clear_error(tmp_path):
    broken = tmp_path / "mask.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputImageError, match="cannot read mask"):
        load_label_map(broken, photo_shape=(10, 10), working_shape=(10, 10), min_segment_fraction=0.01)
    with pytest.raises(InputImageError, match="must be a non-empty"):
        clean_label_map(np.zeros((4, 4), np.uint8), photo_shape=(4, 4), working_shape=(4, 4),
                        min_segment_fraction=0.01)


def three_segment_mask(height: int = 60, width: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """(labels (H, W), colour-coded RGB (H, W, 3) uint8): blue sky, green middle, white bottom-right."""
    labels = np.full((height, width), PALETTE_NAMES.index("blue"), np.uint8)
    labels[height // 3:] = PALETTE_NAMES.index("green")
    labels[2 * height // 3:, width // 2:] = PALETTE_NAMES.index("white")
    return labels, np.array(list(PALETTE.values()), np.uint8)[labels]


def decode(path, shape=(60, 90)) -> np.ndarray:
    labels, _ = load_label_map(path, photo_shape=shape, working_shape=shape, min_segment_fraction=0.001)
    return labels


def test_mask_files_of_every_kind_decode_to_the_right_labels(tmp_path):
    labels, rgb = three_segment_mask()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=3).save(tmp_path / "palette.png")
    Image.fromarray(np.dstack([rgb, np.full(labels.shape, 255, np.uint8)]), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).save(tmp_path / "mask.jpg", quality=75)
    assert Image.open(tmp_path / "palette.png").mode == "P"
    for name in ("palette.png", "rgba.png"):
        np.testing.assert_array_equal(decode(tmp_path / name), labels)
    assert (decode(tmp_path / "mask.jpg") == labels).mean() > 0.99  # JPEG ringing at the borders only


def test_greyscale_and_16_bit_masks_decode_to_the_right_labels(tmp_path):
    grey_levels = np.array([0, 128, 255])
    labels = np.zeros((60, 90), np.uint8)
    labels[20:40], labels[40:] = 1, 2
    Image.fromarray(grey_levels[labels].astype(np.uint8), mode="L").save(tmp_path / "grey.png")
    Image.fromarray((grey_levels[labels] * 257).astype(np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    expected = np.array([PALETTE_NAMES.index(name) for name in ("black", "grey", "white")])[labels]
    for name in ("grey.png", "deep.png"):
        np.testing.assert_array_equal(decode(tmp_path / name), expected)


def test_transparent_mask_pixels_are_white_as_in_photos(tmp_path):
    rgba = np.zeros((60, 90, 4), np.uint8)
    rgba[:30] = (0, 0, 255, 255)  # opaque blue above, fully transparent below
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "mask.png")
    assert label_names(decode(tmp_path / "mask.png")) == ("blue", "white")


def test_exif_orientation_turns_a_mask_as_it_turns_its_photo(tmp_path):
    labels, rgb = three_segment_mask()
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned clockwise, displayed turned back
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, -1))).save(tmp_path / "mask.png", exif=exif)
    photo = np.ascontiguousarray(np.rot90(np.full((60, 90, 3), 128, np.uint8), -1))
    Image.fromarray(photo).save(tmp_path / "photo.jpg", exif=exif)
    pair = prepare_pair(tmp_path / "photo.jpg", tmp_path / "photo.jpg", tmp_path / "mask.png", tmp_path / "mask.png",
                        long_side=90, min_segment_fraction=0.001)
    assert pair.content.shape[:2] == (60, 90)
    np.testing.assert_array_equal(pair.content_labels, labels)


def test_mask_of_another_shape_is_refused_with_both_sizes():
    check_mask_shape((393, 700), (394, 700))  # example pair 7: one pixel short
    check_mask_shape((197, 350), (394, 700))  # the photo's shape at half the size
    check_mask_shape((1000, 700), (1002, 700))  # 2 px, 0.2 %
    with pytest.raises(InputImageError, match="mask is 350x394 px but its photo is 700x394 px"):
        check_mask_shape((394, 350), (394, 700))  # half the width, stretched before this issue
    with pytest.raises(InputImageError, match="mask is 700x390 px but its photo is 700x400 px"):
        check_mask_shape((390, 700), (400, 700))  # 10 px, 2.5 %
    with pytest.raises(InputImageError, match="mask is 100x97 px but its photo is 100x100 px"):
        check_mask_shape((97, 100), (100, 100))  # 3 px but 3 %


def test_mask_mostly_off_the_palette_is_refused_naming_the_colour_and_its_share():
    pixels = np.zeros((10, 10, 3), np.uint8)
    pixels[:, :7] = (200, 120, 40)  # orange: far from every palette colour
    pixels[:, 7:] = (0, 0, 255)
    with pytest.raises(InputImageError, match=r"70% of its pixels .* RGB \(200, 120, 40\) at 70%"):
        snap_to_palette(pixels)
    pixels[:, :4] = (0, 0, 255)  # now 30 % orange: an unusual but usable mask
    labels, _, _ = snap_to_palette(pixels)
    assert {PALETTE_NAMES[label] for label in np.unique(labels)} <= set(PALETTE_NAMES)


def test_masks_sharing_no_label_are_paired_by_policy(tmp_path):
    photo = np.full((64, 64, 3), 0.5, np.float32)
    blue, green = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    blue[...] = PALETTE["blue"]
    green[...] = PALETTE["green"]
    pair = prepare_pair(photo, photo, blue, green, long_side=64, min_segment_fraction=0.001)
    assert pair.diagnostics.matched == () and pair.diagnostics.content_only == ("blue",)
    assert pair.diagnostics.style_only == ("green",)


def test_a_label_map_saved_as_a_mask_reads_back_as_the_same_labels(tmp_path):
    labels = np.zeros((30, 40), np.uint8)
    labels[10:, :] = PALETTE_NAMES.index("white")
    labels[20:, 20:] = PALETTE_NAMES.index("purple")
    Image.fromarray(label_map_to_rgb(labels)).save(tmp_path / "mask.png")
    read_back, _ = load_label_map(tmp_path / "mask.png", photo_shape=(30, 40), working_shape=(30, 40),
                                  min_segment_fraction=0.001)
    np.testing.assert_array_equal(read_back, labels)
