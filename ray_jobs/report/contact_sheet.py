"""The contact sheet: the page's rows as one PNG, thumbnails beside each row's id, status and metrics.

An image to skim or send without the page's folder; its rows are the page's first distinct rows
(:attr:`~ray_jobs.report.selection.ReportOptions.sheet_rows` of them), thumbnails 160 px high.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ray_jobs.report.thumbnails import IMAGES, THUMBNAIL_HEIGHT, THUMBNAIL_MAX_WIDTH, PairView
from ray_jobs.run_summary import SUBJECTS, format_value
from ray_jobs.schema import metric_column
from stylecore.metrics import BETTER, METRIC_NAMES

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
