"""A pair's pre-flight: every header-only check, and what only decoding finds."""

import numpy as np
import pytest
from PIL import Image

from stylecore.config import TransferConfig
from stylecore.errors import InputImageError
from stylecore.pair import check_stage_shape, prepare_pair, probe_pair
from tests.conftest import example_pair_paths


def test_every_example_pair_passes_the_probe_at_the_default_configuration():
    for number in range(1, 61):
        probe_pair(**example_pair_paths(number), config=TransferConfig())


def test_probe_reads_headers_only_and_decoding_finds_the_rest(tmp_path):
    paths = example_pair_paths(2)
    (tmp_path / "cut.png").write_bytes(paths["content"].read_bytes()[:20_000])
    probe_pair(tmp_path / "cut.png", paths["style"], config=TransferConfig())
    with pytest.raises(InputImageError, match="cannot decode content photo .*cut.png, truncated or corrupt"):
        prepare_pair(tmp_path / "cut.png", paths["style"], long_side=64, min_segment_fraction=0.001)


def test_probe_refuses_masks_of_another_shape_and_tiny_photos_named_by_role(tmp_path):
    paths = example_pair_paths(2)
    Image.new("RGB", (350, 394), (0, 0, 255)).save(tmp_path / "half.png")
    with pytest.raises(InputImageError, match=r"style mask .*half.png is 350x394 px but its photo is 700x\d+ px"):
        probe_pair(paths["content"], paths["style"], paths["content_mask"], tmp_path / "half.png",
                   config=TransferConfig())
    with pytest.raises(InputImageError, match="content photo is 5x4 px"):
        probe_pair(np.zeros((4, 5, 3), np.float32), paths["style"], config=TransferConfig())


def test_short_side_at_the_coarsest_stage_is_judged_against_the_deepest_layer_used():
    config = TransferConfig(size=700, coarse_scale=0.5)  # stage 1 at 350 px; SqueezeNet's fire5 needs 15
    check_stage_shape((15, 350), config)
    with pytest.raises(InputImageError, match=r"coarsest stage \(350x14 px\) .* under the 15 px"):
        check_stage_shape((14, 350), config)
    check_stage_shape((14, 350), config.replace(style_layers=("conv1", "fire2", "fire3")))  # these need 7
    with pytest.raises(InputImageError, match="under the 16 px"):
        check_stage_shape((15, 350), config.replace(extractor="vgg19"))  # block5_conv1 needs 16
