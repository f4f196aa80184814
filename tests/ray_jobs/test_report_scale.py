"""The report of a large run: a bounded page, errors grouped, a stable sample, medians by group.

The large run is ``benchmarks/report_scale.py``'s synthetic one (100,000 rows of real Parquet
whose images are a small pool of real tiny PNGs; nothing is rendered), reported once with small
``--top`` and ``--sample`` so the module stays fast; the known answers come from its table.
"""

import csv
import html.parser
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from benchmarks.report_scale import CONFIGURATIONS, ERRORS, STYLES, synthetic_table, write_synthetic_run
from ray_jobs.report import ReportOptions, build_report
from ray_jobs.report.cli import main
from ray_jobs.report.groups import error_groups, error_rows, message_pattern
from ray_jobs.report.selection import sample_rows, sections
from ray_jobs.run_summary import format_value, latest_rows, load_run

ROWS = 100_000
OPTIONS = ReportOptions(top=4, sample=12, seed=7)


class PageParser(html.parser.HTMLParser):
    """Row anchors, image sources, and the ids of the rows under each section heading."""

    def __init__(self):
        super().__init__()
        self.anchors, self.images, self.sections = [], [], {}
        self._section = None
        self._in_row_cell = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "h2":
            self._section = attributes.get("id")
            self.sections[self._section] = []
        if tag == "tr" and attributes.get("id", "").startswith("row-"):
            self.anchors.append(attributes["id"][len("row-"):])
        if tag == "img":
            self.images.append(attributes["src"])
        self._in_row_cell = tag == "b" and self._section is not None

    def handle_data(self, data):
        if self._in_row_cell and re.fullmatch(r"r\d{6}", data):
            self.sections[self._section].append(data)
        self._in_row_cell = False


@pytest.fixture(scope="module")
def large_report(tmp_path_factory):
    """(report folder, latest rows as a table, parsed page, page text)."""
    run = write_synthetic_run(tmp_path_factory.mktemp("large"), ROWS)
    page = build_report(run, options=OPTIONS)
    text = page.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(text)
    return page.parent, load_run(str(run))[0], parser, text


def test_a_100000_row_page_is_bounded_and_its_thumbnails_made_once(large_report):
    report, table, parser, text = large_report
    assert table.num_rows == ROWS
    shown = {row_id for ids in parser.sections.values() for row_id in ids}
    assert len(shown) <= 6 * OPTIONS.top + OPTIONS.sample
    assert sorted(parser.anchors) == sorted(shown)  # one anchor per row, however many sections show it
    thumbnails = sorted(path.name for path in (report / "thumbnails").iterdir())
    statuses = dict(zip(table["id"].to_pylist(), table["status"].to_pylist(), strict=True))
    # Five per row shown, an error row's output aside; a row in two sections reuses its files.
    assert len(thumbnails) == sum(5 if statuses[row_id] == "ok" else 4 for row_id in shown)
    assert sorted({source.removeprefix("thumbnails/") for source in parser.images
                   if source.startswith("thumbnails/")}) == thumbnails
    assert {source for source in parser.images if not source.startswith("thumbnails/")} == {"charts/histograms.png"}
    assert len(text.encode()) < 200_000
    assert f"{ROWS} pairs, latest row per id, {len(shown)} of them shown below" in text


def test_the_worst_and_best_rows_are_the_extremes_of_the_table(large_report):
    _, table, parser, _ = large_report
    ids = np.array(table["id"].to_pylist())
    distance = table["output_style_distance"].to_numpy(zero_copy_only=False)
    rendered = np.isfinite(distance)
    order = np.argsort(distance[rendered], kind="stable")
    assert parser.sections["worst-style_distance"] == list(ids[rendered][order[::-1]][:OPTIONS.top])
    assert parser.sections["best-style_distance"] == list(ids[rendered][order][:OPTIONS.top])
    ssim = table["output_ssim"].to_numpy(zero_copy_only=False)
    assert parser.sections["worst-ssim"][0] == ids[np.nanargmin(ssim)]


def test_the_sample_is_the_seeded_one_in_id_order(large_report):
    _, table, parser, text = large_report
    ids = table["id"].to_pylist()
    expected = [ids[index] for index in sample_rows(ids, OPTIONS.sample, seed=OPTIONS.seed)]
    assert parser.sections["sample"] == expected == sorted(expected)
    assert f"Random sample: {OPTIONS.sample} of {ROWS} rows (seed {OPTIONS.seed})" in text


