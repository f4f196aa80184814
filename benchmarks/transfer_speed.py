"""Speed and memory of one transfer at the working size (not a test: run it and quote it).

Prints, for each extractor (SqueezeNet with its weights, VGG-19 with random weights):
the bare network's forward and backward time over the layers the loss uses, the seconds per
iteration of each stage's objective and of real L-BFGS iterations, and the overhead of the
losses, masks and Laplacian over the bare network. Then the Laplacian's build time, and the
wall time and peak memory (max RSS, measured in a child process) of one full default transfer.

    python benchmarks/transfer_speed.py [--pair 1] [--size 700] [--skip-vgg19]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from examples import pair_paths
from stylecore.architectures import layer_choice
from stylecore.config import TransferConfig
from stylecore.extractors import FeatureExtractor, load_extractor
from stylecore.laplacian import matting_laplacian
from stylecore.objective import StageObjective
from stylecore.optimise import minimise
from stylecore.pair import PreparedPair, prepare_pair
from stylecore.transfer import photorealism_stencil

def seconds_per_call(function: Callable[[], object], repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def bare_network_seconds(extractor: FeatureExtractor, layers: list[str], image: np.ndarray, repeats: int) -> float:
    """Forward and backward (gradient w.r.t. the input) of the network alone, to the given layers."""
    network = extractor.with_layers(layers)
    tensor = tf.constant(image)

    @tf.function
    def forward_backward(x: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.add_n([tf.reduce_sum(value) for value in network(x[None]).values()])
        return tape.gradient(total, x)

    return seconds_per_call(lambda: forward_backward(tensor), repeats)


def measure_extractor(extractor: FeatureExtractor, config: TransferConfig, pair: PreparedPair,
                      repeats: int) -> dict[str, float]:
    layers = layer_choice(extractor.name, None, None, None)
    stencil = photorealism_stencil(pair.content, config)
    figures = {"bare_forward_backward_s": bare_network_seconds(
        extractor, [*layers.content_layers, *layers.style_layers], pair.content, repeats)}
    coarse = pair.resized(round(config.size * config.coarse_scale))
    for stage, stage_pair, stage_stencil in ((1, coarse, None), (2, pair, stencil)):
        objective = StageObjective(extractor, layers, content=stage_pair.content, style=stage_pair.style,
                                   content_labels=stage_pair.content_labels,
                                   style_labels=stage_pair.style_labels, pairing=pair.diagnostics,
                                   config=config, stencil=stage_stencil)
        figures[f"stage{stage}_objective_s"] = seconds_per_call(lambda: objective(stage_pair.content), repeats)
        started = time.perf_counter()
        outcome = minimise(objective, stage_pair.content, iterations=repeats, tolerance=0.0)
        figures[f"stage{stage}_lbfgs_iteration_s"] = (time.perf_counter() - started) / len(outcome.history)
    full_size_stage1 = StageObjective(extractor, layers, content=pair.content, style=pair.style,
                                      content_labels=pair.content_labels, style_labels=pair.style_labels,
                                      pairing=pair.diagnostics, config=config)
    figures["stage1_objective_at_full_size_s"] = seconds_per_call(lambda: full_size_stage1(pair.content), repeats)
    figures["overhead_over_bare_stage2"] = figures["stage2_objective_s"] / figures["bare_forward_backward_s"] - 1
    return figures


def full_transfer_in_child(number: int, size: int) -> dict[str, float]:
    """Run one default transfer in a fresh process; its wall time and peak resident memory."""
    code = ("import json, time, sys; from stylecore.transfer import transfer; from stylecore.config import "
            "TransferConfig; paths = json.loads(sys.argv[1]); started = time.perf_counter(); "
            f"result = transfer(**paths, config=TransferConfig(size={size})); "
            "print(json.dumps({'wall_s': time.perf_counter() - started, 'timings': result.timings}))")
    paths = {key: str(value) for key, value in pair_paths(number).items()}
    completed = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], capture_output=True,
                               text=True, check=True)
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    figures["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", type=int, default=1, help="example pair number (1-60)")
    parser.add_argument("--size", type=int, default=TransferConfig().size, help="working size, px")
    parser.add_argument("--repeats", type=int, default=10, help="calls timed per figure")
    parser.add_argument("--skip-vgg19", action="store_true", help="SqueezeNet only")
    arguments = parser.parse_args()
    config = TransferConfig(size=arguments.size)
    pair = prepare_pair(**pair_paths(arguments.pair), long_side=config.size,
                        min_segment_fraction=config.min_segment_fraction)
    print(f"pair {arguments.pair}, content {pair.content.shape[1]}x{pair.content.shape[0]}, "
          f"style {pair.style.shape[1]}x{pair.style.shape[0]}, threads: TensorFlow default, "
          f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)")
    matting_laplacian(pair.content[:8, :8])  # compile pymatting's kernel outside the timing
    build = seconds_per_call(lambda: matting_laplacian(pair.content), 3)
    print(f"laplacian build: {build:.3f} s ({matting_laplacian(pair.content).nnz / 1e6:.1f} M non-zeros)")
    extractors = [("squeezenet", None)] + ([] if arguments.skip_vgg19 else [("vgg19", "random")])
    for name, weights in extractors:
        repeats = arguments.repeats if name == "squeezenet" else max(2, arguments.repeats // 5)
        figures = measure_extractor(load_extractor(name, weights=weights), config.replace(extractor=name),
                                    pair, repeats)
        print(f"{name}:")
        for key, value in figures.items():
            print(f"  {key:34s} {value:8.3f}")
    full = full_transfer_in_child(arguments.pair, arguments.size)
    stages = ", ".join(f"{key} {value:.1f} s" for key, value in full["timings"].items())
    print(f"full default transfer (squeezenet): {full['wall_s']:.1f} s wall ({stages}); "
          f"peak memory {full['peak_rss_gib']:.2f} GiB")


if __name__ == "__main__":
    main()
