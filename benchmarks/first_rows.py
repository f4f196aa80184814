"""First transfers of a process against warm ones: traces and seconds (not a test: run it and quote it).

1. One process transfers 8 example pairs whose segment counts are 1, 2, 3, 4, 5, 6, 7 and 9 (every
   count among the 60 pairs at the default settings), one after the other from a cold start, and
   prints after each the process's trace count of the stage programs
   (:func:`stylecore.optimise.trace_count`); then the same 8 again, warm, ``--repeats`` times in
   turn: each pair's first seconds against the median of its warm ones. A warm transfer varies by
   up to 15 % from one run to the next on this machine, as much as the ratios measured, so one warm
   run is not a yardstick. ``--warm-up`` first compiles ahead as a batch actor does
   (:func:`stylecore.warm_up.warm_up`), and prints its seconds.
2. ``stylecore transfer`` of pair ``--fresh-pair`` in a fresh process, ``--repeats`` times: its own
   reported total (the sidecar's ``timings.total``) and the process's wall time, against the median
   of the same pair's warm seconds in this process.

    python benchmarks/first_rows.py [--pairs 9,4,1,23,26,11,27,25] [--fresh-pair 4] [--warm-up]
                                    [--repeats 3] [--stage1-iterations 200] [--stage2-iterations 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stylecore.tensorflow_runtime import load_tensorflow

load_tensorflow()  # before anything imports TensorFlow: its start-up lines stay off the console

from examples import pair_paths  # noqa: E402
from stylecore.config import TransferConfig  # noqa: E402
from stylecore.extractors import load_extractor  # noqa: E402
from stylecore.optimise import trace_count  # noqa: E402
from stylecore.transfer import transfer  # noqa: E402

PAIRS = (9, 4, 1, 23, 26, 11, 27, 25)
"""Example pairs with 1, 2, 3, 4, 5, 6, 7 and 9 segments at the default settings."""


def timed_transfer(number: int, config: TransferConfig, extractor) -> tuple[float, int]:
    """Seconds of one transfer of pair ``number`` and its number of styled segments."""
    started = time.perf_counter()
    result = transfer(**pair_paths(number), config=config, extractor=extractor)
    seconds = time.perf_counter() - started
    return seconds, len(result.diagnostics.matched) + len(result.diagnostics.content_only)


def fresh_transfer(number: int, config: TransferConfig) -> tuple[float, float]:
    """(the transfer's own total, the process's wall seconds) of ``stylecore transfer`` in a new process."""
    paths = pair_paths(number)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "out.png"
        command = [sys.executable, "-m", "stylecore.cli", "transfer", "--quiet", "--output", str(output),
                   "--stage1-iterations", str(config.stage1_iterations),
                   "--stage2-iterations", str(config.stage2_iterations),
                   *[word for name in ("content", "style", "content_mask", "style_mask")
                     for word in (f"--{name.replace('_', '-')}", str(paths[name]))]]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - started
        return json.loads(output.with_suffix(".json").read_text())["timings"]["total"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=",".join(map(str, PAIRS)), help="example pairs, comma-separated")
    parser.add_argument("--fresh-pair", type=int, default=4, help="the pair `stylecore transfer` runs in a new process")
    parser.add_argument("--warm-up", action="store_true", help="compile ahead first, as a batch actor does")
    parser.add_argument("--repeats", type=int, default=3,
                        help="warm runs of each pair (their median is the yardstick) and fresh processes")
    parser.add_argument("--stage1-iterations", type=int, default=TransferConfig.stage1_iterations)
    parser.add_argument("--stage2-iterations", type=int, default=TransferConfig.stage2_iterations)
    arguments = parser.parse_args()
    pairs = [int(number) for number in arguments.pairs.split(",")]
    config = TransferConfig(stage1_iterations=arguments.stage1_iterations,
                            stage2_iterations=arguments.stage2_iterations)
    extractor = load_extractor(config.extractor)
    if arguments.warm_up:
        from stylecore.warm_up import warm_up

        print(f"warm-up: {warm_up(extractor, config):.1f} s, traces {trace_count()}")
    first = {}
    for number in pairs:
        first[number], segments = timed_transfer(number, config, extractor)
        print(f"pair {number} ({segments} segments), first: {first[number]:.1f} s, traces so far {trace_count()}")
    warm_runs = {number: [] for number in {*pairs, arguments.fresh_pair}}
    for _ in range(arguments.repeats):
        for number in warm_runs:
            warm_runs[number].append(timed_transfer(number, config, extractor)[0])
    warm = {number: statistics.median(seconds) for number, seconds in warm_runs.items()}
    ratios = []
    for number in pairs:
        ratios.append(first[number] / warm[number])
        runs = ", ".join(f"{seconds:.1f}" for seconds in warm_runs[number])
        print(f"pair {number} warm: {runs} s, median {warm[number]:.1f}; first / warm {ratios[-1]:.2f}")
    print(f"traces in all: {trace_count()}; first / warm after the first pair: "
          f"{min(ratios[1:]):.2f} to {max(ratios[1:]):.2f}")
    for _ in range(arguments.repeats):
        total, wall = fresh_transfer(arguments.fresh_pair, config)
        print(f"stylecore transfer of pair {arguments.fresh_pair} in a fresh process: {total:.1f} s of transfer "
              f"({wall:.1f} s of process), against {warm[arguments.fresh_pair]:.1f} s warm: "
              f"{total / warm[arguments.fresh_pair]:.2f} x")


if __name__ == "__main__":
    main()
