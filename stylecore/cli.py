"""The ``stylecore`` command line: one transfer, fetching the default weights, or compiling the
kernels ahead into numba's cache (``warm-up``: once after installing, e.g. in a cluster node's image).

Every field of :class:`~stylecore.config.TransferConfig` is an option of the same name
(``--stage1-iterations``); :func:`add_config_arguments` and :func:`config_from_arguments` are
shared with the batch job so both speak the same vocabulary with the same defaults.

Bad input costs a fraction of a second and one line: the options, the files' headers
(:func:`stylecore.pair.probe_pair`) and then the decoded photos and cleaned masks
(:func:`stylecore.pair.prepare_pair`, which needs no network) are judged before TensorFlow, whose
import takes seconds, is imported. The content photo, which may be 24 MP, is decoded once, here,
and handed to the transfer as its pixels (its ICC profile and EXIF are read from the file's
header for the output); the style photo and the masks, needed at the working size only, are
decoded again by the transfer (a fraction of a second at 700 px).
TensorFlow's C++ start-up lines, which no log level silences, are kept off stderr; every fallback
the transfer took (:mod:`stylecore.fallbacks`) is one line there, starting ``note: ``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any

from stylecore import __version__
from stylecore.config import TransferConfig
from stylecore.errors import StyleCoreError
from stylecore.images import read_photo
from stylecore.output import DEFAULT_JPEG_QUALITY, output_format, read_metadata
from stylecore.masks import MaskReading
from stylecore.pair import prepare_pair, probe_pair
from stylecore.storage import ENDPOINT_VARIABLE, check_reachable, write_bytes


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (status 2), like every other refusal."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _field_parser(hint: Any) -> tuple[Any, tuple[str, ...] | None]:
    """(argparse type, choices) for a field's type hint."""
    arguments = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return str, tuple(typing.get_args(hint))
    if origin in (typing.Union, types.UnionType) and len(arguments) == 1:
        return _field_parser(arguments[0])
    if origin in (typing.Union, types.UnionType):
        return _union_parser(arguments), None
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return (lambda text: tuple(item(part.strip()) for part in text.split(",") if part.strip())), None
    return hint, None


