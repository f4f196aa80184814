"""Full-resolution outputs: time, peak memory and quality (not a test: run it and quote it).

Stand-ins for large photos, made from one example pair into ``--work-dir`` (kept for reruns):
the content photo and its mask upscaled 4x and 7x (Lanczos; nearest for the mask; about 5 and
15 MP for a 700 x 437 pair, 6 and 18 MP for 700 x 525), to 8, 24 and 48 MP, and a "detailed"
photo: the 4x upscale with detail the working size cannot hold (a full-resolution fractal
texture and sensor-like noise), since an upscaled photo is smoother than a camera's.

And a real photo, "real": a camera's 15.9 MP JPEG (5312 x 2988, progressive, 4:2:0), "seeding" by
Clemens Engelhardt (CC0-1.0), a backlit dandelion meadow, which Debian's and Ubuntu's package
``lomiri-wallpapers-16.04`` installs as ``/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg``
(``apt-get download lomiri-wallpapers-16.04 && dpkg-deb -x lomiri-wallpapers-16.04_*.deb DIR``
gets it without installing; ``--real-photo`` takes another path). It is never committed. Its
style is example pair 57's (autumn trees: a similar scene, backlit vegetation, in other colours),
without masks, so the segments are matched automatically, as for any user's own photo. When
the file is absent the case is skipped with a message saying where to get it.

Each case runs one transfer in a fresh process at the configuration given (every ``stylecore
transfer`` option works here) and prints:

- seconds of each phase, and the extra over the working-size run (decoding, the output step,
  writing the PNG) in wall time and in CPU time (which a busy machine inflates less), and the
  peak resident memory of the process (max RSS, before any scoring);
- fidelity: median Delta E*ab between the output shrunk to the working size (Lanczos) and the
  optimised working-size result;
- photorealism at full size: the matting-Laplacian energy per pixel of the output before its
  rounding to 8 bits (and after: rounding alone adds about 1e-5), the Laplacian built at the
  output size on 12 tiles of 256 x 256, against the working result's at its size;
- edges: luma SSIM of the output to the content at full size, against that of the working
  result upsampled bicubically.

The metrics of the batch job stay at the working size; this script is where full-size outputs
are scored. ``--no-score`` skips the scoring (the 48 MP case only checks it completes).

    python benchmarks/full_resolution.py [--pair 1] [--cases 1x,4x,7x,detail,48mp,real] [--size 700 ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from examples import pair_paths
from stylecore.cli import add_config_arguments, config_from_arguments

SCALES = {"1x": 1.0, "4x": 4.0, "7x": 7.0, "detail": 4.0, "8mp": 8e6, "24mp": 24e6, "48mp": 48e6}
"""Each case's upscaling factor, or (above 100) the pixel count it upscales to."""
TILE = 256
REAL_PHOTO = Path("/usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg")
"""The real photo's path once ``lomiri-wallpapers-16.04`` is installed (module docstring)."""
REAL_STYLE_PAIR = 57


def make_case(case: str, number: int, work_dir: Path, real_photo: Path) -> dict[str, str] | None:
    """The content photo and mask of ``case`` in ``work_dir`` (made once), with the pair's style
    files; for "real", ``real_photo`` and its style alone, or ``None`` when the photo is absent."""
    if case == "real":
        if not real_photo.is_file():
            return None
        return {"content": str(real_photo), "style": str(pair_paths(REAL_STYLE_PAIR)["style"])}
    paths = {key: str(value) for key, value in pair_paths(number).items()}
    if case == "1x":
        return paths
    content_path, mask_path = work_dir / f"in{number}-{case}.png", work_dir / f"mask{number}-{case}.png"
    if not content_path.exists():
        with Image.open(paths["content"]) as small, Image.open(paths["content_mask"]) as mask:
            scale = SCALES[case] if SCALES[case] < 100 else np.sqrt(SCALES[case] / (small.width * small.height))
            size = (round(small.width * scale), round(small.height * scale))
            large = small.convert("RGB").resize(size, Image.Resampling.LANCZOS)
            mask.convert("RGB").resize(size, Image.Resampling.NEAREST).save(mask_path, compress_level=1)
        if case == "detail":
            large = add_detail(large)
        large.save(content_path, compress_level=1)
    return {**paths, "content": str(content_path), "content_mask": str(mask_path)}


