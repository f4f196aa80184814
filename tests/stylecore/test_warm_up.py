"""Compiling ahead: after :func:`stylecore.warm_up.warm_up`, a real transfer traces nothing."""

from conftest import example_pair_paths

from stylecore.config import TransferConfig
from stylecore.extractors import load_extractor
from stylecore.optimise import trace_count
from stylecore.transfer import transfer
from stylecore.warm_up import warm_up


def test_a_transfer_after_the_warm_up_traces_nothing():
    extractor = load_extractor("squeezenet")
    assert warm_up(extractor) > 0.0
    warmed = trace_count()
    assert warmed >= 4  # objective, start, block and history update: one of each serves both stages
    for number in (1, 9):  # 3 segments and 1, neither the warm-up's 2
        result = transfer(**example_pair_paths(number), config=TransferConfig(size=64, stage1_iterations=3,
                                                                              stage2_iterations=3),
                          extractor=extractor)
        assert len(result.history) > 2
    assert trace_count() == warmed
