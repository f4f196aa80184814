"""The run record of real runs on the session's local Ray (2 CPUs): three example pairs at 64 px (written at 96 px)
and one broken row.

The nights, in order, on one output folder: the first run; an unchanged rerun (every good row
skipped); a ``--force`` rerun of the same configuration (every row rendered again, the same medians);
a run whose outputs are worse on purpose (stage 1 starts from noise and has 3 iterations to get
away from it). Each record is validated against the documented schema; the drift flag must fire
on the last and stay quiet on the two before it. The nights share one actor (:class:`ray_jobs.pool.WarmActors`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import time
from pathlib import Path

import jsonschema
import numpy as np
import pandas
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import example_pair_paths
from PIL import Image

from ray_jobs.job import JobOptions, JobSummary, new_run_id, run_job
from ray_jobs.manifest import read_manifest
from ray_jobs.pool import WarmActors
from ray_jobs.render import exit_status
from ray_jobs.run_record import SCHEMA_FILE, RunRecord, drift, read_records, record_file, relative_change
from ray_jobs.schema import metric_column
from stylecore.config import TransferConfig
from stylecore.metrics import METRIC_NAMES

CONFIG = TransferConfig(size=64, coarse_scale=1.0, stage1_iterations=3, stage2_iterations=3, output_size=96)
PAIRS = (1, 2, 3)
THRESHOLD = 0.05
SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nights(local_ray, tmp_path_factory) -> dict[str, tuple[JobSummary, str, dict]]:
    """Each night's summary, console and record file as parsed JSON, by name (module docstring)."""
    root = tmp_path_factory.mktemp("nightly")
    rows = []
    for number in PAIRS:
        for kind, source in example_pair_paths(number).items():
            shutil.copy(source, root / f"{number}-{kind}.png")
        rows.append({"id": f"pair{number}", **{kind: f"{number}-{kind}.png" for kind in example_pair_paths(number)}})
    rows.append({"id": "broken", "content": "nowhere.png", "style": "1-style.png"})
    worse = [{**row, "config": {"init": "noise"}} for row in rows]
    with WarmActors() as warm:
        return {name: run(root, manifest_rows, warm, **options) for name, manifest_rows, options in (
            ("first", rows, {}), ("unchanged", rows, {}), ("forced", rows, {"force": True}), ("worse", worse, {}))}


def run(root: Path, rows: list[dict], warm: WarmActors, **options) -> tuple[JobSummary, str, dict]:
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    console = io.StringIO()
    summary = run_job(read_manifest(manifest, data_root=root, config=CONFIG), stream=console, warm=warm,
                      options=JobOptions(output=str(root / "output"), actors=1, alert_on_drift=THRESHOLD, **options))
    return summary, console.getvalue(), json.loads(Path(summary.record_path).read_text(encoding="utf-8"))


def test_every_record_validates_against_the_documented_schema(nights):
    for summary, _, record in nights.values():
        jsonschema.validate(record, SCHEMA, format_checker=jsonschema.FormatChecker())
        assert summary.record_path == record_file(str(Path(summary.metadata_path).parents[1]), summary.run_id)
        assert record["run_id"] == summary.run_id


def test_the_record_counts_rows_and_takes_the_medians_of_the_rows_this_run_rendered(nights):
    summary, console, record = nights["first"]
    assert record["rows"] == {"ok": 3, "error": 1, "skipped": 0}
    assert record["output"] == {"rows": 4, "ok": 3, "error": 1}
    assert record["rendered_with_metrics"] == 3
    table = pq.read_table(summary.metadata_path).to_pylist()
    for metric in METRIC_NAMES:
        expected = np.median([row[metric_column("output", metric)] for row in table if row["status"] == "ok"])
        assert record["medians"][metric] == pytest.approx(expected, rel=1e-12)
    assert record["drift"] == {"previous_run": None, "change": dict.fromkeys(METRIC_NAMES), "threshold": THRESHOLD,
                               "flagged": []}
    assert abs(record["seconds"] - summary.seconds) < 1e-6
    assert record["started_at"] < record["finished_at"]
    assert console.splitlines()[-1].endswith(f"run record {summary.record_path}")


def test_an_unchanged_rerun_renders_nothing_has_no_medians_and_is_not_flagged(nights):
    summary, console, record = nights["unchanged"]
    assert record["rows"] == {"ok": 0, "error": 1, "skipped": 3}
    assert record["output"] == {"rows": 4, "ok": 3, "error": 1}
    assert record["medians"] == dict.fromkeys(METRIC_NAMES) and record["rendered_with_metrics"] == 0
    assert record["drift"]["flagged"] == [] and exit_status(summary) == 1  # the broken row failed again
    assert "medians: none" in console


def test_a_forced_rerun_of_the_same_configuration_is_compared_with_the_first_and_stays_quiet(nights):
    _, _, record = nights["forced"]
    assert record["rows"] == {"ok": 3, "error": 1, "skipped": 0}
    assert record["drift"]["previous_run"] == nights["first"][0].run_id  # the unchanged night had no medians
    assert all(abs(change) <= THRESHOLD for change in record["drift"]["change"].values())
    assert record["drift"]["flagged"] == []


