"""Label maps as datasets ship them: the 60 example pairs' masks rewritten as class ids and in another
palette read back to the same label maps and the same transfer; a Cityscapes-shaped map with the
shipped group table; every problem one sentence."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecore.config import TransferConfig
from stylecore.errors import InputImageError
from stylecore.extractors import load_extractor
from stylecore.label_maps import read_label_groups
from stylecore.masks import PALETTE_NAMES, MaskReading, read_mask, snap_to_palette
from stylecore.pair import prepare_pair
from stylecore.transfer import transfer
from tests.conftest import example_pair_paths

REPOSITORY = Path(__file__).resolve().parents[2]
CITYSCAPES = REPOSITORY / "manifests" / "label-groups" / "cityscapes.json"
ADE20K = REPOSITORY / "manifests" / "label-groups" / "ade20k.json"
MIN_SEGMENT_FRACTION = 0.001
CLASS_IDS = np.array([2 + 3 * index for index in range(len(PALETTE_NAMES))], np.uint8)
"""The class id each palette colour becomes (2 to 26: ascending in palette order, as the labels are)."""
OTHER_PALETTE = np.array([(20 + 25 * index, 200 - 20 * index, 50 + 7 * index) for index in range(len(PALETTE_NAMES))],
                         np.uint8)
"""Another dataset's palette, one colour per palette colour, ascending as 0xRRGGBB in palette order."""


def rewrite_masks(number: int, folder: Path) -> dict[str, Path]:
    """Example pair ``number``'s colour masks, snapped as cleaning snaps them, written as a class-id PNG
    (``<side>-ids.png``) and a PNG in :data:`OTHER_PALETTE` (``<side>-colours.png``); the paths by name."""
    paths = {}
    for side in ("content", "style"):
        labels, _, _ = snap_to_palette(read_mask(example_pair_paths(number)[f"{side}_mask"]), MIN_SEGMENT_FRACTION)
        paths[f"{side}_ids"] = folder / f"{number}-{side}-ids.png"
        paths[f"{side}_colours"] = folder / f"{number}-{side}-colours.png"
        Image.fromarray(CLASS_IDS[labels], mode="L").save(paths[f"{side}_ids"])
        Image.fromarray(OTHER_PALETTE[labels]).save(paths[f"{side}_colours"])
    return paths


def palette_table(values: list) -> dict[str, list]:
    """A group table naming each rewritten label by its palette colour, in palette order."""
    return {name: [value] for name, value in zip(PALETTE_NAMES, values, strict=True)}


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tables")
    paths = {"ids": folder / "ids.json", "colours": folder / "colours.json"}
    paths["ids"].write_text(json.dumps(palette_table([int(value) for value in CLASS_IDS])))
    paths["colours"].write_text(json.dumps(palette_table([f"#{r:02x}{g:02x}{b:02x}" for r, g, b in OTHER_PALETTE])))
    return paths


def named(pair) -> tuple[np.ndarray, np.ndarray]:
    """Each side's label map as label names, which compare across mask formats."""
    return tuple(np.asarray(pair.label_names)[labels] for labels in (pair.content_labels, pair.style_labels))


def test_the_60_pairs_rewritten_as_ids_and_colours_clean_to_todays_label_maps(tmp_path, tables):
    for number in range(1, 61):
        rewritten = rewrite_masks(number, tmp_path)
        photos = {key: path for key, path in example_pair_paths(number).items() if not key.endswith("mask")}
        today = prepare_pair(**example_pair_paths(number), long_side=128, min_segment_fraction=MIN_SEGMENT_FRACTION)
        for mask_format in ("ids", "colours"):
            reading = MaskReading(mask_format=mask_format, groups=read_label_groups(tables[mask_format]))
            pair = prepare_pair(**photos, content_mask=rewritten[f"content_{mask_format}"],
                                style_mask=rewritten[f"style_{mask_format}"], long_side=128,
                                min_segment_fraction=MIN_SEGMENT_FRACTION, reading=reading)
            for mine, reference in zip(named(pair), named(today), strict=True):
                np.testing.assert_array_equal(mine, reference, err_msg=f"pair {number}, {mask_format}")
            assert pair.diagnostics.matched == today.diagnostics.matched, number
            assert pair.diagnostics.content_only == today.diagnostics.content_only, number
            assert pair.diagnostics.content.mask_format == mask_format