def add_detail(image: Image.Image) -> Image.Image:
    """``image`` with a fractal texture (+-6 % brightness, features down to one pixel) and noise of
    sigma 2/255, the detail of a real photo that a 700 px working copy cannot hold."""
    texture = np.asarray(Image.effect_mandelbrot(image.size, (-0.75, 0.05, -0.72, 0.075), 255), np.float32)
    noise = np.random.default_rng(0).normal(0.0, 2.0, (image.height, image.width, 1))
    pixels = np.asarray(image, np.float32) * (0.94 + 0.12 * texture[..., None] / 255.0) + noise
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def run_child(paths: dict[str, str], config_json: str, output: Path, score: bool) -> dict[str, object]:
    """One transfer (and its scoring) in a fresh process, so that its peak memory is its own."""
    command = [sys.executable, __file__, "--child", json.dumps(paths), config_json, str(output), str(int(score))]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"child failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def child(paths: dict[str, str], config_json: str, output: Path, score: bool) -> None:
    from stylecore.config import TransferConfig
    from stylecore.extractors import load_extractor
    from stylecore.output import write_image
    from stylecore.transfer import transfer

    config = TransferConfig.from_dict(json.loads(config_json))
    extractor = load_extractor(config.extractor, seed=config.seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = transfer(**paths, config=config, extractor=extractor)
    written, cpu_written = time.perf_counter(), time.process_time()
    write_image(output, result.output, result.content_metadata)
    figures: dict[str, object] = {
        "timings": result.timings, "write_s": time.perf_counter() - written,
        "wall_s": time.perf_counter() - started, "transfer_cpu_s": cpu_written - cpu_started,
        "write_cpu_s": time.process_time() - cpu_written,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "working": list(result.image.shape[:2]), "output": list(result.output.shape[:2]),
        "phases": full_size_phases(result, paths["content"], output)}
    if score:
        figures.update(full_size_scores(result, paths["content"]))
    print(json.dumps(figures))


def full_size_phases(result, content_path: str, output: Path) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each full-size step, run again after the transfer (and after its
    peak memory is taken): the steps a working-size output does not take, timed one by one."""
    from stylecore.images import read_photo, resize_image
    from stylecore.output import read_metadata, write_image
    from stylecore.transfer import output_image

    phases, values = {}, {}
    steps = {"decode": lambda: read_photo(content_path), "metadata": lambda: read_metadata(content_path),
             "working copy": lambda: resize_image(values["decode"], result.image.shape[:2]),
             "output step": lambda: output_image(result.image, result.content_image, values["decode"], result.config),
             "write": lambda: write_image(output, values["output step"], result.content_metadata)}
    for name, step in steps.items():
        started, cpu_started = time.perf_counter(), time.process_time()
        values[name] = step()
        phases[name] = (time.perf_counter() - started, time.process_time() - cpu_started)
    return phases


def full_size_scores(result, content_path: str) -> dict[str, float]:
    """Fidelity, tiled photorealism energy and edge SSIM of ``result.output`` (module docstring)."""
    from stylecore.colour import srgb_to_lab
    from stylecore.images import read_image, resize_image
    from stylecore.metrics import photorealism_energy, structural_similarity
    from stylecore.transfer import output_image

    output = result.output.astype(np.float32) / 255.0
    content = read_image(content_path)
    unrounded = output_image(result.image, result.content_image, content, result.config, dtype=np.float32)
    shrunk = resize_image(output, result.image.shape[:2])
    delta_e = np.linalg.norm(srgb_to_lab(shrunk) - srgb_to_lab(result.image), axis=-1)
    height, width = output.shape[:2]
    corners = [(top, left) for top in np.linspace(0, height - TILE, 3).astype(int)
               for left in np.linspace(0, width - TILE, 4).astype(int)]

    def tile_energy(image: np.ndarray) -> float:
        return float(np.mean([photorealism_energy(image[top:top + TILE, left:left + TILE],
                                                  content[top:top + TILE, left:left + TILE])
                              for top, left in corners]))

    bicubic = np.stack([np.asarray(Image.fromarray(result.image[..., channel], mode="F").resize(
        (width, height), Image.Resampling.BICUBIC)) for channel in range(3)], axis=2)
    return {"median_delta_e": float(np.median(delta_e)),
            "tile_energy": tile_energy(unrounded), "tile_energy_8bit": tile_energy(output),
            "working_energy": photorealism_energy(result.image, result.content_image),
            "ssim_output": structural_similarity(output, content),
            "ssim_bicubic": structural_similarity(np.clip(bicubic, 0.0, 1.0), content)}


def report(case: str, figures: dict[str, object], baseline: dict[str, object] | None) -> None:
    timings = figures["timings"]
    height, width = figures["output"]
    print(f"{case}: output {width}x{height} ({width * height / 1e6:.1f} MP), working "
          f"{figures['working'][1]}x{figures['working'][0]}; peak memory {figures['peak_rss_gib']:.2f} GiB")
    print("  seconds: " + ", ".join(f"{key} {value:.1f}" for key, value in timings.items())
          + f", write {figures['write_s']:.1f}")
    phases = figures["phases"]
    print("  full-size steps again, one by one (wall / CPU s): "
          + ", ".join(f"{name} {wall:.2f} / {cpu:.2f}" for name, (wall, cpu) in phases.items())
          + f"; all {sum(wall for wall, _ in phases.values()):.1f} / {sum(cpu for _, cpu in phases.values()):.1f}")
    if baseline is not None:
        extra = (timings["prepare"] - baseline["timings"]["prepare"] + timings["output"]
                 + figures["write_s"] - baseline["write_s"])
        extra_cpu = (figures["transfer_cpu_s"] + figures["write_cpu_s"]
                     - baseline["transfer_cpu_s"] - baseline["write_cpu_s"])
        print(f"  extra over the working-size run (decode + output step + write): {extra:.1f} s wall, "
              f"{extra_cpu:.1f} s CPU (all threads; the wall figure is inflated on a busy machine)")
    if "median_delta_e" in figures:
        print(f"  fidelity: median Delta E*ab {figures['median_delta_e']:.2f}")
        print(f"  energy per pixel: output at full size {figures['tile_energy']:.3g} (12 tiles; "
              f"{figures['tile_energy_8bit']:.3g} once rounded to 8 bits), working result "
              f"{figures['working_energy']:.3g}")
        print(f"  luma SSIM to the content: output {figures['ssim_output']:.4f}, "
              f"bicubic upsampling of the working result {figures['ssim_bicubic']:.4f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), sys.argv[5] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", type=int, default=1, help="example pair number (1-60)")
    parser.add_argument("--cases", default="1x,4x,7x,detail,8mp,24mp,48mp,real",
                        help=f"comma-separated, of {', '.join(SCALES)}, real")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/stylecore-full-resolution"))
    parser.add_argument("--real-photo", type=Path, default=REAL_PHOTO, help="the real case's photo")
    parser.add_argument("--no-score", action="store_true", help="time and memory only")
    add_config_arguments(parser)
    arguments = parser.parse_args()
    config = config_from_arguments(arguments)
    arguments.work_dir.mkdir(parents=True, exist_ok=True)
    print(f"pair {arguments.pair}, working size {config.size}, configuration {config.config_hash()}")
    baseline = None
    for case in arguments.cases.split(","):
        paths = make_case(case, arguments.pair, arguments.work_dir, arguments.real_photo)
        if paths is None:
            print(f"{case}: skipped, no photo at {arguments.real_photo}: install (or download and unpack) the "
                  f"package lomiri-wallpapers-16.04, or pass --real-photo")
            continue
        score = not arguments.no_score and case != "48mp"
        figures = run_child(paths, config.to_json(), arguments.work_dir / f"out-{case}.png", score)
        baseline = figures if case == "1x" else baseline
        report(case, figures, None if case in ("1x", "real") else baseline)


if __name__ == "__main__":
    main()
