"""The one call: a content photo, a style photo and their masks in; a restyled photo out.

Two stages, as in Luan et al. (2017) and ALGORITHM.md:

1. segmentation only (lambda = 0), at ``coarse_scale`` of the working size, from the configured
   initial image; most of the colour moves here, where an iteration is cheapest;
2. the full loss with the matting-Laplacian photorealism term at the working size, started from
   stage 1's float result upsampled (no 8-bit round trip, no min-max stretch);

then, optionally, the local affine finish at the working size, and the result carried to the
output size (by default the content photo's own) by local affine colour maps fitted at the working
size and applied to the content photo decoded once at full resolution (:mod:`stylecore.local_affine`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from stylecore import fallbacks
from stylecore.colour_transfer import colour_statistics_transfer
from stylecore.config import TransferConfig
from stylecore.errors import OptimisationError
from stylecore.architectures import LayerChoice, layer_choice
from stylecore.extractors import FeatureExtractor, load_extractor
from stylecore.images import read_photo, resize_image, to_uint8, working_shape
from stylecore.laplacian import laplacian_stencil, matting_laplacian
from stylecore.local_affine import apply_local_affine, fit_local_affine, local_affine_smoothing
from stylecore.masks import MaskReading, PairDiagnostics
from stylecore.objective import StageObjective
from stylecore.optimise import minimise
from stylecore.output import PhotoMetadata, read_metadata
from stylecore.pair import ImageSource, PreparedPair, masks_to_find, prepare_pair, probe_pair
from stylecore.segment_matching import automatic_pair, one_side_pair

Progress = Callable[[int, int, int, dict[str, float]], None]
"""Called after every iteration with (stage, iteration, stage's iteration budget, losses)."""


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """A transfer's output image and everything needed to trace and judge it."""

    image: np.ndarray
    """(h, w, 3) float32 RGB in [0, 1] at the working size: the optimised (and finished) result,
    which the metrics score."""
    output: np.ndarray
    """(H, W, 3) uint8 RGB at the output size: the image to write."""
    content_metadata: PhotoMetadata
    """The content photo's ICC profile and EXIF, for the written output."""
    config: TransferConfig
    diagnostics: PairDiagnostics
    history: list[dict[str, float]]
    """Per iteration: "stage", "iteration", "total" and each unweighted loss term."""
    stages: list[dict[str, Any]]
    """Per stage: "stage", "iterations", "seconds" (all of it, the objective's set-up included),
    "device_seconds" (inside the compiled optimisation), final "losses", "height", "width"."""
    timings: dict[str, float]
    """Seconds: "prepare", "segment_matching" (0 without automatic masks), "laplacian", "stage1", "stage2",
    "output", "total"."""
    content_image: np.ndarray
    style_image: np.ndarray
    content_labels: np.ndarray
    style_labels: np.ndarray
    fallbacks: tuple[str, ...]
    """What the transfer did instead of what was asked, one short sentence each (:mod:`stylecore.fallbacks`)."""

    def summary(self) -> dict[str, Any]:
        """JSON-ready record of the configuration, mask diagnostics, stages and timings."""
        return {"config": self.config.to_dict(), "config_hash": self.config.config_hash(),
                "working_shape": list(self.image.shape[:2]), "output_shape": list(self.output.shape[:2]),
                "diagnostics": self.diagnostics.to_dict(), "fallbacks": list(self.fallbacks),
                "stages": self.stages, "timings": self.timings}


@dataclasses.dataclass(frozen=True)
class PreparedTransfer:
    """A transfer's host preparation (:func:`prepare_transfer`): all the device stages and the finish need."""

    config: TransferConfig
    extractor: FeatureExtractor
    layers: LayerChoice
    """The extractor's content and style layers with their weights (:func:`~stylecore.architectures.layer_choice`)."""
    pair: PreparedPair
    """The pair at the working size, with its (given or matched) label maps."""
    coarse: PreparedPair
    """The pair at stage 1's size (``coarse_scale`` of the working size)."""
    initial: np.ndarray
    """(h1, w1, 3) float32 in [0, 1]: stage 1's starting image, at ``coarse``'s size."""
    stencil: np.ndarray
    """The content's matting Laplacian at the working size as the objective's stencil
    (:func:`photorealism_stencil`): built here, so that the device phase only uploads it."""
    content_photo: np.ndarray
    """The content at its own size, (H, W, 3) as decoded, for the output step."""
    metadata: PhotoMetadata
    timings: dict[str, float]
    """Seconds: "prepare", "segment_matching", "laplacian"."""
    started: float
    """``time.perf_counter()`` when the preparation began."""


@dataclasses.dataclass(frozen=True)
class OptimisedTransfer:
    """Both stages' outcome (:func:`optimise_transfer`): stage 2's image, (h, w, 3) float32 in [0, 1]."""

    image: np.ndarray
    history: list[dict[str, float]]
    stages: list[dict[str, Any]]
    timings: dict[str, float]
    """Seconds: "stage1", "stage2"."""
    layer_notes: tuple[str, ...]
    """Fallbacks the stages' objectives recorded: segments left out of a layer's style term."""


def transfer(content: ImageSource, style: ImageSource, content_mask: ImageSource | None = None,
             style_mask: ImageSource | None = None, *, config: TransferConfig = TransferConfig(),
             extractor: FeatureExtractor | None = None, progress: Progress | None = None) -> TransferResult:
    """Restyle ``content`` with ``style``, segment by segment.

    The segments are the given masks' or, per ``config.auto_masks``, matched automatically
    (:mod:`stylecore.segment_matching`); with ``auto_masks="off"`` and no masks, one segment.

    ``extractor``: a loaded :class:`FeatureExtractor` of ``config.extractor`` (loading one is the
    slow part; pass it in when transferring many pairs). The pair is probed first
    (:func:`~stylecore.pair.probe_pair`: headers only, milliseconds), so unusable files fail before
    any extractor is loaded or run. Raises :class:`StyleCoreError` subclasses with a one-sentence
    message for unusable input or a diverging optimisation.

    The composition of its three phases, which a batch worker runs on separate threads so that one
    pair's host work overlaps another's device work: :func:`prepare_transfer` (host),
    :func:`optimise_transfer` (device), :func:`finish_transfer` (host).
    """
    prepared = prepare_transfer(content, style, content_mask, style_mask, config=config, extractor=extractor)
    return finish_transfer(prepared, optimise_transfer(prepared, progress=progress))


def prepare_transfer(content: ImageSource, style: ImageSource, content_mask: ImageSource | None = None,
                     style_mask: ImageSource | None = None, *, config: TransferConfig = TransferConfig(),
                     extractor: FeatureExtractor | None = None) -> PreparedTransfer:
    """The host work before the optimisation (arguments and errors as :func:`transfer`): probe, decode,
    prepare the pair, match its segments when asked (the one step here that runs the extractor), the
    matting Laplacian and stage 1's initial image."""
    started = time.perf_counter()
    if config.auto_masks == "on":
        content_mask = style_mask = None
    find = masks_to_find(content_mask, style_mask, config.auto_masks)
    probe_pair(content, style, content_mask, style_mask, config=config)
    if extractor is None:
        extractor = load_extractor(config.extractor, seed=config.seed)
    elif extractor.name != config.extractor:
        raise ValueError(f"the extractor is {extractor.name!r} but the configuration asks for {config.extractor!r}")
    content_photo = content if isinstance(content, np.ndarray) else read_photo(
        content, what="content photo", max_pixels=config.max_image_pixels)
    metadata = PhotoMetadata() if isinstance(content, np.ndarray) else read_metadata(content)
    pair = prepare_pair(content_photo, style, content_mask, style_mask, long_side=config.size,
                        min_segment_fraction=config.min_segment_fraction, max_pixels=config.max_image_pixels,
                        reading=MaskReading.from_config(config))
    matching_started = time.perf_counter()
    if find == "both":
        pair = automatic_pair(pair, extractor, segments=config.auto_mask_segments,
                              min_segment_fraction=config.min_segment_fraction, seed=config.seed)
    elif find:
        pair = one_side_pair(pair, extractor, find=find, min_segment_fraction=config.min_segment_fraction)
    layers = layer_choice(config.extractor, config.content_layers, config.style_layers,
                          config.style_layer_weights)
    timings = {"prepare": matching_started - started, "segment_matching": time.perf_counter() - matching_started}
    laplacian_started = time.perf_counter()
    stencil = photorealism_stencil(pair.content, config)
    timings["laplacian"] = time.perf_counter() - laplacian_started
    coarse = pair.resized(round(config.size * config.coarse_scale)) if config.coarse_scale < 1.0 else pair
    return PreparedTransfer(config=config, extractor=extractor, layers=layers, pair=pair, coarse=coarse,
                            initial=initial_image(coarse, config), stencil=stencil,
                            content_photo=content_photo, metadata=metadata, timings=timings, started=started)


def photorealism_stencil(content: np.ndarray, config: TransferConfig) -> np.ndarray:
    """The matting Laplacian of ``content`` (H, W, 3) at the configured epsilon and radius, as the stencil
    stage 2's objective takes (:func:`~stylecore.laplacian.laplacian_stencil`)."""
    laplacian = matting_laplacian(content, epsilon=config.laplacian_epsilon, radius=config.laplacian_radius)
    return laplacian_stencil(laplacian, content.shape[:2], radius=config.laplacian_radius)


def optimise_transfer(prepared: PreparedTransfer, *, progress: Progress | None = None) -> OptimisedTransfer:
    """The device work: stage 1 (segmentation only, at ``coarse_scale``) from the prepared initial
    image, then stage 2 (with the photorealism term) from stage 1's result upsampled."""
    extractor, layers, config, pair = prepared.extractor, prepared.layers, prepared.config, prepared.pair
    history: list[dict[str, float]] = []
    stages: list[dict[str, Any]] = []
    timings: dict[str, float] = {}

    def run_stage(stage: int, stage_pair: PreparedPair, initial: np.ndarray, iterations: int,
                  stencil: np.ndarray | None = None) -> np.ndarray:
        stage_started = time.perf_counter()
        objective = StageObjective(extractor, layers, content=stage_pair.content, style=stage_pair.style,
                                   content_labels=stage_pair.content_labels,
                                   style_labels=stage_pair.style_labels, pairing=pair.diagnostics,
                                   config=config, stencil=stencil)

        def on_iteration(iteration: int, losses: dict[str, float]) -> None:
            history.append({"stage": stage, "iteration": iteration, **losses})
            if progress is not None:
                progress(stage, iteration, iterations, losses)

        outcome = minimise(objective, initial, iterations=iterations, tolerance=config.tolerance,
                           on_iteration=on_iteration)
        if not np.isfinite(outcome.image).all():
            raise OptimisationError(f"stage {stage} produced a non-finite image")
        final = outcome.losses if outcome.losses is not None else objective(outcome.image)[2]
        stages.append({"stage": stage, "iterations": len(outcome.history),
                       "seconds": time.perf_counter() - stage_started, "device_seconds": outcome.device_seconds,
                       "losses": dict(final),
                       "height": int(initial.shape[0]), "width": int(initial.shape[1])})
        timings[f"stage{stage}"] = stages[-1]["seconds"]
        return outcome.image

    with fallbacks.collecting() as layer_notes:
        stage1 = run_stage(1, prepared.coarse, prepared.initial, config.stage1_iterations)
        stage2 = run_stage(2, pair, resize_image(stage1, pair.content.shape[:2]), config.stage2_iterations,
                           stencil=prepared.stencil)
    return OptimisedTransfer(image=stage2, history=history, stages=stages, timings=timings,
                             layer_notes=tuple(layer_notes))


def finish_transfer(prepared: PreparedTransfer, optimised: OptimisedTransfer) -> TransferResult:
    """The host work after the optimisation: the local affine finish (``config.finish``) at the
    working size and the output image at the output size (:func:`output_image`)."""
    config, pair = prepared.config, prepared.pair
    image = optimised.image
    if config.finish == "local_affine":
        image = local_affine_smoothing(pair.content, image, radius=config.affine_radius,
                                       epsilon=config.affine_epsilon)
    output_started = time.perf_counter()
    output = output_image(image, pair.content, prepared.content_photo, config)
    timings = {**prepared.timings, **optimised.timings, "output": time.perf_counter() - output_started}
    timings["total"] = time.perf_counter() - prepared.started
    return TransferResult(image=image, output=output, content_metadata=prepared.metadata, config=config,
                          diagnostics=pair.diagnostics, history=optimised.history, stages=optimised.stages,
                          timings=timings, content_image=pair.content, style_image=pair.style,
                          content_labels=pair.content_labels, style_labels=pair.style_labels,
                          fallbacks=(*fallbacks.pair_fallbacks(pair.diagnostics, config), *optimised.layer_notes))


def output_image(result: np.ndarray, content: np.ndarray, content_photo: np.ndarray, config: TransferConfig, *,
                 dtype: type[np.generic] = np.uint8) -> np.ndarray:
    """``result`` (h, w, 3), fitted against ``content`` (h, w, 3), carried to ``config.output_size``.

    ``content_photo``: the content at its own size (H, W, 3), uint8 as decoded or float in [0, 1].
    Returns (H', W', 3) ``dtype`` (uint8, or float32 in [0, 1] for scoring): ``result`` itself when
    the output size is the working size, else the local affine maps fitted at the working size
    applied to the content photo (resized first when the output size is not its own).
    """
    photo_shape = content_photo.shape[:2]
    shape = photo_shape if config.output_size == "content" else working_shape(*photo_shape, config.output_size)
    if shape == result.shape[:2]:
        return to_uint8(result) if dtype == np.uint8 else result.astype(dtype)
    coefficients = fit_local_affine(content, result, radius=config.affine_radius, epsilon=config.affine_epsilon)
    guide = content_photo if shape == photo_shape else resize_image(content_photo, shape)
    return apply_local_affine(coefficients, guide, dtype=dtype)


def initial_image(pair: PreparedPair, config: TransferConfig) -> np.ndarray:
    """Stage 1's starting image at the pair's size: the content, seeded noise, or the colour transfer."""
    if config.init == "noise":
        return np.random.default_rng(config.seed).uniform(0.0, 1.0, pair.content.shape).astype(np.float32)
    if config.init == "colour_transfer":
        return colour_statistics_transfer(pair.content, pair.style, pair.content_labels, pair.style_labels,
                                          content_only_policy=config.content_only_policy)
    return pair.content
