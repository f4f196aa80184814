"""Nightly reruns at a million rows: what a rerun costs when nothing (or 1 %) changed.

Targets (issue 25), on the 2-core development machine:

- 1,000,000 rows (100,000 content photos x 10 styles, the manifest builder's cross product, all
  done), no-op rerun: at most 60 s wall and 1 GiB driver peak, and no input byte read;
- its 30th night into the same output: time and peak within 10 % of the first night's, and at
  most 1 MB of files added by a night without changes;
- 1 % of the photos rewritten with new bytes, one style added, one mask edited: ``--plan`` names
  exactly those rows with their reasons, and the bytes read are those files' own;
- ``--s3``: 100,000 rows on a local S3 server (moto, as in the tests): a no-op rerun makes no GET
  of an input object, counted on the server.

The photos are small files (the cost measured is the per-file and per-row work, not disk
bandwidth). The earlier runs are synthesized (a metadata file of ``ok`` rows whose fingerprints
are the real ones, and an image file per row), and a first rerun, reported as "upgrade", builds
the state from that history as it would for an output of the previous version. Every measured
night runs in a fresh process (``--night``), so its peak resident memory (``VmHWM``) is the
driver's own, imports included. Input bytes read are counted two ways: the input files the
process opened (a Python audit hook; all hashing opens files from Python) with their sizes, and
``read_bytes`` and ``rchar`` from ``/proc/self/io`` for everything the process read (the
manifest, the state, the listings' metadata included).

    python benchmarks/nightly_scale.py [--contents 100000] [--styles 10] [--nights 30] [--folder DIR]
    python benchmarks/nightly_scale.py --folder DIR --reuse   # the nights again, on a folder built before
    python benchmarks/nightly_scale.py --s3 [--contents 10000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MASKED_CONTENTS = 10
"""Content photos that have a mask (the rest have none), so that one mask edit changes a few rows."""


def build(folder: Path, contents: int, styles: int) -> None:
    """Inputs, a manifest from the builder, an image per row and a history of one run that did them all."""
    data = folder / "data"
    for sub in ("content", "style", "masks"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    for number in range(contents):
        (data / "content" / f"c{number:07d}.png").write_bytes(f"content photo {number}".encode() * 32)
    for number in range(MASKED_CONTENTS):
        (data / "masks" / f"c{number:07d}.png").write_bytes(f"mask {number}".encode() * 16)
    for number in range(styles):
        (data / "style" / f"s{number:02d}.png").write_bytes(f"style photo {number}".encode() * 1024)
    _build_manifest(folder)
    _synthesize_history(folder)


def _build_manifest(folder: Path) -> None:
    from ray_jobs.manifest_builder import build_main

    build_main(["--root", str(folder / "data"), "--content", "content", "--style", "style",
                "--content-masks", "masks", "--output", str(folder / "manifest.parquet")])


def _synthesize_history(folder: Path) -> None:
    """A run that rendered every row: a metadata file of ok rows with the rows' real fingerprints,
    and an image file per row (as a run of the previous version left them: no state)."""

    import numpy as np
    import pyarrow as pa

    from ray_jobs.fingerprint import bytes_sha256
    from ray_jobs.metadata import run_file, write_table
    from ray_jobs.plan import make_plan
    from ray_jobs.schema import METADATA_SCHEMA
    from ray_jobs.state import empty_state

    manifest = _manifest(folder)
    output = folder / "output"
    (output / "images").mkdir(parents=True, exist_ok=True)
    plan = make_plan(manifest, empty_state(), output=str(output), weights_of=lambda extractor: None)
    ids = manifest.table["id"].to_pylist()
    hashes = []
    for row_id in ids:
        image = f"rendered image {row_id}".encode()
        (output / "images" / f"{row_id}.png").write_bytes(image)
        hashes.append(bytes_sha256(image))
    rows = len(ids)
    columns = {name: pa.nulls(rows, METADATA_SCHEMA.field(name).type) for name in METADATA_SCHEMA.names}
    columns.update({name: plan.fingerprints[name] for name in plan.fingerprints.column_names})
    values = {"schema_version": np.full(rows, 3, np.int32), "run_id": ["20260101T000000Z-earlier"] * rows, "id": ids,
              "status": ["ok"] * rows, "content_path": manifest.table["content"], "style_path": manifest.table["style"],
              "content_mask_path": manifest.table["content_mask"], "config_json": ["{}"] * rows,
              "output_path": [f"images/{row_id}.png" for row_id in ids], "output_sha256": hashes,
              "output_bytes": [len(f"rendered image {row_id}") for row_id in ids], "seconds": np.full(rows, 41.5),
              "output_ssim": np.full(rows, 0.7), "extractor": ["squeezenet"] * rows, "version": ["0.1.0"] * rows}
    for name, column in values.items():
        columns[name] = pa.array(column, METADATA_SCHEMA.field(name).type) if not isinstance(
            column, pa.ChunkedArray) else column
    write_table(run_file(str(output), "20260101T000000Z-earlier"), pa.table(columns, schema=METADATA_SCHEMA))


def _manifest(folder: Path):
    from ray_jobs.manifest import read_manifest
    from stylecore.config import TransferConfig

    return read_manifest(folder / "manifest.parquet", data_root=folder / "data", config=TransferConfig())


def night(folder: Path, *, plan_only: bool) -> dict:
    """One rerun (or ``--plan``) in this fresh process: what it cost and what it decided."""
    from ray_jobs.job import JobOptions, plan_run, run_job

    opened: list[str] = []
    data = str(folder / "data")
    sys.addaudithook(lambda event, args: opened.append(os.fspath(args[0])) if event == "open" and isinstance(
        args[0], str | os.PathLike) and os.fspath(args[0]).startswith(data) else None)
    io_before = _io()
    started, cpu_started = time.perf_counter(), time.process_time()
    manifest = _manifest(folder)
    options = JobOptions(output=str(folder / "output"))
    if plan_only:
        _, plan = plan_run(manifest, options=options, stream=io.StringIO())
        decided = {"to_render": len(plan.render), "reasons": plan.counts(),
                   "plan": dict(zip(*(column.to_pylist() for column in (plan.table()["id"], plan.table()["reason"])),
                                    strict=True))}
    else:
        summary = run_job(manifest, options=options, stream=io.StringIO())
        decided = {"to_render": summary.ok + summary.failed, "reasons": summary.reasons}
    io_after = _io()
    return {"rows": len(manifest), "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started, "peak_mib": _peak_mib(),
            "input_files_opened": len(opened), "input_bytes_opened": sum(os.path.getsize(path) for path in opened),
            "read_bytes": io_after["read_bytes"] - io_before["read_bytes"],
            "rchar": io_after["rchar"] - io_before["rchar"], **decided}


def _io() -> dict[str, int]:
    return {key: int(value) for key, value in (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())}


def _peak_mib() -> float:
    """``VmHWM``: unlike ``ru_maxrss`` it does not inherit the parent's high-water mark."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def run_night(folder: Path, *, plan_only: bool = False) -> dict:
    command = [sys.executable, __file__, "--night", "--folder", str(folder)] + (["--plan-only"] if plan_only else [])
    finished = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(finished.stdout.splitlines()[-1])


