"""Per-row wall time of the batch job with and without the host/device overlap (not a test: run it and quote it).

One actor of ``--cpus`` CPUs (default 2) on a local Ray renders ``--rows`` copies of an example pair,
twice per output size:

- without overlap: a CPU actor, one row at a time (prepare, optimise, finish, encode, one after another);
- with overlap: the same actor shaped as a GPU actor (one GPU, only declared when the machine has
  none, so the optimisation runs on the CPU as ``CPU (declared GPU)``), which holds two rows and
  runs one row's host phases while the other optimises (:mod:`ray_jobs.worker`).

Output sizes: the working size itself (700 px by default: no upsampling) and 24 MP (the content
photo's own size scaled to 24 megapixels by the local affine output step), where a row's host
work grows and the optimisation does not. Per-row wall time is the span from the first row's start
to the last row's end, divided by the rows, so the actor's start is not in it. On a CPU-only
machine the "device" is the same cores as the host work, so the overlap gains only where a phase
leaves a core idle (Python, L-BFGS bookkeeping, PNG encoding); on a GPU it hides the host work.

    python benchmarks/pipeline_overlap.py [--pair 2] [--rows 4] [--size 700] [--cpus 2] \\
        [--stage1-iterations 50] [--stage2-iterations 30] [--outputs working,24mp]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import ray
from PIL import Image

from examples import DATA, pair_paths
from ray_jobs.job import JobOptions, run_job
from ray_jobs.manifest import read_manifest
from stylecore.config import TransferConfig
from stylecore.weights import WEIGHTS_DIR_VARIABLE

OUTPUT_PIXELS = {"working": None, "24mp": 24e6}
"""Each case's output: the working size, or about this many pixels."""


def output_size(case: str, photo: Path, working: int) -> int:
    """``output_size`` (long side, px) of ``case`` for the content ``photo``."""
    if OUTPUT_PIXELS[case] is None:
        return working
    with Image.open(photo) as image:
        width, height = image.size
    return round(max(width, height) * math.sqrt(OUTPUT_PIXELS[case] / (width * height)))


def per_row_seconds(folder: Path, config: TransferConfig, rows: int, *, overlap: bool, cpus: int) -> float:
    """Wall seconds per row of ``rows`` rows on one actor, from the first row's start to the last one's end."""
    output = folder / f"out-{'overlap' if overlap else 'serial'}-{config.output_size}"
    shutil.rmtree(output, ignore_errors=True)
    entries = read_manifest(folder / "manifest.jsonl", data_root=folder, config=config)
    summary = run_job(entries[:rows], stream=io.StringIO(), options=JobOptions(
        output=str(output), actors=1, cpus_per_actor=cpus, gpus_per_actor=1 if overlap else 0,
        memory_per_actor=0, require_visible_gpu=False, force=True))
    table = pq.read_table(summary.metadata_path).to_pylist()
    if summary.failed:
        raise SystemExit(f"{summary.failed} row(s) failed: {table[0]['error_message']}")
    span = max(row["finished_at"] for row in table) - min(row["started_at"] for row in table)
    return span.total_seconds() / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", type=int, default=2)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--size", type=int, default=700, help="working size (long side, px)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the actor (and of the local Ray)")
    parser.add_argument("--stage1-iterations", type=int, default=TransferConfig().stage1_iterations)
    parser.add_argument("--stage2-iterations", type=int, default=TransferConfig().stage2_iterations)
    parser.add_argument("--outputs", default="working,24mp", help=f"cases, of {','.join(OUTPUT_PIXELS)}")
    arguments = parser.parse_args()
    os.environ.setdefault(WEIGHTS_DIR_VARIABLE, str(DATA.parents[1] / "weights"))  # the actors look there too
    folder = Path(tempfile.mkdtemp(prefix="pipeline-overlap-"))
    paths = pair_paths(arguments.pair)
    for kind in ("content", "style", "content_mask", "style_mask"):
        shutil.copy(paths[kind], folder / f"{kind}.png")
    row = {"content": "content.png", "style": "style.png", "content_mask": "content_mask.png",
           "style_mask": "style_mask.png"}
    (folder / "manifest.jsonl").write_text("".join(json.dumps({"id": f"row{number}", **row}) + "\n"
                                                   for number in range(arguments.rows)), encoding="utf-8")
    ray.init(address="local", num_cpus=arguments.cpus, num_gpus=1, include_dashboard=False,
             logging_level=logging.WARNING)
    try:
        for case in arguments.outputs.split(","):
            config = TransferConfig(size=arguments.size, stage1_iterations=arguments.stage1_iterations,
                                    stage2_iterations=arguments.stage2_iterations,
                                    output_size=output_size(case, folder / "content.png", arguments.size))
            serial = per_row_seconds(folder, config, arguments.rows, overlap=False, cpus=arguments.cpus)
            overlapped = per_row_seconds(folder, config, arguments.rows, overlap=True, cpus=arguments.cpus)
            print(f"{case:>8} output (long side {config.output_size} px): {serial:6.1f} s a row one at a time, "
                  f"{overlapped:6.1f} s with overlap (x{overlapped / serial:.2f}), {arguments.rows} rows, "
                  f"{arguments.cpus}-CPU actor, working size {arguments.size} px, "
                  f"{arguments.stage1_iterations}+{arguments.stage2_iterations} iterations", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
