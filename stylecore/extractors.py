"""Frozen ImageNet CNNs that return named layer activations: SqueezeNet v1.1 and VGG-19.

Both take RGB in [0, 1] and apply the Caffe preprocessing their weights were trained with
(0-255, RGB flipped to BGR, ImageNet mean subtracted) inside :meth:`FeatureExtractor.__call__`.

Weights for SqueezeNet are looked up, in order, at: the path given as ``weights``; the folder
named by ``$STYLECORE_WEIGHTS_DIR``; ``~/.cache/stylecore/weights``. The file is checked against
its SHA-256 before use. :func:`download_squeezenet_weights` fetches it from its public origin
on a machine with internet. VGG-19 takes ``"imagenet"`` (Keras' download), a file path, or
``"random"`` (seeded random weights, for tests and timing where ImageNet weights are absent).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import keras
import tensorflow as tf

from stylecore.architectures import FIRE_MODULES, POOL_BEFORE, SQUEEZENET_CONV1, layer_names
from stylecore.errors import WeightsError
from stylecore.weights import (DEFAULT_WEIGHTS_DIR, SQUEEZENET_FILE, SQUEEZENET_SHA256, SQUEEZENET_URL,
                               WEIGHTS_DIR_VARIABLE)

IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)

@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
    """A frozen CNN whose call maps RGB images in [0, 1] to a dict of named activations.

    ``model`` takes Caffe-preprocessed BGR input of shape (B, H, W, 3) and returns a dict
    {layer name: (B, h_l, w_l, C_l)}; ``weights_sha256`` is ``None`` for random weights.
    """

    name: str
    model: keras.Model
    weights_sha256: str | None

    def __call__(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """Activations of ``images``: (B, H, W, 3) float32 RGB in [0, 1]."""
        # tf.reverse, not images[..., ::-1]: the strided slice's reversal of a 3-long axis and its gradient
        # took 9 ms of an evaluation at 500 px, tf.reverse 1.5 ms; the values are the same.
        bgr = tf.reverse(images, [-1]) * 255.0 - tf.constant(IMAGENET_BGR_MEAN, dtype=images.dtype)
        return self.model(bgr, training=False)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(self.model.output.keys())

    def with_layers(self, layers: Sequence[str]) -> FeatureExtractor:
        """An extractor sharing this one's weights that computes only what ``layers`` need."""
        unknown = sorted(set(layers) - set(self.layers))
        if unknown:
            raise ValueError(f"{self.name} has no layer(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(self.layers)}")
        return dataclasses.replace(self, model=_sub_model(self.model, tuple(dict.fromkeys(layers))))


@functools.lru_cache(maxsize=32)
def _sub_model(model: keras.Model, layers: tuple[str, ...]) -> keras.Model:
    """The model computing ``layers`` of ``model``, built once per pair of them: the same object for
    every pair and stage, so that the objective's compiled graph keyed on it is reused."""
    return keras.Model(model.input, {name: model.output[name] for name in layers})


def load_extractor(name: str, *, weights: str | os.PathLike[str] | None = None,
                   seed: int = 0) -> FeatureExtractor:
    """Build extractor ``name`` ("squeezenet" or "vgg19") with all its candidate layers as outputs.

    ``weights``: for SqueezeNet a file path (else the lookup in the module docstring); for VGG-19
    ``"imagenet"`` (default), ``"random"`` or a file path. ``seed`` seeds random weights.
    """
    if name == "squeezenet":
        path = find_squeezenet_weights(weights)
        model = build_squeezenet()
        load_squeezenet_weights(model, path)
        return FeatureExtractor(name, model, file_sha256(path))
    if name == "vgg19":
        return _load_vgg19(weights if weights is not None else "imagenet", seed)
    raise ValueError(f"unknown extractor {name!r}; choose 'squeezenet' or 'vgg19'")


def build_squeezenet() -> keras.Model:
    """SqueezeNet v1.1 without classifier; outputs conv1 and every fire module's concat (post-ReLU)."""
    inputs = keras.Input(shape=(None, None, 3), name="bgr")
    kernel, stride = SQUEEZENET_CONV1
    x = keras.layers.Conv2D(64, kernel, strides=stride, padding="valid", activation="relu", name="conv1")(inputs)
    outputs = {"conv1": x}
    for fire, (squeeze, expand) in FIRE_MODULES.items():
        if fire in POOL_BEFORE:
            x = keras.layers.MaxPooling2D(kernel, strides=stride, name=f"pool_{fire}")(x)
        x = _fire_module(x, fire, squeeze, expand)
        outputs[fire] = x
    model = keras.Model(inputs, outputs, name="squeezenet_v1_1")
    model.trainable = False
    return model


