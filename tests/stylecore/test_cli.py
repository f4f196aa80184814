"""The stylecore command line, run as a user would: in a new process where the process itself is
checked (the console's lines, exit statuses, no traceback), else in this one (``stylecore_cli``)."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from stylecore import local_affine, metrics
from stylecore.masks import clean_label_map, pair_segments
from tests.conftest import example_pair_paths
from tests.stylecore.test_images import bomb_png


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
    # progress lines, fallback notes and the closing "wrote" line only: none of TensorFlow's start-up
    # lines (absl, oneDNN, and on a CUDA build without a GPU "failed call to cuInit")
    assert all(line.startswith(("stage ", "note: ", "wrote ")) for line in completed.stderr.splitlines()), \
        completed.stderr
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
    assert "content photo not found" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "out.png").exists()


def test_output_size_and_format_follow_the_options(tmp_path, stylecore_cli):
    paths = example_pair_paths(5)
    output = tmp_path / "out.jpg"
    completed = stylecore_cli("transfer", "--content", str(paths["content"]), "--style", str(paths["style"]),
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


def refused_inputs(folder: Path) -> dict[str, list[str]]:
    """Per kind of bad input, the transfer arguments that give it; every file is made here with Pillow."""
    paths = example_pair_paths(2)
    content, style = str(paths["content"]), str(paths["style"])
    width, height = Image.open(paths["content"]).size
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not a photo")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)).save(folder / "whole.png")
    (folder / "truncated.png").write_bytes((folder / "whole.png").read_bytes()[:5000])
    bomb_png(folder / "bomb.png", 50000, 50000)
    Image.new("RGB", (3, 3), (200, 100, 50)).save(folder / "tiny.png")
    Image.new("RGB", (3000, 40), (200, 100, 50)).save(folder / "panorama.png")
    Image.new("RGB", (width // 2, height), (0, 0, 255)).save(folder / "half_width_mask.png")
    Image.new("RGB", (width, height), (200, 120, 40)).save(folder / "orange_mask.png")
    class_ids = np.full((height, width), 7, np.uint8)
    class_ids[height // 2:] = 21
    Image.fromarray(class_ids, mode="L").save(folder / "class_ids.png")
    (folder / "groups.json").write_text('{"road": [7], "sky": [7]}')
    masks = ["--content-mask", str(paths["content_mask"]), "--style-mask", str(paths["style_mask"])]
    id_masks = ["--content-mask", str(folder / "class_ids.png"), "--style-mask", str(folder / "class_ids.png")]
    return {
        "missing": ["--content", str(folder / "missing.png"), "--style", style],
        "empty": ["--content", str(folder / "empty.png"), "--style", style],
        "not an image": ["--content", content, "--style", str(folder / "notes.png")],
        "truncated": ["--content", str(folder / "truncated.png"), "--style", style],
        "decompression bomb": ["--content", str(folder / "bomb.png"), "--style", style],
        "over the pixel option": ["--content", content, "--style", style, "--max-image-pixels", "1000"],
        "tiny": ["--content", str(folder / "tiny.png"), "--style", style],
        "narrow panorama": ["--content", content, "--style", str(folder / "panorama.png")],
        "mask of another shape": ["--content", content, "--style", style, "--content-mask",
                                  str(folder / "half_width_mask.png"), "--style-mask", str(paths["style_mask"])],
        "mask off the palette": ["--content", content, "--style", style, "--content-mask",
                                 str(folder / "orange_mask.png"), "--style-mask", str(paths["style_mask"])],
        "one mask only, automatic masks off": ["--content", content, "--style", style, *masks[:2], "--auto-masks", "off"],
        "class-id map as a palette mask": ["--content", content, "--style", style, *id_masks],
        "colour mask as class ids": ["--content", content, "--style", style, *masks, "--mask-format", "ids"],
        "one label in two groups": ["--content", content, "--style", style, *id_masks, "--mask-format", "ids",
                                    "--label-groups", str(folder / "groups.json")],
        "ignore label with palette masks": ["--content", content, "--style", style, *masks, "--ignore-label", "0"],
        "zero size": ["--content", content, "--style", style, *masks, "--size", "0"],
        "zero iterations": ["--content", content, "--style", style, "--stage2-iterations", "0"],
        "NaN weight": ["--content", content, "--style", style, "--tv-weight", "nan"],
        "coarse scale above 1": ["--content", content, "--style", style, "--coarse-scale", "1.5"],
        "unknown layer": ["--content", content, "--style", style, "--style-layers", "conv1,fire10"],
        "not a number": ["--content", content, "--style", style, "--size", "large"],
        "size beyond memory": ["--content", content, "--style", style, "--size", "100000000"],  # 5 PB of labels
    }


def test_every_refused_kind_is_one_line_with_status_2_and_no_output(tmp_path):
    for kind, arguments in refused_inputs(tmp_path).items():
        output = tmp_path / "out.png"
        completed = run_cli("transfer", *arguments, "--output", str(output))
        lines = completed.stderr.splitlines()
        assert completed.returncode == 2, (kind, completed.stderr)
        assert len(lines) == 1 and lines[0].startswith("stylecore"), (kind, completed.stderr)
        assert "Traceback" not in completed.stderr and not output.exists(), kind


def test_save_masks_writes_the_automatic_label_maps_as_masks_that_read_back(tmp_path, stylecore_cli):
    paths = example_pair_paths(2)
    output = tmp_path / "out.png"
    completed = stylecore_cli("transfer", "--content", str(paths["content"]), "--style", str(paths["style"]),
                              "--output", str(output), "--size", "64", "--stage1-iterations", "2",
                              "--stage2-iterations", "1", "--save-masks", "--quiet")
    assert completed.returncode == 0, completed.stderr
    sidecar = json.loads(output.with_suffix(".json").read_text())
    assert sidecar["automatic_masks"] and sidecar["diagnostics"]["masks_found"] == "both"
    content_mask = np.asarray(Image.open(sidecar["saved_masks"]["content"]))
    style_mask = np.asarray(Image.open(tmp_path / "out-style-mask.png"))
    assert content_mask.shape[:2] == tuple(sidecar["working_shape"])  # read back as hand masks at any photo size
    content_labels, style_labels = (clean_label_map(mask, photo_shape=mask.shape[:2], working_shape=mask.shape[:2],
                                                    min_segment_fraction=0.001)[0]
                                    for mask in (content_mask, style_mask))
    assert pair_segments(content_labels, style_labels).matched == tuple(sidecar["diagnostics"]["matched"])


def test_the_content_photos_profile_and_exif_reach_the_output(tmp_path, stylecore_cli):
    """The command decodes the content photo once and hands its pixels to the transfer; the
    profile and EXIF of the written result still come from the content file."""
    paths = example_pair_paths(5)
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Test Camera"  # turned on display; a camera make
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.open(paths["content"]).convert("RGB").save(tmp_path / "camera.jpg", quality=95, exif=exif.tobytes(),
                                                     icc_profile=profile)
    output = tmp_path / "out.png"
    completed = stylecore_cli("transfer", "--content", str(tmp_path / "camera.jpg"), "--style", str(paths["style"]),
                              "--output", str(output), "--size", "64", "--output-size", "200", "--stage1-iterations",
                              "3", "--stage2-iterations", "2", "--quiet")
    assert completed.returncode == 0, completed.stderr
    with Image.open(output) as written:
        assert written.height == 200 and written.width < 200  # upright: the stored landscape turned
        description = ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"])).profile.profile_description
        assert description == "sRGB built-in"
        assert written.getexif()[0x010F] == "Test Camera" and written.getexif()[0x0112] == 1


def test_warm_up_fills_the_kernel_cache_and_says_so(stylecore_cli):
    completed = stylecore_cli("warm-up")
    assert completed.returncode == 0, completed.stderr
    [line] = completed.stdout.splitlines()
    assert line.startswith("compiled a transfer's kernels into numba's cache in ") and line.endswith(" s")
    # the kernels a transfer calls (their helpers are compiled into them) are compiled and in numba's
    # cache on disk, where a later process loads them
    for kernel in (local_affine._moments, local_affine._box_mean, local_affine._solve_windows,
                   local_affine._apply_kernel, metrics._window_fit_residuals):
        assert kernel.signatures, kernel.__name__
        assert list(Path(kernel.stats.cache_path).glob(f"*.{kernel.__name__}-*.nbi")), kernel.__name__
