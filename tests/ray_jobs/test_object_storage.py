"""The batch command from a bucket to a bucket on a real local Ray (2 CPUs), against a real S3 protocol
(moto's server in the test process, on a free port): the smoke manifest in one bucket, its photos in
another, the images and metadata in a third; a rerun that skips everything; a deleted input that
becomes one error row; unreachable manifests and outputs refused before any row runs."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import DPST_DATA
from PIL import Image

from ray_jobs.fingerprint import hash_files
from ray_jobs.metadata import RUN_FACTS_KEY, OutputLock
from ray_jobs.outputs import images_intact, write_image
from ray_jobs.report import build_report
from ray_jobs.schema import METADATA_SCHEMA
from stylecore.storage import list_files, read_bytes, resolve, write_bytes

REPOSITORY = Path(__file__).resolve().parents[2]
SMOKE = REPOSITORY / "manifests" / "dpst-smoke.csv"
SMOKE_ROWS = ("pair01", "pair02-nomask")
"""The rows ``--limit 2`` renders."""


@pytest.fixture(scope="module")
def ray_address(local_ray):
    """The session's local Ray, started after the object store's variables are set, so its workers inherit them."""
    return local_ray


@pytest.fixture(scope="module")
def buckets(object_store) -> dict[str, str]:
    """The smoke manifest in bucket ``manifests``, the files of its first two rows in bucket ``photos``."""
    photos = object_store.bucket("photos")
    for line in SMOKE.read_text(encoding="utf-8").splitlines()[1:3]:
        for relative in line.split(",")[1:5]:
            if relative:
                write_bytes(f"{photos}/dpst/{relative}", (DPST_DATA / relative).read_bytes())
    manifest = f"{object_store.bucket('manifests')}/nightly/dpst-smoke.csv"
    write_bytes(manifest, SMOKE.read_bytes())
    return {"manifest": manifest, "data_root": f"{photos}/dpst", "renders": object_store.bucket("renders")}


def render(ray_address: str, manifest: str, data_root: str, output: str, *extra: str,
           environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ray_jobs.render", manifest, "--data-root", data_root, "--output", output,
               "--address", ray_address, "--smoke", "--limit", "2", "--output-size", "64", "--stage1-iterations", "2",
               "--stage2-iterations", "2", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(environment or {})})


def served(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The requests the server logged, as ``... "GET /bucket/key HTTP/1.1" 206 -``: werkzeug colours
    some of its lines (ranged GETs among them), and the colour codes stand between quote and method."""
    return [re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()) for record in caplog.records]


def metadata_rows(output: str) -> list[dict]:
    filesystem, folder = resolve(f"{output}/metadata")
    return ds.dataset(folder, filesystem=filesystem, format="parquet").to_table().to_pylist()


@pytest.fixture(scope="module")
def first_run(ray_address, buckets):
    output = f"{buckets['renders']}/smoke"
    finished = render(ray_address, buckets["manifest"], buckets["data_root"], output)
    return finished, output


def test_the_smoke_manifest_renders_from_a_bucket_into_a_bucket(first_run, buckets):
    finished, output = first_run
    assert finished.returncode == 0, finished.stderr
    rows = {row["id"]: row for row in metadata_rows(output)}
    assert sorted(rows) == sorted(SMOKE_ROWS) and {row["status"] for row in rows.values()} == {"ok"}
    for row in rows.values():
        assert row["content_path"] == f"{buckets['data_root']}/input/{row['content_path'].rsplit('/', 1)[1]}"
        png = read_bytes(f"{output}/{row['output_path']}")
        assert hashlib.sha256(png).hexdigest() == row["output_sha256"]
        assert row["output_bytes"] == len(png) and row["output_etag"]
        with Image.open(io.BytesIO(png)) as image:
            assert max(image.size) == 64 and image.size == (row["output_width"], row["output_height"])
    assert rows["pair01"]["content_sha256"] == hashlib.sha256((DPST_DATA / "input/in1.png").read_bytes()).hexdigest()
    assert [location.rsplit("/", 1)[1] for location in list_files(f"{output}/images", "*")] == \
        sorted(f"{row_id}.png" for row_id in SMOKE_ROWS)  # nothing else: no temporary objects
    # The row without masks had its segments matched automatically; its worker wrote the label maps too.
    assert (rows["pair02-nomask"]["automatic_content_mask_path"], rows["pair01"]["automatic_content_mask_path"]) == \
        ("masks/pair02-nomask-content.png", None)
    assert list_files(f"{output}/masks", "*") == [f"{output}/masks/pair02-nomask-content.png",
                                                  f"{output}/masks/pair02-nomask-style.png"]
    with Image.open(io.BytesIO(read_bytes(f"{output}/masks/pair02-nomask-content.png"))) as mask:
        assert mask.size == (rows["pair02-nomask"]["working_width"], rows["pair02-nomask"]["working_height"])


