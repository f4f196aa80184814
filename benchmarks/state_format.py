"""Keeping an output folder's current state: one compacted Parquet file against Delta Lake and Iceberg.

The state is one row per manifest id (1,000,000 rows here): who rendered it, the SHA-256 of its
inputs, config and weights, the output's hash, size and identity, three metrics. Each night a rerun
reads the whole state, changes 1 % of the rows and writes the new state, which must replace the
old one atomically. Three ways of keeping it, five variants:

- ``parquet``: one file rewritten whole beside its name and renamed over it
  (:func:`stylecore.atomic.atomic_path`, as :mod:`ray_jobs.metadata` writes its files today);
- ``delta-overwrite`` / ``delta-merge``: a Delta Lake table (the ``deltalake`` package, delta-rs),
  the whole state overwritten, or the changed rows merged on ``id``;
- ``iceberg-overwrite`` / ``iceberg-upsert``: an Iceberg table (``pyiceberg``, SQL catalog on a
  SQLite file), overwritten, or the changed rows upserted on ``id``.

Every variant writes Parquet with the same codec (``--compression``, snappy by default, as
``pyarrow.parquet.write_table`` and so the project's metadata files). Each figure comes from a fresh
process, whose peak resident memory (``VmHWM``, Rust allocations included) is printed with it. The
synthetic table is built once, not timed, and saved as plain Parquet that each process reads first
(its memory after that read is printed as the baseline). After ``--nights`` nights the bytes on disk
are counted, then again after the cleanup each library offers (Delta's ``vacuum`` with no retention;
Iceberg's ``expire_snapshots``, which in pyiceberg 0.12 only drops snapshots from the metadata, so
the data files no remaining snapshot references are then deleted by this script, as Iceberg's
``remove_orphan_files`` would). On a shared machine the wall clock also measures the others: the
CPU seconds (all threads) are printed beside it.

Needs packages that are not project dependencies, in a separate environment::

    python3 -m venv /tmp/fmt-venv
    /tmp/fmt-venv/bin/pip install pyarrow deltalake 'pyiceberg[sql-sqlite,pyarrow]'
    PYTHONPATH=$PWD /tmp/fmt-venv/bin/python benchmarks/state_format.py [--rows 1000000] [--nights 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

VARIANTS = ("parquet", "delta-overwrite", "delta-merge", "iceberg-overwrite", "iceberg-upsert")
STYLES = 50
CONFIGS = 8
CHANGED_COLUMNS = ("status", "run_id", "output_sha256", "output_bytes", "output_size", "output_mtime_ns",
                   "output_ssim", "output_lpips", "output_colour_distance")
"""What a rerun changes in a row it renders again: the run, the output's hash and identity, the metrics."""


def state_schema():
    import pyarrow as pa

    hexes = ("content_sha256", "style_sha256", "content_mask_sha256", "style_mask_sha256", "config_hash",
             "extractor_weights_sha256")
    return pa.schema([
        pa.field("id", pa.string(), nullable=False), pa.field("status", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False), *[pa.field(name, pa.string()) for name in hexes],
        pa.field("render_version", pa.int32()), pa.field("output_path", pa.string()),
        pa.field("output_sha256", pa.string()), pa.field("output_bytes", pa.int64()),
        pa.field("output_size", pa.int64()), pa.field("output_mtime_ns", pa.int64()),
        pa.field("output_etag", pa.string()),
        *[pa.field(name, pa.float64()) for name in ("output_ssim", "output_lpips", "output_colour_distance")],
    ])


def random_hex(rng, count: int):
    """``count`` random 64-character hex strings as an Arrow string array (like SHA-256 digests:
    incompressible but for the hex encoding)."""
    import numpy as np
    import pyarrow as pa

    digits = np.array([f"{byte:02x}".encode() for byte in range(256)], dtype="S2")
    encoded = digits[rng.integers(0, 256, (count, 32), dtype=np.uint8)].view("S64").ravel()
    return pa.array(encoded, pa.binary(64)).cast(pa.string())


def changed_values(rng, count: int, run_id: str) -> dict:
    """New values of :data:`CHANGED_COLUMNS` for ``count`` rows rendered again by ``run_id``."""
    sizes = rng.integers(200_000, 2_000_000, count)
    return {"status": ["ok"] * count, "run_id": [run_id] * count, "output_sha256": random_hex(rng, count),
            "output_bytes": sizes, "output_size": sizes,
            "output_mtime_ns": rng.integers(1_790_000_000, 1_800_000_000, count) * 1_000_000_000,
            "output_ssim": rng.uniform(0.3, 0.95, count), "output_lpips": rng.uniform(0.05, 0.6, count),
            "output_colour_distance": rng.uniform(1.0, 30.0, count)}


