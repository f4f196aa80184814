"""Whole runs on a real local Ray (2 CPUs): real example photos at 64 px, a few L-BFGS iterations,
images written and reopened, metadata read back from Parquet without Ray.

The session's local Ray (conftest's), connected for the module; the first run is shared, and each
rerun works on its own copy of the output folder (and of the data, where a test changes an input).
The reruns share their actor (:class:`ray_jobs.pool.WarmActors`), as a notebook's jobs may: one
actor's start is seconds of TensorFlow and compiling ahead, a rerun's rows a fraction of that.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from conftest import example_pair_paths
from PIL import Image

import stylecore
from ray_jobs.devices import configure_tensorflow
from ray_jobs.errors import JobError
from ray_jobs.fingerprint import file_sha256
from ray_jobs.job import JobOptions, JobSummary, plan_run, run_job
from ray_jobs.manifest import read_manifest
from ray_jobs.metadata import RUN_FACTS_KEY
from ray_jobs.pool import WarmActors
from ray_jobs.schema import METADATA_SCHEMA
from stylecore.config import TransferConfig
from stylecore.render_version import RENDER_VERSION
from stylecore.weights import SQUEEZENET_SHA256
from stylecore.masks import PALETTE_NAMES, label_names, read_mask, snap_to_palette

CONFIG = TransferConfig(size=64, coarse_scale=1.0, stage1_iterations=3, stage2_iterations=3)
GOOD = {"pair01": 1, "pair02": 2}
"""Rows that render: example pair 1 with its masks, pair 2 without masks."""
ERRORS = {"missing": "InputImageError", "corrupt": "InputImageError", "diverges": "OptimisationError"}


@pytest.fixture(scope="module")
def ray_session(local_ray):
    return local_ray


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Copies of two example pairs, and a file that is not an image."""
    root = tmp_path_factory.mktemp("data")
    for name, number in GOOD.items():
        for kind, source in example_pair_paths(number).items():
            (root / name).mkdir(exist_ok=True)
            shutil.copy(source, root / name / f"{kind}.png")
    (root / "corrupt.png").write_bytes(b"this is not a PNG file")
    return root


def manifest_rows(*, with_errors: bool = True, overrides: dict[str, dict] | None = None) -> list[dict]:
    rows = [{"id": "pair01", "content": "pair01/content.png", "style": "pair01/style.png",
             "content_mask": "pair01/content_mask.png", "style_mask": "pair01/style_mask.png"},
            {"id": "pair02", "content": "pair02/content.png", "style": "pair02/style.png"}]
    if with_errors:
        rows += [{"id": "missing", "content": "pair01/nowhere.png", "style": "pair01/style.png"},
                 {"id": "corrupt", "content": "corrupt.png", "style": "pair01/style.png"},
                 # a content weight beyond float32's range makes the loss infinite, then NaN
                 {"id": "diverges", "content": "pair02/content.png", "style": "pair02/style.png",
                  "config": {"content_weight": 1e39}}]
    for row in rows:
        if overrides and row["id"] in overrides:
            row["config"] = overrides[row["id"]]
    return rows


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def run(manifest: Path, data_root: Path, output: Path, warm: WarmActors | None = None,
        **options) -> tuple[JobSummary, str]:
    """A run of one actor unless ``options`` say otherwise: the first run's two actors cover what
    several actors do, and each actor costs seconds of start (TensorFlow, compiling ahead)."""
    entries = read_manifest(manifest, data_root=data_root, config=CONFIG)
    console = io.StringIO()
    summary = run_job(entries, options=JobOptions(output=output, **{"actors": 1, **options}), stream=console,
                      warm=warm)
    return summary, console.getvalue()


def rows_of(summary: JobSummary) -> dict[str, dict]:
    return {row["id"]: row for row in pq.read_table(summary.metadata_path).to_pylist()}


