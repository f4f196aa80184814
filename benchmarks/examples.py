"""The example pairs in ``../shared/data/dpst`` beside the repository, for the benchmark scripts."""

from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dpst"


def pair_paths(number: int) -> dict[str, Path]:
    """Content and style photos and their masks of example pair ``number`` (1 to 60)."""
    return {"content": DATA / "input" / f"in{number}.png", "style": DATA / "style" / f"tar{number}.png",
            "content_mask": DATA / "segmentation" / f"in{number}.png",
            "style_mask": DATA / "segmentation" / f"tar{number}.png"}
