"""Helpers for the tests that build their own Ray clusters on this machine (several engineers'
tests share it, so every port is a free one, never Ray's defaults): free ports, a local Ray with
declared GPUs, a manifest of copies of one example pair, and waiting for a condition with a limit."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import ray
from conftest import example_pair_paths, free_port, node_ports  # noqa: F401 (the ports' helpers, kept importable from here)


@contextlib.contextmanager
def local_ray_with_declared_gpus(gpus: int) -> Iterator[None]:
    """A new local Ray of 2 CPUs that declares ``gpus`` GPUs (this machine has none), connected."""
    ray.init(address="local", num_cpus=2, num_gpus=gpus, object_store_memory=100 * 2**20, include_dashboard=False,
             logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def copy_example_pair(root: Path, number: int = 2) -> Path:
    """``root`` holding example pair ``number`` as content.png and style.png."""
    for kind in ("content", "style"):
        shutil.copy(example_pair_paths(number)[kind], root / f"{kind}.png")
    return root


def write_manifest(folder: Path, ids) -> Path:
    """A manifest of rows ``ids``, each the pair of :func:`copy_example_pair`."""
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps({"id": row_id, "content": "content.png", "style": "style.png"}) + "\n"
                            for row_id in ids), encoding="utf-8")
    return path


def read_rows(metadata_path) -> dict[str, dict]:
    """A run's metadata rows by id."""
    return {row["id"]: row for row in pq.read_table(metadata_path).to_pylist()}


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {seconds} s")
