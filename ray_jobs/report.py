"""A run's report: a static HTML page and a PNG contact sheet of every pair, with a metric summary.

``python -m ray_jobs.report OUTPUT [--output DIR]`` (or :func:`build_report` at the end of a job)
takes the latest row per id of the run folder ``OUTPUT`` and its summary (:mod:`ray_jobs.run_summary`),
and writes

- ``DIR/index.html`` (``DIR`` defaults to ``OUTPUT/report``): the summary (counts by status,
  median and interquartile range of each metric for the outputs and the two references, time),
  the errors with their messages, then one table row per pair: content, style, both masks, output,
  and the metrics. Thumbnails are copied into ``DIR/thumbnails/``; every link is relative (an
  output thumbnail links to the full-size image in ``OUTPUT/images/``), so the page works opened
  from disk; no script, no network.
- ``DIR/contact_sheet.png``: the same rows as one image (Pillow), thumbnails 160 px high.

and prints the summary as a text table.

``OUTPUT`` may be an object-store URI (``s3://renders/nightly``): the metadata and images are read
from the store, and the report is written to a local ``--output`` folder, which is then required.
It stays local because it is a page to open from disk, with relative links to its thumbnails; in a
bucket it could only be viewed through a web server or signed URLs. Its full-size links then point
nowhere and are left out (the page names each image's URI in its metadata columns).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import html
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from ray_jobs.run_summary import (METRIC_LABELS, SUBJECTS, Summary, format_value, load_run, metric_column,
                                  spread_text, summary_table, time_text)
from stylecore.atomic import atomic_path, write_text_atomic
from stylecore.errors import StorageError
from stylecore.metrics import BETTER, METRIC_NAMES
from stylecore.storage import absolute, is_local, join, open_input, resolve

IMAGES = {"content": ("content_path",), "output": ("output_path",), "style": ("style_path",),
          "content mask": ("content_mask_path", "automatic_content_mask_path"),
          "style mask": ("style_mask_path", "automatic_style_mask_path")}
"""Thumbnail columns, left to right, and the metadata columns each is read from, the first one set
winning: the result beside the content it restyles, then what it was made from; a mask column
shows the hand mask, else the automatically matched one."""
PAIR_COLUMN_WIDTHS = {"pair": 8, "content": 15, "output": 16, "style": 13, "content mask": 9, "style mask": 9,
                      "metrics": 30}
"""Share of the page width, in percent, of each column of the pair table, which fits the window:
the thumbnails shrink to their column (a 1400 px window shows every column)."""
THUMBNAIL_HEIGHT = 160
THUMBNAIL_MAX_WIDTH = 256


@dataclasses.dataclass(frozen=True)
class PairView:
    """One row as the report shows it; paths are relative to the report folder."""

    row: Mapping[str, Any]
    thumbnails: dict[str, str | None]
    """Each of :data:`IMAGES` to its thumbnail, ``None`` where the row has no readable file."""
    output_link: str | None
    """The full-size output image, ``None`` when it does not exist."""


def build_report(run_dir: str | Path, *, output: str | Path | None = None, sheet_rows: int = 200) -> Path:
    """Write the report of ``run_dir`` into ``output`` (default ``run_dir/report``); return index.html's path.

    ``run_dir`` may be an object-store URI; ``output`` is a local folder, required for such a run.

    The contact sheet shows the first ``sheet_rows`` rows by id (the page shows all), so that a
    large run gives an image that can still be opened. Prints the summary table to stdout.
    """
    run_dir = absolute(run_dir)
    if output is None and not is_local(run_dir):
        raise ValueError(f"{run_dir} is in an object store: give a local report folder with --output.")
    report_dir = Path(output) if output is not None else Path(resolve(run_dir)[1]) / "report"
    rows, summary = load_run(run_dir)
    pairs = [pair_view(row, run_dir, report_dir) for row in rows]
    sheet = contact_sheet(pairs[:sheet_rows], report_dir)
    with atomic_path(report_dir / "contact_sheet.png") as temporary:
        sheet.save(temporary, format="PNG")
    page = report_dir / "index.html"
    write_text_atomic(page, html_page(posixpath.basename(run_dir.rstrip("/")), pairs, summary, sheet_rows=sheet_rows))
    print(summary_table(summary))
    return page


# --- thumbnails ------------------------------------------------------------------------------------

def _source_path(value: str | None, run_dir: str) -> str | None:
    """A metadata path as a location: absolute paths and URIs as given, relative ones against the run folder."""
    return join(run_dir, value) if value else None


def _file_stem(row_id: str) -> str:
    """A file name for ``row_id``: itself when it is a safe name, else a digest (ids come from data)."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,100}", row_id):
        return row_id
    return "id-" + hashlib.sha256(row_id.encode()).hexdigest()[:16]