def test_the_workers_write_previews_and_the_job_its_run_record_into_the_bucket(first_run):
    finished, output = first_run
    rows = {row["id"]: row for row in metadata_rows(output)}
    assert list_files(f"{output}/previews", "*") == [f"{output}/previews/{row_id}.jpg" for row_id in sorted(rows)]
    for row_id, row in rows.items():
        with Image.open(io.BytesIO(read_bytes(f"{output}/previews/{row_id}.jpg"))) as preview:
            assert preview.info["comment"] == row["output_sha256"].encode()
    record_path = f"{output}/metadata/_summary-{rows['pair01']['run_id']}.json"
    assert finished.stdout.strip().splitlines()[-1].endswith(f"run record {record_path}")
    record = json.loads(read_bytes(record_path))
    assert (record["rows"], record["output"]) == ({"ok": 2, "error": 0, "skipped": 0}, {"rows": 2, "ok": 2, "error": 0})


def test_metadata_in_the_bucket_reads_as_one_dataset_with_pyarrow_and_duckdb(first_run):
    _, output = first_run
    filesystem, folder = resolve(f"{output}/metadata")
    dataset = ds.dataset(folder, filesystem=filesystem, format="parquet")
    assert dataset.schema.equals(METADATA_SCHEMA)
    # DuckDB scans the same pyarrow dataset; its own httpfs extension cannot be installed offline.
    counts = duckdb.sql("SELECT status, count(*) FROM dataset GROUP BY status").fetchall()
    assert counts == [("ok", 2)]


def test_no_credentials_or_keys_are_written_anywhere(first_run, object_store):
    finished, output = first_run
    text = finished.stdout + finished.stderr + "".join(str(row) for row in metadata_rows(output))
    assert object_store.environment["AWS_SECRET_ACCESS_KEY"] not in text
    assert object_store.environment["AWS_ACCESS_KEY_ID"] not in text


def test_a_rerun_skips_every_row_without_rendering_or_downloading_an_image(first_run, ray_address, buckets, caplog):
    _, output = first_run
    caplog.set_level(logging.INFO, logger="werkzeug")  # the server's log of every request it answers
    finished = render(ray_address, buckets["manifest"], buckets["data_root"], output)
    assert finished.returncode == 0, finished.stderr
    assert "2 rows, 0 to render, 2 skipped" in finished.stdout
    requests = [request for request in served(caplog) if "/renders/smoke/images/" in request]
    assert sum('"HEAD /renders/smoke/images/' in request for request in requests) == 2
    assert not [request for request in requests if '"GET /renders/smoke/images/' in request]
    runs = list_files(f"{output}/metadata", "run-*.parquet")
    assert len(runs) == 2
    rerun = pq.read_table(resolve(runs[-1])[1], filesystem=resolve(runs[-1])[0])
    assert rerun.num_rows == 0 and json.loads(rerun.schema.metadata[RUN_FACTS_KEY])["skipped"] == 2
    caplog.clear()  # the rerun recorded the images' listing times: the next asks nothing of any image
    again = render(ray_address, buckets["manifest"], buckets["data_root"], output, "--plan")
    assert "plan: 2 rows, 0 to render" in again.stdout, again.stderr
    assert not [request for request in served(caplog) if any(f'"{method} /renders/smoke/images/' in request
                                                            for method in ("GET", "HEAD"))]


def test_an_input_object_rewritten_in_the_store_is_planned_as_changed(first_run, ray_address, buckets, caplog):
    _, output = first_run
    style = f"{buckets['data_root']}/style/tar1.png"
    original = read_bytes(style)
    caplog.set_level(logging.INFO, logger="werkzeug")
    try:
        write_bytes(style, original + b"\0")  # one more byte: another object
        caplog.clear()
        finished = render(ray_address, buckets["manifest"], buckets["data_root"], output, "--plan")
    finally:
        write_bytes(style, original)
    assert finished.returncode == 0, finished.stderr
    assert "1 to render" in finished.stdout and "why: photo changed 1" in finished.stdout
    gets = [request for request in served(caplog) if '"GET /photos/dpst/' in request]
    assert len(gets) == 1 and "/style/tar1.png" in gets[0]  # the changed object alone is read


