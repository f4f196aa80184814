"""Automatic segment matching measured against the hand masks (not a test: run it and quote it).

Two parts, on the example pairs (default: the twelve of ``tune.py``):

- ``--agreement``: for each variant of the matching, its agreement with the hand masks and its
  seconds, without running any transfer. Agreement is the adjusted Rand index of each photo's
  labels with its hand mask (mean of content and style; 1 is identical, 0 is chance) and the mean
  IoU after one matching of automatic to hand labels for both photos together (Hungarian, on the
  summed overlaps), which also checks that the two photos' labels correspond.
  Also, as a quick proxy of what the segments do to the result, the style distance (scored with
  the hand masks) and the photorealism energy of the per-segment colour-statistics transfer made
  with each variant's labels: its energy is mostly the seams at segment borders that cut smooth
  regions (one segment: 2.7e-4; hand masks: 2.5e-3), and its ratio to the hand masks' followed
  the transfers' (x1.64 against x1.69 for the first version's k=7).
- ``--transfer``: the transfer with the hand masks and with automatic masks (``auto_masks=on``,
  one run per ``--segments`` count; with ``--ceiling`` also with the hand masks' regions matched
  automatically, :func:`hand_regions_matched`), all scored with the hand masks; the medians, their
  ratios to the hand-masked run's, and the seconds matching adds as a share of the hand-masked transfer.
  With ``--one-side``, also the content's hand mask alone, the style's found from it
  (:func:`segment_matching.one_side_pair`); ``--segments ""`` leaves the automatic runs out.

    python benchmarks/auto_masks.py --agreement [--pairs 1,4] [--size 700]
    python benchmarks/auto_masks.py --transfer [--segments 5,7] [--ceiling] [--one-side] [--pairs 1,4] [--size 350 ...]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
from scipy.cluster.vq import kmeans2
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from examples import pair_paths
from stylecore import segment_matching
from stylecore.cli import add_config_arguments, config_from_arguments
from stylecore.colour_transfer import colour_statistics_transfer
from stylecore.config import TransferConfig
from stylecore.extractors import FeatureExtractor, load_extractor
from stylecore.masks import PALETTE, label_map_to_rgb, merge_specks, resize_labels
from stylecore.metrics import METRIC_NAMES, evaluate_output, photorealism_energy, style_distance
from stylecore.pair import PreparedPair, prepare_pair
from stylecore.transfer import transfer
from tune import SUBSET

Matcher = Callable[[PreparedPair, FeatureExtractor], tuple[np.ndarray, np.ndarray]]
MIN_SEGMENT_FRACTION = 0.001


Snap = tuple[float, float] | None
"""Edge snapping: (guided filter radius as a fraction of the long side, epsilon), or None for none."""
SNAP = (segment_matching.GUIDE_RADIUS_FRACTION, segment_matching.GUIDE_EPSILON)
NARROW_SNAP = (1 / 64, 1e-3)
"""The first version's snapping: its borders cut smooth regions where the grid put them."""


def joint_kmeans(segments: int, weights: dict[str, float] | None = None, snap: Snap = SNAP) -> Matcher:
    """The library's method, with ``segments``, group ``weights`` and edge snapping as given."""
    def match(pair: PreparedPair, extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray]:
        cells = segment_matching.cell_features(pair.content, pair.style, extractor,
                                               weights=weights or segment_matching.GROUP_WEIGHTS)
        grids = segment_matching.cluster_cells(*cells, segments=segments, seed=0)
        return tuple(_finish(grid, photo, snap) for grid, photo in zip(grids, (pair.content, pair.style)))
    return match


def nearest_neighbour(segments: int) -> Matcher:
    """The alternative: k-means on the content's cells alone; each style cell takes its nearest content cell's label."""
    def match(pair: PreparedPair, extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray]:
        content_cells, style_cells = segment_matching.cell_features(pair.content, pair.style, extractor)
        flat = content_cells.reshape(-1, content_cells.shape[-1])
        _, content_grid = kmeans2(flat, segments, iter=segment_matching.KMEANS_ITERATIONS, minit="++",
                                  rng=np.random.default_rng(0))
        _, nearest = cKDTree(flat).query(style_cells.reshape(-1, style_cells.shape[-1]))
        grids = (content_grid.reshape(content_cells.shape[:2]).astype(np.uint8),
                 content_grid[nearest].reshape(style_cells.shape[:2]).astype(np.uint8))
        return tuple(_finish(grid, photo, SNAP) for grid, photo in zip(grids, (pair.content, pair.style)))
    return match


