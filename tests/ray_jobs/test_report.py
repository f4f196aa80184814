"""The run report, built from a run folder of real small images and metadata in the project's schema.

The run is written directly (no Ray): three example pairs at 64 px whose "output" is a blend of the
content and its colour-statistics transfer, their metrics from :func:`stylecore.metrics.evaluate_output`,
one error row, and an older run whose row for the same id must be hidden by the latest one.
"""

import datetime
import html.parser
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ray_jobs.report import build_report
from ray_jobs.report.cli import main
from ray_jobs.report.thumbnails import write_thumbnail
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
    # Contact sheet, errors.csv; 3 rendered rows x 5 thumbnails and a link to the full output; the error row's style.
    assert len(files) == 2 + 3 * 6 + 1
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
