"""Automatic segment matching: label maps for a pair that comes without masks.

Luan et al. (2017) need a segmentation of both photos with matching labels; nobody draws them for
a folder of 10,000 photos. Here the two photos are segmented together, so that a segment of the
content and a segment of the style with the same label are "the same kind of thing":

1. **features** on a grid of :data:`GRID_LONG_SIDE` px, from the photos at
   :data:`FEATURE_LONG_SIDE` px: the extractor's :data:`SEGMENT_LAYERS`
   (SqueezeNet fire2 to fire5: texture to object parts), each resized bilinearly to the grid and
   divided by its RMS over both photos, projected on their first :data:`FEATURE_DIMENSIONS` joint
   principal components; the CIELAB colour (weight 0 by default, see :data:`GROUP_WEIGHTS`); the
   (row, column) position in [0, 1]. Each group is
   standardised per photo (a style photo differs from its content as a whole: night and day),
   scaled to unit total variance over both and weighted by :data:`GROUP_WEIGHTS`.
2. **one k-means** (k-means++ seeding, ``scipy.cluster.vq.kmeans2``) over the cells of both photos
   together: a cluster is a label shared by the two photos.
3. **one-sided and tiny clusters are dropped**, smallest first, until every cluster covers at
   least :data:`MIN_SHARED_FRACTION` of each photo; a dropped cluster's cells go to the nearest
   remaining centroid. A segment only one photo has would take its style from nowhere. So the
   segment count is chosen per pair: ``segments`` is an upper bound, and the pair keeps those
   its two photos share (one, when they share nothing: the whole-image transfer).
4. **borders snapped to edges**: each photo's one-hot label maps go through a colour guided
   filter (He, Sun, Tang 2010, "Guided image filtering"; the fit of :mod:`stylecore.local_affine`) guided by the photo itself, with a wide
   window (:data:`GUIDE_RADIUS_FRACTION`) so that a border moves to the nearest edge rather than
   cutting a smooth region (seams there cost photorealism energy), fitted at
   :data:`GUIDE_LONG_SIDE` px and applied at working size (He and Sun 2015, "Fast guided
   filter"), then the argmax; specks are merged as hand masks' are
   (:func:`stylecore.masks.merge_specks`).

A pair labelled on **one side only** keeps that side's labels and finds the other's with the same
features (:func:`one_side_pair`): no clustering, each cell assigned to the nearest of the labelled
groups' means, moved first by a few k-means steps onto the unlabelled photo (:data:`ADAPT_ITERATIONS`),
then step 4 as above.

Labels are palette indices (:data:`stylecore.masks.PALETTE`) in order of content area (largest:
0, blue), the form hand masks take after cleaning, so the masked-Gram loss, the colour transfer
and the metrics use them unchanged, and :func:`stylecore.masks.label_map_to_rgb` writes them as a
mask file a user can fix and give back. The alternative measured against this, nearest-neighbour
matching of style cells to clustered content cells, is in ``benchmarks/auto_masks.py`` with
the figures that decided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
from scipy.cluster.vq import kmeans2, vq

from stylecore.colour import srgb_to_lab
from stylecore.extractors import FeatureExtractor
from stylecore.images import working_shape
from stylecore.local_affine import fit_local_affine
from stylecore.masks import PALETTE, PALETTE_NAMES, merge_specks, pair_segments, resize_labels
from stylecore.pair import PreparedPair

SEGMENT_LAYERS = {"squeezenet": ("fire2", "fire3", "fire4", "fire5"),
                  "vgg19": ("block2_conv1", "block3_conv1", "block4_conv1")}
"""Layers whose activations describe a cell, per extractor."""
FEATURE_LONG_SIDE = 350
"""Long side, in px, of the photos the network sees (their own size if smaller): the segments do
not depend on the working size, and at 700 px the network costs a quarter of what it would."""
GRID_LONG_SIDE = 128
"""Long side, in cells, of the grid the clustering runs on (the photo's own size if smaller)."""
FEATURE_DIMENSIONS = 16
"""Joint principal components of the CNN features kept per cell."""
PCA_SAMPLE = 2048
"""Cells the principal axes are fitted on."""
SUBSPACE_ITERATIONS = 10
GROUP_WEIGHTS = {"features": 1.0, "colour": 0.0, "position": 0.5}
"""Weight of each feature group after scaling it to unit total variance. Colour is off: with weight
0.5 it split photos by their tones rather than by what they show (median colour-transfer style
distance 10.6 against 8.5 without at 4 segments, 12.3 against 9.6 at 7, twelve pairs,
``benchmarks/auto_masks.py --agreement``)."""
MIN_SHARED_FRACTION = 0.02
"""A cluster must cover at least this fraction of each photo's cells to survive."""
GUIDE_LONG_SIDE = 256
"""Long side, in px, at which the guided filter's coefficients are fitted (the photo's own size if smaller)."""
GUIDE_RADIUS_FRACTION = 1 / 16
"""Guided filter radius as a fraction of the long side (16 px at 256 px): wide enough to carry a
border from the grid's blurred guess to the photo's edge a few cells away."""
GUIDE_EPSILON = 1e-2
"""Guided filter regularisation, colour values in [0, 1]: smaller follows weaker edges."""
KMEANS_ITERATIONS = 20
ADAPT_ITERATIONS = 3
"""k-means steps that move the labelled photo's group means onto the unlabelled photo's cells
(:func:`assign_cells`). ``benchmarks/auto_masks.py --agreement --size 350``'s proxy style distance,
content hand mask given (hand masks: 5.74): 3 steps 10.07 on the 60 pairs, none 12.08; on twelve
pairs 3 steps 8.48 (ARI 0.84), none 10.73 (0.79), 10 steps 8.31 (0.89) but proxy energy 3.3e-3
against 2.7e-3; a per-group diagonal Gaussian 11.83, the 10 or 30 nearest labelled cells 9.28 and
9.74. In transfers on the 60 pairs: x1.88 of the hand masks' style distance (manifests/README.md)."""


def automatic_pair(pair: PreparedPair, extractor: FeatureExtractor, *, segments: int,
                   min_segment_fraction: float, seed: int) -> PreparedPair:
    """``pair`` with its label maps replaced by matched segments (module docstring) and re-paired."""
    content_labels, style_labels = match_segments(pair.content, pair.style, extractor, segments=segments,
                                                  min_segment_fraction=min_segment_fraction, seed=seed)
    diagnostics = dataclasses.replace(pair_segments(content_labels, style_labels), masks_found="both")
    return dataclasses.replace(pair, content_labels=content_labels, style_labels=style_labels,
                               diagnostics=diagnostics, label_names=PALETTE_NAMES)


def one_side_pair(pair: PreparedPair, extractor: FeatureExtractor, *, find: str, min_segment_fraction: float,
                  iterations: int = ADAPT_ITERATIONS) -> PreparedPair:
    """``pair`` with the ``find`` side's ("content" or "style") label map found from the other side's.

    The labelled photo's groups are the classes, described by the cell vectors :func:`cell_features`
    gives (the features the automatic masks cluster): each cell of the unlabelled photo goes to
    the group whose mean is nearest, after ``iterations`` k-means steps on the unlabelled cells
    started from the labelled groups' means (:func:`assign_cells`); borders are then snapped to
    edges as automatic masks' are (:func:`refine_labels`). A group the unlabelled photo does not
    show is one-sided and follows ``content_only_policy``, as with hand masks.
    """
    cells = dict(zip(("content", "style"), cell_features(pair.content, pair.style, extractor), strict=True))
    known = "style" if find == "content" else "content"
    known_labels = getattr(pair, f"{known}_labels")
    grid = assign_cells(resize_labels(known_labels, cells[known].shape[:2]), cells[known], cells[find],
                        iterations=iterations)
    labels = {known: known_labels, find: refine_labels(grid, getattr(pair, find),
                                                       min_segment_fraction=min_segment_fraction)}
    pairing = pair_segments(labels["content"], labels["style"], pair.diagnostics.content, pair.diagnostics.style,
                            names=pair.label_names)
    return dataclasses.replace(pair, content_labels=labels["content"], style_labels=labels["style"],
                               diagnostics=dataclasses.replace(pairing, masks_found=find))


def assign_cells(known_grid: np.ndarray, known_cells: np.ndarray, other_cells: np.ndarray, *,
                 iterations: int = ADAPT_ITERATIONS) -> np.ndarray:
    """(h', w') uint8 group labels of ``other_cells`` (h', w', D), given the labelled ``known_cells``
    (h, w, D) and their (h, w) labels ``known_grid``: nearest group mean, the means first moved by
    ``iterations`` k-means steps on ``other_cells`` (0: the labelled photo's means as they are).

    The k-means steps let a group's description follow the other photo's look (night against
    day) while each group keeps its identity from its starting point.
    """
    flat_known = known_cells.reshape(-1, known_cells.shape[-1])
    flat_other = other_cells.reshape(-1, other_cells.shape[-1])
    groups = np.unique(known_grid)
    means = np.stack([flat_known[known_grid.ravel() == group].mean(axis=0) for group in groups])
    nearest, _ = vq(flat_other, means)
    for _ in range(iterations):
        for index in np.unique(nearest):  # a group no cell is nearest to keeps its mean
            means[index] = flat_other[nearest == index].mean(axis=0)
        nearest, _ = vq(flat_other, means)
    return groups[nearest].astype(np.uint8).reshape(other_cells.shape[:2])


def match_segments(content: np.ndarray, style: np.ndarray, extractor: FeatureExtractor, *, segments: int,
                   min_segment_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Matched (H, W) and (H', W') uint8 label maps of ``content`` (H, W, 3) and ``style`` (H', W', 3).

    Photos are float RGB in [0, 1]; ``segments`` (1 to 9) is the most labels kept; components
    smaller than ``min_segment_fraction`` of a photo are merged into their neighbours.
    """
    if not 1 <= segments <= len(PALETTE):
        raise ValueError(f"segments must be 1 to {len(PALETTE)}, got {segments}")
    content_cells, style_cells = cell_features(content, style, extractor)
    grid_labels = cluster_cells(content_cells, style_cells, segments=segments, seed=seed)
    return tuple(refine_labels(labels, photo, min_segment_fraction=min_segment_fraction)
                 for labels, photo in zip(grid_labels, (content, style), strict=True))


def cell_features(content: np.ndarray, style: np.ndarray, extractor: FeatureExtractor, *,
                  weights: Mapping[str, float] = GROUP_WEIGHTS) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell feature vectors, (h, w, D) for each photo, on a grid of :data:`GRID_LONG_SIDE` px.

    Both photos' vectors are normalised together (module docstring, step 1), so distances
    between a content cell and a style cell are meaningful. ``weights``: of each group, as
    :data:`GROUP_WEIGHTS`.
    """
    photos = (content, style)
    grids = [working_shape(*photo.shape[:2], min(GRID_LONG_SIDE, max(photo.shape[:2]))) for photo in photos]
    layers = extractor.with_layers(SEGMENT_LAYERS[extractor.name])
    # The CNN part stays in TensorFlow until it is 16 numbers a cell: copying 768 channels a
    # cell out to numpy cost more than the rest of the matching (measured with cProfile).
    per_photo = []
    for photo, grid in zip(photos, grids, strict=True):
        seen = _resized(photo, working_shape(*photo.shape[:2], min(FEATURE_LONG_SIDE, max(photo.shape[:2]))))
        activations = layers(tf.constant(seen[None], tf.float32))
        per_photo.append([tf.reshape(tf.image.resize(activations[name], grid), (-1, activations[name].shape[-1]))
                          for name in layers.layers])
    stacked = [tf.concat(pair, axis=0) for pair in zip(*per_photo, strict=True)]
    cnn = tf.concat([layer / tf.maximum(tf.sqrt(tf.reduce_mean(tf.square(layer))), 1e-12) for layer in stacked],
                    axis=1)
    colour = np.concatenate([srgb_to_lab(_resized(photo, grid)).reshape(-1, 3)
                             for photo, grid in zip(photos, grids, strict=True)])
    position = np.concatenate([_positions(grid) for grid in grids])
    groups = {"features": _principal_components(cnn, FEATURE_DIMENSIONS), "colour": colour, "position": position}
    split = grids[0][0] * grids[0][1]
    cells = np.concatenate([_unit_variance(_standardised_per_photo(values, split)) * weights[name]
                            for name, values in groups.items()], axis=1).astype(np.float32)
    return cells[:split].reshape(*grids[0], -1), cells[split:].reshape(*grids[1], -1)


def cluster_cells(content_cells: np.ndarray, style_cells: np.ndarray, *, segments: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One k-means over both photos' cells (h, w, D), then one-sided clusters dropped (module docstring).

    Returns each photo's (h, w) grid labels, 0 for the cluster covering most of the content.
    """
    content_flat, style_flat = content_cells.reshape(-1, content_cells.shape[-1]), style_cells.reshape(
        -1, style_cells.shape[-1])
    cells = np.concatenate([content_flat, style_flat])
    clusters = min(segments, len(np.unique(cells, axis=0)))
    if clusters > 1:
        centroids, labels = kmeans2(cells, clusters, iter=KMEANS_ITERATIONS, minit="++",
                                    rng=np.random.default_rng(seed))
    else:
        centroids, labels = cells.mean(axis=0, keepdims=True), np.zeros(len(cells), np.int64)
    alive = list(np.unique(labels))
    while len(alive) > 1:
        shared = [min(np.mean(labels[:len(content_flat)] == label), np.mean(labels[len(content_flat):] == label))
                  for label in alive]
        if min(shared) >= MIN_SHARED_FRACTION:
            break
        alive.pop(int(np.argmin(shared)))
        nearest, _ = vq(cells, centroids[alive])
        labels = np.asarray(alive)[nearest]
    by_area = sorted(alive, key=lambda label: -np.sum(labels[:len(content_flat)] == label))
    palette_index = np.zeros(centroids.shape[0], np.uint8)
    palette_index[by_area] = np.arange(len(by_area))
    ordered = palette_index[labels]
    return (ordered[:len(content_flat)].reshape(content_cells.shape[:2]),
            ordered[len(content_flat):].reshape(style_cells.shape[:2]))


def refine_labels(grid_labels: np.ndarray, photo: np.ndarray, *, min_segment_fraction: float,
                  radius_fraction: float = GUIDE_RADIUS_FRACTION, epsilon: float = GUIDE_EPSILON) -> np.ndarray:
    """(h, w) grid labels to an (H, W) uint8 label map of ``photo`` (H, W, 3) with edge-snapped borders.

    The one-hot maps are guided-filtered at :data:`GUIDE_LONG_SIDE` px and the filter's local affine
    coefficients applied to the photo at its own size (He and Sun 2015, "Fast guided filter"):
    the borders follow the photo's full-resolution edges at the cost of a filter at the coarse size.
    ``radius_fraction`` and ``epsilon``: as :data:`GUIDE_RADIUS_FRACTION` and :data:`GUIDE_EPSILON`.
    """
    shape = photo.shape[:2]
    coarse = working_shape(*shape, min(GUIDE_LONG_SIDE, max(shape)))
    present = np.unique(grid_labels)
    one_hot = (grid_labels[..., None] == present).astype(np.float32)
    upsampled = tf.image.resize(one_hot[None], coarse, method="bilinear").numpy()[0]
    radius = max(1, round(max(coarse) * radius_fraction))
    coefficients = fit_local_affine(_resized(photo, coarse), upsampled, radius=radius, epsilon=epsilon)
    slopes, offsets = coefficients[:, :, :3], coefficients[:, :, 3]
    if coarse != shape:
        count = 3 * len(present)
        stacked = np.concatenate([slopes.reshape(*coarse, count), offsets], axis=2)
        stacked = tf.image.resize(stacked[None], shape, method="bilinear").numpy()[0]
        slopes, offsets = stacked[..., :count].reshape(*shape, 3, len(present)), stacked[..., count:]
    filtered = np.einsum("hwck,hwc->hwk", slopes, photo.astype(np.float32)) + offsets
    labels = present[filtered.argmax(axis=2)].astype(np.uint8)
    min_pixels = max(1, int(round(min_segment_fraction * labels.size)))
    return merge_specks(labels, min_pixels)[0]


def _resized(photo: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    return tf.image.resize(photo[None], grid, method="area").numpy()[0]


def _positions(grid: tuple[int, int]) -> np.ndarray:
    rows, cols = np.meshgrid(np.linspace(0.0, 1.0, grid[0]), np.linspace(0.0, 1.0, grid[1]), indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1)


def _principal_components(values: tf.Tensor, dimensions: int) -> np.ndarray:
    """``values`` (N, C) centred and projected on their leading ``dimensions`` principal axes, (N, dimensions).

    Subspace iteration (Golub and Van Loan, 8.2.4) on the covariance of an evenly strided sample
    of :data:`PCA_SAMPLE` cells, in TensorFlow: numpy's LAPACK, its threads competing with
    TensorFlow's, took seconds for a 768 x 768 eigenproblem here (measured: 2.5 s; this: 0.1 s).
    """
    mean = tf.reduce_mean(values, axis=0, keepdims=True)
    sample = tf.cast(values[::max(1, values.shape[0] // PCA_SAMPLE)] - mean, tf.float64)
    covariance = tf.matmul(sample, sample, transpose_a=True)
    start = np.random.default_rng(0).standard_normal((covariance.shape[0], min(dimensions, covariance.shape[0])))
    basis = tf.constant(start)
    for _ in range(SUBSPACE_ITERATIONS):
        basis, _ = tf.linalg.qr(tf.matmul(covariance, basis))
    basis = tf.cast(basis, values.dtype)
    return (tf.matmul(values, basis) - tf.matmul(mean, basis)).numpy()  # centred after projecting: N x 16, not N x C


def _standardised_per_photo(values: np.ndarray, split: int) -> np.ndarray:
    """Each photo's rows (content: ``[:split]``) centred and scaled to unit total variance.

    A style photo differs from its content as a whole (night against day, sunset against noon);
    removing each photo's own mean and spread lets clusters follow what is sky and what is ground
    rather than which photo a cell is in. One scale per photo, not per dimension: unit variance
    per dimension blew up near-constant ones (border artefacts of the CNN became segments).
    """
    return np.concatenate([_unit_variance(part) for part in (values[:split], values[split:])])


def _unit_variance(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean(axis=0)
    return centred / max(np.sqrt(np.sum(centred.var(axis=0))), 1e-12)
