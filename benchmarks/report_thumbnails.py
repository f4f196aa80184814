"""The report's first build over full-size outputs: an output's thumbnail from its 12-megapixel PNG
(before) and from the preview its worker wrote (after), and what the preview costs the worker.

Outputs are example photos scaled to 4000 x 3000 and encoded as the worker encodes them
(:func:`stylecore.output.encode_image`), previews as the worker makes them
(:func:`ray_jobs.outputs.encode_preview`). Thumbnails are written by the report's own
:func:`ray_jobs.report.thumbnails.write_thumbnails`, :data:`~ray_jobs.report.thumbnails.THUMBNAIL_THREADS`
at a time, into fresh folders. CPU seconds are printed beside wall-clock ones: on a shared machine
the wall clock mostly measures the others.

    python benchmarks/report_thumbnails.py [--rows 8] [--folder DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ray_jobs.fingerprint import bytes_sha256
from ray_jobs.outputs import encode_preview
from ray_jobs.report.thumbnails import Preview, write_thumbnails
from benchmarks.examples import DATA
from stylecore.output import encode_image

FULL_SIZE = (4000, 3000)


def write_outputs(folder: Path, rows: int) -> tuple[list[Path], list[Preview], float]:
    """``rows`` 12 MP output PNGs and their previews; the mean seconds (CPU) of making one preview."""
    outputs, previews, preview_seconds = [], [], []
    for number in range(1, rows + 1):
        with Image.open(DATA / "input" / f"in{number}.png") as photo:
            pixels = np.asarray(photo.convert("RGB").resize(FULL_SIZE, Image.Resampling.BICUBIC))
        png = encode_image(pixels, "PNG")
        outputs.append(folder / f"out{number}.png")
        outputs[-1].write_bytes(png)
        started = time.process_time()
        preview = encode_preview(pixels, bytes_sha256(png))
        preview_seconds.append(time.process_time() - started)
        (folder / f"out{number}.jpg").write_bytes(preview)
        previews.append(Preview(str(folder / f"out{number}.jpg"), bytes_sha256(png)))
    return outputs, previews, float(np.mean(preview_seconds))


def time_thumbnails(outputs: list[Path], previews: list[Preview | None], target: Path) -> tuple[float, float]:
    """Wall and CPU seconds per thumbnail of writing every output's thumbnail into ``target``."""
    jobs = [(output, target / f"{output.stem}.jpg", False, preview) for output, preview in zip(outputs, previews)]
    wall, cpu = time.perf_counter(), time.process_time()
    assert all(write_thumbnails(jobs))
    return (time.perf_counter() - wall) / len(jobs), (time.process_time() - cpu) / len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--folder", type=Path, default=None, help="where to write (default: a temporary folder)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = arguments.folder or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        outputs, previews, preview_cpu = write_outputs(folder, arguments.rows)
        megabytes = np.mean([output.stat().st_size for output in outputs]) / 2**20
        print(f"{arguments.rows} outputs of {FULL_SIZE[0]} x {FULL_SIZE[1]} px, PNG {megabytes:.1f} MB each "
              f"(not timed); previews {np.mean([Path(p.location).stat().st_size for p in previews]) / 1024:.0f} kB")
        for name, chosen in (("from the PNG (before)", [None] * len(outputs)), ("from the preview (after)", previews)):
            wall, cpu = time_thumbnails(outputs, chosen, folder / name.split()[2])
            print(f"thumbnail {name}: {wall:.3f} s wall, {cpu:.3f} s CPU per thumbnail")
        print(f"the worker's preview of a 12 MP result: {preview_cpu:.3f} s CPU per row")


if __name__ == "__main__":
    main()
