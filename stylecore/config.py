"""The one configuration object: every hyperparameter of a transfer, with its default.

A :class:`TransferConfig` travels with every result (the CLI's JSON sidecar, the batch job's
Parquet rows), so a result can always be traced to the settings that made it. Its
:meth:`~TransferConfig.config_hash` is stable across processes and Python versions: it hashes
the canonical JSON form, not Python's ``hash``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from stylecore.architectures import DEFAULT_LAYERS, layer_names

Extractor = Literal["squeezenet", "vgg19"]
Init = Literal["content", "noise", "colour_transfer"]
ContentOnlyPolicy = Literal["global_style", "content_only"]
Finish = Literal["none", "local_affine"]
AutoMasks = Literal["when_missing", "on", "off"]
MaskFormat = Literal["palette", "ids", "colours"]


def _option(default: Any, help_text: str) -> Any:
    """A field with its default and the one-line help the command lines show for it."""
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Hyperparameters of one two-stage transfer (ALGORITHM.md), with the project's defaults.

    Layer names and weights default to the chosen extractor's own (see
    :data:`stylecore.architectures.DEFAULT_LAYERS`) when left as ``None``. Each field's help text is
    in its metadata; the command lines are generated from these fields.
    """

    size: int = _option(500, "long side of the working size in pixels: the size the optimisation runs at")
    output_size: int | Literal["content"] = _option(
        "content", "long side of the written result in pixels, or content: the content photo's own size; "
        "the result is carried from --size to it by local affine colour maps")
    extractor: Extractor = _option("squeezenet", "feature extractor: squeezenet or vgg19")
    content_layers: tuple[str, ...] | None = _option(
        None, "layers carrying content, comma-separated")
    style_layers: tuple[str, ...] | None = _option(
        None, "layers carrying style, comma-separated")
    style_layer_weights: tuple[float, ...] | None = _option(
        None, "weight w_l of each style layer, comma-separated")
    content_weight: float = _option(1.0, "alpha: weight of the content loss")
    style_weight: float = _option(6.0, "beta: weight of the masked-Gram style loss")
    tv_weight: float = _option(1e-3, "gamma: weight of the total-variation loss")
    photorealism_weight: float = _option(4e4, "lambda: weight of the matting-Laplacian loss in stage 2")
    init: Init = _option("colour_transfer", "stage 1's starting image: content, noise, or colour_transfer "
                         "(per-segment colour statistics of the style)")
    coarse_scale: float = _option(0.5, "stage 1 runs at this fraction of --size; stage 2 at full size")
    stage1_iterations: int = _option(200, "L-BFGS iterations of stage 1 (segmented style, no photorealism)")
    stage2_iterations: int = _option(60, "L-BFGS iterations of stage 2 (with the photorealism term)")
    tolerance: float = _option(1e-5, "stop a stage when a step lowers the loss by less than this fraction")
    seed: int = _option(0, "seed of noise initialisation and random weights")
    min_segment_fraction: float = _option(
        0.001, "mask components smaller than this fraction of the image merge into their neighbours")
    content_only_policy: ContentOnlyPolicy = _option(
        "global_style", "style of a segment only the content mask has: global_style (the whole style "
        "photo) or content_only (no style term)")
    auto_masks: AutoMasks = _option(
        "when_missing", "automatic segment matching (stylecore.segment_matching): when_missing (pairs "
        "without masks), on (also ignore given masks), or off (no masks means one whole-image segment)")
    auto_mask_segments: int = _option(
        4, "most segments automatic matching keeps; segments one photo lacks are dropped, so a pair keeps 1 to this many")
    mask_format: MaskFormat = _option(
        "palette", "how mask files are read (stylecore.label_maps): palette (colour-coded in the 9-colour "
        "palette, anti-aliasing snapped), ids (single-channel class ids, 8 or 16 bit) or colours (every exact "
        "colour a label, as a dataset's palette)")
    ignore_label: int | None = _option(
        None, "with mask_format ids: the class id that labels nothing (often 255 or 0); its pixels take "
        "their nearest labelled neighbour's label")
    label_groups: str | None = _option(
        None, "JSON file (path or URI) mapping group names to lists of class ids or \"#rrggbb\" colours: the "
        "listed labels become one segment each group; others keep their own")
    laplacian_epsilon: float = _option(1e-7, "epsilon of the matting Laplacian")
    laplacian_radius: int = _option(1, "window radius of the matting Laplacian (1: 3x3 windows)")
    max_image_pixels: int = _option(
        150_000_000, "refuse photos and masks with more pixels than this (decompression bombs); 150 MP "
        "covers every camera's single frame, at 1.8 GB as float RGB")
    affine_radius: int = _option(4, "window radius of the local affine fit that carries the result from "
                                 "--size to --output-size (guided filter, He et al. 2013)")
    affine_epsilon: float = _option(1e-5, "ridge regulariser of the local affine fit, squared RGB: windows "
                                    "flatter than this get a flat fit rather than amplified noise")
    finish: Finish = _option("none", "last step at the working size: none, or local_affine (the result "
                             "replaced by its local affine fit, DPST's final smoothing)")

    def __post_init__(self) -> None:
        problems = _validation_problems(self)
        if problems:
            raise ValueError("invalid configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; the input of :meth:`config_hash`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON form (:func:`canonical_json`).

        Equal settings hash alike however they were written: ``1e4``, ``10000`` and ``10000.0``
        for a float field all hash as ``10000.0``.
        """
        return hashlib.sha256(canonical_json(self).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TransferConfig:
        """Build from a dict such as :meth:`to_dict` gives; unknown keys are an error."""
        return cls().replace(**values)

    def replace(self, **changes: Any) -> TransferConfig:
        """A copy with ``changes`` applied; list values become tuples; unknown keys raise."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(unknown)}")
        normalised = {key: tuple(value) if isinstance(value, list) else value
                      for key, value in changes.items()}
        return dataclasses.replace(self, **normalised)


