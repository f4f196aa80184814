"""How long building a manifest from a folder of 100,000 photos takes (not a test: run it and quote it).

Makes a temporary folder of empty ``.png`` files (the builder never opens them) plus a few
non-image files, and three style photos, then times the listing alone, the cross product's rows
and writing the JSONL.

    python benchmarks/manifest_build.py [--files 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ray_jobs.manifest_builder import build_rows, list_images, write_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000, help="photos in the content folder")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "photos").mkdir()
        (root / "styles").mkdir()
        for index in range(arguments.files):
            (root / "photos" / f"IMG_{index:06d}.png").touch()
        for name in ("notes.txt", "Thumbs.db", "index.html"):
            (root / "photos" / name).touch()
        for name in ("sunset.png", "snow.jpg", "night.png"):
            (root / "styles" / name).touch()
        started = time.perf_counter()
        listing = list_images(root / "photos", r"IMG_(\d+)")
        listed = time.perf_counter()
        built = build_rows(root=root, content=Path("photos"), style=Path("styles"), content_key=r"IMG_(\d+)")
        rows = time.perf_counter()
        write_manifest(built.rows, root / "manifest.jsonl")
        written = time.perf_counter()
    print(f"{arguments.files} photos: listed {len(listing.files)} images ({listing.non_images} non-image files "
          f"skipped) in {listed - started:.2f} s; {len(built.rows)} cross-product rows built in "
          f"{rows - listed:.2f} s; written as JSONL in {written - rows:.2f} s")


if __name__ == "__main__":
    main()