@pytest.mark.parametrize("number", [1, 26, 48])
def test_a_transfer_from_ids_or_colours_gives_the_same_output_as_from_the_palette_masks(tmp_path, tables, number):
    extractor = load_extractor("squeezenet")
    config = TransferConfig(size=96, coarse_scale=1.0, stage1_iterations=4, stage2_iterations=2)
    rewritten = rewrite_masks(number, tmp_path)
    paths = example_pair_paths(number)
    outputs = {"palette": transfer(**paths, config=config, extractor=extractor)}
    for mask_format, table in (("ids", None), ("colours", tables["colours"])):
        outputs[mask_format] = transfer(
            paths["content"], paths["style"], rewritten[f"content_{mask_format}"], rewritten[f"style_{mask_format}"],
            config=config.replace(mask_format=mask_format, label_groups=table and str(table)), extractor=extractor)
    digests = {name: hashlib.sha256(result.output.tobytes()).hexdigest() for name, result in outputs.items()}
    assert digests["ids"] == digests["palette"] and digests["colours"] == digests["palette"]
    assert len(outputs["ids"].diagnostics.matched) == len(outputs["palette"].diagnostics.matched) >= 2
    assert outputs["ids"].diagnostics.matched[0].startswith("class ")


STREET_IDS = np.array([7, 11, 2, 27, 21, 24, 17, 23, 26], np.uint8)
"""The class id of each palette colour in :func:`class_id_mask` (Cityscapes' label ids, 2 to 27)."""


def class_id_mask(number: int, side: str) -> np.ndarray:
    """Pair ``number``'s mask as a dataset ships one: class ids 2 to 27, 255 along the borders between them."""
    labels, _, _ = snap_to_palette(read_mask(example_pair_paths(number)[f"{side}_mask"]), MIN_SEGMENT_FRACTION)
    ids = STREET_IDS[labels]
    edges = np.zeros(labels.shape, bool)
    edges[:-1] |= labels[:-1] != labels[1:]
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    ids[edges] = 255
    return ids


def test_an_8_bit_class_id_map_is_refused_as_a_palette_mask_and_read_as_ids(tmp_path):
    """The reported symptom: such a file used to read as a near-black palette mask, every segment merged."""
    paths = example_pair_paths(26)
    for side in ("content", "style"):
        Image.fromarray(class_id_mask(26, side), mode="L").save(tmp_path / f"{side}.png")
    with pytest.raises(InputImageError, match=r"a class-id map, not a palette mask; give --mask-format ids$"):
        prepare_pair(paths["content"], paths["style"], tmp_path / "content.png", tmp_path / "style.png",
                     long_side=128, min_segment_fraction=MIN_SEGMENT_FRACTION)
    reading = MaskReading(mask_format="ids", ignore_label=255)
    pair = prepare_pair(paths["content"], paths["style"], tmp_path / "content.png", tmp_path / "style.png",
                        long_side=128, min_segment_fraction=MIN_SEGMENT_FRACTION, reading=reading)
    today = prepare_pair(**paths, long_side=128, min_segment_fraction=MIN_SEGMENT_FRACTION)
    assert len(pair.diagnostics.matched) == len(today.diagnostics.matched) >= 3
    assert "class 255" not in pair.label_names and pair.diagnostics.content.ignored_fraction > 0.005
    today_names = np.asarray([f"class {value}" for value in STREET_IDS])[today.content_labels]
    assert np.mean(today_names == np.asarray(pair.label_names)[pair.content_labels]) > 0.97


def cityscapes_map(layout: str) -> np.ndarray:
    """A 60 x 80 map of Cityscapes training ids (19 classes, 255 ignore) shaped like a street: sky over
    buildings and trees over road, a vehicle and (in ``"content"``) a person, ignore along the horizon."""
    ids = np.full((60, 80), 10, np.uint8)  # sky
    ids[20:40, :40], ids[20:40, 40:] = 2, 8  # building, vegetation
    ids[40:] = 0  # road
    ids[44:56, 50:70] = 13 if layout == "content" else 14  # car against truck: one "vehicle" group
    if layout == "content":
        ids[30:50, 10:16] = 11  # person
        ids[24:28, 60:64] = 17  # a motorcycle in the trees, also a vehicle
    ids[19:21] = 255
    ids[0:2, 0:2] = 255
    return ids


def test_a_cityscapes_shaped_map_with_the_shipped_table(tmp_path):
    photo = np.zeros((60, 80, 3), np.uint8)
    for side in ("content", "style"):
        Image.fromarray(cityscapes_map(side), mode="L").save(tmp_path / f"{side}.png")
    reading = MaskReading.from_config(TransferConfig(mask_format="ids", ignore_label=255, label_groups=str(CITYSCAPES)))
    pair = prepare_pair(photo, photo, tmp_path / "content.png", tmp_path / "style.png", long_side=80,
                        min_segment_fraction=0.001, reading=reading)
    assert pair.diagnostics.matched == ("road", "building", "vegetation", "sky", "vehicle")
    assert pair.diagnostics.content_only == ("person",) and pair.diagnostics.style_only == ()
    content = np.asarray(pair.label_names)[pair.content_labels]
    assert content[20, 5] == "building" and content[20, 70] == "vegetation" and content[19, 70] == content[0, 0] == "sky"
    assert content[50, 60] == content[25, 62] == "vehicle"
    assert pair.diagnostics.content.ignored_fraction == pytest.approx((2 * 80 + 4) / (60 * 80))


