"""What a rerun renders and why, decided from listings and the output's state: a row is done when
its image was rendered from the same fingerprint (input hashes, configuration hash, weights
identity, render version) and is still the image recorded; only new and changed input files are
read. The renders here are stand-ins (the planning is under test; tests/ray_jobs/test_job.py runs
the real job): each row's image is a few bytes written as a worker's would be."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ray_jobs.fingerprint import file_sha256, hash_files, weights_identity
from ray_jobs.job import JobOptions, plan_run, save_run_state
from ray_jobs.manifest import Manifest, ManifestEntry, read_manifest
from ray_jobs.metadata import MetadataWriter, metadata_files, run_file, write_rows
from ray_jobs.outputs import write_image
from ray_jobs.plan import PLAN_SCHEMA, Plan, write_plan
from ray_jobs.records import empty_record, identity_columns
from ray_jobs.state import ROWS_FILE, load_state, state_file
from stylecore.config import TransferConfig
from stylecore.render_version import RENDER_VERSION
from stylecore.weights import SQUEEZENET_SHA256

CONFIG = TransferConfig(size=64)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Two content photos, two style photos and one mask (bytes stand in for images)."""
    folder = tmp_path / "data"
    for name in ("c1", "c2", "s1", "s2", "m1"):
        (folder / name[0]).mkdir(parents=True, exist_ok=True)
        (folder / name[0] / f"{name}.png").write_bytes(f"bytes of {name}".encode())
    return folder


def manifest_of(data: Path, rows: list[dict], config: TransferConfig = CONFIG) -> Manifest:
    path = data.parent / "manifest.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return read_manifest(path, data_root=data, config=config)


ROWS = [{"id": "a", "content": "c/c1.png", "style": "s/s1.png", "content_mask": "m/m1.png"},
        {"id": "b", "content": "c/c2.png", "style": "s/s1.png"},
        {"id": "c", "content": "c/c1.png", "style": "s/s2.png"}]


def plan(manifest: Manifest, output: Path, **options) -> Plan:
    return plan_run(manifest, options=JobOptions(output=str(output), **options), stream=io.StringIO())[1]


def run(manifest: Manifest, output: Path, run_id: str, *, fail: frozenset[str] = frozenset(), **options) -> Plan:
    """A stand-in run: plan, then write each planned row's image and metadata row as the job does
    (failing the ids in ``fail``), then fold the run into the state as the job does."""
    state, planned = plan_run(manifest, options=JobOptions(output=str(output), **options), stream=io.StringIO())
    writer = MetadataWriter(str(output), run_id)
    for entry, fingerprint in planned.entries():
        record = {**empty_record(), **identity_columns(entry, fingerprint, run_id=run_id)}
        if entry.id in fail:
            record.update(status="error", error_type="InputImageError", error_message="cannot decode")
        else:
            record.update(status="ok", **write_image(str(output), entry.id, f"{entry.id} {run_id}".encode()))
        writer.add(record)
    run_rows = writer.close(run_facts={"skipped": planned.skipped, "reasons": planned.counts()})
    save_run_state(str(output), state, planned, run_rows, run_file=writer.path, stream=io.StringIO())
    return planned


def reasons(planned: Plan) -> dict[str, str]:
    return dict(zip(planned.table()["id"].to_pylist(), planned.table()["reason"].to_pylist(), strict=True))