def synthetic_state(rows: int):
    """A state of ``rows`` rows rendered by 20 earlier runs, sorted by id: 2 % errors, 40 % with mask
    files (the others matched masks automatically: null mask hashes), styles and configs shared by
    many rows, one extractor."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(0)
    styles, configs, masks = random_hex(rng, STYLES), random_hex(rng, CONFIGS), random_hex(rng, STYLES)
    style_of = pa.array(rng.integers(0, STYLES, rows))
    no_mask = pa.array(rng.random(rows) >= 0.4)
    ids = pa.array([f"c{number // 4:07d}--s{number % 4}" for number in range(rows)])
    runs = rng.integers(0, 20, rows)
    columns = changed_values(rng, rows, "") | {
        "id": ids, "content_sha256": random_hex(rng, rows), "style_sha256": pc.take(styles, style_of),
        "content_mask_sha256": pc.if_else(no_mask, None, random_hex(rng, rows)),
        "style_mask_sha256": pc.if_else(no_mask, None, pc.take(masks, style_of)),
        "config_hash": pc.take(configs, pa.array(rng.integers(0, CONFIGS, rows))),
        "extractor_weights_sha256": pa.repeat(random_hex(rng, 1)[0], rows),
        "render_version": np.full(rows, 6, np.int32),
        "output_path": pc.binary_join_element_wise("images/", ids, ".png", ""),
        "output_etag": pa.nulls(rows, pa.string()),
        "run_id": [f"202611{10 + run:02d}T020000Z-{run:06x}" for run in runs],
        "status": np.where(rng.random(rows) < 0.02, "error", "ok").tolist()}
    schema = state_schema()
    return pa.table({name: pa.array(columns[name], schema.field(name).type) if not isinstance(
        columns[name], (pa.Array, pa.ChunkedArray)) else columns[name].cast(schema.field(name).type)
        for name in schema.names}, schema=schema)


def night_changes(state, night: int, fraction: float):
    """Night ``night``'s rerun: a random ``fraction`` of the rows rendered again, as (mask over
    ``state``'s rows, the changed rows in ``state``'s order). Seeded by the night."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(1000 + night)
    chosen = np.sort(rng.choice(state.num_rows, int(state.num_rows * fraction), replace=False))
    mask = np.zeros(state.num_rows, bool)
    mask[chosen] = True
    changed = state.take(pa.array(chosen))
    for name, values in changed_values(rng, len(chosen), f"night-{night:02d}").items():
        field = state.schema.field(name)
        changed = changed.set_column(changed.schema.get_field_index(name), field, pa.array(values, field.type))
    return pa.array(mask), changed


def apply_changes(state, mask, changed):
    """``state`` with the rows under ``mask`` replaced by ``changed`` (same order), in Arrow."""
    import pyarrow.compute as pc

    for name in CHANGED_COLUMNS:
        index = state.schema.get_field_index(name)
        column = pc.replace_with_mask(state.column(name).combine_chunks(), mask, changed.column(name).combine_chunks())
        state = state.set_column(index, state.schema.field(name), column)
    return state


class ParquetState:
    """One compacted file, ``state.parquet``, written beside its name and renamed over it."""

    def __init__(self, folder: Path, compression: str) -> None:
        self.path, self.compression = folder / "state.parquet", compression

    def write(self, state) -> None:
        import pyarrow.parquet as pq

        from stylecore.atomic import atomic_path

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as temporary:
            pq.write_table(state, temporary, compression=self.compression)

    def read(self):
        import pyarrow.parquet as pq

        return pq.read_table(self.path)

    def night(self, state, mask, changed) -> None:
        self.write(apply_changes(state, mask, changed))

    def clean(self) -> None:
        """Nothing to clean: the rename left no older file."""


class DeltaState:
    """A Delta Lake table; a night overwrites it whole or merges the changed rows on ``id``."""

    def __init__(self, folder: Path, compression: str, *, merge: bool) -> None:
        from deltalake import WriterProperties

        self.uri, self.merge = str(folder / "state"), merge
        self.properties = WriterProperties(compression=compression.upper())

    def write(self, state) -> None:
        from deltalake import write_deltalake

        write_deltalake(self.uri, state, mode="overwrite", writer_properties=self.properties)

    def read(self):
        from deltalake import DeltaTable

        return DeltaTable(self.uri).to_pyarrow_table()

    def night(self, state, mask, changed) -> None:
        from deltalake import DeltaTable

        if not self.merge:
            self.write(apply_changes(state, mask, changed))
            return
        (DeltaTable(self.uri)
         .merge(changed, predicate="target.id = source.id", source_alias="source", target_alias="target",
                writer_properties=self.properties)
         .when_matched_update_all().when_not_matched_insert_all().execute())

    def clean(self) -> None:
        from deltalake import DeltaTable

        DeltaTable(self.uri).vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)