def _fire_module(x: keras.KerasTensor, name: str, squeeze: int, expand: int) -> keras.KerasTensor:
    squeezed = keras.layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze1x1")(x)
    left = keras.layers.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1x1")(squeezed)
    right = keras.layers.Conv2D(expand, 3, padding="same", activation="relu",
                                name=f"{name}_expand3x3")(squeezed)
    return keras.layers.Concatenate(axis=-1, name=name)([left, right])


def load_squeezenet_weights(model: keras.Model, path: Path) -> None:
    """Copy kernels and biases from the HDF5 file (groups ``conv1``, ``fire2/squeeze1x1`` ...) into ``model``."""
    with h5py.File(path, "r") as file:
        for layer in model.layers:
            if not isinstance(layer, keras.layers.Conv2D):
                continue
            group = file[layer.name.replace("_", "/", 1)]  # fire2_squeeze1x1 -> fire2/squeeze1x1
            arrays = []
            group.visititems(lambda _, item: arrays.append(item[()])
                             if isinstance(item, h5py.Dataset) else None)
            kernel = next(array for array in arrays if array.ndim == 4)
            bias = next(array for array in arrays if array.ndim == 1)
            layer.set_weights([kernel, bias])


def find_squeezenet_weights(weights: str | os.PathLike[str] | None = None) -> Path:
    """The checked SqueezeNet weights file: ``weights`` if given, else the lookup of the module docstring."""
    if weights is not None:
        candidates = [Path(weights)]
    else:
        folders = [Path(os.environ[WEIGHTS_DIR_VARIABLE])] if os.environ.get(WEIGHTS_DIR_VARIABLE) else []
        candidates = [folder / SQUEEZENET_FILE for folder in [*folders, DEFAULT_WEIGHTS_DIR]]
    for candidate in candidates:
        if candidate.is_file():
            digest = file_sha256(candidate)
            if digest != SQUEEZENET_SHA256:
                raise WeightsError(f"SqueezeNet weights at {candidate} fail their checksum "
                                   f"(SHA-256 {digest}, expected {SQUEEZENET_SHA256}): "
                                   "replace the file with the original.")
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise WeightsError(f"SqueezeNet weights not found (looked at {looked}): pass --weights FILE, "
                       f"set {WEIGHTS_DIR_VARIABLE} to the folder holding {SQUEEZENET_FILE}, "
                       "or run `stylecore download-weights` on a machine with internet.")


def download_squeezenet_weights(folder: Path = DEFAULT_WEIGHTS_DIR) -> Path:
    """Download the SqueezeNet weights from their public origin into ``folder`` and check them."""
    path = keras.utils.get_file(SQUEEZENET_FILE, SQUEEZENET_URL, file_hash=SQUEEZENET_SHA256,
                                hash_algorithm="sha256", cache_dir=str(folder), cache_subdir=".")
    return Path(path)


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_vgg19(weights: str | os.PathLike[str], seed: int) -> FeatureExtractor:
    source = str(weights)
    if source == "random":
        keras.utils.set_random_seed(seed)
    elif source != "imagenet" and not Path(source).is_file():
        raise WeightsError(f"VGG-19 weights file not found: {source} "
                           "(give a file, 'imagenet' to download, or 'random').")
    try:
        backbone = keras.applications.VGG19(include_top=False, input_shape=(None, None, 3),
                                            weights=None if source == "random" else source)
    except Exception as error:  # Keras raises bare Exception for failed downloads
        raise WeightsError(f"cannot load VGG-19 weights {source!r}: {error}. Give a weights "
                           "file with --weights, or --weights random for random weights.") from None
    model = keras.Model(backbone.input, {name: backbone.get_layer(name).output for name in layer_names("vgg19")})
    model.trainable = False
    digest = None if source == "random" else (file_sha256(source) if Path(source).is_file() else "imagenet")
    return FeatureExtractor("vgg19", model, digest)

