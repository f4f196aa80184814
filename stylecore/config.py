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
from collections.abc import Mapping
from typing import Any, Literal

Extractor = Literal["squeezenet", "vgg19"]
Init = Literal["content", "noise", "colour_transfer"]
ContentOnlyPolicy = Literal["global_style", "content_only"]


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Hyperparameters of one two-stage transfer (ALGORITHM.md), with the project's defaults.

    Layer names and weights default to the chosen extractor's own (see
    :data:`stylecore.extractors.DEFAULT_LAYERS`) when left as ``None``.
    """

    size: int = 700
    """Long side of the working size, in pixels; both photos are resized to it."""
    extractor: Extractor = "squeezenet"
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] | None = None
    style_layer_weights: tuple[float, ...] | None = None
    content_weight: float = 5.0
    """alpha: weight of the content loss."""
    style_weight: float = 100.0
    """beta: weight of the masked-Gram style loss."""
    tv_weight: float = 1e-3
    """gamma: weight of the total-variation loss."""
    photorealism_weight: float = 1e4
    """lambda: weight of the matting-Laplacian photorealism loss in stage 2."""
    init: Init = "content"
    """Stage 1's starting image: the content photo, seeded noise, or the per-segment colour transfer."""
    coarse_scale: float = 0.5
    """Stage 1 runs at this fraction of ``size`` (1.0: full size); stage 2 always runs at full size."""
    stage1_iterations: int = 200
    stage2_iterations: int = 100
    tolerance: float = 1e-5
    """Stop a stage early when the relative loss decrease of an L-BFGS step falls below this."""
    seed: int = 0
    min_segment_fraction: float = 0.001
    """Mask components smaller than this fraction of the image are merged into their neighbours."""
    content_only_policy: ContentOnlyPolicy = "global_style"
    """What a segment present only in the content mask is styled by: the whole style photo
    (``global_style``), or nothing, keeping only content and photorealism terms (``content_only``)."""
    laplacian_epsilon: float = 1e-7
    laplacian_radius: int = 1

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


def _validation_problems(config: TransferConfig) -> list[str]:
    problems = []
    if config.size < 16:
        problems.append(f"size must be at least 16 px, got {config.size}")
    if config.extractor not in ("squeezenet", "vgg19"):
        problems.append(f"extractor must be 'squeezenet' or 'vgg19', got {config.extractor!r}")
    if config.init not in ("content", "noise", "colour_transfer"):
        problems.append(f"init must be 'content', 'noise' or 'colour_transfer', got {config.init!r}")
    if config.content_only_policy not in ("global_style", "content_only"):
        problems.append("content_only_policy must be 'global_style' or 'content_only', "
                        f"got {config.content_only_policy!r}")
    if not 0.0 < config.coarse_scale <= 1.0:
        problems.append(f"coarse_scale must be in (0, 1], got {config.coarse_scale}")
    if config.stage1_iterations < 0 or config.stage2_iterations < 0:
        problems.append("iteration counts must not be negative")
    for name in ("content_weight", "style_weight", "tv_weight", "photorealism_weight",
                 "tolerance", "min_segment_fraction", "laplacian_epsilon"):
        if getattr(config, name) < 0:
            problems.append(f"{name} must not be negative")
    if config.laplacian_radius < 1:
        problems.append("laplacian_radius must be at least 1")
    if (config.style_layers is not None and config.style_layer_weights is not None
            and len(config.style_layers) != len(config.style_layer_weights)):
        problems.append("style_layers and style_layer_weights must have the same length")
    return problems