class IcebergState:
    """An Iceberg table in a SQL catalog on SQLite; a night overwrites it or upserts the changed rows."""

    def __init__(self, folder: Path, compression: str, *, upsert: bool) -> None:
        from pyiceberg.catalog.sql import SqlCatalog

        folder.mkdir(parents=True, exist_ok=True)
        self.catalog = SqlCatalog("state", uri=f"sqlite:///{folder / 'catalog.db'}", warehouse=f"file://{folder}")
        self.upsert, self.compression = upsert, compression

    def table(self):
        return self.catalog.load_table("batch.state")

    def write(self, state) -> None:
        self.catalog.create_namespace_if_not_exists("batch")
        table = self.catalog.create_table_if_not_exists(
            "batch.state", schema=state.schema, properties={"write.parquet.compression-codec": self.compression})
        table.overwrite(state)

    def read(self):
        return self.table().scan().to_arrow()

    def night(self, state, mask, changed) -> None:
        if self.upsert:
            self.table().upsert(changed, join_cols=["id"])
        else:
            self.table().overwrite(apply_changes(state, mask, changed))

    def clean(self) -> None:
        """Expire every snapshot but the current one, then delete the data files it does not use."""
        table = self.table()
        table.maintenance.expire_snapshots().older_than(datetime.now(timezone.utc)).commit()
        live = {Path(path.removeprefix("file://")) for path in self.table().inspect.files()["file_path"].to_pylist()}
        for data_file in Path(table.location().removeprefix("file://"), "data").rglob("*.parquet"):
            if data_file not in live:
                data_file.unlink()


def open_state(variant: str, folder: Path, compression: str):
    """The store of ``variant`` (one of :data:`VARIANTS`) in ``folder``."""
    if variant == "parquet":
        return ParquetState(folder, compression)
    kind, night_mode = variant.split("-")
    if kind == "delta":
        return DeltaState(folder, compression, merge=night_mode == "merge")
    return IcebergState(folder, compression, upsert=night_mode == "upsert")


def peak_memory_mib() -> float:
    """This process's peak resident memory, MiB (``VmHWM``: not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def import_libraries() -> None:
    """Import what every variant uses, so that no timed step pays for an import."""
    import deltalake  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import pyiceberg.catalog.sql  # noqa: F401
    import pyiceberg.io.pyarrow  # noqa: F401
    import pyiceberg.table  # noqa: F401

    import stylecore.atomic  # noqa: F401


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


class Clock:
    """Wall and CPU seconds (all threads) since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict:
        return {"seconds": time.perf_counter() - self.wall, "cpu_seconds": time.process_time() - self.cpu}


def step(name: str, variant: str, folder: Path, arguments) -> dict:
    """One measurement, in this (fresh) process: ``write``, ``read``, ``night`` (read, change, write),
    ``nights`` (the rest of them, untimed each), ``clean``."""
    import pyarrow.parquet as pq

    import_libraries()
    store = open_state(variant, folder / variant, arguments.compression)
    result = {"imported_mib": peak_memory_mib()}
    if name == "write":
        state = pq.read_table(folder / "source.parquet")
        result["source_mib"] = peak_memory_mib()
        clock = Clock()
        store.write(state)
    elif name == "read":
        clock = Clock()
        result["rows"] = store.read().num_rows
    elif name == "night":
        clock = Clock()
        state = store.read()
        result["read_seconds"] = clock.read()["seconds"]
        store.night(state, *night_changes(state, arguments.night, arguments.changed))
    elif name == "nights":
        clock = Clock()
        for night in range(arguments.night, arguments.nights + 1):
            state = store.read()
            store.night(state, *night_changes(state, night, arguments.changed))
    else:
        clock = Clock()
        store.clean()
    return result | clock.read() | {"peak_mib": peak_memory_mib(), "bytes": folder_bytes(folder / variant)}


def step_command(name: str, variant: str, folder: Path, arguments, night: int = 1) -> list[str]:
    """The command line that runs :func:`step` in a fresh process."""
    return [sys.executable, __file__, "--step", name, "--variant", variant, "--folder", str(folder),
            "--night", str(night), "--nights", str(arguments.nights), "--changed", str(arguments.changed),
            "--compression", arguments.compression]