def test_the_sample_is_stable_under_a_seed_and_mostly_kept_when_rows_are_added():
    ids = [f"row{number:05d}" for number in range(5000)]
    sample = sample_rows(ids, 50, seed=3)
    assert list(sample) == list(sample_rows(ids, 50, seed=3)) and len(set(sample)) == 50
    assert list(sample) == sorted(sample)
    assert set(sample) != set(sample_rows(ids, 50, seed=4))
    grown = sorted([*ids, *(f"new{number:05d}" for number in range(500))])
    kept = {ids[index] for index in sample} & {grown[index] for index in sample_rows(grown, 50, seed=3)}
    assert len(kept) >= 40  # a tenth more rows displaces about a tenth of the sample


def test_errors_are_grouped_by_kind_with_every_error_counted(large_report):
    report, table, _, text = large_report
    errors = error_rows(table)
    counts = dict(zip(*(column.to_pylist() for column in pc.value_counts(errors["error_type"]).flatten()), strict=True))
    assert set(counts) == {error_type for error_type, _ in ERRORS} and sum(counts.values()) > 1000
    groups = error_groups(errors)
    assert {group.error_type: group.count for group in groups} == counts
    assert [group.count for group in groups] == sorted(counts.values(), reverse=True)
    assert f"{errors.num_rows} errors in 4 groups" in text
    assert html_escaped("image not found: …") in text
    with open(report / "errors.csv", newline="", encoding="utf-8") as file:
        listed = list(csv.DictReader(file))
    assert [row["id"] for row in listed] == errors["id"].to_pylist()


def html_escaped(text):
    return text.replace("&", "&amp;")


def test_message_patterns_replace_paths_and_numbers():
    assert message_pattern("image not found: /data/c12.png") == "image not found: …"
    assert message_pattern("the mask s3://b/m.png is 640 x 480 but its photo is 480 x 64.5") == \
        "the mask … is … x … but its photo is … x …"
    assert message_pattern("the loss became non-finite (nan) after 3 iterations") == \
        "the loss became non-finite (nan) after … iterations"


def test_a_few_errors_are_listed_one_by_one():
    table = pa.table({"id": ["a", "b", "c"], "status": ["error", "ok", "error"],
                      "error_type": ["InputImageError", None, "InputImageError"],
                      "error_message": ["image not found: /x/a.png", None, "image not found: /x/c.png"]})
    groups = error_groups(error_rows(table))
    assert [(group.pattern, group.count, group.example_ids) for group in groups] == [
        ("image not found: …", 2, ["a", "c"])]


def test_medians_by_style_and_configuration_match_the_table(large_report):
    _, table, _, text = large_report
    assert text.count('<td title="') == STYLES + len(CONFIGURATIONS)
    noise = table.filter(pc.and_(pc.equal(table["config_hash"], CONFIGURATIONS[1].config_hash()),
                                 pc.equal(table["status"], "ok")))
    median = float(np.median(noise["output_ssim"].to_numpy()))
    row = re.search(r'<td title="%s">([^<]*)</td><td class="number">(\d+)</td><td class="number">\d+</td>'
                    r'<td class="number">[^<]*</td><td class="number">([^<]*)</td>'
                    % CONFIGURATIONS[1].config_hash(), text)
    assert "init=noise" in row.group(1) and "size=500" in row.group(1)
    assert int(row.group(2)) == pc.sum(pc.equal(table["config_hash"], CONFIGURATIONS[1].config_hash())).as_py()
    assert row.group(3) == format_value(median)


def test_a_run_below_the_threshold_shows_every_row_and_above_it_the_sections():
    pool = {kind: [f"{kind}.png"] * 40 for kind in ("content", "style", "output", "mask")}
    table = latest_rows(synthetic_table(30, pool))
    assert [(section.anchor, list(section.rows)) for section in sections(table, ReportOptions())] == [
        ("pairs", list(range(30)))]
    chosen = sections(table, ReportOptions(top=2, sample=5, full_table_below=30))
    assert [section.anchor for section in chosen] == [
        "worst-style_distance", "best-style_distance", "worst-ssim", "best-ssim",
        "worst-photorealism_energy", "best-photorealism_energy", "sample"]
    assert [len(section.rows) for section in chosen] == [2] * 6 + [5]


def test_command_line_options_reach_the_report_and_bad_counts_are_refused(large_report, tmp_path, capsys):
    report, _, _, _ = large_report
    run = report.parent
    assert main([str(run), "--output", str(tmp_path / "r"), "--top", "1", "--sample", "2", "--seed", "5"]) == 0
    text = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert "Worst 1 by output SSIM" in text and "Random sample: 2 of 100000 rows (seed 5)" in text
    with pytest.raises(SystemExit) as exit_info:
        main([str(run), "--top", "-1"])
    assert exit_info.value.code == 2
    assert "expected a whole number of rows, 0 or more, not '-1'" in capsys.readouterr().err
