"""What each feature extractor offers, known without building it: layer names, default layers, and
the smallest input each layer accepts.

Options and photo sizes are judged before TensorFlow is imported (a typo on the command line then
costs milliseconds, not TensorFlow's seconds of start-up), so what a configuration may name, and
how small a photo the network can take, must be known here. :mod:`stylecore.extractors` builds its
networks from these same tables, and its tests check the two agree.

Geometry: along each spatial axis a valid-padded window of ``kernel`` px moved by ``stride`` px
maps n px to ``(n - kernel) // stride + 1``; every other layer of both networks ('same'-padded
convolutions, concatenations) keeps the size. A layer needs at least one output cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

# (squeeze filters, expand filters) of each fire module of SqueezeNet v1.1, and the max-pools
# that come before fire2, fire4 and fire6 (Iandola et al. 2016, v1.1 variant).
FIRE_MODULES = {"fire2": (16, 64), "fire3": (16, 64), "fire4": (32, 128), "fire5": (32, 128),
                "fire6": (48, 192), "fire7": (48, 192), "fire8": (64, 256), "fire9": (64, 256)}
POOL_BEFORE = ("fire2", "fire4", "fire6")
SQUEEZENET_CONV1 = (3, 2)
"""(kernel, stride) of SqueezeNet's valid-padded first convolution; its max-pools are the same."""
VGG19_POOL = (2, 2)
"""(kernel, stride) of VGG-19's max-pools, one at the start of every block after the first."""


@dataclasses.dataclass(frozen=True)
class LayerChoice:
    """Which activations carry content and style, and each style layer's weight w_l."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...]


DEFAULT_LAYERS: dict[str, LayerChoice] = {
    # Early layers carry the colour and texture statistics a photo style is made of; the seed
    # paper found early style layers with large weights best. fire3 is SqueezeNet's third
    # activation, the seed paper's content layer. Measured in benchmarks/layers.py.
    "squeezenet": LayerChoice(content_layers=("fire3",),
                              style_layers=("conv1", "fire2", "fire3", "fire4", "fire5"),
                              style_layer_weights=(1.0, 1.0, 1.0, 1.0, 1.0)),
    # Luan et al. 2017, as in ALGORITHM.md.
    "vgg19": LayerChoice(content_layers=("block4_conv2",),
                         style_layers=("block1_conv1", "block2_conv1", "block3_conv1",
                                       "block4_conv1", "block5_conv1"),
                         style_layer_weights=(1.0, 1.0, 1.0, 1.0, 1.0)),
}


def _squeezenet_windows() -> dict[str, tuple[tuple[int, int], ...]]:
    windows = [SQUEEZENET_CONV1]
    layers = {"conv1": tuple(windows)}
    for fire in FIRE_MODULES:
        if fire in POOL_BEFORE:
            windows.append(SQUEEZENET_CONV1)
        layers[fire] = tuple(windows)
    return layers


def _vgg19_windows() -> dict[str, tuple[tuple[int, int], ...]]:
    names = sorted({*DEFAULT_LAYERS["vgg19"].content_layers, *DEFAULT_LAYERS["vgg19"].style_layers})
    return {name: (VGG19_POOL,) * (int(name[len("block")]) - 1) for name in names}


LAYER_WINDOWS: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "squeezenet": _squeezenet_windows(), "vgg19": _vgg19_windows()}
"""Per extractor, every layer it can return, with the (kernel, stride) valid windows before it.
VGG-19 returns only the layers of its default choice (the paper's)."""


def layer_names(extractor: str) -> tuple[str, ...]:
    """Every layer ``extractor`` can return, in network order."""
    return tuple(LAYER_WINDOWS[extractor])


def minimum_input_side(extractor: str, layers: Sequence[str]) -> int:
    """Smallest height and width, in px, for which each of ``layers`` has at least one cell."""
    needed = 1
    for name in layers:
        side = 1
        for kernel, stride in reversed(LAYER_WINDOWS[extractor][name]):
            side = (side - 1) * stride + kernel
        needed = max(needed, side)
    return needed


def layer_choice(extractor: str, content_layers: Sequence[str] | None, style_layers: Sequence[str] | None,
                 style_layer_weights: Sequence[float] | None) -> LayerChoice:
    """The configured layers, each ``None`` replaced by the extractor's default."""
    default = DEFAULT_LAYERS[extractor]
    styles = tuple(style_layers) if style_layers is not None else default.style_layers
    if style_layer_weights is not None:
        weights = tuple(style_layer_weights)
    elif style_layers is None:
        weights = default.style_layer_weights
    else:
        weights = (1.0,) * len(styles)
    return LayerChoice(tuple(content_layers) if content_layers is not None else default.content_layers,
                       styles, weights)
