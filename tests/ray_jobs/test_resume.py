"""Which rows count as done: same id, same input hashes and config hash, status ok or skipped, and
an image on disk that still has the recorded hash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ray_jobs.fingerprint import Fingerprint, file_sha256, fingerprint
from ray_jobs.manifest import ManifestEntry
from ray_jobs.resume import done_rows
from stylecore.config import TransferConfig
from stylecore.images import save_png

PRINT = Fingerprint(content_sha256="c1", style_sha256="s1", content_mask_sha256=None, style_mask_sha256=None,
                    config_hash="h1")


@pytest.fixture
def output(tmp_path: Path) -> Path:
    save_png(tmp_path / "images" / "a.png", np.full((4, 6, 3), 0.25, dtype=np.float32))
    return tmp_path


def previous_row(output: Path, status: str = "ok", **changes) -> dict:
    return {"id": "a", "status": status, "output_path": "images/a.png",
            "output_sha256": file_sha256(output / "images" / "a.png"), **dataclasses.asdict(PRINT), **changes}


def test_a_row_with_the_same_fingerprint_and_its_image_intact_is_done(output):
    earlier = previous_row(output)
    assert done_rows([("a", PRINT)], [earlier], output=output) == {"a": earlier}
    skipped_copy = previous_row(output, status="skipped")
    assert done_rows([("a", PRINT)], [skipped_copy], output=output) == {"a": skipped_copy}


@pytest.mark.parametrize("change", [
    {"status": "error"},
    {"id": "b"},
    {"content_sha256": "c2"},
    {"style_mask_sha256": "m1"},
    {"config_hash": "h2"},
    {"output_sha256": "0" * 64},
    {"output_path": None},
])
def test_a_row_that_differs_in_anything_that_matters_is_not_done(output, change):
    assert done_rows([("a", PRINT)], [previous_row(output, **change)], output=output) == {}


def test_a_deleted_or_overwritten_image_is_not_done(output):
    earlier = previous_row(output)
    save_png(output / "images" / "a.png", np.full((4, 6, 3), 0.75, dtype=np.float32))
    assert done_rows([("a", PRINT)], [earlier], output=output) == {}
    (output / "images" / "a.png").unlink()
    assert done_rows([("a", PRINT)], [earlier], output=output) == {}


def test_any_earlier_run_with_a_matching_image_counts(output):
    stale = previous_row(output, output_sha256="f" * 64, run_id="r1")
    current = previous_row(output, run_id="r2")
    assert done_rows([("a", PRINT)], [current, stale], output=output)["a"]["run_id"] == "r2"


def test_fingerprint_hashes_file_bytes_and_configuration(tmp_path):
    (tmp_path / "c.png").write_bytes(b"content")
    entry = ManifestEntry(id="a", content=tmp_path / "c.png", style=tmp_path / "missing.png", content_mask=None,
                          style_mask=None, config=TransferConfig(size=64), location="line 1")
    print_ = fingerprint(entry)
    assert print_.content_sha256 == "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73"
    assert (print_.style_sha256, print_.content_mask_sha256) == (None, None)
    assert print_.config_hash == TransferConfig(size=64).config_hash() != TransferConfig().config_hash()
