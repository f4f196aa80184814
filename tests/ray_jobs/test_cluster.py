"""The batch job on a two-node local cluster shaped like a real one: a 1-CPU head and a 2-CPU node
that declares one GPU (this machine has none, so the GPU is only declared and the job is told so).

Faults are real: a worker process SIGKILLs itself (``RAY_JOBS_TEST_FAULT``, see
:mod:`ray_jobs.worker`), a row hangs, the driver gets SIGTERM. One cluster for the module.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import ray
from local_clusters import copy_example_pair, free_port, node_ports, read_rows, wait_for, write_manifest
from ray.cluster_utils import Cluster

from ray_jobs.errors import JobError
from ray_jobs.job import JobOptions, JobSummary, run_job
from ray_jobs.manifest import read_manifest
from ray_jobs.worker import TEST_FAULT_VARIABLE
from stylecore.config import TransferConfig

CONFIG = TransferConfig(size=64, coarse_scale=1.0, stage1_iterations=2, stage2_iterations=2)
ROWS = ("p1", "p2", "p3")
CLUSTER_CPUS = 3


@pytest.fixture(scope="module")
def cluster():
    """(GCS address, node id of the GPU node)."""
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 80 * 2**20, "include_dashboard": False,
        "gcs_server_port": free_port(), **node_ports()})
    gpu_node = cluster.add_node(num_cpus=2, num_gpus=1, object_store_memory=80 * 2**20, **node_ports())
    ray.init(address=cluster.address, logging_level=logging.WARNING)
    yield cluster.address, gpu_node.node_id
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return copy_example_pair(tmp_path_factory.mktemp("data"))


def run(data_root: Path, output: Path, ids=ROWS, **options) -> tuple[JobSummary, dict[str, dict]]:
    entries = read_manifest(write_manifest(output.parent, ids), data_root=data_root, config=CONFIG)
    summary = run_job(entries, options=JobOptions(output=output, **options), stream=sys.stdout)
    return summary, read_rows(summary.metadata_path)


def rows_read(query: str) -> list[tuple]:
    """DuckDB's answer to ``query``; none before the run's first part file (written every few seconds)."""
    try:
        return duckdb.sql(query).fetchall()
    except duckdb.IOException:
        return []


def all_cpus_free() -> bool:
    return ray.available_resources().get("CPU", 0) == CLUSTER_CPUS


def test_gpu_actors_land_on_the_gpu_node_with_its_cpus(cluster, data_root, tmp_path):
    _, gpu_node = cluster
    summary, rows = run(data_root, tmp_path / "out", require_visible_gpu=False)
    [worker] = summary.workers
    assert (worker.node_id, worker.device.gpu_ids, worker.device.cpu_threads) == (gpu_node, ("0",), 2)
    assert {row["status"] for row in rows.values()} == {"ok"}
    assert {row["worker"] for row in rows.values()} == {worker.worker}
    assert {tuple(row["gpu_ids"]) for row in rows.values()} == {("0",)}


def test_an_actor_holding_a_gpu_its_tensorflow_cannot_see_stops_the_job_start(cluster, data_root, tmp_path):
    with pytest.raises(JobError, match="^the workers cannot start: the worker .* reserved GPU 0 but its "
                                       "TensorFlow finds no GPU"):
        run(data_root, tmp_path / "out")
    assert not (tmp_path / "out" / "metadata").exists()


def test_a_worker_killed_once_costs_a_retry_and_no_row(cluster, data_root, tmp_path, monkeypatch):
    marker = tmp_path / "killed.pid"
    monkeypatch.setenv(TEST_FAULT_VARIABLE, f"kill:p2:{marker}")
    # one actor: it takes p1, dies on p2, and its replacement renders p2 and p3
    summary, rows = run(data_root, tmp_path / "out", use_gpus=False, actors=1)
    killed_pid = marker.read_text()
    assert (summary.ok, summary.failed, summary.replaced_workers) == (3, 0, 1)
    assert {row_id: (row["status"], row["attempts"]) for row_id, row in rows.items()} == {
        "p1": ("ok", 1), "p2": ("ok", 2), "p3": ("ok", 1)}
    assert rows["p2"]["worker"].split(":")[1] != killed_pid
    assert killed_pid not in {info.worker.split(":")[1] for info in summary.workers}


def test_a_row_that_kills_every_worker_is_one_error_row_after_the_retries(cluster, data_root, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv(TEST_FAULT_VARIABLE, "kill:p2")
    summary, rows = run(data_root, tmp_path / "out", use_gpus=False, max_retries=1, actors=1)
    assert (summary.ok, summary.failed) == (2, 1)
    assert {row_id: row["status"] for row_id, row in rows.items()} == {"p1": "ok", "p2": "error", "p3": "ok"}
    assert (rows["p2"]["error_type"], rows["p2"]["attempts"]) == ("WorkerDiedError", 2)
    assert "retried 1 time(s)" in rows["p2"]["error_message"]
    assert summary.replaced_workers >= 1
    wait_for(all_cpus_free, 60, "the actors' release")


def test_a_row_past_the_row_timeout_is_an_error_row_and_the_run_finishes(cluster, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv(TEST_FAULT_VARIABLE, "hang:p2")
    # a row reaches an actor once it has compiled ahead: 20 s is generous for p1's real render (64 px,
    # 2+2 iterations, about a second) on a loaded machine; p2 never ends
    # both actors up before any row is handed out (--min-actors 2), so each gets one: else one actor could
    # take both rows while the other is still starting, and be stopped with no report kept
    summary, rows = run(data_root, tmp_path / "out", ("p1", "p2"), use_gpus=False, row_timeout=20, min_actors=2)
    assert {row_id: row["status"] for row_id, row in rows.items()} == {"p1": "ok", "p2": "error"}
    assert rows["p2"]["error_type"] == "RowTimeoutError"
    assert rows["p2"]["error_message"].startswith("the row took longer than --row-timeout 20s")
    # the hung actor was stopped (replaced only while rows remained): one live actor answers at the end
    assert len(summary.workers) == 1 and rows["p2"]["worker"] is None
    wait_for(all_cpus_free, 60, "the actors' release")


def test_a_request_no_node_can_hold_ends_within_the_start_timeout_naming_both(cluster, data_root, tmp_path):
    started = time.monotonic()
    with pytest.raises(JobError) as refused:
        run(data_root, tmp_path / "out", cpus_per_actor=4, start_timeout=3, require_visible_gpu=False)
    assert time.monotonic() - started < 60
    message = str(refused.value)
    assert message.startswith("no actor started within --start-timeout 3s: asked for 1 actor(s) of 4 CPU(s), "
                              "1 GPU(s) and 1.0 GiB of memory per actor, and the nodes have: ")
    assert "1 CPU(s), 0 GPU(s)" in message and "2 CPU(s), 1 GPU(s)" in message and "\n" not in message
    wait_for(all_cpus_free, 30, "the unplaced actor's removal")


def test_sigterm_mid_run_keeps_the_metadata_and_a_rerun_renders_only_the_rest(cluster, data_root, tmp_path):
    address, _ = cluster
    output = tmp_path / "out"
    ids = ("p1", "p2", "p3", "p4")
    manifest = write_manifest(tmp_path, ids)
    console = tmp_path / "console.txt"
    environment = {**os.environ, TEST_FAULT_VARIABLE: "hang:p4"}
    with open(console, "w", encoding="utf-8") as stdout:
        driver = subprocess.Popen([sys.executable, "-m", "ray_jobs.render", str(manifest), "--data-root",
                                   str(data_root), "--output", str(output), "--address", address, "--no-gpus",
                                   "--smoke", "--stage1-iterations", "2", "--stage2-iterations", "2"],
                                  stdout=stdout, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        wait_for(lambda: "[3/4]" in console.read_text(encoding="utf-8"), 240, "three rows")
        # DuckDB reads the folder while the run is still writing it (p4 hangs)
        query = f"SELECT id, status FROM read_parquet('{output}/metadata/*.parquet') ORDER BY id"
        assert wait_for(lambda: rows_read(query) == [(i, "ok") for i in ids[:3]], 30, "a part file")
        with pytest.raises(JobError, match="is in use by a run that is still going"):
            run(data_root, output, ids)
        driver.send_signal(signal.SIGTERM)
        _, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted by SIGTERM: the rows finished so far are in ")
    [compacted] = (output / "metadata").glob("*.parquet")
    assert sorted(row["id"] for row in pq.read_table(compacted).to_pylist()) == ["p1", "p2", "p3"]
    wait_for(all_cpus_free, 60, "the actors' release")
    summary, rows = run(data_root, output, ids, use_gpus=False)
    assert (summary.ok, summary.skipped, rows["p4"]["status"]) == (1, 3, "ok")
