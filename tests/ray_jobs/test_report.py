"""The run report, built from a run folder of real small images and metadata in the project's schema.

The run is written directly (no Ray): three example pairs at 64 px whose "output" is a blend of the
content and its colour-statistics transfer, their metrics from :func:`stylecore.metrics.evaluate_output`,
one error row, and an older run whose row for the same id must be hidden by the latest one.
"""

import datetime
import hashlib
import html.parser
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ray_jobs.report import build_report
from ray_jobs.report.cli import main
from ray_jobs.report.groups import group_medians, natural_key, style_labels
from ray_jobs.run_record import Drift, RunRecord, drift, write_record
from ray_jobs.outputs import encode_preview
from ray_jobs.report.thumbnails import Preview, write_thumbnail
from ray_jobs.run_summary import format_value
from ray_jobs.schema import METADATA_SCHEMA, SCHEMA_VERSION, metric_column
from stylecore.colour_transfer import colour_statistics_transfer
from stylecore.images import to_uint8
from stylecore.output import write_image
from stylecore.masks import PALETTE, label_map_to_rgb
from stylecore.metrics import METRIC_NAMES, evaluate_output
from tests.conftest import example_pair_paths

SUBJECTS = ("output", "content", "reference")
PAIRS = {"pair-1": 1, "pair-14": 14, "pair-55": 55}
LATEST_RUN, OLDER_RUN = "20250102T000000Z-bbbbbb", "20250101T000000Z-aaaaaa"
START = datetime.datetime(2025, 1, 2, tzinfo=datetime.timezone.utc)


def record(row_id: str, run_id: str, status: str, index: int, **values) -> dict:
    row = dict.fromkeys(METADATA_SCHEMA.names)
    row.update(schema_version=SCHEMA_VERSION, run_id=run_id, id=row_id, status=status, config_json="{}",
               config_hash="0" * 16, extractor="squeezenet", version="0.1.0", seconds=10.0 + index,
               started_at=START + datetime.timedelta(seconds=20 * index),
               finished_at=START + datetime.timedelta(seconds=20 * index + 10 + index))
    row.update(values)
    return row


def rendered_record(row_id: str, number: int, index: int, run_dir: Path, example_pair) -> dict:
    pair = example_pair(number, 64)
    reference = colour_statistics_transfer(pair.content, pair.style, pair.content_labels, pair.style_labels)
    output = 0.5 * pair.content + 0.5 * reference
    write_image(run_dir / "images" / f"{row_id}.png", to_uint8(output))
    metrics = {}
    for subject, image in zip(SUBJECTS, (output, pair.content, reference), strict=True):
        scores = evaluate_output(image, pair.content, pair.style, pair.content_labels, pair.style_labels)
        metrics.update({metric_column(subject, name): value for name, value in scores.items()})
    paths = {f"{name}_path": str(path) for name, path in example_pair_paths(number).items()}
    return record(row_id, LATEST_RUN, "ok", index, output_path=f"images/{row_id}.png", **paths, **metrics)


def write_run(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=METADATA_SCHEMA), path)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, example_pair):
    """(run folder, the latest rows as written)."""
    run_dir = tmp_path_factory.mktemp("run")
    rows = [rendered_record(row_id, number, index, run_dir, example_pair)
            for index, (row_id, number) in enumerate(PAIRS.items())]
    missing = run_dir / "no-such-photo.png"
    rows.append(record("broken", LATEST_RUN, "error", 3, content_path=str(missing),
                       style_path=str(example_pair_paths(1)["style"]), error_type="InputImageError",
                       error_message=f"image not found: {missing}"))
    write_run(run_dir / "metadata" / f"run-{LATEST_RUN}.parquet", rows)
    write_run(run_dir / "metadata" / f"run-{OLDER_RUN}.parquet",
              [record("pair-1", OLDER_RUN, "error", 0, error_type="OptimisationError",
                      error_message="an older failure, hidden by the latest run")])
    return run_dir, rows


@pytest.fixture(scope="module")
def report(small_run):
    """(run folder, latest rows, index.html path, its text)."""
    run_dir, rows = small_run
    page = build_report(run_dir)
    return run_dir, rows, page, page.read_text(encoding="utf-8")


class LinkCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.row_ids = [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.links += [attributes[name] for name in ("src", "href") if name in attributes]
        if tag == "tr" and attributes.get("id", "").startswith("row-"):
            self.row_ids.append(attributes["id"][len("row-"):])


def test_every_referenced_file_exists_and_links_are_relative(report):
    _, _, page, text = report
    collector = LinkCollector()
    collector.feed(text)
    files = [link for link in collector.links if not link.startswith("#")]
    # Contact sheet, errors.csv, the histograms (shown and linked); 3 rendered rows x 5 thumbnails and a link to
    # the full output; the error row's style.
    assert len(files) == 2 + 2 + 3 * 6 + 1
    assert sorted(link for link in files if link.startswith("../")) == [
        f"../images/{row_id}.png" for row_id in sorted(PAIRS)]
    for link in files:
        assert "://" not in link and not link.startswith("/"), link
        assert (page.parent / link).is_file(), link
    anchors = [link[1:] for link in collector.links if link.startswith("#row-")]
    assert anchors == ["row-broken"]


def test_every_latest_row_appears_with_its_metrics_and_errors(report):
    _, rows, _, text = report
    collector = LinkCollector()
    collector.feed(text)
    assert collector.row_ids == sorted(row["id"] for row in rows)
    for row in rows:
        for subject in SUBJECTS:
            for metric in METRIC_NAMES:
                value = row[metric_column(subject, metric)]
                if value is not None:
                    assert f">{format_value(value)}<" in text
    assert "InputImageError" in text and "image not found: " in text
    assert "an older failure" not in text


def test_thumbnails_are_small_and_contact_sheet_has_one_row_per_pair(report):
    _, rows, page, _ = report
    thumbnails = sorted((page.parent / "thumbnails").iterdir())
    assert len(thumbnails) == 3 * 5 + 1
    for path in thumbnails:
        with Image.open(path) as thumbnail:
            assert thumbnail.height <= 160 and thumbnail.width <= 256
    with Image.open(page.parent / "contact_sheet.png") as sheet:
        assert sheet.height == 24 + 168 * len(rows)
        # The error row has no output: its output cell stays blank (white) apart from a frame.
        output_cell = np.asarray(sheet.convert("L"))[24 + 40:24 + 160, 4 * 264 + 20:5 * 264 - 20]
        assert output_cell.min() == 255


def test_summary_counts_statuses_and_takes_medians(small_run, capsys):
    run_dir, rows = small_run
    build_report(run_dir, output=run_dir / "second-report")
    printed = capsys.readouterr().out
    assert "rows: 4  (ok 3  error 1  skipped 0)" in printed
    outputs = [row["output_style_distance"] for row in rows if row["status"] == "ok"]
    assert format_value(float(np.median(outputs))) in printed
    assert "33.0 s of worker time" in printed  # seconds 10 + 11 + 12 over the ok rows
    assert f"latest run {LATEST_RUN} 73 s wall clock" in printed  # first start 0 s, last finish 60 + 13 s


def test_command_line_writes_elsewhere_and_fails_cleanly_without_metadata(small_run, tmp_path, capsys):
    run_dir, _ = small_run
    assert main([str(run_dir), "--output", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "index.html").is_file()
    assert (tmp_path / "elsewhere" / "contact_sheet.png").is_file()
    assert main([str(tmp_path / "empty")]) == 1
    assert "no readable metadata rows" in capsys.readouterr().out


def test_rebuilding_keeps_fresh_thumbnails_and_redoes_changed_ones(small_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(small_run[0], run_dir)
    page = build_report(run_dir, output=tmp_path / "report")
    kept, changed = page.parent / "thumbnails" / "pair-14-output.jpg", page.parent / "thumbnails" / "pair-1-output.jpg"
    kept_bytes = kept.read_bytes()
    os.utime(kept, (1, 1))  # older than its source: would be redone if it were not kept
    os.utime(run_dir / "images" / "pair-14.png", (0, 0))
    write_image(run_dir / "images" / "pair-1.png", to_uint8(np.zeros((40, 64, 3))))
    build_report(run_dir, output=tmp_path / "report")
    assert kept.stat().st_mtime == 1 and kept.read_bytes() == kept_bytes
    with Image.open(changed) as thumbnail:
        assert np.asarray(thumbnail).max() < 10


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_thumbnail_of_a_full_resolution_output_matches_a_direct_resize(tmp_path, suffix):
    rows, columns = np.mgrid[0:3000, 0:4000]
    pixels = np.stack([rows * 255 // 3000, columns * 255 // 4000, (rows + columns) * 255 // 7000],
                      axis=2).astype(np.uint8)
    source = tmp_path / f"large{suffix}"
    Image.fromarray(pixels).save(source, quality=95)
    assert write_thumbnail(source, tmp_path / "thumbnail.jpg", mask=False)
    with Image.open(tmp_path / "thumbnail.jpg") as thumbnail:
        assert thumbnail.size == (213, 160)
        direct = Image.fromarray(pixels).resize(thumbnail.size, Image.Resampling.LANCZOS)
        assert np.abs(np.asarray(thumbnail, int) - np.asarray(direct, int)).mean() < 2.0


def test_mask_columns_show_automatic_masks_when_there_are_no_hand_masks(tmp_path):
    labels = np.zeros((40, 64), np.uint8)
    labels[20:] = 4  # red bottom half under blue
    (tmp_path / "masks").mkdir()
    for side in ("content", "style"):
        Image.fromarray(label_map_to_rgb(labels)).save(tmp_path / "masks" / f"auto-{side}.png")
    paths = example_pair_paths(2)
    row = record("auto", LATEST_RUN, "ok", 0, content_path=str(paths["content"]), style_path=str(paths["style"]),
                 automatic_masks=True, automatic_content_mask_path="masks/auto-content.png",
                 automatic_style_mask_path="masks/auto-style.png")
    write_run(tmp_path / "metadata" / f"run-{LATEST_RUN}.parquet", [row])
    build_report(tmp_path)
    thumbnail = np.asarray(Image.open(tmp_path / "report" / "thumbnails" / "auto-content-mask.png").convert("RGB"))
    assert {tuple(colour) for colour in thumbnail.reshape(-1, 3)} == {PALETTE["blue"], PALETTE["red"]}
    assert (tmp_path / "report" / "thumbnails" / "auto-style-mask.png").is_file()


def test_a_fallbacks_column_is_shown_beside_its_row_and_counted_over_the_run(tmp_path):
    paths = example_pair_paths(3)
    fallbacks = [["masks share no label", "automatic masks"], [], ["masks share no label"]]
    rows = [{**record(f"pair-{number}", LATEST_RUN, "ok", number, content_path=str(paths["content"]),
                      style_path=str(paths["style"])), "fallbacks": notes}
            for number, notes in enumerate(fallbacks)]
    (tmp_path / "metadata").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=METADATA_SCHEMA),
                   tmp_path / "metadata" / f"run-{LATEST_RUN}.parquet")
    text = build_report(tmp_path).read_text(encoding="utf-8")
    assert not (tmp_path / "report" / "errors.csv").exists()
    assert text.count("fallbacks: masks share no label; automatic masks<") == 1
    assert text.count("fallbacks: masks share no label<") == 1
    assert '<h2 id="notes">Notes</h2>' in text
    assert '<td>masks share no label</td><td class="number">2</td>' in text
    assert '<td>automatic masks</td><td class="number">1</td>' in text


def test_style_and_configuration_tables_show_only_groups_of_several_rows_in_natural_order(report):
    text = report[3]
    # pair-1 and the broken row share tar1: its group is the one row of the style table
    assert "2 style photos have one row each" in text
    assert re.findall(r'<td title="[^"]*">([^<]*)</td>', text) == ["tar1.png", "one configuration"]
    styles = [f"/data/style/tar{number}.png" for number in (10, 2, 1, 2, 10, 3, 1)]
    table = pa.table({"style_path": styles, "status": ["ok"] * len(styles),
                      "output_ssim": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]})
    grouped = group_medians(table, "style_path", style_labels)
    assert [(group.label, group.rows) for group in grouped.groups] == [("tar1.png", 2), ("tar2.png", 2),
                                                                        ("tar10.png", 2)]
    assert grouped.groups[2].medians["ssim"] == pytest.approx(0.3) and grouped.single == 1
    assert sorted(["tar10", "tar2", "Tar1", "tar1b"], key=natural_key) == ["Tar1", "tar1b", "tar2", "tar10"]


NIGHTS = {"20261201T020000Z-000001": (4.0, 0.70, 4e-5), "20261202T020000Z-000002": None,
          "20261203T020000Z-000003": (4.0, 0.70, 4e-5), "20261204T020000Z-000004": (4.1, 0.55, 6e-5)}
"""Medians of four nights: the second rendered nothing, the fourth is worse (SSIM -21 %, energy +50 %)."""


def write_nights(run_dir: Path, threshold: float | None) -> list[RunRecord]:
    records: list[RunRecord] = []
    for day, (run_id, values) in enumerate(NIGHTS.items(), start=1):
        medians = dict(zip(METRIC_NAMES, values or (None,) * 3, strict=True))
        start = datetime.datetime(2026, 12, day, 2, tzinfo=datetime.timezone.utc)
        records.append(RunRecord(
            run_id=run_id, started_at=start, finished_at=start + datetime.timedelta(minutes=30 + day),
            seconds=60.0 * (30 + day), rows={"ok": 3 if values else 0, "error": 1, "skipped": 0 if values else 3},
            reasons={"new": 3} if day == 1 else {}, medians=medians, rendered_with_metrics=3 if values else 0,
            output={"rows": 4, "ok": 3, "error": 1}, drift=drift(medians, records, threshold)))
        write_record(str(run_dir), records[-1])
    return records


@pytest.fixture
def nightly_run(small_run, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(small_run[0], run_dir)
    write_nights(run_dir, 0.05)
    return run_dir


def test_runs_night_over_night_are_tabled_charted_and_the_drifted_one_flagged(nightly_run, capsys):
    text = build_report(nightly_run).read_text(encoding="utf-8")
    assert '<h2 id="runs">Runs night over night (4)</h2>' in text
    assert text.count('<tr class="drift">') == 1 and "20261204T020000Z-000004" in text
    assert "1 run(s) drifted past each run's own --alert-on-drift threshold" in text
    assert "0.55 <span class=\"note\">(-21.4%)</span> <b>drift past 5%</b>" in text
    assert "drift: run 20261204T020000Z-000004" in capsys.readouterr().out
    for chart, size in (("runs.png", (1100, 1000)), ("histograms.png", (1300, 360))):
        assert f'src="charts/{chart}"' in text
        with Image.open(nightly_run / "report" / "charts" / chart) as image:
            assert image.format == "PNG" and image.size == size
            pixels = np.asarray(image.convert("L"))
            assert pixels.min() < 64 and (pixels < 250).mean() > 0.02  # drawn on, not blank


def test_the_report_threshold_recomputes_every_runs_drift(nightly_run, capsys):
    assert main([str(nightly_run), "--alert-on-drift", "0.6"]) == 0
    text = (nightly_run / "report" / "index.html").read_text(encoding="utf-8")
    assert "No run's medians drifted past the report's threshold of 60.0%" in text
    assert '<tr class="drift">' not in text
    assert main([str(nightly_run), "--alert-on-drift", "0.3"]) == 0  # energy +50 % still is
    assert "drift: run 20261204T020000Z-000004: " in capsys.readouterr().out
    assert (nightly_run / "report" / "index.html").read_text(encoding="utf-8").count('<tr class="drift">') == 1


def test_a_run_without_records_says_so_and_draws_no_runs_chart(report):
    _, _, page, text = report
    assert "No run records" in text and not (page.parent / "charts" / "runs.png").exists()


def test_records_round_trip_through_json(tmp_path):
    records = write_nights(tmp_path, None)
    assert records[3].drift == Drift("20261203T020000Z-000003", records[3].drift.change, None, [])
    assert RunRecord.from_json(json.loads((tmp_path / "metadata" / f"_summary-{records[3].run_id}.json").read_text())) \
        == records[3]


def test_an_outputs_thumbnail_is_made_from_its_preview_only_when_the_preview_is_of_that_image(tmp_path):
    rows, columns = np.mgrid[0:900, 0:1200]
    pixels = np.stack([rows * 255 // 900, columns * 255 // 1200, np.full_like(rows, 128)], axis=2).astype(np.uint8)
    source = tmp_path / "output.png"
    Image.fromarray(pixels).save(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    # A black preview carrying the image's hash: a black thumbnail shows the preview was read, not the image.
    (tmp_path / "preview.jpg").write_bytes(encode_preview(np.zeros_like(pixels), digest))
    with Image.open(tmp_path / "preview.jpg") as preview:
        assert preview.size == (427, 320)
    for expected, name, thumbnail in ((digest, "from preview", "a.jpg"), ("0" * 64, "stale preview", "b.jpg")):
        assert write_thumbnail(source, tmp_path / thumbnail, mask=False,
                               preview=Preview(str(tmp_path / "preview.jpg"), expected))
        with Image.open(tmp_path / thumbnail) as made:
            assert made.height == 160 and abs(made.width - 213) <= 1  # 427 px preview: 213.5, rounded
            assert (np.asarray(made).max() < 10) == (name == "from preview"), name
    assert write_thumbnail(source, tmp_path / "c.jpg", mask=False, preview=Preview(str(tmp_path / "none.jpg"), digest))