def test_a_deleted_input_object_is_one_error_row_and_the_other_row_is_ok(ray_address, buckets, object_store):
    photos = f"{object_store.bucket('photos')}/deleted-case"
    for relative in ("input/in1.png", "style/tar1.png", "segmentation/in1.png", "segmentation/tar1.png",
                     "input/in2.png", "style/tar2.png"):
        write_bytes(f"{photos}/{relative}", (DPST_DATA / relative).read_bytes())
    filesystem, path = resolve(f"{photos}/input/in2.png")
    filesystem.delete_file(path)
    output = f"{buckets['renders']}/deleted-case"
    finished = render(ray_address, buckets["manifest"], photos, output, "--actors", "1")  # one start, not two
    assert finished.returncode == 1, finished.stderr
    rows = {row["id"]: row for row in metadata_rows(output)}
    assert rows["pair01"]["status"] == "ok"
    failed = rows["pair02-nomask"]
    assert (failed["status"], failed["error_type"]) == ("error", "InputImageError")
    assert failed["error_message"].endswith(f" not found: {photos}/input/in2.png")  # "image" or "content photo"
    assert list_files(f"{output}/images", "*") == [f"{output}/images/pair01.png"]


@pytest.mark.parametrize("where, message", [
    ("manifest", "error: cannot read the manifest: s3://no-such-bucket/m.csv: the bucket 'no-such-bucket' "
                 "does not exist (or is not visible to these credentials)."),
    ("output", "error: s3://no-such-bucket/out: the bucket 'no-such-bucket' does not exist "
               "(or is not visible to these credentials)."),
])
def test_an_unreachable_manifest_or_output_is_refused_before_any_row(buckets, object_store, where, message):
    manifest = "s3://no-such-bucket/m.csv" if where == "manifest" else buckets["manifest"]
    output = "s3://no-such-bucket/out" if where == "output" else f"{buckets['renders']}/never"
    finished = subprocess.run([sys.executable, "-m", "ray_jobs.render", manifest, "--data-root",
                               buckets["data_root"], "--output", output, "--smoke"],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert [line for line in finished.stderr.splitlines() if line.startswith("error:")] == [message]
    assert "Traceback" not in finished.stderr and "starting" not in finished.stdout
    assert list_files(f"{buckets['renders']}/never", "*") == []


def test_refused_credentials_stop_the_job_with_one_sentence(buckets, object_store):
    object_store.set_auth(enforced=True)
    try:
        finished = subprocess.run([sys.executable, "-m", "ray_jobs.render", buckets["manifest"], "--output",
                                   f"{buckets['renders']}/denied", "--smoke"], capture_output=True, text=True,
                                  timeout=120, env={**os.environ, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000",
                                                    "AWS_SECRET_ACCESS_KEY": "not-a-secret"})
    finally:
        object_store.set_auth(enforced=False)
    assert finished.returncode == 2
    assert [line for line in finished.stderr.splitlines() if line.startswith("error:")] == [
        f"error: cannot read the manifest: {buckets['manifest']}: access denied; the credentials (environment, "
        "profile or instance role) are missing, wrong or lack permission for it."]
    assert "not-a-secret" not in finished.stdout + finished.stderr


def test_a_rerun_trusts_an_object_by_its_size_and_etag_and_notices_a_rewrite(object_store):
    output = f"{object_store.bucket('renders')}/etag-check"
    columns = write_image(output, "a", b"\x89PNG first version")
    row = {"id": "a", **columns}
    assert images_intact(output, [row]) == [True]
    write_bytes(f"{output}/images/a.png", b"\x89PNG other version")  # same size, other bytes
    assert images_intact(output, [row]) == [False]
    filesystem, path = resolve(f"{output}/images/a.png")
    filesystem.delete_file(path)
    assert images_intact(output, [row]) == [False]


def test_objects_are_hashed_under_their_uris(object_store):
    location = f"{object_store.bucket('renders')}/hashing/s.png"
    write_bytes(location, b"style")
    assert hash_files([location, location, f"{location}.missing"]) == {
        location: hashlib.sha256(b"style").hexdigest(), f"{location}.missing": None}


def test_an_output_in_a_bucket_takes_no_lock(object_store):
    output = f"{object_store.bucket('renders')}/unlocked"
    with OutputLock(output, "first"), OutputLock(output, "second"):
        assert list_files(output, "*") == []


def test_the_report_of_a_run_in_a_bucket_is_written_to_a_local_folder(first_run, tmp_path, capsys):
    _, output = first_run
    with pytest.raises(ValueError, match="is in an object store: give a local report folder with --output"):
        build_report(output)
    page = build_report(output, output=tmp_path / "report")
    thumbnails = sorted(path.name for path in (tmp_path / "report" / "thumbnails").iterdir())
    assert "pair01-output.jpg" in thumbnails and "pair01-content-mask.png" in thumbnails
    assert "pair02-nomask-content.jpg" in thumbnails
    assert "pair02-nomask-content-mask.png" in thumbnails  # its automatic mask, read from the bucket
    assert "<h1>Run report: smoke</h1>" in page.read_text(encoding="utf-8")
