"""Metadata files: the explicit schema, written whole and atomically, read back without Ray by
pyarrow, pandas and DuckDB, and read together across runs."""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_jobs.metadata import MetadataWriter, read_rows, run_file, write_rows
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
    rows, unreadable = read_rows(tmp_path)
    assert unreadable == []
    assert {(r["id"], r["stage1_loss_total"]) for r in rows} == {("a", 1.5), ("b", None)}


def test_a_torn_metadata_file_is_reported_and_left_out(tmp_path):
    write_rows(run_file(tmp_path, "r1"), [row("a")])
    torn = Path(run_file(tmp_path, "r2"))
    torn.write_bytes(Path(run_file(tmp_path, "r1")).read_bytes()[:100])
    rows, unreadable = read_rows(tmp_path)
    assert [r["id"] for r in rows] == ["a"]
    assert [path for path, _ in unreadable] == [str(torn)]


def test_reading_an_output_without_metadata_gives_nothing(tmp_path):
    assert read_rows(tmp_path / "new") == ([], [])


@pytest.mark.parametrize("flush_seconds, written_after_add", [(0.0, True), (3600.0, False)])
def test_writer_rewrites_the_file_whole_at_most_every_flush_seconds(tmp_path, flush_seconds, written_after_add):
    writer = MetadataWriter(run_file(tmp_path, "r1"), flush_seconds=flush_seconds)
    writer.add(row("a"))
    writer.add(row("b"))
    path = Path(writer.path)
    assert path.exists() == written_after_add
    writer.flush()
    assert [r["id"] for r in pq.read_table(path).to_pylist()] == ["a", "b"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_the_readme_documents_every_column_in_order():
    readme = (Path(__file__).resolve().parents[2] / "ray_jobs" / "README.md").read_text(encoding="utf-8")
    documented = [line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")]
    assert documented == METADATA_SCHEMA.names
