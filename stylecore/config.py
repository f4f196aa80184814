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
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

Extractor = Literal["squeezenet", "vgg19"]
Init = Literal["content", "noise", "colour_transfer"]
ContentOnlyPolicy = Literal["global_style", "content_only"]
AutoMasks = Literal["when_missing", "on", "off"]


def _option(default: Any, help_text: str) -> Any:
    """A field with its default and the one-line help the command lines show for it."""
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Hyperparameters of one two-stage transfer (ALGORITHM.md), with the project's defaults.

    Layer names and weights default to the chosen extractor's own (see
    :data:`stylecore.extractors.DEFAULT_LAYERS`) when left as ``None``. Each field's help text is
    in its metadata; the command lines are generated from these fields.
    """

    size: int = _option(700, "long side of the working size in pixels; both photos are resized to it")
    extractor: Extractor = _option("squeezenet", "feature extractor: squeezenet or vgg19")
    content_layers: tuple[str, ...] | None = _option(
        None, "layers carrying content, comma-separated")
    style_layers: tuple[str, ...] | None = _option(
        None, "layers carrying style, comma-separated")
    style_layer_weights: tuple[float, ...] | None = _option(
        None, "weight w_l of each style layer, comma-separated")
    content_weight: float = _option(1.0, "alpha: weight of the content loss")
    style_weight: float = _option(3.0, "beta: weight of the masked-Gram style loss")
    tv_weight: float = _option(1e-3, "gamma: weight of the total-variation loss")
    photorealism_weight: float = _option(1e4, "lambda: weight of the matting-Laplacian loss in stage 2")
    init: Init = _option("colour_transfer", "stage 1's starting image: content, noise, or colour_transfer "
                         "(per-segment colour statistics of the style)")
    coarse_scale: float = _option(0.5, "stage 1 runs at this fraction of --size; stage 2 at full size")
    stage1_iterations: int = _option(200, "L-BFGS iterations of stage 1 (segmented style, no photorealism)")
    stage2_iterations: int = _option(100, "L-BFGS iterations of stage 2 (with the photorealism term)")
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
        7, "most segments automatic matching keeps; segments one photo lacks are dropped, so a pair keeps 1 to this many")
    laplacian_epsilon: float = _option(1e-7, "epsilon of the matting Laplacian")
    laplacian_radius: int = _option(1, "window radius of the matting Laplacian (1: 3x3 windows)")

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
        """First 16 hex digits of the SHA-256 of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

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


def _validation_problems(config: TransferConfig) -> list[str]:
    problems = _type_problems(config)
    if problems:
        return problems
    if config.size * config.coarse_scale < MIN_STAGE_SIZE:
        problems.append(f"size x coarse_scale must be at least {MIN_STAGE_SIZE} px, "
                        f"got {config.size} x {config.coarse_scale}")
    if not 0.0 < config.coarse_scale <= 1.0:
        problems.append(f"coarse_scale must be in (0, 1], got {config.coarse_scale}")
    if config.stage1_iterations < 0 or config.stage2_iterations < 0:
        problems.append("iteration counts must not be negative")
    for name in ("content_weight", "style_weight", "tv_weight", "photorealism_weight",
                 "tolerance", "min_segment_fraction", "laplacian_epsilon"):
        if getattr(config, name) < 0:
            problems.append(f"{name} must not be negative")
    if not 1 <= config.auto_mask_segments <= 9:
        problems.append(f"auto_mask_segments must be 1 to 9 (the mask palette), got {config.auto_mask_segments}")
    if config.laplacian_radius < 1:
        problems.append("laplacian_radius must be at least 1")
    if (config.style_layers is not None and config.style_layer_weights is not None
            and len(config.style_layers) != len(config.style_layer_weights)):
        problems.append("style_layers and style_layer_weights must have the same length")
    return problems
