"""Score one configuration on a fixed subset of the example pairs (not a test: run it and quote it).

Twelve pairs chosen to cover sunset and night skies, landscapes and seasons, interiors, people
and objects. For each: the transfer at the given configuration (every ``stylecore transfer``
option works here), the metrics of its output at the output size (the photos' own 700 px unless
``--output-size`` says otherwise, whatever the working ``--size``), and those of the per-segment
colour-statistics transfer at that size. Prints
a line per pair, then the medians and their ratios to the reference's, and the time.

    python benchmarks/tune.py [--sheet sheet.png] [--pairs 1,4,11] [--style-weight 30 ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from examples import pair_paths
from stylecore.cli import add_config_arguments, config_from_arguments
from stylecore.extractors import load_extractor
from stylecore.images import read_image, resize_image, to_uint8
from stylecore.masks import resize_labels
from stylecore.metrics import METRIC_NAMES, evaluate_with_references
from stylecore.transfer import TransferResult, output_image, transfer

THUMBNAIL_HEIGHT = 160
SUBSET = (1, 4, 11, 14, 20, 26, 30, 36, 39, 46, 48, 56)
"""Sunset skyline, night city, portrait, rock and sky, house to night, two interiors, an object,
a church interior, sky to dark, green to snow, snow to green."""
def score_output(result: TransferResult, content_path: Path) -> dict[str, dict[str, float]]:
    """The metrics of the output at the output size (700 px for the example pairs, whatever ``--size``),
    in float (the written 8-bit image's rounding alone adds about 1e-5 of photorealism energy)."""
    content = read_image(content_path)
    output = output_image(result.image, result.content_image, content, result.config, dtype=np.float32)
    content = resize_image(content, output.shape[:2])
    labels = resize_labels(result.content_labels, output.shape[:2])
    return evaluate_with_references(output, content, result.style_image, labels, result.style_labels,
                                    content_only_policy=result.config.content_only_policy)


def sheet_row(result: TransferResult) -> Image.Image:
    images = [result.content_image, result.style_image, result.image]
    thumbnails = [Image.fromarray(to_uint8(image)).resize(
        (round(image.shape[1] * THUMBNAIL_HEIGHT / image.shape[0]), THUMBNAIL_HEIGHT)) for image in images]
    row = Image.new("RGB", (sum(thumbnail.width for thumbnail in thumbnails), THUMBNAIL_HEIGHT))
    for index, thumbnail in enumerate(thumbnails):
        row.paste(thumbnail, (sum(other.width for other in thumbnails[:index]), 0))
    return row


def save_sheet(rows: list[Image.Image], path: Path) -> None:
    sheet = Image.new("RGB", (max(row.width for row in rows), THUMBNAIL_HEIGHT * len(rows)))
    for index, row in enumerate(rows):
        sheet.paste(row, (0, index * THUMBNAIL_HEIGHT))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=",".join(map(str, SUBSET)), help="comma-separated pair numbers")
    parser.add_argument("--sheet", type=Path, help="write content | style | result rows to this PNG")
    add_config_arguments(parser)
    arguments = parser.parse_args()
    config = config_from_arguments(arguments)
    extractor = load_extractor(config.extractor, seed=config.seed)
    defaults = type(config)().to_dict()
    changed = {key: value for key, value in config.to_dict().items() if value != defaults[key]}
    print(f"configuration {config.config_hash()}, changed from the defaults: {changed or 'nothing'}")
    outputs, references, seconds, rows = [], [], [], []
    for number in (int(text) for text in arguments.pairs.split(",")):
        started = time.perf_counter()
        result = transfer(**pair_paths(number), config=config, extractor=extractor)
        seconds.append(time.perf_counter() - started)
        scored = score_output(result, pair_paths(number)["content"])
        output, reference = scored["output"], scored["reference"]
        outputs.append(output)
        references.append(reference)
        rows.append(sheet_row(result))
        cells = "  ".join(f"{name} {output[name]:.4g} (ref {reference[name]:.4g})" for name in METRIC_NAMES)
        print(f"pair {number:2d}: {seconds[-1]:5.1f} s  {cells}", flush=True)
    print("median over the pairs:")
    for name in METRIC_NAMES:
        mine, theirs = (float(np.median([row[name] for row in table])) for table in (outputs, references))
        print(f"  {name:20s} output {mine:.4g}  reference {theirs:.4g}  ratio {mine / theirs:.3f}")
    print(f"  seconds per pair     median {np.median(seconds):.1f}  max {max(seconds):.1f}  total {sum(seconds):.0f}")
    if arguments.sheet:
        save_sheet(rows, arguments.sheet)


if __name__ == "__main__":
    main()
