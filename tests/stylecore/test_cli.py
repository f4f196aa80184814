"""The stylecore command line, run as a user would."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from stylecore.masks import clean_label_map, pair_segments
from tests.conftest import example_pair_paths


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylecore.cli", *arguments], capture_output=True,
                          text=True, timeout=300)


def test_transfer_writes_png_and_sidecar(tmp_path):
    paths = example_pair_paths(5)
    output = tmp_path / "out.png"
    completed = run_cli("transfer", "--content", str(paths["content"]), "--style", str(paths["style"]),
                        "--content-mask", str(paths["content_mask"]), "--style-mask", str(paths["style_mask"]),
                        "--output", str(output), "--size", "64", "--stage1-iterations", "10",
                        "--stage2-iterations", "5", "--seed", "3")
    assert completed.returncode == 0, completed.stderr
    assert "stage 2" in completed.stderr
    image = np.asarray(Image.open(output))
    assert image.shape[2] == 3 and max(image.shape[:2]) == 64
    sidecar = json.loads(output.with_suffix(".json").read_text())
    assert sidecar["config"]["size"] == 64 and sidecar["config"]["seed"] == 3
    assert [stage["stage"] for stage in sidecar["stages"]] == [1, 2]
    assert len(sidecar["history"]) == sum(stage["iterations"] for stage in sidecar["stages"])


def test_bad_input_is_one_sentence_not_a_traceback(tmp_path):
    completed = run_cli("transfer", "--content", str(tmp_path / "missing.png"), "--style",
                        str(tmp_path / "missing.png"), "--output", str(tmp_path / "out.png"), "--size", "64")
    assert completed.returncode == 2
    assert "image not found" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "out.png").exists()


def test_help_lists_every_configuration_option():
    completed = run_cli("transfer", "--help")
    assert completed.returncode == 0
    for option in ("--size", "--extractor", "--weights", "--stage1-iterations", "--stage2-iterations",
                   "--seed", "--photorealism-weight", "--content-only-policy"):
        assert option in completed.stdout


def test_save_masks_writes_the_automatic_label_maps_as_masks_that_read_back(tmp_path):
    paths = example_pair_paths(2)
    output = tmp_path / "out.png"
    completed = run_cli("transfer", "--content", str(paths["content"]), "--style", str(paths["style"]),
                        "--output", str(output), "--size", "64", "--stage1-iterations", "2",
                        "--stage2-iterations", "1", "--save-masks", "--quiet")
    assert completed.returncode == 0, completed.stderr
    sidecar = json.loads(output.with_suffix(".json").read_text())
    assert sidecar["automatic_masks"] and sidecar["diagnostics"]["automatic"]
    content_mask = np.asarray(Image.open(sidecar["saved_masks"]["content"]))
    style_mask = np.asarray(Image.open(tmp_path / "out-style-mask.png"))
    assert content_mask.shape[:2] == np.asarray(Image.open(output)).shape[:2]
    content_labels, style_labels = (clean_label_map(mask, photo_shape=mask.shape[:2], working_shape=mask.shape[:2],
                                                    min_segment_fraction=0.001)[0]
                                    for mask in (content_mask, style_mask))
    assert pair_segments(content_labels, style_labels).matched == tuple(sidecar["diagnostics"]["matched"])