@pytest.fixture(scope="module")
def first_run(ray_session, data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("first")
    manifest = write_manifest(folder / "manifest.jsonl", manifest_rows())
    summary, console = run(manifest, data_root, folder / "output", actors=2)
    return summary, console, manifest, folder / "output"


@pytest.fixture(scope="module")
def warm(ray_session) -> Iterator[WarmActors]:
    """The reruns' actors, kept up between them. They hold the cluster's CPUs: a test that starts
    actors of its own (a job without them, a command line, probes) closes them first."""
    with WarmActors() as actors:
        yield actors


@pytest.fixture
def output_copy(first_run, tmp_path) -> Path:
    shutil.copytree(first_run[3], tmp_path / "output")
    return tmp_path / "output"


def test_good_rows_succeed_and_each_broken_row_ends_as_an_error_row(first_run):
    summary, _, _, _ = first_run
    rows = rows_of(summary)
    assert (summary.ok, summary.failed, summary.skipped) == (2, 3, 0)
    assert {row_id: row["status"] for row_id, row in rows.items()} == {
        **dict.fromkeys(GOOD, "ok"), **dict.fromkeys(ERRORS, "error")}
    assert {row_id: rows[row_id]["error_type"] for row_id in ERRORS} == ERRORS
    assert "nowhere.png" in rows["missing"]["error_message"]
    assert "corrupt.png" in rows["corrupt"]["error_message"]
    assert "non-finite" in rows["diverges"]["error_message"]
    for row in rows.values():
        assert row["error_message"] is None or "\n" not in row["error_message"]
        assert (row["output_path"] is None) == (row["status"] == "error")


def test_metadata_has_the_schema_and_reads_in_duckdb_without_ray(first_run):
    summary, _, _, output = first_run
    assert pq.read_schema(summary.metadata_path).equals(METADATA_SCHEMA)
    query = (f"SELECT status, count(*) FROM read_parquet('{output}/metadata/*.parquet') "
             "GROUP BY status ORDER BY status")
    assert duckdb.sql(query).fetchall() == [("error", 3), ("ok", 2)]


def test_rows_record_inputs_configuration_losses_and_worker(first_run, data_root):
    rows = rows_of(first_run[0])
    pair01, pair02 = rows["pair01"], rows["pair02"]
    assert pair01["content_path"] == str(data_root / "pair01" / "content.png")
    assert pair01["style_mask_sha256"] == file_sha256(data_root / "pair01" / "style_mask.png")
    assert (pair02["content_mask_path"], pair02["content_mask_sha256"]) == (None, None)
    assert TransferConfig.from_dict(json.loads(pair01["config_json"])) == CONFIG
    assert pair01["config_hash"] == CONFIG.config_hash()
    assert rows["diverges"]["config_hash"] == CONFIG.replace(content_weight=1e39).config_hash()
    assert json.loads(pair01["mask_diagnostics_json"])["matched"] == pair01["matched_labels"]
    assert len(pair01["matched_labels"]) >= 2 and pair02["matched_labels"][0] == "blue"
    assert not pair01["automatic_masks"] and pair01["automatic_content_mask_path"] is None
    assert pair02["automatic_masks"] and json.loads(pair02["mask_diagnostics_json"])["masks_found"] == "both"
    assert pair02["fallbacks"][0].startswith("automatic masks used") and rows["corrupt"]["fallbacks"] is None
    masks = {side: read_mask(first_run[3] / pair02[f"automatic_{side}_mask_path"]) for side in ("content", "style")}
    assert masks["content"].shape[:2] == (pair02["working_height"], pair02["working_width"])
    for mask in masks.values():
        assert set(label_names(snap_to_palette(mask)[0])) >= set(pair02["matched_labels"])
    for row in (pair01, pair02):
        for stage in (1, 2):
            assert 1 <= row[f"stage{stage}_iterations_run"] <= 3
            assert math.isfinite(row[f"stage{stage}_loss_total"]) and row[f"stage{stage}_seconds"] > 0
        assert row["stage1_loss_photorealism"] == 0.0 < row["stage2_loss_photorealism"]
        assert (row["extractor"], row["device"], row["gpu_ids"]) == ("squeezenet", "CPU", [])
        assert row["extractor_weights_sha256"] and row["worker"] and row["version"] == stylecore.__version__
        assert row["started_at"] <= row["finished_at"] and 0 < row["seconds"] and row["attempts"] == 1


def test_rows_carry_metrics_of_the_output_and_both_references(first_run):
    rows = rows_of(first_run[0])
    for row in (rows["pair01"], rows["pair02"]):
        assert row["content_ssim"] == pytest.approx(1.0)
        assert 0.0 < row["output_ssim"] < 1.0 and 0.0 < row["reference_ssim"] < 1.0
        # The colour transfer moves the colours towards the style's; the content does not.
        assert row["reference_style_distance"] < row["content_style_distance"]
        assert row["content_photorealism_energy"] < 1e-5 < row["output_photorealism_energy"]
    assert rows["diverges"]["output_ssim"] is None


def test_images_are_complete_pngs_with_the_recorded_hash_and_no_partial_files(first_run):
    summary, _, _, output = first_run
    for row_id, row in rows_of(summary).items():
        if row["status"] != "ok":
            assert not (output / "images" / f"{row_id}.png").exists()
            continue
        path = output / row["output_path"]
        assert path == output / "images" / f"{row_id}.png"
        assert file_sha256(path) == row["output_sha256"]
        with Image.open(path) as image:
            pixels = np.asarray(image)
        assert pixels.shape == (row["output_height"], row["output_width"], 3)
        with Image.open(row["content_path"]) as content:  # written at the content photo's own size
            assert pixels.shape[:2] == (content.height, content.width) and pixels.std() > 1.0
        assert max(row["working_height"], row["working_width"]) == CONFIG.size
    assert not list(output.rglob(".*partial*"))


def test_each_actor_loads_its_extractor_once_with_its_share_of_the_cpus(first_run):
    workers = first_run[0].workers
    assert len(workers) == 2 and len({info.worker for info in workers}) == 2
    assert [info.extractor_loads for info in workers] == [{"squeezenet": 1}] * 2
    assert sum(info.rendered for info in workers) == 5
    assert [info.device.cpu_threads for info in workers] == [1, 1]


def test_actors_compile_ahead_so_that_their_rows_trace_nothing(first_run):
    """Each actor traced the programs both stages share (objective, start, block, history update) while
    it started; its rows, 2 or 3 of them, the first included, traced none."""
    workers = first_run[0].workers
    assert [(info.traces_at_start, info.traces) for info in workers] == [(4, 4)] * 2
    assert all(0 < info.warm_up_seconds < info.start_seconds for info in workers)


def test_rows_keep_their_work_apart_from_their_waits_and_their_actors_start(first_run):
    rows = [row for row in rows_of(first_run[0]).values() if row["worker"] is not None]
    assert {row["status"] for row in rows} == {"ok", "error"}
    for row in rows:
        assert 0.0 <= row["wait_seconds"] < 0.01  # a CPU actor holds one row at a time: taking the device is free
        assert row["work_seconds"] + row["wait_seconds"] == pytest.approx(row["seconds"]) and row["work_seconds"] > 0.0
    starts = {info.worker: info.start_seconds for info in first_run[0].workers}
    assert {row["actor_start_seconds"] for row in rows} == set(starts.values())
    assert all(row["actor_start_seconds"] == starts[row["worker"]] for row in rows)
    assert "actor starts: " in first_run[1] and "of which compiling ahead" in first_run[1]


def test_console_shows_progress_with_counts_and_estimate(first_run):
    console = first_run[1]
    assert "5 rows, 5 to render, 0 skipped" in console
    assert "[5/5] " in console and "| done 2, failed 3, skipped 0 | ETA 0s" in console
    assert "finished in " in console and "2 ok, 3 failed, 0 skipped" in console


def test_rerun_skips_done_rows_and_retries_only_failed_ones(first_run, data_root, output_copy, warm):
    images = {row_id: (output_copy / "images" / f"{row_id}.png").stat().st_mtime_ns for row_id in GOOD}
    summary, console = run(first_run[2], data_root, output_copy, warm)
    assert (summary.ok, summary.failed, summary.skipped, summary.reasons) == (0, 3, 2, {"failed_last_time": 3})
    assert "2 skipped as already done" in console and "why: failed last time 3" in console
    assert sum(info.rendered for info in summary.workers) == 3
    rerun = pq.read_table(summary.metadata_path)
    assert sorted(rerun["id"].to_pylist()) == sorted(ERRORS)  # the skipped rows are not written again
    assert json.loads(rerun.schema.metadata[RUN_FACTS_KEY]) == {"skipped": 2, "reasons": {"failed_last_time": 3}}
    for row_id in GOOD:
        assert (output_copy / "images" / f"{row_id}.png").stat().st_mtime_ns == images[row_id]
    assert len(list((output_copy / "metadata").glob("run-*.parquet"))) == 2


def test_changing_one_input_redoes_only_its_row(first_run, data_root, output_copy, tmp_path, warm):
    changed_root = tmp_path / "data"
    shutil.copytree(data_root, changed_root)
    style = changed_root / "pair02" / "style.png"
    with Image.open(style) as image:
        pixels = np.asarray(image.convert("RGB")).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(style)
    manifest = write_manifest(tmp_path / "good.jsonl", manifest_rows(with_errors=False))
    _, planned = plan_run(read_manifest(manifest, data_root=changed_root, config=CONFIG),
                          options=JobOptions(output=str(output_copy)), stream=io.StringIO())
    summary, _ = run(manifest, changed_root, output_copy, warm)
    assert {row_id: row["status"] for row_id, row in rows_of(summary).items()} == {"pair02": "ok"}
    assert planned.table().select(["id", "reason"]).to_pylist() == [{"id": "pair02", "reason": "photo_changed"}]
    assert (summary.skipped, summary.reasons) == (1, {"photo_changed": 1})
    assert rows_of(summary)["pair02"]["style_sha256"] == file_sha256(style)


def test_changing_one_rows_configuration_redoes_only_that_row(data_root, output_copy, tmp_path, warm):
    manifest = write_manifest(tmp_path / "good.jsonl", manifest_rows(
        with_errors=False, overrides={"pair01": {"stage2_iterations": 2, "output_size": 96}}))
    summary, _ = run(manifest, data_root, output_copy, warm)
    rows = rows_of(summary)
    assert {row_id: row["status"] for row_id, row in rows.items()} == {"pair01": "ok"}
    assert summary.reasons == {"config_changed": 1}
    assert rows["pair01"]["config_hash"] == CONFIG.replace(stage2_iterations=2, output_size=96).config_hash()
    assert rows["pair01"]["stage2_iterations_run"] <= 2
    with Image.open(output_copy / rows["pair01"]["output_path"]) as image:
        assert image.size == (rows["pair01"]["output_width"], rows["pair01"]["output_height"]) == (96, 60)


def test_rows_rendered_with_other_weights_or_older_rendering_code_are_redone(data_root, output_copy, tmp_path, warm):
    """The history says so (an output as the previous version wrote it: its state is rebuilt from it)."""
    [earlier] = (output_copy / "metadata").glob("run-*.parquet")
    table = pq.read_table(earlier)
    rows = table.to_pylist()
    for row in rows:
        if row["id"] == "pair01":
            row["extractor_weights_sha256"] = "0" * 64  # as if rendered with another weights file
        if row["id"] == "pair02":
            row["render_version"] -= 1  # as if rendered before the last change of output
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), earlier)
    shutil.rmtree(output_copy / "state")
    manifest = write_manifest(tmp_path / "good.jsonl", manifest_rows(with_errors=False))
    summary, _ = run(manifest, data_root, output_copy, warm)
    assert {row_id: row["status"] for row_id, row in rows_of(summary).items()} == {"pair01": "ok", "pair02": "ok"}
    assert summary.reasons == {"weights_changed": 1, "render_version_changed": 1}
    assert {row["extractor_weights_sha256"] for row in rows_of(summary).values()} == {SQUEEZENET_SHA256}
    assert {row["render_version"] for row in rows_of(summary).values()} == {RENDER_VERSION}


