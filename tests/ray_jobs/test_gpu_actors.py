"""The GPU path on a local Ray told it has two GPUs: one actor per declared GPU, each with its own
device id, and the transfer still runs where TensorFlow then finds no GPU (this machine has none)."""

from __future__ import annotations

import io
import json
import shutil

import pyarrow.parquet as pq
import pytest
from conftest import example_pair_paths
from local_clusters import local_ray_with_declared_gpus

from ray_jobs.job import JobOptions, run_job
from ray_jobs.manifest import read_manifest
from stylecore.config import TransferConfig

CONFIG = TransferConfig(size=64, coarse_scale=1.0, stage1_iterations=2, stage2_iterations=2)


@pytest.fixture(scope="module")
def gpu_cluster():
    with local_ray_with_declared_gpus(2):
        yield


@pytest.fixture(scope="module")
def gpu_run(gpu_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu")
    rows = []
    for number in (1, 2, 3, 4, 5):  # more rows than the first actor's two slots: both actors get rows
        paths = example_pair_paths(number)
        for kind in ("content", "style"):
            shutil.copy(paths[kind], folder / f"{kind}{number}.png")
        rows.append({"id": f"pair{number}", "content": f"content{number}.png", "style": f"style{number}.png"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    entries = read_manifest(manifest, data_root=folder, config=CONFIG)
    summary = run_job(entries, options=JobOptions(output=folder / "output", require_visible_gpu=False),
                      stream=io.StringIO())
    return summary, pq.read_table(summary.metadata_path).to_pylist()


def test_one_actor_per_declared_gpu_each_with_its_own_device_id(gpu_run):
    summary, _ = gpu_run
    assert len(summary.workers) == 2
    assert sorted(info.device.gpu_ids for info in summary.workers) == [("0",), ("1",)]
    assert [info.extractor_loads for info in summary.workers] == [{"squeezenet": 1}] * 2
    assert [info.device.cpu_threads for info in summary.workers] == [1, 1]


def test_transfer_runs_on_the_cpu_where_tensorflow_finds_no_gpu(gpu_run):
    summary, rows = gpu_run
    assert (summary.ok, summary.failed) == (5, 0)
    assert {row["device"] for row in rows} == {"CPU (declared GPU)"}
    assert {tuple(row["gpu_ids"]) for row in rows} <= {("0",), ("1",)}
    by_worker = {row["worker"]: row["gpu_ids"] for row in rows}
    assert len(set(map(tuple, by_worker.values()))) == len(by_worker)
