"""A GPU actor's two rows in flight: one row's host phases overlap the other's device phase, and a lost
GPU actor loses neither row. On a local Ray told it has one GPU (this machine has none, so the GPU is
only declared and the optimisation runs on the CPU; the overlap does not depend on where it runs)."""

from __future__ import annotations

import io
import statistics

import pytest
from local_clusters import copy_example_pair, local_ray_with_declared_gpus, read_rows, write_manifest

from ray_jobs.job import JobOptions, JobSummary, run_job
from ray_jobs.manifest import read_manifest
from ray_jobs.worker import TEST_FAULT_VARIABLE, TEST_SLOW_VARIABLE
from stylecore.config import TransferConfig

CONFIG = TransferConfig(size=64, coarse_scale=1.0, stage1_iterations=2, stage2_iterations=2)
HOST_SECONDS = 6.0
"""Waiting added to each row's host phases (half before the optimisation, half after)."""
DEVICE_SECONDS = 6.0
"""Waiting added to each row's optimisation, while it holds the device."""


@pytest.fixture(scope="module")
def one_gpu():
    with local_ray_with_declared_gpus(1):
        yield


def run(folder, ids, **options) -> tuple[JobSummary, dict[str, dict]]:
    entries = read_manifest(write_manifest(folder, ids), data_root=copy_example_pair(folder), config=CONFIG)
    summary = run_job(entries, options=JobOptions(output=folder / "out", require_visible_gpu=False, **options),
                      stream=io.StringIO())
    return summary, read_rows(summary.metadata_path)


def test_host_work_overlaps_the_device_so_a_row_takes_the_longer_not_the_sum(one_gpu, tmp_path, monkeypatch):
    half = HOST_SECONDS / 2
    monkeypatch.setenv(TEST_SLOW_VARIABLE, f"prepare:{half},device:{DEVICE_SECONDS},finish:{half}")
    summary, rows = run(tmp_path, [f"r{number}" for number in range(4)])
    assert (summary.ok, len(summary.workers)) == (4, 1)
    finished = sorted(row["finished_at"] for row in rows.values())
    # after the first row, one row ends per device turn: the host phases of its neighbours run meanwhile
    intervals = [(later - earlier).total_seconds() for earlier, later in zip(finished, finished[1:])]
    per_row = statistics.median(intervals)
    assert DEVICE_SECONDS * 0.95 < per_row < 0.75 * (HOST_SECONDS + DEVICE_SECONDS), intervals
    # each row still spent its whole host and device time: the overlap is between rows, not within one
    assert min(row["seconds"] for row in rows.values()) > HOST_SECONDS + DEVICE_SECONDS
    # a row whose host work ended while its neighbour held the device waited, and says so apart from its work
    assert max(row["wait_seconds"] for row in rows.values()) > DEVICE_SECONDS - HOST_SECONDS / 2
    for row in rows.values():
        assert row["work_seconds"] + row["wait_seconds"] == pytest.approx(row["seconds"])
        assert HOST_SECONDS + DEVICE_SECONDS < row["work_seconds"] < row["seconds"] + 1e-9


def test_a_gpu_actor_lost_with_two_rows_in_flight_loses_neither(one_gpu, tmp_path, monkeypatch):
    marker = tmp_path / "killed.pid"
    monkeypatch.setenv(TEST_SLOW_VARIABLE, "prepare:1")
    monkeypatch.setenv(TEST_FAULT_VARIABLE, f"kill:g2:{marker}")
    summary, rows = run(tmp_path, ["g1", "g2", "g3"])
    assert marker.exists()
    assert (summary.ok, summary.failed, summary.replaced_workers) == (3, 0, 1)
    # g1 and g2 were on the killed actor together; g3 waited in the queue
    assert {row_id: (row["status"], row["attempts"]) for row_id, row in rows.items()} == {
        "g1": ("ok", 2), "g2": ("ok", 2), "g3": ("ok", 1)}