def _union_parser(arguments: list[Any]) -> Any:
    """Parser of a union of a plain type and literal words, such as ``int | Literal["content"]``."""
    words = [word for argument in arguments if typing.get_origin(argument) is typing.Literal
             for word in typing.get_args(argument)]
    kind = next(argument for argument in arguments if typing.get_origin(argument) is not typing.Literal)

    def parse(text: str) -> Any:
        if text in words:
            return text
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {' or '.join(words)} or {kind.__name__}, got {text!r}") from None

    return parse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--option`` per configuration field, with its help and default."""
    group = parser.add_argument_group("transfer configuration (defaults are the project's own)")
    hints = typing.get_type_hints(TransferConfig)
    defaults = TransferConfig()
    for field in dataclasses.fields(TransferConfig):
        kind, choices = _field_parser(hints[field.name])
        default = getattr(defaults, field.name)
        shown = "extractor's own" if default is None else default
        group.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, type=kind, choices=choices,
                           default=None, metavar=None if choices else field.name.split("_")[-1].upper(),
                           help=f"{field.metadata['help']} (default: {shown})")


def config_from_arguments(arguments: argparse.Namespace, base: TransferConfig = TransferConfig()) -> TransferConfig:
    """``base`` with every configuration option given on the command line applied."""
    given = {field.name: getattr(arguments, field.name) for field in dataclasses.fields(TransferConfig)
             if getattr(arguments, field.name, None) is not None}
    return base.replace(**given)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="stylecore", description="Photographic style transfer (Deep Photo Style Transfer, Luan et al. "
        "2017): restyle a content photo with a style photo, segment by segment, keeping it a photograph.")
    parser.add_argument("--version", action="version", version=f"stylecore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "transfer", help="restyle one photo",
        description="Restyle --content with --style and write --output and a JSON sidecar beside it "
        "(same name, .json) with the configuration, mask diagnostics, losses and timings. The optimisation "
        "runs at --size; the output has --output-size (default: the content photo's own size).")
    run.add_argument("--content", required=True, help="content photo (PNG, JPEG, ...): a path or a URI "
                     "(s3://, gs://, hdfs://, file://)")
    run.add_argument("--style", required=True, help="style photo (path or URI)")
    run.add_argument("--content-mask", help="segmentation of the content photo (path or URI), read as "
                     "--mask-format says")
    run.add_argument("--style-mask", help="segmentation of the style photo (path or URI); with one mask "
                     "only, the other photo's segments are found from it (unless --auto-masks off)")
    run.add_argument("--output", required=True,
                     help="output image (path or URI): .png, .jpg/.jpeg or .tif/.tiff; the content's ICC profile "
                     "and EXIF (orientation reset) are kept")
    run.add_argument("--storage-endpoint", metavar="URL", help="S3-compatible endpoint for s3:// locations "
                     "(MinIO, Ceph, R2), e.g. http://minio:9000 (default: $AWS_ENDPOINT_URL, else AWS); "
                     "credentials come from the standard AWS chain: environment, profile, instance role")
    run.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY, choices=range(1, 101),
                     metavar="1-100", help=f"quality of a JPEG output (default: {DEFAULT_JPEG_QUALITY})")
    run.add_argument("--weights", help="extractor weights: a file; for vgg19 also 'imagenet' or 'random' "
                     "(default: SqueezeNet from $STYLECORE_WEIGHTS_DIR or ~/.cache/stylecore/weights; "
                     "VGG-19 from Keras' ImageNet download)")
    run.add_argument("--save-masks", action="store_true",
                     help="also write the label maps the transfer used (automatic or cleaned hand masks) as "
                     "colour-coded PNGs beside the output, OUTPUT-content-mask.png and OUTPUT-style-mask.png, "
                     "to check, fix and give back as --content-mask and --style-mask")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    add_config_arguments(run)
    download = commands.add_parser("download-weights", help="fetch the SqueezeNet weights (needs internet)")
    download.add_argument("--folder", type=Path, help="where to put them (default: ~/.cache/stylecore/weights)")
    commands.add_parser(
        "warm-up", help="compile the kernels a transfer uses into numba's cache, once after installing",
        description="Run a tiny transfer (random weights, made-up photos) so that numba compiles the matting "
        "Laplacian's, the local affine maps' and the metrics' kernels into its cache (__pycache__ beside the "
        "modules, or $NUMBA_CACHE_DIR). A process started later loads them in a fraction of a second instead "
        "of compiling them for about a minute: run it where the package is installed (make install does; a "
        "cluster node's image should), before the first transfer or batch actor.")
    return parser


def _print_progress(stage: int, iteration: int, budget: int, losses: dict[str, float]) -> None:
    if iteration == 1 or iteration % 10 == 0 or iteration == budget:
        terms = " ".join(f"{name} {value:.4g}" for name, value in losses.items() if name != "total")
        print(f"stage {stage} [{iteration:>4}/{budget}] loss {losses['total']:.5g} ({terms})",
              file=sys.stderr, flush=True)


def _run_transfer(arguments: argparse.Namespace) -> None:
    config = config_from_arguments(arguments)
    files = (arguments.content, arguments.style, arguments.content_mask, arguments.style_mask)
    output_format(arguments.output)  # an unwritable format fails before the work, not after it
    check_reachable(arguments.output)
    probe_pair(*files, config=config)
    pair = (read_photo(arguments.content, what="content photo", max_pixels=config.max_image_pixels), *files[1:])
    prepare_pair(*pair, long_side=config.size, min_segment_fraction=config.min_segment_fraction,
                 max_pixels=config.max_image_pixels, reading=MaskReading.from_config(config))
    # TensorFlow takes seconds to import: only a transfer whose input passed the checks pays for it.
    from stylecore.tensorflow_runtime import load_tensorflow

    load_tensorflow()
    from stylecore.extractors import load_extractor
    from stylecore.transfer import transfer
    from stylecore.output import write_image

    extractor = load_extractor(config.extractor, weights=arguments.weights, seed=config.seed)
    result = transfer(*pair, config=config, extractor=extractor,
                      progress=None if arguments.quiet else _print_progress)
    for note in result.fallbacks:  # what was done instead of what was asked: never silently
        print(f"note: {note}", file=sys.stderr)
    write_image(arguments.output, result.output, read_metadata(arguments.content), jpeg_quality=arguments.jpeg_quality)
    saved_masks = _save_masks(arguments.output, result) if arguments.save_masks else None
    sidecar = {"version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "host": platform.node(), "content": arguments.content, "style": arguments.style,
               "content_mask": arguments.content_mask, "style_mask": arguments.style_mask,
               "output": arguments.output,
               "automatic_masks": result.diagnostics.automatic, "saved_masks": saved_masks,
               "extractor_weights_sha256": extractor.weights_sha256, **result.summary(),
               "history": result.history}
    write_bytes(os.path.splitext(arguments.output)[0] + ".json", json.dumps(sidecar, indent=2).encode())
    print(f"wrote {arguments.output} ({result.output.shape[1]}x{result.output.shape[0]}, optimised at "
          f"{result.image.shape[1]}x{result.image.shape[0]}) in {result.timings['total']:.1f} s", file=sys.stderr)


def _warm_up() -> None:
    """Fill numba's cache with the kernels of a transfer (the ``warm-up`` command); the traces it makes
    on the way serve this process only. Random weights: no kernel depends on them."""
    started = time.perf_counter()  # pymatting compiles its own kernels as it is imported: they count too
    from stylecore.tensorflow_runtime import load_tensorflow

    load_tensorflow()
    from stylecore.extractors import FeatureExtractor, build_squeezenet
    from stylecore.warm_up import warm_up

    warm_up(FeatureExtractor("squeezenet", build_squeezenet(), weights_sha256=None))
    print(f"compiled a transfer's kernels into numba's cache in {time.perf_counter() - started:.1f} s")


def use_storage_endpoint(endpoint: str | None) -> None:
    """Point s3:// locations at ``endpoint`` (``--storage-endpoint``) by setting the standard
    ``$AWS_ENDPOINT_URL``, which pyarrow, :mod:`stylecore.storage` and the batch layer's workers read."""
    if endpoint:
        os.environ[ENDPOINT_VARIABLE] = endpoint


def _save_masks(output: str, result: Any) -> dict[str, str]:
    """Write ``result``'s label maps as palette-coloured PNGs beside ``output`` (a path or a URI);
    their locations by side."""
    from stylecore.masks import label_map_to_rgb
    from stylecore.output import write_image

    stem = os.path.splitext(output)[0]
    paths = {side: f"{stem}-{side}-mask.png" for side in ("content", "style")}
    for side, path in paths.items():
        write_image(path, label_map_to_rgb(getattr(result, f"{side}_labels")))
    return paths


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        if arguments.command == "download-weights":
            from stylecore.extractors import DEFAULT_WEIGHTS_DIR, download_squeezenet_weights
            print(download_squeezenet_weights(arguments.folder or DEFAULT_WEIGHTS_DIR))
        elif arguments.command == "warm-up":
            _warm_up()
        else:
            use_storage_endpoint(arguments.storage_endpoint)
            _run_transfer(arguments)
    except (StyleCoreError, ValueError, OSError) as error:  # OSError: an --output that cannot be written
        print(f"stylecore: error: {error}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"stylecore: error: out of memory at --size {getattr(arguments, 'size', None) or TransferConfig.size} "
              "(memory grows with the working size's pixel count): lower --size", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
