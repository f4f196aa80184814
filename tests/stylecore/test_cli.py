"""The stylecore command line, run as a user would."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

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
    content_size = Image.open(paths["content"]).size
    assert image.shape == (content_size[1], content_size[0], 3)  # the content photo's own size
    sidecar = json.loads(output.with_suffix(".json").read_text())
    assert sidecar["config"]["size"] == 64 and sidecar["config"]["seed"] == 3
    assert max(sidecar["working_shape"]) == 64 and sidecar["output_shape"] == list(image.shape[:2])
    assert [stage["stage"] for stage in sidecar["stages"]] == [1, 2]
    assert len(sidecar["history"]) == sum(stage["iterations"] for stage in sidecar["stages"])


def test_bad_input_is_one_sentence_not_a_traceback(tmp_path):
    completed = run_cli("transfer", "--content", str(tmp_path / "missing.png"), "--style",
                        str(tmp_path / "missing.png"), "--output", str(tmp_path / "out.png"), "--size", "64")
    assert completed.returncode == 2
    assert "image not found" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "out.png").exists()


def test_output_size_and_format_follow_the_options(tmp_path):
    paths = example_pair_paths(5)
    output = tmp_path / "out.jpg"
    completed = run_cli("transfer", "--content", str(paths["content"]), "--style", str(paths["style"]),
                        "--output", str(output), "--size", "64", "--output-size", "300", "--jpeg-quality", "80",
                        "--stage1-iterations", "3", "--stage2-iterations", "2", "--quiet")
    assert completed.returncode == 0, completed.stderr
    with Image.open(output) as written:
        assert written.format == "JPEG" and max(written.size) == 300
    assert "(300x225, optimised at 64x48)" in completed.stderr


def test_an_unwritable_format_is_one_sentence_before_any_work(tmp_path):
    paths = example_pair_paths(5)
    completed = run_cli("transfer", "--content", str(paths["content"]), "--style", str(paths["style"]),
                        "--output", str(tmp_path / "out.gif"), "--size", "64")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.strip().count("\n") == 0 and "extension must be one of" in completed.stderr
    assert "stage 1" not in completed.stderr and not list(tmp_path.iterdir())


def test_help_lists_every_configuration_option():
    completed = run_cli("transfer", "--help")
    assert completed.returncode == 0
    for option in ("--size", "--extractor", "--weights", "--stage1-iterations", "--stage2-iterations",
                   "--seed", "--photorealism-weight", "--content-only-policy", "--output-size",
                   "--affine-radius", "--affine-epsilon", "--finish", "--jpeg-quality"):
        assert option in completed.stdout
