"""The configuration object: defaults in one place, JSON round trip, stable hash, validation."""

import dataclasses
import hashlib
import json
import subprocess
import sys
import typing

import pytest

from stylecore import config as config_module
from stylecore.config import TransferConfig


def test_json_round_trip_and_hash():
    config = TransferConfig(size=128, style_layers=("conv1", "fire2"), style_layer_weights=(1.0, 0.5))
    restored = TransferConfig.from_dict(json.loads(config.to_json()))
    assert restored == config and restored.config_hash() == config.config_hash()
    assert config.replace(seed=1).config_hash() != config.config_hash()


def test_hash_is_stable_across_processes():
    code = "from stylecore.config import TransferConfig; print(TransferConfig().config_hash())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == TransferConfig().config_hash()


def test_invalid_values_and_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="coarse_scale"):
        TransferConfig(coarse_scale=0.0)
    with pytest.raises(ValueError, match="one weight per style layer"):
        TransferConfig(style_layers=("conv1",), style_layer_weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="unknown configuration key"):
        TransferConfig().replace(colour="red")


def test_values_of_the_wrong_type_are_refused():
    with pytest.raises(ValueError, match="size must be an integer"):
        TransferConfig.from_dict({"size": "64"})
    with pytest.raises(ValueError, match="size must be an integer"):
        TransferConfig.from_dict({"size": 64.5})
    with pytest.raises(ValueError, match="init must be one of"):
        TransferConfig(init="zeros")
    assert TransferConfig.from_dict({"style_layer_weights": [1, 2.5], "style_layers": ["conv1", "fire2"],
                                     "tv_weight": 0}).style_layer_weights == (1, 2.5)


def test_stages_smaller_than_the_network_accepts_are_refused():
    with pytest.raises(ValueError, match="at least 32 px"):
        TransferConfig(size=48, coarse_scale=0.5)
    assert TransferConfig(size=48, coarse_scale=1.0).size == 48


@pytest.mark.parametrize(("changes", "message"), [
    ({"size": 0}, r"size must be in \[1, inf\), got 0"),
    ({"size": -64}, r"size must be in \[1, inf\), got -64"),
    ({"stage1_iterations": 0}, r"stage1_iterations must be in \[1, inf\), got 0"),
    ({"stage2_iterations": -1}, r"stage2_iterations must be in \[1, inf\), got -1"),
    ({"content_weight": float("nan")}, r"content_weight must be in \[0.0, inf\), got nan"),
    ({"style_weight": -3.0}, r"style_weight must be in \[0.0, inf\), got -3.0"),
    ({"tv_weight": float("inf")}, r"tv_weight must be in \[0.0, inf\), got inf"),
    ({"photorealism_weight": -1.0}, r"photorealism_weight must be in \[0.0, inf\)"),
    ({"coarse_scale": 1.5}, r"coarse_scale must be in \(0.0, 1.0\], got 1.5"),
    ({"coarse_scale": float("nan")}, r"coarse_scale must be in \(0.0, 1.0\], got nan"),
    ({"tolerance": 1.0}, r"tolerance must be in \[0.0, 1.0\), got 1.0"),
    ({"seed": -1}, r"seed must be in \[0, 4294967295\], got -1"),
    ({"min_segment_fraction": 0.9}, r"min_segment_fraction must be in \[0.0, 0.5\], got 0.9"),
    ({"laplacian_epsilon": 0.0}, r"laplacian_epsilon must be in \(0.0, inf\), got 0.0"),
    ({"laplacian_radius": 0}, r"laplacian_radius must be in \[1, 10\], got 0"),
    ({"max_image_pixels": 0}, r"max_image_pixels must be in \[1, inf\), got 0"),
    ({"style_layers": ("conv1", "fire10")}, r"style_layers must name one or more layers of squeezenet "
                                            r"\(conv1, fire2, .*, fire9\), got conv1, fire10"),
    ({"content_layers": ()}, r"content_layers must name one or more layers of squeezenet .* got none"),
    ({"extractor": "vgg19", "content_layers": ("fire3",)}, r"content_layers must name one or more layers of "
                                                           r"vgg19 \(block1_conv1, .*\), got fire3"),
    ({"style_layer_weights": (1.0, 1.0)}, r"style_layer_weights must have one weight per style layer \(5: conv1"),
    ({"style_layers": ("conv1",), "style_layer_weights": (float("nan"),)}, r"style_layer_weights must each be in "
                                                                           r"\[0, inf\), got nan"),
])
def test_every_option_out_of_range_is_refused_naming_it_and_its_range(changes, message):
    with pytest.raises(ValueError, match=message):
        TransferConfig().replace(**changes)


def test_layer_names_are_judged_without_tensorflow():
    code = ("import sys; from stylecore.config import TransferConfig\n"
            "try:\n    TransferConfig(style_layers=('fire10',))\nexcept ValueError:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "False"


def test_every_numeric_option_has_a_range():
    """A new int or float field must say its valid range in config._RANGES (it is then refused outside it)."""
    hints = typing.get_type_hints(TransferConfig)
    numeric = {field.name for field in dataclasses.fields(TransferConfig) if hints[field.name] in (int, float)}
    assert numeric == set(config_module._RANGES)


def test_output_size_is_the_content_photos_own_or_a_long_side():
    assert TransferConfig().output_size == "content"
    sized = TransferConfig(output_size=1400)
    assert TransferConfig.from_dict(json.loads(sized.to_json())) == sized
    assert sized.config_hash() != TransferConfig().config_hash()
    for bad in ("large", 0, 2.5, True):
        with pytest.raises(ValueError, match="output_size"):
            TransferConfig(output_size=bad)
    with pytest.raises(ValueError, match="affine_epsilon"):
        TransferConfig(affine_epsilon=0.0)


def test_the_same_configuration_written_three_ways_hashes_alike():
    written = [TransferConfig.from_dict(json.loads(text)) for text in (
        '{"photorealism_weight": 1e4, "style_layer_weights": [1, 2e0], "style_layers": ["conv1", "fire2"]}',
        '{"photorealism_weight": 10000, "style_layer_weights": [1.0, 2], "style_layers": ["conv1", "fire2"]}',
        '{"photorealism_weight": 10000.0, "style_layer_weights": [1.0, 2.0], "style_layers": ["conv1", "fire2"]}')]
    assert len({config.config_hash() for config in written}) == 1
    assert written[0].config_hash() != TransferConfig(photorealism_weight=10001).config_hash()
    # configurations already written with floats keep the hash earlier runs recorded
    assert TransferConfig().config_hash() == hashlib.sha256(
        TransferConfig().to_json().encode()).hexdigest()[:16]


def test_automatic_mask_options_are_checked():
    assert TransferConfig().auto_masks == "when_missing"
    with pytest.raises(ValueError, match="auto_masks must be one of"):
        TransferConfig(auto_masks="always")
    with pytest.raises(ValueError, match=r"auto_mask_segments must be in \[1, 9\], got 10"):
        TransferConfig(auto_mask_segments=10)
