"""Manifests built from folders: the example manifest reproduced, cross product, keys, ids and refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DPST_DATA

from ray_jobs.errors import ManifestError
from ray_jobs.manifest import read_manifest
from ray_jobs.manifest_builder import build_rows, natural_order, write_manifest
from stylecore.config import TransferConfig
from stylecore.storage import write_bytes

REPOSITORY = Path(__file__).resolve().parents[2]


def run_build(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ray_jobs.manifest", "build", *arguments], capture_output=True,
                          text=True, timeout=60, cwd=REPOSITORY)


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"not decoded by the builder")


def test_one_command_reproduces_the_example_manifest_byte_for_byte(tmp_path):
    output = tmp_path / "dpst.jsonl"
    completed = run_build("--root", str(DPST_DATA), "--content", "input", "--style", "style",
                          "--content-masks", "segmentation", "--style-masks", "segmentation", "--pairing", "key",
                          "--content-key", r"in(\d+)", "--style-key", r"tar(\d+)", "--id", "pair{key:0>2}",
                          "--output", str(output))
    assert completed.returncode == 0, completed.stderr
    assert "wrote 60 rows (60 with masks, 0 with one)" in completed.stderr
    assert output.read_bytes() == (REPOSITORY / "manifests" / "dpst-all.jsonl").read_bytes()


def test_cross_product_with_config_for_every_row_reads_back(tmp_path):
    touch(tmp_path / "photos", "b.jpg", "a.png", "notes.txt", ".hidden.png")
    touch(tmp_path / "styles", "sunset.png", "snow.JPEG", "thumbs.db")
    built = build_rows(root=tmp_path, content=Path("photos"), style=Path("styles"),
                       config={"auto_masks": "on", "size": 64})
    assert [row["id"] for row in built.rows] == ["a--snow", "a--sunset", "b--snow", "b--sunset"]
    assert built.rows[0]["content"] == "photos/a.png" and built.rows[0]["style"] == "styles/snow.JPEG"
    assert built.skipped["non-image files"] == 2 and built.with_masks == 0
    path = tmp_path / "cross.csv"
    write_manifest(built.rows, path)
    entries = read_manifest(path, data_root=tmp_path, config=TransferConfig())
    assert [entry.id for entry in entries] == [row["id"] for row in built.rows]
    assert all(entry.config.auto_masks == "on" and entry.config.size == 64 for entry in entries)
    assert entries[3].content == str(tmp_path / "photos" / "b.jpg") and entries[3].content_mask is None


def test_key_pairing_finds_masks_by_the_same_key_and_counts_the_unpaired(tmp_path):
    touch(tmp_path / "in", "shot_1.png", "shot_2.png", "shot_3.png")
    touch(tmp_path / "st", "look_1.png", "look_2.png")
    touch(tmp_path / "seg", "shot_1.png", "look_1.png", "shot_2.png")
    built = build_rows(root=tmp_path, content=Path("in"), style=Path("st"), content_masks=Path("seg"),
                       style_masks=Path("seg"), pairing="key", content_key=r"shot_(\d+)", style_key=r"look_(\d+)")
    assert [row["id"] for row in built.rows] == ["1", "2"]
    assert built.rows[0]["content_mask"] == "seg/shot_1.png" and built.rows[0]["style_mask"] == "seg/look_1.png"
    assert built.rows[1]["content_mask"] == "seg/shot_2.png" and "style_mask" not in built.rows[1]
    assert (built.with_masks, built.with_one_mask) == (1, 1)  # look_2's segments are found from shot_2's mask
    assert built.skipped["photos without a partner of the same key"] == 1


def test_an_id_collision_is_refused_with_a_sentence(tmp_path):
    touch(tmp_path / "photos", "a b.png", "a_b.png")
    touch(tmp_path / "styles", "s.png")
    with pytest.raises(ManifestError, match=r"gives the id 'a_b--s' to both"):
        build_rows(root=tmp_path, content=Path("photos"), style=Path("styles"))
    completed = run_build("--root", str(tmp_path), "--content", "photos", "--style", "styles",
                          "--output", str(tmp_path / "m.jsonl"))
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1 and not (tmp_path / "m.jsonl").exists()


def test_two_files_with_one_key_and_a_bad_override_are_refused(tmp_path):
    touch(tmp_path / "photos", "in1.png", "in1.jpg")
    touch(tmp_path / "styles", "s.png")
    with pytest.raises(ManifestError, match="both give the key 'in1'"):
        build_rows(root=tmp_path, content=Path("photos"), style=Path("styles"))
    with pytest.raises(ManifestError, match="auto_masks"):
        build_rows(root=tmp_path, content=Path("styles"), style=Path("styles"), config={"auto_masks": "always"})


def test_natural_order_reads_numbers():
    assert sorted(["in10", "in2", "in1", "b"], key=natural_order) == ["b", "in1", "in2", "in10"]


def test_label_maps_with_a_group_table_for_every_row(tmp_path):
    touch(tmp_path / "city" / "leftImg8bit", "aachen_1_leftImg8bit.png", "aachen_2_leftImg8bit.png")
    touch(tmp_path / "city" / "gtFine", "aachen_1_gtFine_labelTrainIds.png", "aachen_2_gtFine_labelTrainIds.png")
    touch(tmp_path / "looks", "night.jpg")
    table = REPOSITORY / "manifests" / "label-groups" / "cityscapes.json"
    completed = run_build("--root", str(tmp_path), "--content", "city/leftImg8bit", "--style", "looks",
                          "--content-masks", "city/gtFine", "--content-key", r"(.+)_(?:leftImg8bit|gtFine_labelTrainIds)",
                          "--mask-format", "ids", "--ignore-label", "255", "--label-groups", str(table),
                          "--output", str(tmp_path / "m.csv"))
    assert completed.returncode == 0, completed.stderr
    assert "wrote 2 rows (0 with masks, 2 with one)" in completed.stderr
    entries = read_manifest(tmp_path / "m.csv", data_root=tmp_path, config=TransferConfig())
    assert [entry.content_mask for entry in entries] == [
        str(tmp_path / "city" / "gtFine" / f"aachen_{number}_gtFine_labelTrainIds.png") for number in (1, 2)]
    assert all(entry.style_mask is None for entry in entries)
    assert {entry.config for entry in entries} == {
        TransferConfig(mask_format="ids", ignore_label=255, label_groups=str(table))}
    (tmp_path / "bad.json").write_text('{"sky": [10], "air": [10]}')
    refused = run_build("--root", str(tmp_path), "--content", "city/leftImg8bit", "--style", "looks",
                        "--mask-format", "ids", "--label-groups", str(tmp_path / "bad.json"),
                        "--output", str(tmp_path / "n.csv"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "10 is in both group 'sky' and group 'air'" in refused.stderr and not (tmp_path / "n.csv").exists()


def test_a_root_in_object_storage_is_listed_and_the_manifest_written_there(object_store):
    root = f"{object_store.bucket('dataset')}/nightly"
    for name in ("photos/IMG_1.png", "photos/IMG_2.jpg", "photos/.hidden.png", "photos/notes.txt",
                 "labels/IMG_1.png", "styles/winter.png"):
        write_bytes(f"{root}/{name}", b"not decoded by the builder")
    built = build_rows(root=root, content="photos", style="styles", content_masks="labels",
                       content_key=r"IMG_(\d+)", labels={"mask_format": "colours"})
    assert [(row["id"], row["content"], row.get("content_mask")) for row in built.rows] == [
        ("1--winter", "photos/IMG_1.png", "labels/IMG_1.png"), ("2--winter", "photos/IMG_2.jpg", None)]
    assert built.skipped["non-image files"] == 1 and built.with_one_mask == 1
    write_manifest(built.rows, f"{root}/manifest.parquet")
    entries = read_manifest(f"{root}/manifest.parquet", data_root=root, config=TransferConfig())
    assert [entry.content for entry in entries] == [f"{root}/photos/IMG_1.png", f"{root}/photos/IMG_2.jpg"]
    assert entries[0].content_mask == f"{root}/labels/IMG_1.png" and entries[0].config.mask_format == "colours"
    with pytest.raises(ManifestError, match=r"no pairs found in s3://dataset/nightly/missing"):
        build_rows(root=root, content="missing", style="styles")
