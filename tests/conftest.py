"""Shared fixtures: the example pairs of ``data/dpst`` at a small working size.

The shared folder (example data and SqueezeNet weights) is ``$STYLECORE_SHARED`` when set, else
``../shared`` beside the repository, as on the development and CI machines. It is required: a
test that needs it fails with the reason rather than being skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from stylecore.pair import PreparedPair, prepare_pair

SHARED = Path(os.environ.get("STYLECORE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DPST_DATA = SHARED / "data" / "dpst"
WEIGHTS_DIR = SHARED / "weights"
if not DPST_DATA.is_dir() or not WEIGHTS_DIR.is_dir():
    raise RuntimeError(f"the shared folder is incomplete at {SHARED}: set STYLECORE_SHARED to the folder "
                       "holding data/dpst and weights")
os.environ.setdefault("STYLECORE_WEIGHTS_DIR", str(WEIGHTS_DIR))


def example_pair_paths(number: int) -> dict[str, Path]:
    """The four files of example pair ``number`` (1 to 60): photos and colour-coded masks."""
    return {"content": DPST_DATA / "input" / f"in{number}.png",
            "style": DPST_DATA / "style" / f"tar{number}.png",
            "content_mask": DPST_DATA / "segmentation" / f"in{number}.png",
            "style_mask": DPST_DATA / "segmentation" / f"tar{number}.png"}


@pytest.fixture(scope="session")
def example_pair() -> Callable[[int, int], PreparedPair]:
    """``example_pair(number, long_side)``: example pair ``number`` prepared at ``long_side`` px."""
    def load(number: int, long_side: int) -> PreparedPair:
        return prepare_pair(**example_pair_paths(number), long_side=long_side, min_segment_fraction=0.001)

    return load
