"""Messy masks, each case on a real file where the example data shows it."""

import numpy as np
import pytest
from PIL import Image

from stylecore.errors import InputImageError
from stylecore.masks import (PALETTE, PALETTE_NAMES, clean_label_map, label_map_to_rgb, load_label_map, merge_specks,
                             snap_to_palette)
from stylecore.pair import prepare_pair
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


def test_greyscale_mask_loads():
    path = DPST_DATA / "segmentation" / "in8.png"
    assert Image.open(path).mode == "L"
    labels, diagnostics = load_label_map(path, photo_shape=(463, 700), working_shape=(463, 700),
                                         min_segment_fraction=0.001)
    assert set(diagnostics.labels) <= {"black", "white", "grey"}
    assert len(diagnostics.labels) >= 2


def test_mask_one_pixel_short_is_stretched_to_its_photo_and_reported():
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


def test_no_masks_is_one_segment_and_one_mask_alone_is_refused():
    paths = example_pair_paths(2)
    pair = prepare_pair(paths["content"], paths["style"], long_side=48, min_segment_fraction=0.001)
    assert pair.diagnostics.matched == ("blue",) and pair.diagnostics.content is None
    with pytest.raises(InputImageError, match="both"):
        prepare_pair(paths["content"], paths["style"], paths["content_mask"], long_side=48,
                     min_segment_fraction=0.001)


def test_unreadable_mask_is_a_clear_error(tmp_path):
    broken = tmp_path / "mask.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputImageError, match="cannot read mask"):
        load_label_map(broken, photo_shape=(10, 10), working_shape=(10, 10), min_segment_fraction=0.01)
    with pytest.raises(InputImageError, match="must be a non-empty"):
        clean_label_map(np.zeros((4, 4), np.uint8), photo_shape=(4, 4), working_shape=(4, 4),
                        min_segment_fraction=0.01)


def test_a_label_map_saved_as_a_mask_reads_back_as_the_same_labels(tmp_path):
    labels = np.zeros((30, 40), np.uint8)
    labels[10:, :] = PALETTE_NAMES.index("white")
    labels[20:, 20:] = PALETTE_NAMES.index("purple")
    Image.fromarray(label_map_to_rgb(labels)).save(tmp_path / "mask.png")
    read_back, _ = load_label_map(tmp_path / "mask.png", photo_shape=(30, 40), working_shape=(30, 40),
                                  min_segment_fraction=0.001)
    np.testing.assert_array_equal(read_back, labels)