def test_a_run_made_worse_on_purpose_is_flagged(nights):
    summary, console, record = nights["worse"]
    assert record["drift"]["previous_run"] == nights["forced"][0].run_id
    assert record["medians"]["ssim"] < nights["forced"][2]["medians"]["ssim"]
    assert "ssim" in record["drift"]["flagged"] and summary.record.drifted
    assert record["drift"]["change"]["ssim"] < -THRESHOLD
    assert "DRIFT past 5.0%" in console.splitlines()[-1]


def test_each_rendered_row_has_a_preview_of_its_very_image(nights):
    summary = nights["worse"][0]
    output = Path(summary.metadata_path).parents[1]
    rendered = [row for row in pq.read_table(summary.metadata_path).to_pylist() if row["status"] == "ok"]
    assert len(rendered) == 3
    for row in rendered:
        with Image.open(output / "previews" / f"{row['id']}.jpg") as preview, \
                Image.open(output / row["output_path"]) as image:
            assert preview.info["comment"] == row["output_sha256"].encode()
            assert preview.size == image.size and max(image.size) == 96  # within the box: never scaled up
            # JPEG at quality 90 of a 96 px result (the worse night starts from noise): a few levels off
            assert np.abs(np.asarray(preview, int) - np.asarray(image.convert("RGB"), int)).mean() < 8


def test_the_metadata_folder_still_reads_as_one_parquet_dataset(nights):
    metadata = Path(nights["first"][0].metadata_path).parent
    assert len(list(metadata.glob("_summary-*.json"))) == len(nights)
    worked = sum(summary.ok + summary.failed for summary, _, _ in nights.values())  # skipped rows are a count
    assert worked == 4 + 1 + 4 + 4  # the unchanged night retried only the broken row
    assert ds.dataset(metadata, format="parquet").count_rows() == worked
    assert len(pandas.read_parquet(metadata)) == worked


def test_records_read_back_oldest_first(nights):
    output = str(Path(nights["first"][0].metadata_path).parents[1])
    records, unreadable = read_records(output)
    assert unreadable == []
    assert [record.run_id for record in records] == [summary.run_id for summary, _, _ in nights.values()]
    assert records[-1] == nights["worse"][0].record


def test_run_ids_made_within_one_second_sort_in_the_order_they_were_made():
    """The nights above start within a second of each other once their actor is warm; whole seconds
    and a random suffix put them out of order."""
    ids = []
    for _ in range(20):
        ids.append(new_run_id())
        time.sleep(0.002)
    assert ids == sorted(ids) and len(set(ids)) == 20
    assert all(re.fullmatch(SCHEMA["properties"]["run_id"]["pattern"], run_id) for run_id in ids)


def test_exit_status_is_3_for_drift_alone_and_1_when_a_row_failed(nights):
    summary = nights["worse"][0]
    assert exit_status(summary) == 1
    assert exit_status(dataclasses.replace(summary, failed=0)) == 3
    assert exit_status(dataclasses.replace(nights["forced"][0], failed=0)) == 0


def test_drift_compares_with_the_latest_run_that_has_medians_and_flags_either_direction():
    def record(run_id: str, **medians: float | None) -> RunRecord:
        return RunRecord.from_json({
            "run_id": run_id, "started_at": "2026-12-01T02:00:00Z", "finished_at": "2026-12-01T03:00:00Z",
            "seconds": 3600.0, "rows": {"ok": 1, "error": 0, "skipped": 0}, "reasons": {},
            "medians": {**dict.fromkeys(METRIC_NAMES), **medians}, "rendered_with_metrics": 1,
            "output": {"rows": 1, "ok": 1, "error": 0}, "record_version": 1,
            "drift": {"previous_run": None, "change": dict.fromkeys(METRIC_NAMES), "threshold": None, "flagged": []}})

    earlier = [record("a", style_distance=4.0, ssim=0.7, photorealism_energy=4e-5), record("b")]
    moved = drift({"style_distance": 4.1, "ssim": 0.8, "photorealism_energy": 3e-5}, earlier, 0.05)
    assert moved.previous_run == "a"
    assert moved.change == pytest.approx({"style_distance": 0.025, "ssim": 1 / 7, "photorealism_energy": -0.25})
    assert moved.flagged == ["ssim", "photorealism_energy"]
    assert drift({"ssim": 0.8}, earlier, None).flagged == []
    assert drift({"ssim": 0.8}, [], 0.05).change == dict.fromkeys(METRIC_NAMES)
    assert relative_change(1.0, 0.0) is None and relative_change(None, 1.0) is None
    assert relative_change(0.9, 1.0) == pytest.approx(-0.1)


def test_the_readme_tables_every_field_of_the_schema():
    readme = (Path(__file__).resolve().parents[2] / "ray_jobs" / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run records", 1)[1].split("\n## ", 1)[0]
    tabled = {name for row in section.splitlines() if row.startswith("| `")
              for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert tabled == set(SCHEMA["properties"]) == set(SCHEMA["required"])