def _line(name: str, result: dict) -> str:
    return (f"{name}: {result['rows']} rows, {result['to_render']} to render, {result['seconds']:.1f} s wall, "
            f"{result['cpu_seconds']:.1f} s CPU, peak {result['peak_mib']:.0f} MiB; input files opened "
            f"{result['input_files_opened']} ({result['input_bytes_opened'] / 2**20:.2f} MiB); process read_bytes "
            f"{result['read_bytes'] / 2**20:.1f} MiB, rchar {result['rchar'] / 2**20:.1f} MiB")


def _added_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for sub in ("metadata", "state") for path in (folder / "output" / sub).glob("*"))


def nightly(folder: Path, nights: int, *, upgrade: bool) -> None:
    if upgrade:
        print(_line("upgrade (state built from the history)", run_night(folder)), flush=True)
    first = run_night(folder)
    print(_line("night 1", first), flush=True)
    for number in range(2, nights + 1):
        before = _added_bytes(folder)
        result = run_night(folder)
        if number == nights:
            print(_line(f"night {number}", result), flush=True)
            print(f"night {number}: {(_added_bytes(folder) - before) / 1024:.1f} KiB of metadata and state added; "
                  f"time x{result['seconds'] / first['seconds']:.2f}, peak x{result['peak_mib'] / first['peak_mib']:.2f} "
                  "of night 1's", flush=True)


