"""Feature extractors: the shared SqueezeNet weights, layer shapes, and clear errors."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

from stylecore.architectures import layer_names, minimum_input_side
from stylecore.errors import WeightsError
from stylecore.extractors import SQUEEZENET_FILE, find_squeezenet_weights, load_extractor
from tests.conftest import WEIGHTS_DIR


@pytest.fixture(scope="module")
def squeezenet():
    return load_extractor("squeezenet")


def test_squeezenet_layer_shapes_at_700_px(squeezenet):
    features = squeezenet(tf.zeros((1, 467, 700, 3)))
    # conv1 3x3/2 valid, then 3x3/2 max-pools before fire2, fire4 and fire6.
    expected = {"conv1": (233, 349, 64), "fire2": (116, 174, 128), "fire3": (116, 174, 128),
                "fire4": (57, 86, 256), "fire5": (57, 86, 256), "fire6": (28, 42, 384),
                "fire7": (28, 42, 384), "fire8": (28, 42, 512), "fire9": (28, 42, 512)}
    assert {name: tuple(value.shape[1:]) for name, value in features.items()} == expected


def test_squeezenet_weights_are_the_pretrained_ones(squeezenet):
    kernel, bias = squeezenet.model.get_layer("conv1").get_weights()
    assert kernel.shape == (3, 3, 3, 64) and bias.shape == (64,)
    # Trained first-layer filters are far from Keras' zero-bias glorot initialisation.
    assert np.abs(bias).max() > 0.05
    assert squeezenet.weights_sha256 == "17154246284f555591549ac2c83e127abfbf4307dc4b0060fdaa2931d0fa38da"


def test_with_layers_computes_a_subset_and_rejects_unknown_names(squeezenet):
    subset = squeezenet.with_layers(["fire3", "conv1"])
    assert set(subset(tf.zeros((1, 64, 64, 3)))) == {"fire3", "conv1"}
    with pytest.raises(ValueError, match="no layer"):
        squeezenet.with_layers(["fire10"])


def test_missing_weights_say_where_they_were_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr("stylecore.extractors.DEFAULT_WEIGHTS_DIR", tmp_path / "cache")
    with pytest.raises(WeightsError, match="not found") as error:
        find_squeezenet_weights()
    assert str(tmp_path / SQUEEZENET_FILE) in str(error.value)
    assert "STYLECORE_WEIGHTS_DIR" in str(error.value)


def test_wrong_checksum_is_refused(tmp_path):
    damaged = tmp_path / SQUEEZENET_FILE
    shutil.copy(WEIGHTS_DIR / SQUEEZENET_FILE, damaged)
    with open(damaged, "r+b") as file:
        file.seek(-10, 2)
        file.write(b"0123456789")
    with pytest.raises(WeightsError, match="checksum"):
        load_extractor("squeezenet", weights=damaged)


def test_vgg19_random_weights_give_the_original_layers():
    vgg = load_extractor("vgg19", weights="random", seed=1)
    features = vgg(tf.zeros((1, 32, 48, 3)))
    assert set(features) == {"block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1",
                             "block4_conv2", "block5_conv1"}
    assert tuple(features["block1_conv1"].shape) == (1, 32, 48, 64)
    assert vgg.weights_sha256 is None
    with pytest.raises(WeightsError, match="not found"):
        load_extractor("vgg19", weights="/nonexistent/vgg19.h5")


@pytest.mark.parametrize("name", ["squeezenet", "vgg19"])
def test_layer_table_matches_the_built_networks(name, squeezenet):
    """architectures.py judges options and photo sizes without TensorFlow: its table must be the network."""
    extractor = squeezenet if name == "squeezenet" else load_extractor("vgg19", weights="random")
    assert extractor.layers == layer_names(name)
    for layer in layer_names(name):
        side = minimum_input_side(name, [layer])
        single = extractor.with_layers([layer])
        assert tuple(single(tf.zeros((1, side, side + 5, 3)))[layer].shape[1:2]) == (1,)
        if side > 1:
            assert smaller_gives_nothing(single, layer, side - 1)


def smaller_gives_nothing(single, layer: str, side: int) -> bool:
    """True when a ``side`` px high input leaves ``layer`` no row: the network refuses it (TensorFlow's
    kernels; a convolution under Keras 3.15 and later) or its feature map is empty (a pooling under
    Keras 3.15 and later gives a height of 0)."""
    try:
        return single(tf.zeros((1, side, side + 5, 3)))[layer].shape[1] == 0
    except (tf.errors.OpError, ValueError):
        return True