def canonical_json(config: TransferConfig) -> str:
    """:meth:`TransferConfig.to_json` with every number of a float field (or list of floats) as a float.

    A float field also accepts integers (JSON and CSV overrides arrive untyped), and ``json`` writes
    ``10000`` and ``10000.0`` differently; this form is what :meth:`TransferConfig.config_hash` hashes.
    """
    hints = typing.get_type_hints(TransferConfig)
    values = config.to_dict()
    for name, value in values.items():
        if _is_float_field(hints[name]) and value is not None:
            values[name] = [float(item) for item in value] if isinstance(value, list) else float(value)
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def _is_float_field(hint: Any) -> bool:
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_float_field(argument) for argument in arguments if argument is not type(None))
    if typing.get_origin(hint) is tuple:
        return arguments[0] is float
    return hint is float


MIN_STAGE_SIZE = 32
"""Smallest long side, in px, that any stage may run at: below it SqueezeNet's pooling has no input."""


def _type_problems(config: TransferConfig) -> list[str]:
    """Fields whose value is not of the declared type (JSON overrides arrive untyped)."""
    problems = []
    hints = typing.get_type_hints(TransferConfig)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not _matches(value, hints[field.name]):
            problems.append(f"{field.name} must be {_describe(hints[field.name])}, got {value!r}")
    return problems


def _matches(value: Any, hint: Any) -> bool:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return value in arguments
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, argument) for argument in arguments)
    if origin is tuple:
        return isinstance(value, tuple) and all(_matches(item, arguments[0]) for item in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) and not isinstance(value, bool)


def _describe(hint: Any) -> str:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(argument) for argument in arguments)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(argument) for argument in arguments)
    if origin is tuple:
        return f"a list of {_describe(arguments[0])}"
    return {type(None): "null", int: "an integer", float: "a number", str: "a string"}.get(hint, repr(hint))