def changes(folder: Path, styles: int) -> None:
    """Rewrite 1 % of the content photos, add a style, edit a mask; check --plan against the expected rows."""
    data = folder / "data"
    contents = sorted(path.name for path in (data / "content").iterdir())
    rewritten = random.Random(0).sample(contents[MASKED_CONTENTS:], len(contents) // 100)
    for name in rewritten:
        (data / "content" / name).write_bytes(f"new bytes of {name}".encode() * 32)
    (data / "style" / f"s{styles:02d}.png").write_bytes(b"a new style photo" * 1024)
    (data / "masks" / "c0000000.png").write_bytes(b"a corrected mask" * 16)
    _build_manifest(folder)
    changed_files = [data / "content" / name for name in rewritten] + [data / "style" / f"s{styles:02d}.png",
                                                                        data / "masks" / "c0000000.png"]
    expected = {f"{Path(content).stem}--s{styles:02d}": "new" for content in contents}
    expected.update({f"{Path(name).stem}--s{style:02d}": "photo_changed" for name in rewritten for style in range(styles)})
    expected.update({f"c0000000--s{style:02d}": "mask_changed" for style in range(styles)})
    result = run_night(folder, plan_only=True)
    print(_line("--plan after the changes", result), flush=True)
    print(f"--plan: reasons {result['reasons']}; names exactly the expected rows and reasons: "
          f"{result['plan'] == expected}; bytes of the changed files {sum(p.stat().st_size for p in changed_files)}",
          flush=True)


def s3(contents: int, styles: int) -> None:
    """100,000 rows in a local S3 server: GET requests of a no-op rerun, counted on the server."""
    import logging

    from moto.server import ThreadedMotoServer

    requests: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            requests.append(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))  # werkzeug colours some lines

    logging.getLogger("werkzeug").addHandler(Count())
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                       "AWS_ENDPOINT_URL": f"http://{host}:{port}"})
    with tempfile.TemporaryDirectory() as temporary:
        local = Path(temporary)
        build(local, contents, styles)
        _upload(local, "s3://nightly")
        _record_etags("s3://nightly/output")
        for label in ("upgrade (state built from the history)", "night 1"):
            requests.clear()
            result = run_night_s3()
            gets = [line for line in requests if '"GET /nightly/data/' in line]
            heads = [line for line in requests if '"HEAD /nightly/data/' in line]
            print(_line(label, result) + f"; server: {len(requests)} requests, {len(gets)} GET and {len(heads)} "
                  "HEAD of an input object", flush=True)
    server.stop()


def _upload(local: Path, bucket: str) -> None:
    import concurrent.futures

    from pyarrow.fs import S3FileSystem

    from stylecore.storage import write_bytes
    S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], allow_bucket_creation=True).create_dir("nightly")
    files = [path for path in local.rglob("*") if path.is_file()]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda path: write_bytes(f"{bucket}/{path.relative_to(local)}", path.read_bytes()), files))
    os.environ["NIGHTLY_S3_ROOT"] = bucket


def _record_etags(output: str) -> None:
    """The history's rows given the ETags the store gave the uploaded images, as a run records them."""
    import concurrent.futures

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ray_jobs.metadata import metadata_files, write_table
    from ray_jobs.schema import METADATA_SCHEMA
    from stylecore.storage import resolve, stat

    [history] = metadata_files(output)
    filesystem, within = resolve(history)
    table = pq.read_table(within, filesystem=filesystem)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        etags = list(pool.map(lambda path: stat(f"{output}/{path}").etag, table["output_path"].to_pylist()))
    table = table.set_column(table.schema.get_field_index("output_etag"), METADATA_SCHEMA.field("output_etag"),
                             pa.array(etags, pa.string()))
    write_table(history, table)


def run_night_s3() -> dict:
    finished = subprocess.run([sys.executable, __file__, "--night-s3"], capture_output=True, text=True)
    if finished.returncode:
        raise RuntimeError(finished.stderr)
    return json.loads(finished.stdout.splitlines()[-1])


def night_s3() -> dict:
    from ray_jobs.job import JobOptions, plan_run, run_job
    from ray_jobs.manifest import read_manifest
    from stylecore.config import TransferConfig

    root = os.environ["NIGHTLY_S3_ROOT"]
    started, cpu_started = time.perf_counter(), time.process_time()
    manifest = read_manifest(f"{root}/manifest.parquet", data_root=f"{root}/data", config=TransferConfig())
    options = JobOptions(output=f"{root}/output")
    planned = plan_run(manifest, options=options, stream=io.StringIO())[1]
    if len(planned.render):
        raise RuntimeError(f"a night without changes would render {planned.describe()}")
    summary = run_job(manifest, options=options, stream=io.StringIO())
    return {"rows": len(manifest), "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started, "peak_mib": _peak_mib(), "input_files_opened": 0,
            "input_bytes_opened": 0, "read_bytes": 0, "rchar": 0, "to_render": summary.ok + summary.failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=int, default=100_000)
    parser.add_argument("--styles", type=int, default=10)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--folder", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--s3", action="store_true", help="the no-op rerun on a local S3 server, GETs counted")
    parser.add_argument("--reuse", action="store_true",
                        help="continue on a --folder built (and upgraded) by an earlier run of this script")
    parser.add_argument("--night", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plan-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--night-s3", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.night:
        print(json.dumps(night(arguments.folder, plan_only=arguments.plan_only)))
        return
    if arguments.night_s3:
        print(json.dumps(night_s3()))
        return
    if arguments.s3:
        s3(arguments.contents if arguments.contents != 100_000 else 10_000, arguments.styles)
        return
    with tempfile.TemporaryDirectory() as temporary:
        folder = arguments.folder or Path(temporary)
        if not arguments.reuse:
            started = time.perf_counter()
            build(folder, arguments.contents, arguments.styles)
            print(f"setup: {arguments.contents * arguments.styles} rows in {time.perf_counter() - started:.0f} s "
                  "(not timed below)", flush=True)
        nightly(folder, arguments.nights, upgrade=not arguments.reuse)
        changes(folder, arguments.styles)


if __name__ == "__main__":
    main()