def run_step(name: str, variant: str, folder: Path, arguments, night: int = 1) -> dict:
    """:func:`step` in a fresh process; its figures. A process that printed its figures and then
    failed on the way out is reported and its figures kept; one that printed none is run once more."""
    for _ in range(2):
        completed = subprocess.run(step_command(name, variant, folder, arguments, night), capture_output=True,
                                   text=True)
        lines = completed.stdout.splitlines()
        if completed.returncode:
            print(f"{variant} {name} exited with {completed.returncode}: {completed.stderr.strip()[-300:]}", flush=True)
        if lines and lines[-1].startswith("{"):
            return json.loads(lines[-1])
    raise SystemExit(f"{variant} {name} failed twice")


def measure_timed(variant: str, folder: Path, arguments) -> dict:
    """The timed figures of one variant, each step in its own process, one after the other."""
    return {"write": run_step("write", variant, folder, arguments),
            "read": run_step("read", variant, folder, arguments),
            "night": run_step("night", variant, folder, arguments, night=1),
            "read_after_night": run_step("read", variant, folder, arguments)}


def run_nights(variants: list[str], folder: Path, arguments) -> None:
    """Nights 2 to ``--nights`` of every variant, the variants at the same time (untimed: only the
    bytes they leave are reported, and the shared machine would otherwise need hours)."""
    with tempfile.TemporaryFile("w+") as errors:
        started = [subprocess.Popen([*step_command("nights", variant, folder, arguments, night=2)],
                                    stdout=subprocess.DEVNULL, stderr=errors) for variant in variants]
        if any(process.wait() for process in started):
            errors.seek(0)
            raise SystemExit(f"nights failed:\n{errors.read()[-3000:]}")


def measure_after(variant: str, folder: Path, arguments) -> dict:
    """The read of the last night's state, then the cleanup (and its bytes)."""
    return {"read_last_night": run_step("read", variant, folder, arguments),
            "clean": run_step("clean", variant, folder, arguments)}


def seconds(figures: dict) -> str:
    return f"{figures['seconds']:.1f} ({figures['cpu_seconds']:.1f})"


def print_table(results: dict, arguments) -> None:
    """One line per variant: seconds as wall (CPU), MiB of peak resident memory, MB on disk."""
    nights = arguments.nights
    print(f"\n| variant | write s | write peak MiB | read s | read peak MiB | night s (of it read) | night peak MiB "
          f"| read after night s | MB after 1 night | MB after {nights} nights | MB after cleanup | "
          f"read night {nights} s |")
    print("|---" * 12 + "|")
    for variant, figures in results.items():
        night = figures["night"]
        print(f"| {variant} | {seconds(figures['write'])} | {figures['write']['peak_mib']:.0f} "
              f"| {seconds(figures['read'])} | {figures['read']['peak_mib']:.0f} "
              f"| {seconds(night)} ({night['read_seconds']:.1f}) | {night['peak_mib']:.0f} "
              f"| {seconds(figures['read_after_night'])} | {night['bytes'] / 1e6:.0f} "
              f"| {figures['read_last_night']['bytes'] / 1e6:.0f} | {figures['clean']['bytes'] / 1e6:.0f} "
              f"| {seconds(figures['read_last_night'])} |")
    first = next(iter(results.values()))
    print(f"\nseconds: wall (CPU, all threads); peak MiB includes {first['read']['imported_mib']:.0f} MiB of "
          f"imports, and for the write {first['write']['source_mib']:.0f} MiB with the source table read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--nights", type=int, default=30, help="nights of changes before the last read (default 30)")
    parser.add_argument("--changed", type=float, default=0.01, help="fraction of rows a night changes")
    parser.add_argument("--compression", default="snappy", help="Parquet codec of every variant")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--folder", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--night", type=int, default=1, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.step:
        print(json.dumps(step(arguments.step, arguments.variant, arguments.folder, arguments)))
        return
    with tempfile.TemporaryDirectory(dir=arguments.folder) as temporary:
        folder = Path(temporary)
        clock = Clock()
        import pyarrow.parquet as pq

        pq.write_table(synthetic_state(arguments.rows), folder / "source.parquet", compression=arguments.compression)
        print(f"setup: {arguments.rows} rows in {clock.read()['seconds']:.0f} s (not timed below); "
              f"{os.cpu_count()} CPUs", flush=True)
        variants = arguments.variants.split(",")
        results = {}
        for variant in variants:
            results[variant] = measure_timed(variant, folder, arguments)
            print(f"{variant}: {json.dumps(results[variant])}", flush=True)
        if arguments.nights > 1:
            run_nights(variants, folder, arguments)
        for variant in variants:
            results[variant] |= measure_after(variant, folder, arguments)
            print(f"{variant} after {arguments.nights} nights: {json.dumps(results[variant])}", flush=True)
        print_table(results, arguments)


if __name__ == "__main__":
    main()