def test_force_redoes_every_row_and_a_torn_image_is_not_trusted(data_root, output_copy, tmp_path, warm):
    manifest = write_manifest(tmp_path / "good.jsonl", manifest_rows(with_errors=False))
    torn = output_copy / "images" / "pair01.png"
    torn.write_bytes(torn.read_bytes()[:50])
    summary, _ = run(manifest, data_root, output_copy, warm)
    assert {row_id: row["status"] for row_id, row in rows_of(summary).items()} == {"pair01": "ok"}
    assert summary.reasons == {"image_altered": 1}
    with Image.open(torn) as image:
        image.load()
    summary, _ = run(manifest, data_root, output_copy, warm, force=True)
    assert (summary.ok, summary.skipped, summary.reasons) == (2, 0, {"forced": 2})


def test_rows_labelled_on_one_side_or_as_class_ids_render(ray_session, data_root, tmp_path, warm):
    """A row with only a content mask (or only a style mask) renders, its other side's segments found
    from the labelled one; a row of class-id masks with a group table renders with the groups' names."""
    hand = {side: snap_to_palette(read_mask(data_root / "pair01" / f"{side}_mask.png"))[0] for side in ("content", "style")}
    for side, labels in hand.items():
        Image.fromarray((labels * 3 + 2).astype(np.uint8), mode="L").save(data_root / "pair01" / f"{side}_ids.png")
    present = sorted(set(np.unique(hand["content"])) | set(np.unique(hand["style"])))
    table = {PALETTE_NAMES[index]: [int(index) * 3 + 2] for index in present}
    (data_root / "pair01" / "groups.json").write_text(json.dumps(table))
    pair = {"content": "pair01/content.png", "style": "pair01/style.png"}
    rows = [{"id": "content-only", **pair, "content_mask": "pair01/content_mask.png"},
            {"id": "style-only", **pair, "style_mask": "pair01/style_mask.png"},
            {"id": "ids", **pair, "content_mask": "pair01/content_ids.png", "style_mask": "pair01/style_ids.png",
             "mask_format": "ids", "label_groups": "pair01/groups.json"}]
    summary, _ = run(write_manifest(tmp_path / "manifest.jsonl", rows), data_root, tmp_path / "output", warm)
    rendered = rows_of(summary)
    assert {row_id: row["status"] for row_id, row in rendered.items()} == dict.fromkeys(
        ("content-only", "style-only", "ids"), "ok")
    assert [rendered[row_id]["masks_found"] for row_id in ("content-only", "style-only", "ids")] == ["style", "content", ""]
    hand_labels = set(label_names(hand["content"]))
    found = read_mask(tmp_path / "output" / rendered["content-only"]["automatic_style_mask_path"])
    assert set(label_names(snap_to_palette(found)[0])) <= hand_labels
    assert rendered["content-only"]["automatic_masks"] and set(rendered["content-only"]["matched_labels"]) <= hand_labels
    assert set(rendered["ids"]["matched_labels"]) == hand_labels & set(label_names(hand["style"]))
    assert json.loads(rendered["ids"]["config_json"])["mask_format"] == "ids"


