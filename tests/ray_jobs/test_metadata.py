"""Metadata files: the explicit schema, written atomically under names no reader matches until
complete, as part files compacted at the end, read back without Ray by pyarrow, pandas and DuckDB,
read together across runs; and the lock that keeps two live runs out of one folder."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_jobs.errors import JobError
from ray_jobs.metadata import MetadataWriter, OutputLock, latest_rows, read_table, run_file, write_rows
from ray_jobs.schema import METADATA_SCHEMA, SCHEMA_VERSION, describe

WHEN = datetime.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)


def row(row_id: str, status: str = "ok", **changes) -> dict:
    values = dict.fromkeys(METADATA_SCHEMA.names)
    values.update({"schema_version": SCHEMA_VERSION, "run_id": "r1", "id": row_id, "status": status,
                   "config_json": "{}", "config_hash": "c0ffee", "extractor": "squeezenet", "version": "0.1.0",
                   "matched_labels": ["sky", "blue"], "gpu_ids": [], "stage1_loss_total": 1.5,
                   "started_at": WHEN, "finished_at": WHEN + datetime.timedelta(seconds=2)})
    values.update(changes)
    return values


def test_schema_columns_are_unique_documented_and_cover_the_issue():
    names = METADATA_SCHEMA.names
    assert len(names) == len(set(names))
    assert all(description for _, _, description in describe())
    for required in ("id", "content_path", "content_sha256", "style_mask_sha256", "config_json", "config_hash",
                     "output_path", "output_sha256", "status", "error_type", "error_message",
                     "mask_diagnostics_json", "stage1_iterations_run", "stage2_loss_photorealism",
                     "stage2_seconds", "extractor", "device", "worker", "started_at", "finished_at", "version"):
        assert required in names


def test_rows_read_back_the_same_with_pyarrow_pandas_and_duckdb(tmp_path):
    rows = [row("a"), row("b", "error", error_type="InputImageError", error_message="image not found: x.png")]
    path = Path(run_file(tmp_path, "r1"))
    write_rows(path, rows)
    table = pq.read_table(path)
    assert table.schema.equals(METADATA_SCHEMA)
    assert table.to_pylist() == rows
    frame = pd.read_parquet(tmp_path / "metadata")
    assert list(frame["id"]) == ["a", "b"]
    assert frame["started_at"].iloc[0] == pd.Timestamp(WHEN)
    query = f"SELECT id, error_message, matched_labels FROM read_parquet('{tmp_path}/metadata/*.parquet') ORDER BY id"
    assert duckdb.sql(query).fetchall() == [("a", None, ["sky", "blue"]), ("b", "image not found: x.png",
                                                                            ["sky", "blue"])]
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]


def test_runs_read_together_and_older_files_missing_a_column_read_as_null(tmp_path):
    write_rows(run_file(tmp_path, "r1"), [row("a")])
    older = pa.Table.from_pylist([row("b")], schema=METADATA_SCHEMA).drop_columns(["stage1_loss_total"])
    pq.write_table(older, run_file(tmp_path, "r0"))
    table, unreadable = read_table(tmp_path)
    rows = table.to_pylist()
    assert unreadable == []
    assert {(r["id"], r["stage1_loss_total"]) for r in rows} == {("a", 1.5), ("b", None)}


def test_a_torn_metadata_file_is_reported_and_left_out(tmp_path):
    write_rows(run_file(tmp_path, "r1"), [row("a")])
    torn = run_file(tmp_path, "r2")
    Path(torn).write_bytes(Path(run_file(tmp_path, "r1")).read_bytes()[:100])
    table, unreadable = read_table(tmp_path, ["id", "status"])
    assert table.to_pylist() == [{"id": "a", "status": "ok"}]
    assert [path for path, _ in unreadable] == [torn]


def test_reading_an_output_without_metadata_gives_nothing(tmp_path):
    table, unreadable = read_table(tmp_path / "new")
    assert (table.num_rows, table.schema, unreadable) == (0, METADATA_SCHEMA, [])


def test_the_latest_row_of_each_id_wins():
    table = pa.Table.from_pylist([row("a", "error"), row("b"), row("a", "ok"), row("c"), row("b", "skipped")],
                                 schema=METADATA_SCHEMA)
    assert [(r["id"], r["status"]) for r in latest_rows(table).to_pylist()] == [
        ("a", "ok"), ("c", "ok"), ("b", "skipped")]


def test_writer_adds_a_part_per_flush_and_compacts_them_at_the_end(tmp_path):
    writer = MetadataWriter(tmp_path, "r1", flush_seconds=3600.0)
    writer.add(row("a"))
    assert not (tmp_path / "metadata").exists()
    writer.flush()
    writer.add(row("b"))
    writer.add(row("c"))
    writer.flush()
    writer.flush()
    parts = sorted(path.name for path in (tmp_path / "metadata").iterdir())
    assert parts == ["run-r1.part-00001.parquet", "run-r1.part-00002.parquet"]
    assert [r["id"] for r in pq.read_table(tmp_path / "metadata" / parts[0]).to_pylist()] == ["a"]
    query = f"SELECT count(*) FROM read_parquet('{tmp_path}/metadata/*.parquet')"
    assert duckdb.sql(query).fetchall() == [(3,)]
    writer.close()
    assert sorted(path.name for path in (tmp_path / "metadata").iterdir()) == ["run-r1.parquet"]
    assert [r["id"] for r in pq.read_table(writer.path).to_pylist()] == ["a", "b", "c"]


def test_temporary_files_never_match_the_dataset_glob(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: (seen.append(Path(source)), real_replace(source, target)))
    write_rows(run_file(tmp_path, "r1"), [row("a")])
    [temporary] = seen
    assert temporary.name.startswith(".") and not temporary.match("*.parquet") and not temporary.exists()
    assert [r["id"] for r in pq.read_table(run_file(tmp_path, "r1")).to_pylist()] == ["a"]


def test_a_failing_write_is_one_sentence_and_keeps_the_parts_written(tmp_path):
    writer = MetadataWriter(tmp_path, "r1", flush_seconds=3600.0)
    writer.add(row("a"))
    writer.flush()
    (tmp_path / "metadata").rename(tmp_path / "kept")
    (tmp_path / "metadata").write_text("a file where the folder was")
    writer.add(row("b"))
    with pytest.raises(JobError, match=r"^cannot write the metadata file .*run-r1\.part-00002\.parquet \(.*\); "
                                       "the rows written before are kept"):
        writer.flush()
    assert [r["id"] for r in pq.read_table(tmp_path / "kept" / "run-r1.part-00001.parquet").to_pylist()] == ["a"]


def test_a_live_run_holds_the_folder_and_a_killed_one_does_not(tmp_path):
    with OutputLock(tmp_path, "first"):
        with pytest.raises(JobError, match=f"^the output folder {tmp_path} is in use by a run that is still going "
                                           rf"\(run first, pid {os.getpid()} on "):
            OutputLock(tmp_path, "second").__enter__()
    with OutputLock(tmp_path, "third"):
        pass
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from ray_jobs.metadata import OutputLock; "
                               f"held = OutputLock(Path({str(tmp_path)!r}), 'killed').__enter__(); "
                               "print('locked', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(JobError, match=f"run killed, pid {holder.pid} on "):
        OutputLock(tmp_path, "fourth").__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    with OutputLock(tmp_path, "fifth"):
        pass


def test_the_readme_documents_every_column_in_order():
    readme = (Path(__file__).resolve().parents[2] / "ray_jobs" / "README.md").read_text(encoding="utf-8")
    schema_section = readme.split("\n## Metadata schema", 1)[1].split("\n## ", 1)[0]
    documented = [line.split("`")[1] for line in schema_section.splitlines() if line.startswith("| `")]
    assert documented == METADATA_SCHEMA.names
