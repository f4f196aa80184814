"""What bad input costs on the command line, and what the batch pre-flight costs (not a test: run it and quote it).

Prints the median wall and CPU time of ``stylecore transfer`` refusing a few kinds of input (each is
judged before TensorFlow is imported), next to the time of importing TensorFlow alone, which each
refusal cost before; then the in-process time of :func:`stylecore.pair.probe_pair` (headers only,
what a batch row does first) against :func:`stylecore.pair.prepare_pair` (decoding and cleaning).

    python benchmarks/input_errors.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from examples import pair_paths
from stylecore.config import TransferConfig
from stylecore.pair import prepare_pair, probe_pair


def median_seconds(command: list[str], repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU (user + system) seconds of running ``command``, and its exit status.
    CPU time is what to quote from a shared machine: wall time there grows with the others' load."""
    walls, cpus, status = [], [], 0
    for _ in range(repeats):
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        status = subprocess.run(command, capture_output=True, check=False).returncode
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(time.perf_counter() - started)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus), status


def command_line_refusals(folder: Path, repeats: int) -> None:
    paths = pair_paths(2)
    width, height = Image.open(paths["content"]).size
    Image.new("RGB", (width // 2, height), (0, 0, 255)).save(folder / "half_mask.png")
    base = [sys.executable, "-m", "stylecore.cli", "transfer", "--output", str(folder / "out.png"),
            "--style", str(paths["style"])]
    kinds = {
        "missing content file": ["--content", str(folder / "missing.png")],
        "option out of range (--coarse-scale 1.5)": ["--content", str(paths["content"]), "--coarse-scale", "1.5"],
        "mask of half its photo's width": ["--content", str(paths["content"]), "--content-mask",
                                           str(folder / "half_mask.png"), "--style-mask", str(paths["style_mask"])],
    }
    for kind, arguments in kinds.items():
        wall, cpu, status = median_seconds(base + arguments, repeats)
        print(f"stylecore transfer, {kind}: {wall:.2f} s wall, {cpu:.2f} s CPU (exit status {status})")
    wall, cpu, _ = median_seconds([sys.executable, "-c", "import tensorflow"], repeats)
    print(f"for comparison, python -c 'import tensorflow': {wall:.2f} s wall, {cpu:.2f} s CPU")


def preflight(repeats: int) -> None:
    paths, config = pair_paths(1), TransferConfig()
    for name, function in (("probe_pair (headers)", lambda: probe_pair(**paths, config=config)),
                           ("prepare_pair (decode and clean at 700 px)",
                            lambda: prepare_pair(**paths, long_side=config.size,
                                                 min_segment_fraction=config.min_segment_fraction))):
        function()
        started = time.perf_counter()
        for _ in range(repeats):
            function()
        print(f"example pair 1, {name}: {(time.perf_counter() - started) / repeats * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        command_line_refusals(Path(folder), arguments.repeats)
    preflight(arguments.repeats)


if __name__ == "__main__":
    main()
