"""The configuration object: defaults in one place, JSON round trip, stable hash, validation."""

import json
import subprocess
import sys

import pytest

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
    with pytest.raises(ValueError, match="same length"):
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


def test_automatic_mask_options_are_checked():
    assert TransferConfig().auto_masks == "when_missing"
    with pytest.raises(ValueError, match="auto_masks must be one of"):
        TransferConfig(auto_masks="always")
    with pytest.raises(ValueError, match="auto_mask_segments must be 1 to 9"):
        TransferConfig(auto_mask_segments=10)
