"""Rerunning a large manifest whose rows are all done: seconds and peak memory of the driver.

Target (issue 12): 100,000 rows in at most 60 s and 1 GiB of driver memory. The rerun reads the
manifest, hashes every distinct input file once (100,000 content files, 10 style files shared by
all rows), reads the earlier run's metadata with only the columns the check needs, checks every
image's SHA-256, and writes this run's 100,000 ``skipped`` rows. No row is rendered, so no Ray is
started. The files are small (the cost measured is the per-file and per-row work, not disk
bandwidth); the setup is not timed and the measurement runs in a fresh process, so its peak
resident memory is the driver's own, imports included. The CPU seconds (all threads) are printed
beside the wall-clock seconds: on a shared machine the wall clock mostly measures the others.

    python benchmarks/resume_scale.py [--rows 100000] [--folder DIR]
    python benchmarks/resume_scale.py --measure --folder DIR   # again, on a folder built before
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STYLES = 10


def build(folder: Path, rows: int) -> None:
    """Inputs, a manifest, images and the metadata of an earlier run that rendered every row."""
    import pyarrow as pa

    from ray_jobs.fingerprint import bytes_sha256, fingerprints
    from ray_jobs.manifest import read_manifest
    from ray_jobs.metadata import run_file, write_table
    from ray_jobs.schema import METADATA_SCHEMA, SCHEMA_VERSION
    from stylecore.config import TransferConfig

    data, images = folder / "data", folder / "output" / "images"
    for sub in ("content", "style"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    for number in range(STYLES):
        (data / "style" / f"s{number}.png").write_bytes(f"style photo {number}".encode() * 4096)
    output_hashes = []
    with open(folder / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for number in range(rows):
            (data / "content" / f"c{number}.png").write_bytes(f"content photo {number}".encode() * 64)
            image = f"rendered image {number}".encode() * 64
            (images / f"r{number:06d}.png").write_bytes(image)
            output_hashes.append(bytes_sha256(image))
            manifest.write(json.dumps({"id": f"r{number:06d}", "content": f"content/c{number}.png",
                                       "style": f"style/s{number % STYLES}.png"}) + "\n")
    entries = read_manifest(folder / "manifest.jsonl", data_root=data, config=TransferConfig())
    prints = fingerprints(entries, weights_of=lambda extractor: None)
    columns = {name: pa.nulls(rows, METADATA_SCHEMA.field(name).type) for name in METADATA_SCHEMA.names}
    values = {"schema_version": [SCHEMA_VERSION] * rows, "run_id": ["earlier"] * rows,
              "id": [entry.id for entry in entries], "status": ["ok"] * rows,
              "content_path": [str(entry.content) for entry in entries],
              "style_path": [str(entry.style) for entry in entries],
              "config_json": [entry.config.to_json() for entry in entries],
              "extractor": ["squeezenet"] * rows, "version": ["0.1.0"] * rows,
              "output_path": [f"images/{entry.id}.png" for entry in entries], "output_sha256": output_hashes,
              "seconds": [41.5] * rows, "output_ssim": [0.8] * rows, "timings_json": ['{"stage1": 30.0}'] * rows}
    for name in ("content_sha256", "style_sha256", "config_hash", "extractor_weights_sha256", "render_version"):
        values[name] = [getattr(prints[entry.id], name) for entry in entries]
    for name, column in values.items():
        columns[name] = pa.array(column, METADATA_SCHEMA.field(name).type)
    write_table(run_file(folder / "output", "20000101T000000Z-earlier"), pa.table(columns, schema=METADATA_SCHEMA))


def measure(folder: Path) -> None:
    """The rerun, in this (fresh) process; prints its seconds and peak resident memory."""
    from ray_jobs.job import JobOptions, run_job
    from ray_jobs.manifest import read_manifest
    from stylecore.config import TransferConfig

    imported = peak_memory_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    entries = read_manifest(folder / "manifest.jsonl", data_root=folder / "data", config=TransferConfig())
    summary = run_job(entries, options=JobOptions(output=str(folder / "output")), stream=io.StringIO())
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = peak_memory_mib()
    assert (summary.skipped, summary.ok, summary.failed) == (len(entries), 0, 0), summary
    print(f"rows {len(entries)}: rerun {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU (all threads; target <= 60 s), "
          f"peak driver memory {peak:.0f} MiB (target <= 1024 MiB; {imported:.0f} MiB of it after imports)")


def peak_memory_mib() -> float:
    """This process's peak resident memory, MiB: ``VmHWM``, which (unlike ``ru_maxrss``) does not
    inherit the high-water mark of the parent that forked it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--measure", action="store_true", help="only the measurement, on a --folder built before")
    arguments = parser.parse_args()
    if arguments.measure:
        measure(arguments.folder)
        return
    with tempfile.TemporaryDirectory() as temporary:
        folder = arguments.folder or Path(temporary)
        started = time.perf_counter()
        build(folder, arguments.rows)
        print(f"setup: {arguments.rows} rows in {time.perf_counter() - started:.0f} s (not timed below)", flush=True)
        subprocess.run([sys.executable, __file__, "--measure", "--folder", str(folder)], check=True)


if __name__ == "__main__":
    main()