def _finish(grid: np.ndarray, photo: np.ndarray, snap: Snap) -> np.ndarray:
    if snap is not None:
        return segment_matching.refine_labels(grid, photo, min_segment_fraction=MIN_SEGMENT_FRACTION,
                                              radius_fraction=snap[0], epsilon=snap[1])
    nearest = tf.image.resize(grid[None, ..., None], photo.shape[:2], method="nearest").numpy()[0, ..., 0]
    return merge_specks(nearest.astype(np.uint8), max(1, round(MIN_SEGMENT_FRACTION * nearest.size)))[0]


def hand_masks(pair: PreparedPair, extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray]:
    """The reference: the cleaned hand masks themselves."""
    return pair.content_labels, pair.style_labels


def hand_regions_matched(pair: PreparedPair, extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray]:
    """A ceiling, not a method: the hand masks' regions, their correspondence found automatically.

    Each region's mean cell vector (:func:`segment_matching.cell_features`, the features the
    automatic masks cluster) is matched one to one between the photos (Hungarian, on Euclidean
    distances). A content region left over takes the label of its nearest style region; a style
    region left over gets a label of its own, which no content region uses. If this scores near
    the hand masks, the features tell which region is which, and what limits the automatic masks
    is how well they find the regions.
    """
    cells = segment_matching.cell_features(pair.content, pair.style, extractor)
    hand = (pair.content_labels, pair.style_labels)
    regions, centroids = [], []
    for labels, photo_cells in zip(hand, cells, strict=True):
        on_grid = resize_labels(labels, photo_cells.shape[:2])
        present = [label for label in np.unique(labels) if np.any(on_grid == label)]
        regions.append(present)
        centroids.append(np.stack([photo_cells[on_grid == label].mean(axis=0) for label in present]))
    distances = np.linalg.norm(centroids[0][:, None] - centroids[1][None], axis=2)
    rows, cols = linear_sum_assignment(distances)
    style_map = {regions[1][col]: regions[0][row] for row, col in zip(rows, cols)}
    content_map = {regions[0][row]: style_map[regions[1][int(np.argmin(distances[row]))]]
                   for row in sorted(set(range(len(regions[0]))) - set(rows))}
    spare = sorted(set(range(len(PALETTE))) - set(regions[0]))
    style_map.update(zip((regions[1][col] for col in sorted(set(range(len(regions[1]))) - set(cols))), spare))
    return _relabelled(hand[0], content_map), _relabelled(hand[1], style_map)