def pair_view(row: Mapping[str, Any], run_dir: str, report_dir: Path) -> PairView:
    """Write a row's thumbnails into ``report_dir/thumbnails`` and say where they and its output are."""
    paths: dict[str, str | None] = {}
    for name, columns in IMAGES.items():
        mask = name.endswith("mask")
        relative = f"thumbnails/{_file_stem(row['id'])}-{name.replace(' ', '-')}.{'png' if mask else 'jpg'}"
        source = _source_path(next((row[column] for column in columns if row.get(column)), None), run_dir)
        written = source is not None and write_thumbnail(source, report_dir / relative, mask=mask)
        paths[name] = relative if written else None
    output = _source_path(row.get("output_path"), run_dir)
    output_file = resolve(output)[1] if output and is_local(output) else None
    output_link = (Path(os.path.relpath(output_file, report_dir)).as_posix()
                   if output_file and os.path.isfile(output_file) else None)
    return PairView(row=row, thumbnails=paths, output_link=output_link)


def write_thumbnail(source: str | Path, target: Path, *, mask: bool) -> bool:
    """Save ``source`` scaled, up or down, to fit :data:`THUMBNAIL_HEIGHT` x :data:`THUMBNAIL_MAX_WIDTH`.

    Photos: Lanczos, JPEG quality 85. Masks: nearest neighbour (labels must not blend), PNG.
    A full-resolution photo is decoded once, and at reduced size where the format allows (JPEG
    draft mode; others by ``Image.reduce`` before the Lanczos pass, as ``Image.thumbnail`` does).
    A ``target`` newer than a local ``source`` is kept, so rebuilding a large run's report redoes only
    what changed (an object-store source is fetched again). Returns False, writing nothing, when
    ``source`` is missing or unreadable.
    """
    with contextlib.suppress(OSError):
        if is_local(source) and target.stat().st_mtime >= os.stat(source).st_mtime:
            return True
    try:
        with open_input(source) as stream, Image.open(stream) as opened:
            scale = min(THUMBNAIL_HEIGHT / opened.height, THUMBNAIL_MAX_WIDTH / opened.width)
            size = (max(1, round(opened.width * scale)), max(1, round(opened.height * scale)))
            if mask or scale >= 1.0:
                image = opened.convert("RGB").resize(
                    size, Image.Resampling.NEAREST if mask else Image.Resampling.LANCZOS)
            else:
                opened.thumbnail(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
                image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, StorageError):
        return False
    with atomic_path(target) as temporary:
        image.save(temporary, format="PNG" if mask else "JPEG", quality=85)
    return True