_UNBOUNDED = math.inf
_RANGES: dict[str, tuple[float, float, str]] = {
    # field: (low, high, brackets), where "[)" means low <= value < high and so on
    "size": (1, _UNBOUNDED, "[)"),
    "content_weight": (0.0, _UNBOUNDED, "[)"),
    "style_weight": (0.0, _UNBOUNDED, "[)"),
    "tv_weight": (0.0, _UNBOUNDED, "[)"),
    "photorealism_weight": (0.0, _UNBOUNDED, "[)"),
    "coarse_scale": (0.0, 1.0, "(]"),
    "stage1_iterations": (1, _UNBOUNDED, "[)"),
    "stage2_iterations": (1, _UNBOUNDED, "[)"),
    "tolerance": (0.0, 1.0, "[)"),
    "seed": (0, 2**32 - 1, "[]"),  # NumPy's and Keras' seeds are unsigned 32-bit
    "min_segment_fraction": (0.0, 0.5, "[]"),
    "laplacian_epsilon": (0.0, _UNBOUNDED, "()"),  # 0 makes flat windows' covariance singular
    "laplacian_radius": (1, 10, "[]"),
    "max_image_pixels": (1, _UNBOUNDED, "[)"),
    "affine_radius": (1, 32, "[]"),
    "affine_epsilon": (0.0, _UNBOUNDED, "()"),  # 0 makes flat windows' fit singular
    "auto_mask_segments": (1, 9, "[]"),  # one palette colour per segment
}
_OPTIONAL_RANGES: dict[str, tuple[float, float, str]] = {
    "ignore_label": (0, 65535, "[]"),  # a 16-bit label map's ids
}
"""The valid range of every numeric option. NaN and infinities fall outside every range."""


def _in_range(value: float, low: float, high: float, brackets: str) -> bool:
    above = value >= low if brackets[0] == "[" else value > low
    below = value <= high if brackets[1] == "]" else value < high
    return above and below and math.isfinite(value)


def _range_text(low: float, high: float, brackets: str) -> str:
    return f"{brackets[0]}{low}, {'inf' if high == _UNBOUNDED else high}{brackets[1]}"


def _validation_problems(config: TransferConfig) -> list[str]:
    problems = _type_problems(config)
    if problems:
        return problems
    for name, (low, high, brackets) in _RANGES.items():
        value = getattr(config, name)
        if not _in_range(value, low, high, brackets):
            problems.append(f"{name} must be in {_range_text(low, high, brackets)}, got {value!r}")
    for name, (low, high, brackets) in _OPTIONAL_RANGES.items():
        value = getattr(config, name)
        if value is not None and not _in_range(value, low, high, brackets):
            problems.append(f"{name} must be null or in {_range_text(low, high, brackets)}, got {value!r}")
    if config.mask_format == "palette" and (config.ignore_label is not None or config.label_groups is not None):
        problems.append("ignore_label and label_groups apply to label maps: set mask_format to ids or colours")
    if config.output_size != "content" and not _in_range(config.output_size, 1, _UNBOUNDED, "[)"):
        problems.append(f"output_size must be 'content' or in [1, inf), got {config.output_size!r}")
    if not problems and config.size * config.coarse_scale < MIN_STAGE_SIZE:
        problems.append(f"size x coarse_scale must be at least {MIN_STAGE_SIZE} px, "
                        f"got {config.size} x {config.coarse_scale}")
    return problems + _layer_problems(config)


def _layer_problems(config: TransferConfig) -> list[str]:
    """Layer names the extractor lacks, empty layer lists, and weights that do not fit their layers."""
    problems = []
    known = layer_names(config.extractor)
    for name in ("content_layers", "style_layers"):
        layers = getattr(config, name)
        if layers is None:
            continue
        unknown = [layer for layer in layers if layer not in known]
        if unknown or not layers:
            problems.append(f"{name} must name one or more layers of {config.extractor} "
                            f"({', '.join(known)}), got {', '.join(layers) or 'none'}")
    weights = config.style_layer_weights
    if weights is not None:
        layers = config.style_layers or DEFAULT_LAYERS[config.extractor].style_layers
        if len(weights) != len(layers):
            problems.append(f"style_layer_weights must have one weight per style layer ({len(layers)}: "
                            f"{', '.join(layers)}), got {len(weights)}")
        if not all(_in_range(weight, 0.0, _UNBOUNDED, "[)") for weight in weights):
            problems.append(f"style_layer_weights must each be in [0, inf), got {', '.join(map(repr, weights))}")
    return problems