def test_the_shipped_tables_cover_their_datasets_classes_once():
    cityscapes, ade20k = read_label_groups(CITYSCAPES), read_label_groups(ADE20K)
    assert sorted(cityscapes.ids) == list(range(19)) and len(cityscapes.colours) == 19
    assert sorted(ade20k.ids) == list(range(1, 151)) and len(ade20k.names) <= 12
    assert {"sky", "vegetation", "building", "water", "road", "person"} <= set(ade20k.names)


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value))
    return path


@pytest.mark.parametrize("table, message", [
    ({"sky": [10], "air": [10]}, "10 is in both group 'sky' and group 'air'; a label can be in one group only"),
    ({"sky": ["#4682b4", 10], "water": ["#4682B4"]}, "is in both group 'sky' and group 'water'"),
    ({"sky": ["blue"]}, "group 'sky' lists 'blue', which is neither a class id (0 to 65535) nor a colour"),
    ({"sky": [70000]}, "lists 70000, which is neither"),
    ({"sky": []}, "group 'sky' must be a non-empty list"),
    ([10, 11], "must be a JSON object mapping group names to lists"),
])
def test_a_bad_group_table_is_one_sentence(tmp_path, table, message):
    with pytest.raises(InputImageError, match=re.escape(message)) as raised:
        read_label_groups(write_json(tmp_path / "groups.json", table))
    assert "\n" not in str(raised.value)


def test_mask_problems_are_one_sentence(tmp_path):
    photo = np.zeros((48, 72, 3), np.uint8)
    prepare = lambda mask, **reading: prepare_pair(  # noqa: E731
        photo, photo, mask, mask, long_side=72, min_segment_fraction=0.001, reading=MaskReading(**reading))
    Image.fromarray(np.arange(48 * 72, dtype=np.uint16).reshape(48, 72) * 18).save(tmp_path / "deep.png")
    with pytest.raises(InputImageError, match="single-channel I;16 image, which holds class ids rather than colours; "
                                              "give --mask-format ids$"):
        prepare(tmp_path / "deep.png", mask_format="colours")
    many = np.random.default_rng(0).integers(0, 255, (48, 72, 3), dtype=np.uint8)
    with pytest.raises(InputImageError, match=r"has \d+ distinct colours, more than the 255 labels a label map can"):
        prepare(many, mask_format="colours")
    with pytest.raises(InputImageError, match="is not a class-id map: .* with \\d+ distinct colours; give --mask-format colours for a dataset's "):
        prepare(many, mask_format="ids")
    with pytest.raises(InputImageError, match="has 3456 distinct labels, more than the 255 a label map can carry; "
                                              "fold them into groups with --label-groups$"):
        prepare(np.arange(48 * 72).reshape(48, 72), mask_format="ids")
    with pytest.raises(InputImageError, match="every pixel of content mask holds the ignore id 255, so it labels nothing"):
        prepare(np.full((48, 72), 255), mask_format="ids", ignore_label=255)
    with pytest.raises(InputImageError, match="lists no class ids, so it groups nothing in ids masks"):
        MaskReading.from_config(TransferConfig(mask_format="ids", label_groups=str(
            write_json(tmp_path / "colours.json", {"sky": ["#4682b4"]}))))


def test_sixteen_bit_ids_and_a_palette_png_of_ids_are_read_as_they_are(tmp_path):
    ids = np.zeros((48, 72), np.uint16)
    ids[:, 36:] = 40000
    Image.fromarray(ids).save(tmp_path / "deep.png")
    indexed = Image.fromarray(np.where(ids > 0, 12, 3).astype(np.uint8), mode="P")
    indexed.putpalette([value for index in range(256) for value in (index, 255 - index, 0)])
    indexed.save(tmp_path / "indexed.png")
    photo = np.zeros((48, 72, 3), np.uint8)
    for name, expected in (("deep.png", ("class 0", "class 40000")), ("indexed.png", ("class 3", "class 12"))):
        pair = prepare_pair(photo, photo, tmp_path / name, tmp_path / name, long_side=72, min_segment_fraction=0.001,
                            reading=MaskReading(mask_format="ids"))
        assert pair.diagnostics.matched == expected
        assert np.asarray(pair.label_names)[pair.content_labels][0, 71] == expected[1]
