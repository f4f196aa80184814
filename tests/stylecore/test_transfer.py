"""End to end on a real example pair at about 128 px."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from stylecore.colour import srgb_to_lab
from stylecore.config import TransferConfig
from stylecore.errors import InputImageError
from stylecore.extractors import load_extractor
from stylecore.images import read_image, read_photo, resize_image, to_float, to_uint8
from stylecore.laplacian import matting_laplacian
from stylecore.transfer import finish_transfer, optimise_transfer, output_image, prepare_transfer, transfer
from tests.conftest import example_pair_paths

SMALL = TransferConfig(size=128, coarse_scale=1.0, stage1_iterations=30, stage2_iterations=20, init="content")


@pytest.fixture(scope="module")
def squeezenet():
    return load_extractor("squeezenet")


def photorealism_energy(result) -> float:
    laplacian = matting_laplacian(result.content_image)
    pixels = result.image.reshape(-1, 3).astype(np.float64)
    return float(np.sum(pixels * (laplacian @ pixels)))


def test_style_loss_falls_and_result_is_an_image(squeezenet):
    result = transfer(**example_pair_paths(1), config=SMALL, extractor=squeezenet)
    stage1 = [record["style"] for record in result.history if record["stage"] == 1]
    assert len(stage1) >= 10
    assert stage1[-1] < 0.5 * stage1[0]
    assert result.image.shape == result.content_image.shape == (80, 128, 3)
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert [stage["stage"] for stage in result.stages] == [1, 2]
    assert result.stages[1]["losses"]["photorealism"] > 0.0


def test_photorealism_term_lowers_the_laplacian_energy(squeezenet):
    with_term = transfer(**example_pair_paths(3), config=SMALL, extractor=squeezenet)
    without = transfer(**example_pair_paths(3), config=SMALL.replace(photorealism_weight=0.0),
                       extractor=squeezenet)
    assert photorealism_energy(with_term) < 0.8 * photorealism_energy(without)


def test_same_seed_same_output(squeezenet):
    config = SMALL.replace(init="noise", stage1_iterations=10, stage2_iterations=5, seed=7)
    first = transfer(**example_pair_paths(2), config=config, extractor=squeezenet)
    second = transfer(**example_pair_paths(2), config=config, extractor=squeezenet)
    other_seed = transfer(**example_pair_paths(2), config=config.replace(seed=8), extractor=squeezenet)
    np.testing.assert_array_equal(first.image, second.image)
    assert np.abs(first.image - other_seed.image).mean() > 1e-3


def test_coarse_stage_runs_at_the_smaller_size_and_default_init_is_colour_transfer(squeezenet):
    config = TransferConfig(size=96, stage1_iterations=5, stage2_iterations=3)
    result = transfer(**example_pair_paths(4), config=config, extractor=squeezenet)
    coarse, full = result.stages
    assert max(coarse["height"], coarse["width"]) == 48 and max(full["height"], full["width"]) == 96
    summary = result.summary()
    assert summary["config"]["init"] == "colour_transfer" and summary["config_hash"] == config.config_hash()


def channel_spread(image: np.ndarray) -> float:
    """Mean absolute difference between colour channels: 0 for a grey image."""
    return float(np.abs(image - image.mean(axis=2, keepdims=True)).mean())


@pytest.mark.parametrize("policy", ["global_style", "content_only"])
def test_grey_content_with_masks_sharing_no_label_follows_the_policy(tmp_path, squeezenet, policy):
    paths = example_pair_paths(1)
    grey = Image.open(paths["content"]).convert("L")
    grey.save(tmp_path / "grey.png")
    Image.new("RGB", grey.size, (0, 0, 255)).save(tmp_path / "blue.png")
    Image.new("RGB", Image.open(paths["style"]).size, (0, 255, 0)).save(tmp_path / "green.png")
    config = SMALL.replace(size=64, stage1_iterations=5, stage2_iterations=3, init="colour_transfer",
                           content_only_policy=policy)
    result = transfer(tmp_path / "grey.png", paths["style"], tmp_path / "blue.png", tmp_path / "green.png",
                      config=config, extractor=squeezenet)
    assert result.diagnostics.matched == () and result.diagnostics.content_only == ("blue",)
    style_losses = [record["style"] for record in result.history]
    assert channel_spread(result.content_image) < 1e-6
    if policy == "global_style":  # the whole style photo styles the whole grey content: colour appears
        assert min(style_losses) > 0.0 and channel_spread(result.image) > 0.02
    else:  # nothing styles it: no style term, and the result stays grey
        assert max(style_losses) == 0.0 and channel_spread(result.image) < 0.005


def test_narrow_panorama_is_refused_before_any_extractor_work(tmp_path):
    Image.new("RGB", (2000, 40), (90, 120, 150)).save(tmp_path / "panorama.png")
    config = SMALL.replace(size=700, coarse_scale=0.5)
    with pytest.raises(InputImageError, match="coarsest stage .* under the 15 px that squeezenet's layers need"
                                              ".* raise --size to at least 1500"):
        transfer(tmp_path / "panorama.png", example_pair_paths(1)["style"], config=config,
                 extractor=None)  # refused by the header probe: no extractor is ever loaded


def test_the_output_is_the_content_photos_own_size_and_follows_output_size(squeezenet):
    config = SMALL.replace(size=64, stage1_iterations=5, stage2_iterations=3)
    result = transfer(**example_pair_paths(1), config=config, extractor=squeezenet)
    assert result.image.shape == (40, 64, 3)
    assert result.output.shape == (437, 700, 3) and result.output.dtype == np.uint8  # in1.png is 700 x 437
    shrunk = resize_image(result.output.astype(np.float32) / 255.0, result.image.shape[:2])
    delta_e = np.linalg.norm(srgb_to_lab(shrunk) - srgb_to_lab(result.image), axis=-1)
    assert np.median(delta_e) < 1.5  # the full-size output is the working result, with the photo's detail
    assert result.summary()["output_shape"] == [437, 700] and result.summary()["working_shape"] == [40, 64]
    assert transfer(**example_pair_paths(1), config=config.replace(output_size=300),
                    extractor=squeezenet).output.shape == (187, 300, 3)
    at_working_size = transfer(**example_pair_paths(1), config=config.replace(output_size=64), extractor=squeezenet)
    np.testing.assert_array_equal(at_working_size.output, to_uint8(at_working_size.image))


MEMORY_CHILD = """
import json, resource, sys
from stylecore.config import TransferConfig
from stylecore.transfer import finish_transfer, optimise_transfer, output_image, prepare_transfer, transfer
from stylecore.extractors import load_extractor
content, style, small = sys.argv[1:4]
config = TransferConfig(size=64, coarse_scale=1.0, stage1_iterations=3, stage2_iterations=2, init="content")
extractor = load_extractor("squeezenet")
transfer(small, style, config=config, extractor=extractor)  # every code path once, on a 700 px photo
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = transfer(content, style, config=config, extractor=extractor)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "shape": result.output.shape}))
"""


@pytest.fixture(scope="module")
def four_megapixels(tmp_path_factory):
    """Example pair 1's content photo upscaled to 2600 x 1623 (4.2 MP), as an 8-bit PNG."""
    path = tmp_path_factory.mktemp("large") / "large.png"
    with Image.open(example_pair_paths(1)["content"]) as small:
        small.convert("RGB").resize((2600, 1623), Image.Resampling.LANCZOS).save(path, compress_level=1)
    return path


