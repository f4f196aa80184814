"""End to end on a real example pair at about 128 px."""

import numpy as np
import pytest
from PIL import Image

from stylecore.config import TransferConfig
from stylecore.errors import InputImageError
from stylecore.extractors import load_extractor
from stylecore.laplacian import matting_laplacian
from stylecore.transfer import transfer
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