def _relabelled(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``labels`` with each key of ``mapping`` replaced by its value, other labels kept."""
    lookup = np.arange(256, dtype=np.uint8)
    lookup[list(mapping)] = list(mapping.values())
    return lookup[labels]


def one_side(iterations: int) -> Matcher:
    """The content's hand mask given, the style's found from it (:func:`segment_matching.one_side_pair`)."""
    def match(pair: PreparedPair, extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray]:
        found = segment_matching.one_side_pair(pair, extractor, find="style", min_segment_fraction=MIN_SEGMENT_FRACTION,
                                               iterations=iterations)
        return found.content_labels, found.style_labels
    return match


def one_segment(pair: PreparedPair, extractor: FeatureExtractor) -> tuple[np.ndarray, np.ndarray]:
    """``auto_masks=off``: the whole of each photo is one segment."""
    return np.zeros_like(pair.content_labels), np.zeros_like(pair.style_labels)


DEFAULT = TransferConfig().auto_mask_segments
COLOUR = {"features": 1.0, "colour": 0.5, "position": 0.5}
VARIANTS: dict[str, Matcher] = {
    "hand masks (reference)": hand_masks,
    "one segment (auto_masks=off)": one_segment,
    f"one side labelled: content hand mask, style found ({segment_matching.ADAPT_ITERATIONS} steps, default)":
        one_side(segment_matching.ADAPT_ITERATIONS),
    "one side labelled, nearest labelled group mean (no steps)": one_side(0),
    "one side labelled, 10 steps": one_side(10),
    "hand regions, matched automatically (ceiling)": hand_regions_matched,
    f"joint k-means, k={DEFAULT} (default)": joint_kmeans(DEFAULT),
    **{f"joint, k={count}": joint_kmeans(count) for count in (2, 3, 4, 5, 7) if count != DEFAULT},
    f"joint, k={DEFAULT}, narrow snapping": joint_kmeans(DEFAULT, snap=NARROW_SNAP),
    "joint, k=7, narrow snapping": joint_kmeans(7, snap=NARROW_SNAP),
    f"joint, k={DEFAULT}, no edge snapping": joint_kmeans(DEFAULT, snap=None),
    f"joint, k={DEFAULT}, colour 0.5": joint_kmeans(DEFAULT, COLOUR),
    f"joint, k={DEFAULT}, no position": joint_kmeans(DEFAULT, {"features": 1.0, "colour": 0.0, "position": 0.0}),
    f"joint, k={DEFAULT}, colour + position only": joint_kmeans(
        DEFAULT, {"features": 0.0, "colour": 0.5, "position": 0.5}),
    f"nearest-neighbour matching, k={DEFAULT}": nearest_neighbour(DEFAULT),
    "nearest-neighbour matching, k=7": nearest_neighbour(7),
}


def adjusted_rand_index(labels: np.ndarray, reference: np.ndarray) -> float:
    """Adjusted Rand index of two label maps of one shape (Hubert and Arabie 1985): 1 identical, about 0 chance."""
    table = _overlaps(labels, reference).astype(np.float64)
    pairs = lambda counts: float(np.sum(counts * (counts - 1) / 2))  # noqa: E731
    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / pairs(np.array([table.sum()]))
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else (index - expected) / (maximum - expected)


def matched_mean_iou(pairs_of_maps: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean IoU over hand labels after one Hungarian matching of automatic to hand labels for all maps given."""
    size = 10
    intersection = sum(_overlaps(labels, reference, size) for labels, reference in pairs_of_maps)
    union = intersection.sum(axis=1, keepdims=True) + intersection.sum(axis=0, keepdims=True) - intersection
    rows, cols = linear_sum_assignment(-intersection)
    iou = np.zeros(size)
    iou[cols] = intersection[rows, cols] / np.maximum(union[rows, cols], 1)
    present = intersection.sum(axis=0) > 0
    return float(iou[present].mean())


def _overlaps(labels: np.ndarray, reference: np.ndarray, size: int | None = None) -> np.ndarray:
    size = size or int(max(labels.max(), reference.max())) + 1
    return np.bincount(labels.ravel().astype(np.int64) * size + reference.ravel(), minlength=size * size).reshape(
        size, size)


def agreement(numbers: list[int], size: int, extractor: FeatureExtractor, chosen: list[str]) -> None:
    pairs = {number: prepare_pair(**pair_paths(number), long_side=size, min_segment_fraction=MIN_SEGMENT_FRACTION)
             for number in numbers}
    print(f"{'variant':40s} {'ARI median':>10s} {'mIoU median':>11s} {'segments':>8s} {'s/pair':>7s} "
          f"{'proxy style distance':>20s} {'proxy energy':>12s}")
    for name, matcher in VARIANTS.items():
        if chosen and not any(text in name for text in chosen):
            continue
        rand, iou, counts, seconds, distances, energies = [], [], [], [], [], []
        for number, pair in pairs.items():
            started = time.perf_counter()
            content_labels, style_labels = matcher(pair, extractor)
            seconds.append(time.perf_counter() - started)
            rand.append((adjusted_rand_index(content_labels, pair.content_labels)
                         + adjusted_rand_index(style_labels, pair.style_labels)) / 2)
            iou.append(matched_mean_iou([(content_labels, pair.content_labels), (style_labels, pair.style_labels)]))
            counts.append(len(np.unique(content_labels)))
            recoloured = colour_statistics_transfer(pair.content, pair.style, content_labels, style_labels)
            distances.append(style_distance(recoloured, pair.style, pair.content_labels, pair.style_labels))
            energies.append(photorealism_energy(recoloured, pair.content))
        print(f"{name:40s} {np.median(rand):10.3f} {np.median(iou):11.3f} {np.median(counts):8.1f} "
              f"{np.median(seconds):7.2f} {np.median(distances):20.2f} {np.median(energies):12.2e}", flush=True)


def transfers(numbers: list[int], arguments: argparse.Namespace, extractor: FeatureExtractor) -> None:
    config = config_from_arguments(arguments)
    counts = [int(text) for text in arguments.segments.split(",") if text]
    print(f"configuration {config.config_hash()}: size {config.size}, iterations "
          f"{config.stage1_iterations}+{config.stage2_iterations}; automatic with at most {counts} segments")
    runs = {} if arguments.skip_hand else {"hand": config}
    runs.update({f"automatic k={count}": config.replace(auto_masks="on", auto_mask_segments=count) for count in counts})
    if arguments.ceiling:
        runs["ceiling"] = config
    if arguments.one_side:
        runs["one side"] = config
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for number in numbers:
        paths = pair_paths(number)
        # The hand masks at the working size, as the hand-masked transfer prepares them: every run is scored with them.
        hand = prepare_pair(**paths, long_side=config.size, min_segment_fraction=config.min_segment_fraction)
        hand_seconds = math.nan
        for name, run_config in runs.items():
            inputs = _ceiling_inputs(paths, config, extractor) if name == "ceiling" else paths
            if name == "one side":
                inputs = {key: path for key, path in paths.items() if key != "style_mask"}
            result = transfer(**inputs, config=run_config, extractor=extractor)
            hand_seconds = result.timings["total"] if name == "hand" else hand_seconds
            scored = evaluate_output(result.image, hand.content, hand.style, hand.content_labels, hand.style_labels,
                                     content_only_policy=config.content_only_policy)
            scored.update(seconds=result.timings["total"], matching=result.timings["segment_matching"],
                          ari=(adjusted_rand_index(result.content_labels, hand.content_labels)
                               + adjusted_rand_index(result.style_labels, hand.style_labels)) / 2,
                          iou=matched_mean_iou([(result.content_labels, hand.content_labels),
                                                (result.style_labels, hand.style_labels)]))
            scored["share"] = scored["matching"] / hand_seconds
            scores[name].append(scored)
            print(f"pair {number:2d} {name:14s} " + "  ".join(f"{key} {value:.4g}" for key, value in scored.items()),
                  flush=True)
    print_medians(scores)


def print_medians(scores: dict[str, list[dict[str, float]]]) -> None:
    """Each run's medians over the pairs, with their ratios to the hand-masked run's when it ran."""
    print("medians over the pairs, every run scored with the hand masks:")
    print(f"{'run':16s} " + " ".join(f"{key:>20s}" for key in (*METRIC_NAMES, "ARI", "mIoU", "matching s", "share")))
    for name, rows in scores.items():
        medians = [float(np.median([row[key] for row in rows]))
                   for key in (*METRIC_NAMES, "ari", "iou", "matching", "share")]
        ratios = [median / float(np.median([row[key] for row in scores["hand"]])) if "hand" in scores else math.nan
                  for median, key in zip(medians[:3], METRIC_NAMES)]
        cells = [f"{median:.4g} (x{ratio:.2f})" for median, ratio in zip(medians[:3], ratios)]
        cells += [f"{medians[3]:.3f}", f"{medians[4]:.3f}", f"{medians[5]:.2f}", f"{medians[6]:.1%}"]
        print(f"{name:16s} " + " ".join(f"{cell:>20s}" for cell in cells))


def _ceiling_inputs(paths: dict[str, Path], config: TransferConfig,
                    extractor: FeatureExtractor) -> dict[str, Path | np.ndarray]:
    """A pair's photos with the masks of :func:`hand_regions_matched`, at the working size."""
    pair = prepare_pair(**paths, long_side=config.size, min_segment_fraction=config.min_segment_fraction)
    content_labels, style_labels = hand_regions_matched(pair, extractor)
    return {"content": paths["content"], "style": paths["style"],
            "content_mask": label_map_to_rgb(content_labels), "style_mask": label_map_to_rgb(style_labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=",".join(map(str, SUBSET)), help="comma-separated pair numbers")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--agreement", action="store_true", help="compare matching variants with the hand masks")
    mode.add_argument("--transfer", action="store_true", help="transfer with hand and automatic masks, and score")
    parser.add_argument("--segments", default=str(TransferConfig().auto_mask_segments),
                        help="with --transfer: comma-separated auto_mask_segments to run (empty: no automatic run)")
    parser.add_argument("--one-side", action="store_true", help="with --transfer: also transfer with the content's "
                        "hand mask only, the style's found from it (segment_matching.one_side_pair)")
    parser.add_argument("--skip-hand", action="store_true", help="with --transfer: leave out the hand-masked "
                        "transfers (another run of the same configuration has them); no ratios, no shares")
    parser.add_argument("--ceiling", action="store_true", help="with --transfer: also transfer with the hand "
                        "masks' regions matched automatically (hand_regions_matched)")
    parser.add_argument("--variants", nargs="*", default=[], help="with --agreement: only variants whose name "
                        "contains one of these")
    add_config_arguments(parser)
    arguments = parser.parse_args()
    numbers = [int(text) for text in arguments.pairs.split(",")]
    extractor = load_extractor("squeezenet")
    if arguments.agreement:
        agreement(numbers, arguments.size or 700, extractor, arguments.variants)
    else:
        transfers(numbers, arguments, extractor)


if __name__ == "__main__":
    main()