def peak_growth_per_pixel(child: str, *arguments) -> float:
    """Run ``child`` in a fresh process; the growth of its peak memory it prints, in bytes per output pixel."""
    completed = subprocess.run([sys.executable, "-c", child, *map(str, arguments)], capture_output=True,
                               text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    assert figures["shape"] == [1623, 2600, 3]
    return figures["growth_kib"] * 1024 / (2600 * 1623)


def test_memory_grows_with_the_output_by_tens_of_bytes_per_pixel(four_megapixels):
    """A 4 MP photo on a 64 px optimisation, in a fresh process: the peak resident memory of the
    whole transfer grows by the full-size steps (next test) and TensorFlow's allocator noise
    (about 20 bytes per pixel measured), not by the optimisation's kilobytes per working pixel nor
    by full-size maps of the 12 coefficients (48 bytes per pixel more)."""
    paths = example_pair_paths(1)
    bytes_per_pixel = peak_growth_per_pixel(MEMORY_CHILD, four_megapixels, paths["style"], paths["content"])
    assert bytes_per_pixel < 60, f"peak memory grew {bytes_per_pixel:.0f} bytes per output pixel"


FULL_SIZE_MEMORY_CHILD = """
import json, resource, sys
import numpy as np
from stylecore.config import TransferConfig
from stylecore.images import read_photo, resize_image
from stylecore.transfer import output_image
large, small = sys.argv[1:3]
def full_size(path):
    photo = read_photo(path)
    working = resize_image(photo, (40, 64))
    return output_image(np.clip(working * 0.8 + 0.1, 0.0, 1.0), working, photo, TransferConfig(size=64))
full_size(small)  # every code path once, on a 700 px photo
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
output = full_size(large)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "shape": output.shape}))
"""


def test_the_full_size_steps_hold_the_photo_in_8_bits_and_nothing_per_pixel_beyond_it(four_megapixels):
    """Decoding a 4 MP photo, its working copy and the output step, in a fresh process (no
    TensorFlow allocations to blur the figure): 9.5 bytes per pixel measured, at the decoding
    (Pillow's 4-byte pixels and their export as the 8-bit photo), then the photo and the output
    (3 each); a float32 photo, and a copy to turn it upright, as read before, measured 25."""
    bytes_per_pixel = peak_growth_per_pixel(FULL_SIZE_MEMORY_CHILD, four_megapixels, example_pair_paths(1)["content"])
    assert bytes_per_pixel < 13, f"peak memory grew {bytes_per_pixel:.1f} bytes per output pixel"


def test_a_photo_file_and_its_float_array_give_the_same_result_and_output(tmp_path, squeezenet):
    """The photo as decoded (8 bits) and as float give identical results when the working size is the
    photo's (the 60 example pairs at the default size) and identical outputs at any size."""
    paths = example_pair_paths(1)
    with Image.open(paths["content"]) as photo:
        photo.convert("RGB").resize((128, 80), Image.Resampling.LANCZOS).save(tmp_path / "small.png")
    config = SMALL.replace(stage1_iterations=3, stage2_iterations=2, output_size=300)
    from_file = transfer(tmp_path / "small.png", paths["style"], config=config, extractor=squeezenet)
    from_array = transfer(read_image(tmp_path / "small.png"), paths["style"], config=config, extractor=squeezenet)
    np.testing.assert_array_equal(from_file.image, from_array.image)
    assert from_file.output.shape == (188, 300, 3)
    np.testing.assert_array_equal(from_file.output, from_array.output)
    photo = read_photo(paths["content"])  # 700 px against the 128 px working size
    assert photo.dtype == np.uint8
    full_size = output_image(from_file.image, from_file.content_image, photo, SMALL)
    assert full_size.shape == (437, 700, 3)
    np.testing.assert_array_equal(
        full_size, output_image(from_file.image, from_file.content_image, to_float(photo), SMALL))


def test_the_phases_run_on_other_threads_give_transfers_result(squeezenet):
    """prepare_transfer, optimise_transfer and finish_transfer, each on its own thread as a batch worker
    runs them, compose to exactly what transfer() gives: same image, output and loss history."""
    paths = example_pair_paths(3)
    config = SMALL.replace(size=64, stage1_iterations=3, stage2_iterations=2, coarse_scale=0.75, output_size=96)
    whole = transfer(paths["content"], paths["style"], paths["content_mask"], paths["style_mask"], config=config,
                     extractor=squeezenet)
    with ThreadPoolExecutor(max_workers=1) as host, ThreadPoolExecutor(max_workers=1) as device:
        prepared = host.submit(prepare_transfer, paths["content"], paths["style"], paths["content_mask"],
                               paths["style_mask"], config=config, extractor=squeezenet).result()
        optimised = device.submit(optimise_transfer, prepared).result()
        phased = host.submit(finish_transfer, prepared, optimised).result()
    assert prepared.initial.shape[:2] == prepared.coarse.content.shape[:2] != prepared.pair.content.shape[:2]
    np.testing.assert_array_equal(phased.image, whole.image)
    np.testing.assert_array_equal(phased.output, whole.output)
    assert phased.history == whole.history
    assert [stage["iterations"] for stage in phased.stages] == [stage["iterations"] for stage in whole.stages]
    assert set(phased.timings) == set(whole.timings) >= {"prepare", "laplacian", "stage1", "stage2", "output", "total"}