def test_warm_actors_serve_the_next_job_unless_dead_and_make_room_for_other_kinds(data_root, warm, tmp_path):
    """A job given warm actors takes one of its kind, up and compiled, instead of starting one; an
    actor of another kind is stopped first so that the job's own fit (a 1-actor run's holds both
    CPUs, a 2-actor run's are of 1 CPU); one whose process died is not taken."""
    manifest = write_manifest(tmp_path / "m.jsonl", manifest_rows(with_errors=False)[:1])
    first, _ = run(manifest, data_root, tmp_path / "a", warm)
    again, console = run(manifest, data_root, tmp_path / "b", warm)
    [kept], [taken] = first.workers, again.workers
    assert taken.worker == kept.worker and "1 of them up already, kept warm from an earlier job" in console
    assert (taken.extractor_loads, taken.rendered, taken.traces) == ({"squeezenet": 1}, 1, kept.traces)
    assert rows_of(again)["pair01"]["actor_start_seconds"] == rows_of(first)["pair01"]["actor_start_seconds"]
    other, console = run(manifest, data_root, tmp_path / "c", warm, actors=2, start_timeout=60)
    [started] = other.workers
    assert (started.worker != kept.worker, started.device.cpu_threads, "kept warm" in console) == (True, 1, False)
    os.kill(int(started.worker.rpartition(":")[2]), signal.SIGKILL)
    replaced, console = run(manifest, data_root, tmp_path / "d", warm, actors=2)
    assert (replaced.ok, "kept warm" in console) == (1, False)
    assert replaced.workers[0].worker not in (kept.worker, started.worker) and len(warm) == 1


