"""The report of a 100,000-row run: its time, page size and thumbnail count (no rendering).

Target (issue 21): under a minute, a page of a few MB. The run is synthetic but real where the
report looks: one Parquet metadata file of :data:`ray_jobs.schema.METADATA_SCHEMA`, every row's
photos, masks and output real tiny PNGs from a small pool (so each thumbnail is really decoded,
resized and written), 40 style photos, 3 configurations, metrics drawn at random around the 60
example pairs' medians, and 2 % error rows of 4 kinds whose messages name each row's own file
(the report must group them by kind). Setup is not timed. The CPU seconds are printed beside the
wall-clock seconds: on a shared machine the wall clock mostly measures the others.

    python benchmarks/report_scale.py [--rows 100000] [--folder DIR] [--top 10] [--sample 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from ray_jobs.metadata import run_file, write_table
from ray_jobs.report import ReportOptions, build_report
from ray_jobs.schema import METADATA_SCHEMA, SCHEMA_VERSION, metric_column
from stylecore.config import TransferConfig

STYLES = 40
POOL = 12
"""Distinct content photos, outputs and masks the rows reuse."""
CONFIGURATIONS = (TransferConfig(), TransferConfig(init="noise"), TransferConfig(size=700))
ERROR_FRACTION = 0.02
ERRORS = (("InputImageError", "image not found: /data/content/c{row}.png"),
          ("MaskError", "the content mask /data/masks/c{row}.png is 640 x 480 but its photo is 480 x 640"),
          ("OptimisationError", "the loss became non-finite (nan) after {row} iterations"),
          ("WorkerDiedError", "the worker died while rendering the row; retried 2 times"))
RUN_ID = "20260101T000000Z-synthetic"
START_US = 1_767_225_600_000_000
"""2026-01-01 00:00 UTC in microseconds since the epoch, the unit of ``started_at``."""


def write_pool(folder: Path) -> dict[str, list[str]]:
    """Tiny real PNGs, 48 x 32: gradients for photos and outputs, two-colour label maps for masks.
    Returns the paths of each kind (outputs relative to ``folder``, the run folder)."""
    rng = np.random.default_rng(0)
    kinds = {"content": POOL, "style": STYLES, "output": POOL, "mask": POOL}
    paths: dict[str, list[str]] = {}
    for kind, count in kinds.items():
        (folder / f"{kind}s").mkdir(parents=True, exist_ok=True)
        paths[kind] = []
        for number in range(count):
            if kind == "mask":
                pixels = np.zeros((32, 48, 3), np.uint8)
                pixels[: 8 + number] = (0, 0, 255)
            else:
                pixels = (np.linspace(0, 1, 48)[None, :, None] * rng.uniform(60, 255, 3)).astype(np.uint8)
                pixels = np.repeat(pixels, 32, axis=0)
            path = folder / f"{kind}s" / f"{kind}-{number:02d}.png"
            Image.fromarray(pixels).save(path)
            paths[kind].append(f"{kind}s/{path.name}" if kind == "output" else str(path))
    return paths


def synthetic_table(rows: int, pool: dict[str, list[str]], *, seed: int = 0) -> pa.Table:
    """``rows`` metadata rows of one run (module docstring), every other column null."""
    rng = np.random.default_rng(seed)
    number = np.arange(rows)
    failed = rng.random(rows) < ERROR_FRACTION
    kind = rng.integers(0, len(ERRORS), rows)
    configuration = rng.choice(len(CONFIGURATIONS), rows, p=(0.6, 0.3, 0.1))
    seconds = rng.lognormal(np.log(40), 0.3, rows)
    started_us = START_US + number * 250_000  # a row started every 0.25 s
    json_texts = [config.to_json() for config in CONFIGURATIONS]
    hashes = [config.config_hash() for config in CONFIGURATIONS]
    values = {
        "schema_version": np.full(rows, SCHEMA_VERSION), "run_id": [RUN_ID] * rows,
        "id": [f"r{row:06d}" for row in number], "status": np.where(failed, "error", "ok"),
        "error_type": [ERRORS[k][0] if bad else None for k, bad in zip(kind, failed, strict=True)],
        "error_message": [ERRORS[k][1].format(row=row) if bad else None
                          for row, k, bad in zip(number, kind, failed, strict=True)],
        "content_path": [pool["content"][row % POOL] for row in number],
        "style_path": [pool["style"][row % STYLES] for row in number],
        "content_mask_path": [pool["mask"][row % POOL] for row in number],
        "style_mask_path": [pool["mask"][(row + 1) % POOL] for row in number],
        "output_path": [None if bad else pool["output"][row % POOL] for row, bad in zip(number, failed, strict=True)],
        "config_json": [json_texts[c] for c in configuration], "config_hash": [hashes[c] for c in configuration],
        "extractor": ["squeezenet"] * rows, "version": ["0.1.0"] * rows, "seconds": seconds,
        "started_at": started_us, "finished_at": started_us + (seconds * 1e6).astype(np.int64),
    }
    medians = {"style_distance": (4.0, 45.0, 5.0), "ssim": (0.7, 1.0, 0.6), "photorealism_energy": (4e-5, 3e-7, 4e-3)}
    for metric, centres in medians.items():
        for subject, centre in zip(("output", "content", "reference"), centres, strict=True):
            drawn = centre * rng.lognormal(0.0, 0.4, rows) if metric != "ssim" else np.clip(
                rng.normal(centre, 0.1, rows), 0, 1)
            values[metric_column(subject, metric)] = np.where(failed, np.nan, drawn)
    columns = {name: pa.nulls(rows, METADATA_SCHEMA.field(name).type) for name in METADATA_SCHEMA.names}
    for name, column in values.items():
        array = np.asarray(column) if isinstance(column, np.ndarray) else column
        columns[name] = pa.array(array, METADATA_SCHEMA.field(name).type, from_pandas=True)
    return pa.table(columns, schema=METADATA_SCHEMA)


def write_synthetic_run(folder: Path, rows: int, *, seed: int = 0) -> Path:
    """A run folder of ``rows`` synthetic rows (module docstring) under ``folder``; its path."""
    run = folder / "run"
    pool = write_pool(run)
    write_table(run_file(str(run), RUN_ID), synthetic_table(rows, pool, seed=seed))
    return run


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--top", type=int, default=ReportOptions().top)
    parser.add_argument("--sample", type=int, default=ReportOptions().sample)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = arguments.folder or Path(temporary)
        started = time.perf_counter()
        run = write_synthetic_run(folder, arguments.rows)
        print(f"setup: {arguments.rows} rows in {time.perf_counter() - started:.1f} s (not timed below)", flush=True)
        started, cpu_started = time.perf_counter(), time.process_time()
        page = build_report(run, output=folder / "report",
                            options=ReportOptions(top=arguments.top, sample=arguments.sample))
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        report = page.parent
        thumbnails = list((report / "thumbnails").iterdir())
        print(f"\nrows {arguments.rows}: report in {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU (target < 60 s); "
              f"index.html {page.stat().st_size / 1e6:.2f} MB, {len(thumbnails)} thumbnails "
              f"{sum(path.stat().st_size for path in thumbnails) / 1e6:.2f} MB, contact sheet "
              f"{(report / 'contact_sheet.png').stat().st_size / 1e6:.2f} MB, whole report folder "
              f"{folder_bytes(report) / 1e6:.2f} MB (target: a few MB)")


if __name__ == "__main__":
    main()