def test_a_first_run_renders_every_row_as_new_and_a_rerun_nothing(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    assert reasons(run(manifest, output, "r1")) == {"a": "new", "b": "new", "c": "new"}
    again = plan(manifest, output)
    assert (len(again.render), again.skipped, again.hashed_files) == (0, 3, 0)


def test_an_unchanged_rerun_reads_no_input_bytes(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    OPENED.clear()
    planned = plan(manifest, output)
    assert len(planned.render) == 0 and [path for path in OPENED if path.startswith(str(data))] == []
    (data / "c" / "c2.png").write_bytes(b"new bytes of c2")
    OPENED.clear()
    assert reasons(plan(manifest, output)) == {"b": "photo_changed"}
    assert [path for path in OPENED if path.startswith(str(data))] == [str(data / "c" / "c2.png")]


OPENED: list[str] = []
"""Files this process opened from Python since the list was last cleared (the audit hook below)."""


def _record_open(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[0], str | os.PathLike) and len(OPENED) < 10_000:
        OPENED.append(os.fspath(args[0]))


sys.addaudithook(_record_open)


def test_each_change_is_rendered_with_its_reason(data, tmp_path):
    output = tmp_path / "out"
    run(manifest_of(data, ROWS), output, "r1")
    (data / "c" / "c2.png").write_bytes(b"new bytes of c2")  # b: photo changed
    (data / "m" / "m1.png").write_bytes(b"a corrected mask")  # a: mask changed
    (output / "images" / "c.png").unlink()  # c: image missing
    rows = [*ROWS, {"id": "d", "content": "c/c1.png", "style": "s/s1.png", "config": {"stage2_iterations": 3}}]
    planned = plan(manifest_of(data, rows), output)
    assert reasons(planned) == {"a": "mask_changed", "b": "photo_changed", "c": "image_missing", "d": "new"}
    assert planned.describe() == "new 1, photo changed 1, mask changed 1, image missing 1"
    assert (planned.hashed_files, planned.hashed_bytes) == (2, len(b"new bytes of c2") + len(b"a corrected mask"))


def test_configuration_weights_and_render_version_changes_are_named(data, tmp_path, monkeypatch):
    output = tmp_path / "out"
    run(manifest_of(data, ROWS[:1]), output, "r1")
    assert reasons(plan(manifest_of(data, ROWS[:1], CONFIG.replace(stage1_iterations=9)), output)) == {
        "a": "config_changed"}
    monkeypatch.setattr("ray_jobs.plan.RENDER_VERSION", RENDER_VERSION + 1)
    assert reasons(plan(manifest_of(data, ROWS[:1]), output)) == {"a": "render_version_changed"}
    monkeypatch.setattr("ray_jobs.plan.weights_identity", lambda extractor, weights: "other weights")
    assert reasons(plan(manifest_of(data, ROWS[:1]), output))["a"] == "weights_changed"


def test_a_touched_file_is_rehashed_and_not_rendered(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    os.utime(data / "s" / "s1.png", ns=(1, 10**18))  # new time, same bytes
    touched = run(manifest, output, "r2")
    assert (len(touched.render), touched.hashed_files) == (0, 1)
    assert plan(manifest, output).hashed_files == 0  # the new time was recorded


def test_bytes_changed_with_size_and_time_restored_need_rehash(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    path = data / "c" / "c1.png"
    before = path.stat()
    path.write_bytes(b"bytes of c9")  # the same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert len(plan(manifest, output).render) == 0  # what a listing cannot see
    rehashed = plan(manifest, output, rehash=True)
    assert reasons(rehashed) == {"a": "photo_changed", "c": "photo_changed"} and rehashed.hashed_files == 5


def test_an_image_overwritten_is_altered_and_a_touched_image_is_verified(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    run(manifest, output, "r2")  # records the images' listing times
    (output / "images" / "a.png").write_bytes(b"a other!")  # the same size, other bytes
    os.utime(output / "images" / "b.png", ns=(1, 10**18))
    planned = plan(manifest, output)
    assert reasons(planned) == {"a": "image_altered"}
    assert planned.image_identities["id"].to_pylist() == ["b"]


def test_a_failed_row_is_retried_and_a_later_failure_keeps_the_earlier_image(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1", fail=frozenset({"b"}))
    assert reasons(plan(manifest, output)) == {"b": "failed_last_time"}
    run(manifest, output, "r2", fail=frozenset({"a"}), force=True)
    # a failed under --force; its earlier image, from the same fingerprint, still stands
    assert reasons(plan(manifest, output)) == {}
    assert {row["id"]: row["status"] for row in load_state(str(output)).rows.to_pylist()} == {
        "a": "error", "b": "ok", "c": "ok"}


def test_force_renders_every_row(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    assert set(reasons(plan(manifest, output, force=True)).values()) == {"forced"}


def test_an_unchanged_rerun_writes_no_state_and_no_skipped_rows(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    run(manifest, output, "r2")  # records image times
    rows_file = Path(state_file(str(output), ROWS_FILE))
    before = rows_file.stat().st_mtime_ns
    run(manifest, output, "r3")
    assert rows_file.stat().st_mtime_ns == before
    third = pq.read_table(run_file(str(output), "r3"))
    assert third.num_rows == 0
    assert json.loads(third.schema.metadata[b"stylecore.run"]) == {"reasons": {}, "skipped": 3}


def test_a_history_written_before_the_state_is_folded_in_without_rendering(data, tmp_path):
    """An output of the previous version (history only, skipped copies included) gets its state on
    the first rerun, and nothing done is rendered again."""
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    history = pq.read_table(run_file(str(output), "r1")).to_pylist()
    for path in (state_file(str(output), ROWS_FILE), state_file(str(output), "files.parquet")):
        os.remove(path)
    write_rows(run_file(str(output), "r2"), [{**row, "run_id": "r2", "status": "skipped"} for row in history])
    upgraded = plan(manifest, output)
    assert len(upgraded.render) == 0 and upgraded.hashed_files == 5
    assert len(upgraded.image_identities) == 3  # each image verified once, by its hash


def test_parts_of_a_killed_run_are_folded_in_by_the_next(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    (data / "c" / "c2.png").write_bytes(b"new bytes of c2")
    _, planned = plan_run(manifest, options=JobOptions(output=str(output)), stream=io.StringIO())
    writer = MetadataWriter(str(output), "r2")
    [(entry, fingerprint)] = planned.entries()
    writer.add({**empty_record(), **identity_columns(entry, fingerprint, run_id="r2"), "status": "ok",
                **write_image(str(output), entry.id, b"b rendered by r2")})
    writer.flush()  # the part file; then the run is killed: no compaction, no state written
    assert [Path(path).name for path in metadata_files(str(output))] == [
        "run-r1.parquet", "run-r2.part-00001.parquet"]
    assert len(plan(manifest, output).render) == 0


def test_a_damaged_state_is_one_sentence_and_rebuild_state_loses_nothing(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    Path(state_file(str(output), ROWS_FILE)).write_bytes(b"PAR1 torn")
    with pytest.raises(Exception, match=r"the state table .*rows.parquet cannot be read .*--rebuild-state") as raised:
        plan(manifest, output)
    assert "\n" not in str(raised.value)
    rebuilt = run(manifest, output, "r2", rebuild_state=True)
    assert len(rebuilt.render) == 0
    assert len(plan(manifest, output).render) == 0


def test_plan_output_lists_the_rows_and_reasons_as_parquet_and_csv(data, tmp_path):
    planned = plan(manifest_of(data, ROWS), tmp_path / "out")
    write_plan(planned, str(tmp_path / "plan.parquet"))
    write_plan(planned, str(tmp_path / "plan.csv"))
    table = pq.read_table(tmp_path / "plan.parquet")
    assert table.schema.equals(PLAN_SCHEMA) and table["reason"].to_pylist() == ["new"] * 3
    assert (tmp_path / "plan.csv").read_text().splitlines()[0] == '"id","reason","content","style","content_mask",' \
                                                                   '"style_mask"'
    with pytest.raises(ValueError, match="ending in .parquet or .csv"):
        write_plan(planned, str(tmp_path / "plan.txt"))


def test_fingerprints_hash_file_bytes_configuration_weights_and_version(tmp_path):
    (tmp_path / "c.png").write_bytes(b"content")
    entries = [ManifestEntry(id=name, content=str(tmp_path / "c.png"), style=str(tmp_path / "missing.png"),
                             content_mask=None, style_mask=None, config=TransferConfig(size=64, seed=seed),
                             location="line 1") for name, seed in (("a", 0), ("b", 1))]
    prints = plan(Manifest.of(entries), tmp_path / "out").fingerprints.to_pylist()
    assert prints[0]["content_sha256"] == "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73"
    assert (prints[0]["style_sha256"], prints[0]["content_mask_sha256"]) == (None, None)
    assert prints[0]["config_hash"] == TransferConfig(size=64).config_hash() != TransferConfig().config_hash()
    assert prints[1]["config_hash"] != prints[0]["config_hash"]
    assert (prints[0]["extractor_weights_sha256"], prints[0]["render_version"]) == (SQUEEZENET_SHA256, RENDER_VERSION)


def test_each_distinct_file_is_hashed_once(tmp_path):
    (tmp_path / "s.png").write_bytes(b"style")
    hashes = hash_files([tmp_path / "s.png"] * 1000 + [str(tmp_path / "s.png"), tmp_path / "none.png"])
    assert hashes == {str(tmp_path / "none.png"): None, str(tmp_path / "s.png"): file_sha256(tmp_path / "s.png")}


def test_weights_identity_names_the_file_or_random(tmp_path):
    (tmp_path / "w.h5").write_bytes(b"weights")
    assert weights_identity("squeezenet", None) == SQUEEZENET_SHA256
    assert weights_identity("vgg19", "random") == "random"
    assert weights_identity("vgg19", None) == "imagenet"
    assert weights_identity("vgg19", tmp_path / "w.h5") == file_sha256(tmp_path / "w.h5")
    (tmp_path / "w.h5").write_bytes(b"other weights")
    assert weights_identity("vgg19", tmp_path / "w.h5") == file_sha256(tmp_path / "w.h5")


WRITER = """
import sys
import pyarrow as pa
from ray_jobs.state import ROWS_SCHEMA, empty_state, write_state
import dataclasses
rows = 200_000
versions = [pa.table({"id": [f"{name}{number:07d}" for number in range(rows)], "status": ["ok"] * rows,
                      "run_id": [name] * rows}).cast(pa.schema([ROWS_SCHEMA.field(n) for n in ("id", "status", "run_id")]))
            for name in ("a", "b")]
state = empty_state()
for turn in range(10**6):
    table = versions[turn % 2]
    full = pa.table({name: table[name] if name in table.column_names else pa.nulls(rows, field.type)
                     for name, field in zip(ROWS_SCHEMA.names, ROWS_SCHEMA)}, schema=ROWS_SCHEMA)
    write_state(sys.argv[1], dataclasses.replace(state, rows=full, folded=frozenset({table["run_id"][0].as_py()})))
"""


def test_a_process_killed_while_replacing_the_state_leaves_the_old_state_or_the_new(tmp_path):
    """SIGKILL lands while the rows file is being written (its temporary file is seen, and is still
    there after the kill): the next reader gets one whole version, never a torn one."""
    import signal
    import subprocess
    import time

    folder = tmp_path / "out" / "state"
    for _ in range(20):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "out")])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ((folder / ROWS_FILE).exists() and any(
                name.startswith(".rows.") for name in os.listdir(folder))):
            time.sleep(0.0005)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if any(name.startswith(".rows.") for name in os.listdir(folder)):
            break
    else:
        pytest.fail("the kill never landed while the state was being written")
    assert writer.returncode == -signal.SIGKILL
    state = load_state(str(tmp_path / "out"))
    [version] = state.folded
    assert state.rows.num_rows == 200_000 and set(state.rows["run_id"].to_pylist()) == {version}


def test_nights_without_changes_never_rewrite_the_state(data, tmp_path):
    manifest, output = manifest_of(data, ROWS), tmp_path / "out"
    run(manifest, output, "r1")
    run(manifest, output, "r2")  # records the images' listing times
    rows_file = Path(state_file(str(output), ROWS_FILE))
    written = rows_file.stat().st_mtime_ns
    for night in ("r3", "r4", "r5"):
        assert len(run(manifest, output, night).render) == 0
    assert rows_file.stat().st_mtime_ns == written
    assert len(metadata_files(str(output))) == 5