# --- HTML ------------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.error { background: #fff0f0; }
img { display: block; max-height: 160px; max-width: 100%; height: auto; }
table.pairs { width: 100%; table-layout: fixed; }
table.pairs td { overflow-wrap: anywhere; }
table.pairs table { margin: 0; font-size: 12px; }
table.pairs table th, table.pairs table td { padding: 2px 4px; overflow-wrap: normal; }
table.pairs table td { white-space: nowrap; }
.missing { color: #999; }
"""


def html_page(run_name: str, pairs: Sequence[PairView], summary: Summary, *, sheet_rows: int) -> str:
    """The whole report page of the run folder named ``run_name``."""
    escape = html.escape
    rows = [pair.row for pair in pairs]
    errors = [row for row in rows if row["status"] == "error"]
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sheet_note = f" (first {sheet_rows} of {len(rows)} rows)" if len(rows) > sheet_rows else ""
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Report: {escape(run_name)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Run report: {escape(run_name)}</h1>",
        f"<p>{len(rows)} pairs, latest row per id; generated {generated}. "
        f'<a href="contact_sheet.png">Contact sheet</a>{escape(sheet_note)}.</p>',
        "<h2>Summary</h2>", _status_table(summary), _metric_table(summary),
        f"<p>{escape(time_text(summary))}</p>", _METRIC_LEGEND,
        *[f"<p>Unreadable metadata file {escape(str(path))}: {escape(reason)}</p>"
          for path, reason in summary.unreadable],
        f"<h2>Errors ({len(errors)})</h2>", _error_table(errors),
        "<h2>Pairs</h2>", _pair_table(pairs), "</body></html>",
    ]
    return "\n".join(parts) + "\n"


_METRIC_LEGEND = """<p><b>style distance</b>: per content segment, Wasserstein-2 distance between Gaussians fitted
to the CIELAB colours of the image inside the segment and of the matching style segment, averaged by segment
area; in ΔE*ab (about 1 is a just-noticeable difference); lower is better.
<b>SSIM</b>: structural similarity of the image's luma to the content photo's (1 = same structure; it also
drops with global changes of brightness and contrast); higher is better.
<b>photorealism energy</b>: matting-Laplacian energy of the image w.r.t. the content photo, per pixel
(RGB in [0, 1]); 0 for locally affine recolourings of the content; lower is better.
<i>content photo</i> is the unstyled content (style distance to beat, SSIM 1, energy ~0);
<i>colour transfer</i> is the per-segment mean/std colour transfer, the simple method to beat.
All three are computed at the working size (the optimised result and the photos at <code>size</code>),
not on the written output, which the local affine maps carry to the output size
(<code>benchmarks/full_resolution.py</code> scores outputs at their own size).</p>"""


def _status_table(summary: Summary) -> str:
    cells = "".join(f"<th>{html.escape(status)}</th>" for status in summary.status_counts)
    counts = "".join(f'<td class="number">{count}</td>' for count in summary.status_counts.values())
    return f"<table><tr>{cells}<th>total</th></tr><tr>{counts}" \
           f'<td class="number">{sum(summary.status_counts.values())}</td></tr></table>'


def _metric_table(summary: Summary) -> str:
    header = "".join(f"<th>{html.escape(name)}</th>" for name in SUBJECTS.values())
    body = []
    for metric in METRIC_NAMES:
        cells = "".join(f'<td class="number">{html.escape(spread_text(summary.metrics[(subject, metric)]))}</td>'
                        for subject in SUBJECTS)
        body.append(f"<tr><th>{html.escape(METRIC_LABELS[metric])}, {BETTER[metric]} better</th>{cells}</tr>")
    return f"<table><tr><th>median (IQR), n</th>{header}</tr>{''.join(body)}</table>"


def _error_table(errors: Sequence[Mapping[str, Any]]) -> str:
    if not errors:
        return "<p>None.</p>"
    body = "".join(f'<tr><td><a href="#row-{html.escape(row["id"])}">{html.escape(row["id"])}</a></td>'
                   f"<td>{html.escape(row.get('error_type') or '')}</td>"
                   f"<td>{html.escape(row.get('error_message') or '')}</td></tr>" for row in errors)
    return f"<table><tr><th>id</th><th>error</th><th>message</th></tr>{body}</table>"


def _pair_table(pairs: Sequence[PairView]) -> str:
    columns = ("pair", *IMAGES, "metrics")
    widths = "".join(f'<col style="width: {PAIR_COLUMN_WIDTHS[name]}%">' for name in columns)
    header = "".join(f"<th>{html.escape(name)}</th>" for name in columns)
    body = [f"<colgroup>{widths}</colgroup><tr>{header}</tr>"]
    for pair in pairs:
        images = "".join(_image_cell(name, path, pair.output_link if name == "output" else None)
                         for name, path in pair.thumbnails.items())
        css = ' class="error"' if pair.row["status"] == "error" else ""
        body.append(f'<tr id="row-{html.escape(pair.row["id"])}"{css}><td>{_pair_cell(pair.row)}</td>{images}'
                    f"<td>{_row_metrics_cell(pair.row)}</td></tr>")
    return f'<table class="pairs">{"".join(body)}</table>'


def _image_cell(name: str, thumbnail: str | None, link: str | None) -> str:
    if thumbnail is None:
        return '<td class="missing">—</td>'
    image = f'<img src="{html.escape(thumbnail)}" alt="{html.escape(name)}" loading="lazy">'
    return f'<td><a href="{html.escape(link)}">{image}</a></td>' if link else f"<td>{image}</td>"


def _pair_cell(row: Mapping[str, Any]) -> str:
    seconds = f"<br>{format_value(row['seconds'])} s" if row.get("seconds") is not None else ""
    error = (f"<br><b>{html.escape(row.get('error_type') or '')}</b>: {html.escape(row.get('error_message') or '')}"
             if row["status"] == "error" else "")
    return f"<b>{html.escape(row['id'])}</b><br>{html.escape(row['status'])}{seconds}{error}"


def _row_metrics_cell(row: Mapping[str, Any]) -> str:
    header = "".join(f"<th>{html.escape(name)}</th>" for name in SUBJECTS.values())
    lines = [f"<tr><th></th>{header}</tr>"]
    for metric in METRIC_NAMES:
        cells = "".join(f'<td class="number">{format_value(row.get(metric_column(subject, metric)))}</td>'
                        for subject in SUBJECTS)
        lines.append(f"<tr><th>{html.escape(METRIC_LABELS[metric])}</th>{cells}</tr>")
    return f"<table>{''.join(lines)}</table>"


# --- contact sheet ---------------------------------------------------------------------------------

_CELL = (THUMBNAIL_MAX_WIDTH + 8, THUMBNAIL_HEIGHT + 8)
_SHEET_METRIC_LABELS = {"style_distance": "style dist. dE", "ssim": "SSIM", "photorealism_energy": "photoreal. energy"}
_SHEET_SUBJECT_LABELS = {"output": "output", "content": "content", "reference": "col. transfer"}
"""Shorter labels, in the ASCII that Pillow's default font is sure to have."""
_TEXT_WIDTH = 460
_HEADER_HEIGHT = 24
_METRIC_X = (0, 190, 270, 350)
"""x offsets, within the text column, of the metric name and the three subjects' values."""


def contact_sheet(pairs: Sequence[PairView], report_dir: Path) -> Image.Image:
    """One image: a header, then per pair the :data:`IMAGES` thumbnails (in ``report_dir``, opened
    one at a time) and the row's id, status and metrics."""
    font = ImageFont.load_default(size=13)
    width = _CELL[0] * len(IMAGES) + _TEXT_WIDTH
    sheet = Image.new("RGB", (width, _HEADER_HEIGHT + _CELL[1] * max(len(pairs), 1)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, name in enumerate((*IMAGES, "metrics")):
        draw.text((column * _CELL[0] + 4, 5), name, fill="black", font=font)
    for index, pair in enumerate(pairs):
        top = _HEADER_HEIGHT + index * _CELL[1]
        for column, relative in enumerate(pair.thumbnails.values()):
            left = column * _CELL[0] + 4
            if relative is None:
                draw.rectangle((left, top + 4, left + _CELL[0] - 8, top + _CELL[1] - 4), outline="#bbbbbb")
                draw.text((left + 8, top + 10), "none", fill="#999999", font=font)
                continue
            with Image.open(report_dir / relative) as thumbnail:
                sheet.paste(thumbnail.convert("RGB"), (left, top + 4))
                # A frame, so that a white mask segment or sky still shows its extent.
                draw.rectangle((left - 1, top + 3, left + thumbnail.width, top + 4 + thumbnail.height),
                               outline="#bbbbbb")
        _draw_row_text(draw, pair.row, (len(IMAGES) * _CELL[0] + 4, top + 6), font)
    return sheet


def _draw_row_text(draw: ImageDraw.ImageDraw, row: Mapping[str, Any], origin: tuple[int, int],
                   font: ImageFont.ImageFont) -> None:
    x, y = origin
    seconds = f"  {format_value(row['seconds'])} s" if row.get("seconds") is not None else ""
    draw.text((x, y), f"{row['id']}  {row['status']}{seconds}", fill="black", font=font)
    if row["status"] == "error":
        message = f"{row.get('error_type') or ''}: {row.get('error_message') or ''}"
        for line_number, start in enumerate(range(0, min(len(message), 300), 55)):
            draw.text((x, y + 20 + 16 * line_number), message[start:start + 55], fill="#b00000", font=font)
        return
    for offset, text in zip(_METRIC_X, ("", *_SHEET_SUBJECT_LABELS.values()), strict=True):
        draw.text((x + offset, y + 22), text, fill="#555555", font=font)
    for line_number, metric in enumerate(METRIC_NAMES, start=1):
        values = (f"{_SHEET_METRIC_LABELS[metric]} ({BETTER[metric]} better)",
                  *(format_value(row.get(metric_column(subject, metric))) for subject in SUBJECTS))
        for offset, text in zip(_METRIC_X, values, strict=True):
            draw.text((x + offset, y + 22 + 18 * line_number), text, fill="black", font=font)


# --- command line ----------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ray_jobs.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the job's output folder or URI (holds metadata/ and images/)")
    parser.add_argument("--output", type=Path, default=None,
                        help="local report folder (default RUN_DIR/report; required when RUN_DIR is a URI)")
    arguments = parser.parse_args(argv)
    try:
        page = build_report(arguments.run_dir, output=arguments.output)
    except (FileNotFoundError, StorageError, ValueError) as error:
        print(f"error: {error}")
        return 1
    print(f"\nreport: {page}\ncontact sheet: {page.parent / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
