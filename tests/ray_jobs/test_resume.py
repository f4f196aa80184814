"""Which rows count as done: the latest earlier row of the id that rendered an image, with the same
input hashes, config hash, weights identity and render version, and an image on disk that still has
the recorded hash; and the fingerprint itself, each distinct file hashed once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ray_jobs.fingerprint import Fingerprint, file_sha256, fingerprints, hash_files, weights_identity
from ray_jobs.manifest import ManifestEntry
from ray_jobs.metadata import run_file, write_rows
from ray_jobs.records import empty_record
from ray_jobs.resume import done_rows, skipped_rows
from ray_jobs.schema import SCHEMA_VERSION
from stylecore.config import TransferConfig
from stylecore.extractors import SQUEEZENET_SHA256
from stylecore.images import to_uint8
from stylecore.output import write_image
from stylecore.render_version import RENDER_VERSION

PRINT = Fingerprint(content_sha256="c1", style_sha256="s1", content_mask_sha256=None, style_mask_sha256=None,
                    config_hash="h1", extractor_weights_sha256="w1", render_version=RENDER_VERSION)


@pytest.fixture
def output(tmp_path: Path) -> Path:
    write_image(tmp_path / "images" / "a.png", to_uint8(np.full((4, 6, 3), 0.25, dtype=np.float32)))
    return tmp_path


def previous_row(output: Path, status: str = "ok", **changes) -> dict:
    return {**empty_record(), "schema_version": SCHEMA_VERSION, "run_id": "r1", "id": "a", "status": status,
            "config_json": "{}", "extractor": "squeezenet", "version": "0", "output_path": "images/a.png",
            "output_sha256": file_sha256(output / "images" / "a.png"), **dataclasses.asdict(PRINT), **changes}


def done_ids(output: Path, *runs: list[dict]) -> dict[str, str]:
    """Write each run's rows as a metadata file, then map each done id to its earlier run."""
    for number, rows in enumerate(runs):
        write_rows(run_file(output, f"r{number}"), rows)
    return {row["id"]: row["run_id"] for row in done_rows({"a": PRINT}, output=output).done.to_pylist()}


def test_a_row_with_the_same_fingerprint_and_its_image_intact_is_done(output):
    assert done_ids(output, [previous_row(output)]) == {"a": "r1"}


def test_a_skipped_copy_counts_and_becomes_this_runs_skipped_row(output):
    write_rows(run_file(output, "r0"), [previous_row(output, status="skipped", seconds=4.5)])
    earlier = done_rows({"a": PRINT}, output=output)
    [row] = skipped_rows(earlier.done, run_id="r9").to_pylist()
    assert (row["run_id"], row["status"], row["seconds"], row["config_hash"]) == ("r9", "skipped", 4.5, "h1")


@pytest.mark.parametrize("change", [
    {"status": "error"},
    {"id": "b"},
    {"content_sha256": "c2"},
    {"style_mask_sha256": "m1"},
    {"config_hash": "h2"},
    {"extractor_weights_sha256": "w2"},
    {"render_version": RENDER_VERSION - 1},
    {"render_version": None},
    {"output_sha256": "0" * 64},
    {"output_path": None},
])
def test_a_row_that_differs_in_anything_that_matters_is_not_done(output, change):
    assert done_ids(output, [previous_row(output, **change)]) == {}


def test_a_deleted_or_overwritten_image_is_not_done(output):
    write_rows(run_file(output, "r0"), [previous_row(output)])
    write_image(output / "images" / "a.png", to_uint8(np.full((4, 6, 3), 0.75, dtype=np.float32)))
    assert done_ids(output) == {}
    (output / "images" / "a.png").unlink()
    assert done_ids(output) == {}


def test_the_latest_rendering_row_of_an_id_decides(output):
    current = previous_row(output, run_id="r2")
    assert done_ids(output, [previous_row(output, output_sha256="f" * 64, run_id="r1")], [current]) == {"a": "r2"}
    # a later failed attempt leaves the earlier image in place and in force
    assert done_ids(output, [current], [previous_row(output, status="error", output_path=None,
                                                     output_sha256=None, run_id="r3")]) == {"a": "r2"}


def test_fingerprints_hash_file_bytes_configuration_weights_and_version(tmp_path):
    (tmp_path / "c.png").write_bytes(b"content")
    entries = [ManifestEntry(id=name, content=tmp_path / "c.png", style=tmp_path / "missing.png", content_mask=None,
                             style_mask=None, config=TransferConfig(size=64, seed=seed), location="line 1")
               for name, seed in (("a", 0), ("b", 1))]
    prints = fingerprints(entries, weights_of=lambda extractor: None)
    assert prints["a"].content_sha256 == "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73"
    assert (prints["a"].style_sha256, prints["a"].content_mask_sha256) == (None, None)
    assert prints["a"].config_hash == TransferConfig(size=64).config_hash() != TransferConfig().config_hash()
    assert prints["b"].config_hash != prints["a"].config_hash
    assert (prints["a"].extractor_weights_sha256, prints["a"].render_version) == (SQUEEZENET_SHA256, RENDER_VERSION)


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
