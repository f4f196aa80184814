"""Every fallback is said: one note per kind, from real pairs, on the command line and in the result."""

import json

import numpy as np
from PIL import Image

from stylecore import fallbacks
from stylecore.config import TransferConfig
from stylecore.masks import PALETTE, pair_segments
from stylecore.pair import prepare_pair
from tests.conftest import example_pair_paths

GREY_LEVELS = {"blue": 2, "green": 3, "black": 5, "white": 7, "red": 13, "grey": 27}
"""The grey level each palette colour of a mask is rewritten to (issue 21's NaN case)."""
OFF_PALETTE_LEVEL = 255
"""The level of pixels farther than 40 from every palette colour."""


def write_grey_mask(source, destination):
    """``source``, a colour-coded mask, rewritten as an 8-bit grey image of :data:`GREY_LEVELS`."""
    rgb = np.asarray(Image.open(source).convert("RGB")).astype(np.int32)
    palette = np.array([PALETTE[name] for name in GREY_LEVELS])
    distances = ((rgb[..., None, :] - palette) ** 2).sum(axis=-1)
    grey = np.array(list(GREY_LEVELS.values()), np.uint8)[distances.argmin(axis=-1)]
    grey[distances.min(axis=-1) > 40 ** 2] = OFF_PALETTE_LEVEL
    Image.fromarray(grey, "L").save(destination)


def notes(stderr):
    return [line.removeprefix("note: ") for line in stderr.splitlines() if line.startswith("note: ")]


def test_a_segment_with_no_position_on_a_grid_drops_out_of_that_layer_and_says_so(tmp_path, stylecore_cli):
    # Pair 26's masks as grey class-id maps (the issue's case; read as palette masks they were taken
    # for black and white, and are now refused as class-id maps): class 255, the anti-aliased borders,
    # is a sliver that the coarse stage's 32 px style labels lose; its Gram there was 0 / 0, the loss NaN.
    paths = example_pair_paths(26)
    for side in ("content", "style"):
        write_grey_mask(paths[f"{side}_mask"], tmp_path / f"{side}.png")
    completed = stylecore_cli("transfer", "--content", paths["content"], "--style", paths["style"], "--content-mask",
                              tmp_path / "content.png", "--style-mask", tmp_path / "style.png", "--mask-format", "ids",
                              "--output", tmp_path / "out.png", "--size", "64", "--stage1-iterations", "3",
                              "--stage2-iterations", "3")
    assert completed.returncode == 0, completed.stderr
    left_out = [note for note in notes(completed.stderr) if "covers no position" in note]
    assert left_out and all(note.startswith("segment class ") and "covers no position of the " in note
                            for note in left_out), completed.stderr
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert left_out == [note for note in sidecar["fallbacks"] if "covers no position" in note]
    assert all(np.isfinite(stage["losses"]["total"]) for stage in sidecar["stages"])


def test_masks_sharing_no_label_say_the_whole_photo_styles_the_whole_content(tmp_path, stylecore_cli):
    paths = example_pair_paths(1)
    Image.new("RGB", Image.open(paths["content"]).size, PALETTE["blue"]).save(tmp_path / "blue.png")
    Image.new("RGB", Image.open(paths["style"]).size, PALETTE["green"]).save(tmp_path / "green.png")
    completed = stylecore_cli("transfer", "--content", paths["content"], "--style", paths["style"], "--content-mask",
                              tmp_path / "blue.png", "--style-mask", tmp_path / "green.png", "--output",
                              tmp_path / "out.png", "--size", "64", "--stage1-iterations", "2", "--stage2-iterations",
                              "1", "--quiet")
    assert completed.returncode == 0, completed.stderr
    assert notes(completed.stderr) == ["masks share no label: the whole content photo is styled by the whole "
                                       "style photo"]


def test_automatic_masks_say_so(tmp_path, stylecore_cli):
    paths = example_pair_paths(2)
    completed = stylecore_cli("transfer", "--content", paths["content"], "--style", paths["style"], "--output",
                              tmp_path / "out.png", "--size", "64", "--stage1-iterations", "2", "--stage2-iterations",
                              "1", "--quiet")
    assert completed.returncode == 0, completed.stderr
    assert notes(completed.stderr)[0] == "automatic masks used: the segments were matched between the photos " \
                                         "automatically"


def test_a_segment_dropped_as_too_small_is_named_with_its_side():
    # Pair 14 at 64 px: the anti-aliased grey between black and white is a segment of both masks
    # after snapping, and every piece of it is under 0.1% of the image.
    pair = prepare_pair(**example_pair_paths(14), long_side=64, min_segment_fraction=0.001)
    assert pair.diagnostics.content.dropped_labels == ("grey",) == pair.diagnostics.style.dropped_labels
    assert "grey" not in pair.diagnostics.content.labels
    assert fallbacks.pair_fallbacks(pair.diagnostics, TransferConfig()) == [
        "content mask's segment grey dropped as too small (every piece under 0.10% of the image)",
        "style mask's segment grey dropped as too small (every piece under 0.10% of the image)"]


def test_a_content_only_segment_says_how_it_is_styled():
    pair = prepare_pair(**example_pair_paths(30), long_side=64, min_segment_fraction=0.001)
    assert pair.diagnostics.content_only == ("white",)
    assert fallbacks.pair_fallbacks(pair.diagnostics, TransferConfig()) == [
        "content-only segment white styled by the whole style photo"]
    assert fallbacks.pair_fallbacks(pair.diagnostics, TransferConfig(content_only_policy="content_only")) == [
        "content-only segment white left unstyled (content_only_policy)"]


def test_a_pair_that_falls_back_on_nothing_has_no_notes_and_notes_outside_a_block_are_dropped():
    labels = np.zeros((8, 8), np.uint8)
    assert fallbacks.pair_fallbacks(pair_segments(labels, labels), TransferConfig()) == []
    fallbacks.record("outside any block")
    with fallbacks.collecting() as outer:
        fallbacks.record("first")
        with fallbacks.collecting() as inner:
            fallbacks.record("inner")
        fallbacks.record("first")
    assert outer == ["first"] and inner == ["inner"]
