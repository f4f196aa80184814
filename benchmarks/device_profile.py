"""Where each optimisation stage's time goes, on whatever device TensorFlow has (not a test: run it and quote it).

For one example pair at the default configuration, per stage (stage 1 at the coarse size without
the Laplacian, stage 2 at the working size with it), per iteration:

- ``wall``: the stage's wall time over its iterations (the objective's set-up excluded);
- ``device``: time inside the compiled calls, from each call to its results on the host;
- ``host share``: 1 - device / wall, the part a GPU would wait through (Python, callbacks, copies);
- ``evaluation``: one call of the compiled objective alone (network, style, TV, photorealism);
- ``bare pass``: forward and backward of the network alone to the layers the loss uses,
  and the iteration's cost in bare passes.

Then the whole default transfer of the pair, ``--transfers`` times in this warm process: each one's
total and per-phase seconds, and their median. ``--transfer-only`` prints just those, and needs only
``stylecore.transfer.transfer``, so the same command times an older checkout for comparison
(``PYTHONPATH=<that checkout> python benchmarks/device_profile.py --transfer-only``).

    python benchmarks/device_profile.py [--pair 4] [--iterations 60] [--extractor squeezenet|vgg19]
                                        [--transfers 3] [--transfer-only] [--threads N]

``--threads 1`` times what one of the 60-pair job's 1-CPU actors sees.
"""

from __future__ import annotations

import argparse
import statistics
import time

import tensorflow as tf

from examples import pair_paths
from stylecore.architectures import layer_choice
from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.pair import prepare_pair
from stylecore.transfer import transfer


def print_stage_profiles(extractor, layers, config, pair, iterations: int) -> None:
    """Each stage's line of the module docstring."""
    # Imported here, not at the top: --transfer-only must need nothing newer than ``transfer``, so that
    # it can time an older checkout.
    from stylecore.transfer import photorealism_stencil

    coarse = pair.resized(round(config.size * config.coarse_scale))
    for stage, stage_pair, stencil in ((1, coarse, None), (2, pair, photorealism_stencil(pair.content, config))):
        figures = profile_stage(extractor, layers, config, pair, stage_pair, stencil, iterations)
        height, width = stage_pair.content.shape[:2]
        print(f"stage {stage} at {width}x{height}, per iteration: wall {figures['wall'] * 1e3:.1f} ms, "
              f"device {figures['device'] * 1e3:.1f} ms, host share {1 - figures['device'] / figures['wall']:.1%}; "
              f"evaluation {figures['evaluation'] * 1e3:.1f} ms; bare pass {figures['bare'] * 1e3:.1f} ms, "
              f"iteration = {figures['wall'] / figures['bare']:.2f} bare passes")


def profile_stage(extractor, layers, config, pair, stage_pair, stencil, iterations: int) -> dict[str, float]:
    from stylecore.objective import StageObjective
    from stylecore.optimise import minimise
    from transfer_speed import bare_network_seconds, seconds_per_call

    objective = StageObjective(extractor, layers, content=stage_pair.content, style=stage_pair.style,
                               content_labels=stage_pair.content_labels, style_labels=stage_pair.style_labels,
                               pairing=pair.diagnostics, config=config, stencil=stencil)
    minimise(objective, stage_pair.content, iterations=2, tolerance=0.0)  # traced and compiled
    started = time.perf_counter()
    outcome = minimise(objective, stage_pair.content, iterations=iterations, tolerance=0.0)
    wall = (time.perf_counter() - started) / len(outcome.history)
    image = tf.constant(stage_pair.content)
    evaluation = seconds_per_call(lambda: objective.function(image, *objective.arguments)[0].numpy(), 10)
    bare = bare_network_seconds(extractor, [*layers.content_layers, *layers.style_layers], stage_pair.content, 10)
    return {"wall": wall, "device": outcome.device_seconds / len(outcome.history),
            "evaluation": evaluation, "bare": bare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", type=int, default=4, help="example pair number (1-60)")
    parser.add_argument("--iterations", type=int, default=60, help="iterations timed per stage")
    parser.add_argument("--extractor", default="squeezenet", choices=("squeezenet", "vgg19"),
                        help="vgg19 runs with random weights")
    parser.add_argument("--transfers", type=int, default=3, help="whole transfers timed")
    parser.add_argument("--transfer-only", action="store_true", help="time whole transfers only")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra- and inter-op threads (0: TensorFlow's default, every core)")
    arguments = parser.parse_args()
    if arguments.threads:
        tf.config.threading.set_intra_op_parallelism_threads(arguments.threads)
        tf.config.threading.set_inter_op_parallelism_threads(arguments.threads)
    config = TransferConfig(extractor=arguments.extractor)
    extractor = load_extractor(config.extractor, weights="random" if config.extractor == "vgg19" else None)
    layers = layer_choice(config.extractor, None, None, None)
    pair = prepare_pair(**pair_paths(arguments.pair), long_side=config.size,
                        min_segment_fraction=config.min_segment_fraction)
    devices = [device.name for device in tf.config.list_logical_devices()]
    print(f"pair {arguments.pair}, {config.extractor}, devices {', '.join(devices)}, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} intra-op threads")
    if not arguments.transfer_only:
        print_stage_profiles(extractor, layers, config, pair, arguments.iterations)
    transfer(**pair_paths(arguments.pair), config=config, extractor=extractor)  # traces outside the timing
    totals = []
    for _ in range(arguments.transfers):
        started = time.perf_counter()
        result = transfer(**pair_paths(arguments.pair), config=config, extractor=extractor)
        totals.append(time.perf_counter() - started)
        phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in result.timings.items())
        print(f"whole transfer: {totals[-1]:.2f} s ({phases})")
    print(f"whole transfer, median of {len(totals)}: {statistics.median(totals):.2f} s")


if __name__ == "__main__":
    main()
