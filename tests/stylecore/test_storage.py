"""Object storage on a real S3 protocol (moto's server, in-process, on a free port): reading, whole-or-absent
writes, entity tags, listing one prefix, one sentence per failure, and `stylecore transfer` from a bucket
to a bucket."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import example_pair_paths
from PIL import Image

from stylecore.cli import main
from stylecore.errors import StorageError
from stylecore.storage import (check_reachable, exists, join, list_files, read_bytes, resolve, stat,
                               write_bytes)


def test_bytes_round_trip_through_a_bucket_and_a_folder_alike(object_store, tmp_path):
    root = object_store.bucket("roundtrip")
    for folder in (f"{root}/some/prefix", str(tmp_path / "some" / "prefix"), f"file://{tmp_path}/uri/prefix"):
        write_bytes(join(folder, "a.txt"), b"first")
        write_bytes(join(folder, "b.bin"), b"second")
        assert read_bytes(join(folder, "a.txt")) == b"first"
        assert stat(join(folder, "b.bin")).size == 6
        assert stat(join(folder, "missing.txt")) is None and not exists(join(folder, "missing.txt"))
        assert list_files(folder, "*.txt") == [join(folder, "a.txt")]
        assert list_files(join(folder, "absent"), "*") == []
        odd = join(folder, "photo 1 #2?.png")  # a key, never parsed as a URI
        write_bytes(odd, b"odd")
        assert read_bytes(odd) == b"odd" and list_files(folder, "photo*") == [odd]


def test_join_resolves_relative_paths_and_keeps_uris_and_absolute_paths():
    assert join("s3://b/data", "input/in1.png") == "s3://b/data/input/in1.png"
    assert join("s3://b/data/", "./x/../in1.png") == "s3://b/data/in1.png"
    assert join("s3://b/data", "s3://other/in1.png") == "s3://other/in1.png"
    assert join("s3://b/data", "/mnt/in1.png") == "/mnt/in1.png"
    assert join("/mnt/data", "../in1.png") == "/mnt/in1.png"


def test_an_object_appears_only_when_its_upload_completes_and_a_rewrite_changes_its_etag(object_store):
    location = f"{object_store.bucket('atomic')}/image.png"
    filesystem, path = resolve(location)
    stream = filesystem.open_output_stream(path)
    stream.write(b"x" * 100_000)
    assert stat(location) is None  # a writer that dies here leaves no object, not a partial one
    stream.close()
    first = stat(location)
    assert first.size == 100_000 and first.etag
    write_bytes(location, b"y" * 100_000)
    second = stat(location)
    assert second.size == first.size and second.etag != first.etag
    write_bytes(location, b"y" * 100_000)
    assert stat(location).etag == second.etag


def test_each_failure_is_one_sentence(object_store):
    root = object_store.bucket("failures")
    with pytest.raises(FileNotFoundError, match=f"{root}/nothing.png"):
        read_bytes(f"{root}/nothing.png")
    with pytest.raises(StorageError, match=r"^s3://no-such-bucket/m.csv: the bucket 'no-such-bucket' does not "
                                           r"exist \(or is not visible to these credentials\)\.$"):
        read_bytes("s3://no-such-bucket/m.csv")
    with pytest.raises(StorageError, match="^s3://no-such-bucket/out: the bucket 'no-such-bucket' does not exist"):
        check_reachable("s3://no-such-bucket/out")
    with pytest.raises(StorageError, match="^s3://no-such-bucket/x.png: the bucket does not exist.$"):
        write_bytes("s3://no-such-bucket/x.png", b"data")


def _upload_example_pair(root: str, number: int) -> dict[str, str]:
    locations = {}
    for kind, path in example_pair_paths(number).items():
        locations[kind] = f"{root}/{kind}.png"
        write_bytes(locations[kind], path.read_bytes())
    return locations


def test_transfer_reads_from_one_bucket_and_writes_to_another(object_store, capsys):
    inputs = _upload_example_pair(object_store.bucket("transfer-in"), 1)
    output = f"{object_store.bucket('transfer-out')}/results/pair01.png"
    status = main(["transfer", "--content", inputs["content"], "--style", inputs["style"],
                   "--content-mask", inputs["content_mask"], "--style-mask", inputs["style_mask"],
                   "--output", output, "--storage-endpoint", object_store.endpoint, "--size", "64", "--output-size", "64",
                   "--coarse-scale", "1", "--stage1-iterations", "2", "--stage2-iterations", "2", "--quiet"])
    assert status == 0, capsys.readouterr().err
    with Image.open(io.BytesIO(read_bytes(output))) as image:
        assert image.size[0] == 64 or image.size[1] == 64
        assert np.asarray(image).std() > 0
    sidecar = json.loads(read_bytes(f"{object_store.bucket('transfer-out')}/results/pair01.json"))
    assert (sidecar["content"], sidecar["output"]) == (inputs["content"], output)
    assert "testing" not in json.dumps(sidecar)  # the dummy credentials appear nowhere


def test_transfer_into_a_missing_bucket_is_refused_before_any_work(object_store, capsys):
    inputs = _upload_example_pair(object_store.bucket("transfer-in"), 2)
    status = main(["transfer", "--content", inputs["content"], "--style", inputs["style"],
                   "--output", "s3://no-such-bucket/out.png", "--size", "64"])
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "stylecore: error: s3://no-such-bucket/out.png: the bucket 'no-such-bucket' does not exist "
        "(or is not visible to these credentials)."]


def test_credentials_the_store_refuses_give_one_sentence_and_status_2(object_store):
    inputs = _upload_example_pair(object_store.bucket("transfer-in"), 2)
    environment = {**object_store.environment, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000000",
                   "AWS_SECRET_ACCESS_KEY": "not-a-secret"}
    output = f"{object_store.bucket('transfer-out')}/denied.png"
    object_store.set_auth(enforced=True)
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "stylecore.cli", "transfer", "--content", inputs["content"], "--style",
             inputs["style"], "--output", output, "--size", "64"],
            capture_output=True, text=True, timeout=120, env={**os.environ, **environment})
    finally:
        object_store.set_auth(enforced=False)
    lines = [line for line in finished.stderr.splitlines() if line.startswith("stylecore: error:")]
    assert finished.returncode == 2
    assert lines == ["stylecore: error: s3://transfer-out/denied.png: access denied; the credentials (environment, "
                     "profile or instance role) are missing, wrong or lack permission for it."]
    assert "Traceback" not in finished.stderr and "not-a-secret" not in finished.stderr
    assert not exists(output)



def test_an_endpoint_nobody_answers_is_one_sentence_naming_it(monkeypatch):
    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(StorageError, match=f"^s3://renders/out: cannot reach the object store at {endpoint} "
                                           r"\(.*NETWORK_CONNECTION.*\)\.$"):
        check_reachable("s3://renders/out")


def test_an_object_read_again_is_downloaded_once_while_its_etag_holds(object_store, caplog):
    location = f"{object_store.bucket('reuse')}/style.png"
    write_bytes(location, b"first version")
    caplog.set_level(logging.INFO, logger="werkzeug")  # the server's log of every request it answers
    assert read_bytes(location) == b"first version"
    assert read_bytes(location) == b"first version"
    write_bytes(location, b"second version")
    assert read_bytes(location) == b"second version"
    requests = [record.getMessage() for record in caplog.records if "/reuse/style.png" in record.getMessage()]
    assert sum('"HEAD /reuse/style.png' in request for request in requests) == 3
    assert sum("GET /reuse/style.png" in request for request in requests) == 2