def test_command_line_joins_the_running_cluster(ray_session, data_root, tmp_path, warm):
    warm.close()  # the job's actor needs a CPU
    manifest = write_manifest(tmp_path / "m.jsonl", manifest_rows(with_errors=False)[:1])
    command = [sys.executable, "-m", "ray_jobs.render", str(manifest), "--data-root", str(data_root),
               "--output", str(tmp_path / "out"), "--address", ray_session, "--smoke", "--stage2-iterations", "2"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "[1/1] pair01 ok" in finished.stdout
    [row] = pq.read_table(tmp_path / "out" / "metadata").to_pylist()
    config = TransferConfig.from_dict(json.loads(row["config_json"]))
    assert (config.size, config.stage2_iterations) == (64, 2)
    assert dataclasses.replace(config, stage2_iterations=5) == TransferConfig(
        size=64, coarse_scale=1.0, stage1_iterations=5, stage2_iterations=5)


def test_workers_that_cannot_load_their_weights_stop_the_job_before_any_row(ray_session, data_root, tmp_path, warm):
    warm.close()  # the job's actor needs a CPU
    manifest = write_manifest(tmp_path / "good.jsonl", manifest_rows(with_errors=False))
    with pytest.raises(JobError, match="^the workers cannot start: SqueezeNet weights not found"):
        run(manifest, data_root, tmp_path / "output", weights=str(tmp_path / "absent.h5"))
    assert not (tmp_path / "output" / "metadata").exists()


@numba.njit(parallel=True)
def thread_ids(count: int) -> np.ndarray:
    """The numba thread that ran each of ``count`` iterations of a parallel loop."""
    ids = np.empty(count, np.int64)
    for index in numba.prange(count):
        ids[index] = numba.get_thread_id()
    return ids


@ray.remote(num_cpus=1)
class Probe:
    """A 1-CPU actor, set up as the job's workers are (``cpu_threads``) or left as numba starts."""

    def __init__(self, cpu_threads: int | None) -> None:
        self.device = configure_tensorflow(cpu_threads=cpu_threads, gpu_ids=[]) if cpu_threads else None

    def threads_used(self) -> int:
        """Distinct threads of a parallel kernel, run as an actor method after set-up."""
        return len(set(thread_ids(200_000).tolist()))

    def numba_threads(self) -> int | None:
        return None if self.device is None else self.device.numba_threads


def test_a_one_cpu_actors_numba_kernels_run_on_one_thread(ray_session, warm):
    warm.close()  # the probes need both CPUs
    configured, unconfigured = Probe.remote(1), Probe.remote(None)
    assert ray.get(configured.numba_threads.remote()) == 1
    assert ray.get(configured.threads_used.remote()) == 1
    # Without the set-up numba starts a thread per core of the machine (2 or more here), and uses them.
    assert ray.get(unconfigured.threads_used.remote()) > 1
