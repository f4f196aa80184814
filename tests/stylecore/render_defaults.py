"""The defaults that shape a transfer's output, recorded beside the render version they belong to.

The thumbnail guard (``test_render_version.py``) renders 3 + 3 iterations at 64 px: a change of a
default that shows only over a default transfer's 200 + 60 iterations (the L-BFGS history), at
700 px, or in automatic masks passes it. This guard compares the defaults themselves with
``render_defaults.json``, which records them with the render version they were last reviewed at:

- every field of :class:`~stylecore.config.TransferConfig` but those in :data:`NOT_OUTPUT`;
- every module-level constant (an upper-case name assigned in the module) of every stylecore
  module not in :data:`NOT_OUTPUT_MODULES`, when it is plain data (numbers, strings, and lists,
  tuples, dicts, arrays and dataclasses of them);
- every plain-data default of a keyword of those modules' functions, but the parameters in
  :data:`NOT_OUTPUT`.

A new constant is guarded without anyone listing it. To record the current defaults (after a bump
of ``RENDER_VERSION``, or for a change that provably leaves every output pixel as it was, such as
a new option whose default keeps the old behaviour), run from the repository root::

    python -m tests.stylecore.render_defaults

and commit ``tests/stylecore/render_defaults.json`` with the change: its diff shows what moved.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import numpy as np

import stylecore
from stylecore.config import TransferConfig, canonical_json
from stylecore.render_version import RENDER_VERSION

RECORD = Path(__file__).with_name("render_defaults.json")
NOT_OUTPUT_MODULES = {
    "stylecore.atomic": "writes files atomically",
    "stylecore.cli": "parses arguments; its defaults are TransferConfig's",
    "stylecore.errors": "error classes",
    "stylecore.fallbacks": "says what a transfer did",
    "stylecore.metrics": "scores outputs, makes none",
    "stylecore.output": "encodes the returned image (PNG losslessly; the batch job writes PNG)",
    "stylecore.render_version": "the version itself",
    "stylecore.storage": "moves bytes",
    "stylecore.tensorflow_runtime": "loads TensorFlow",
    "stylecore.warm_up": "compiles ahead on a made-up pair, whose output nobody keeps",
    "stylecore.weights": "names the weights file, whose SHA-256 is part of the resume key already",
}
"""Modules none of whose defaults changes an output pixel, with the reason."""
NOT_OUTPUT = {
    "TransferConfig.max_image_pixels": "refuses large images, changes no pixel",
    "stylecore.config.MIN_STAGE_SIZE": "refuses a configuration",
    "stylecore.config._UNBOUNDED": "validation ranges",
    "stylecore.config._RANGES": "validation ranges",
    "stylecore.images.MIN_PHOTO_LONG_SIDE": "refuses small photos",
    "stylecore.masks.MAX_OFF_PALETTE_SHARE": "refuses a mask",
    "stylecore.masks.SHAPE_TOLERANCE_PX": "refuses a mask",
    "stylecore.masks.SHAPE_TOLERANCE_FRACTION": "refuses a mask",
    "stylecore.masks.COUNTED_BY_TABLE_PIXELS": "chooses how colours are counted, not the counts",
    "what": "a parameter naming a file in messages",
    "max_pixels": "a parameter refusing large images",
}
"""Single defaults that change no output pixel, with the reason; parameters by their name."""
_CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")


def output_defaults() -> dict[str, Any]:
    """Every default that may change output, by dotted name (module docstring), as JSON-ready values."""
    config = json.loads(canonical_json(TransferConfig()))
    values = {f"TransferConfig.{name}": value for name, value in config.items()
              if f"TransferConfig.{name}" not in NOT_OUTPUT}
    for info in pkgutil.iter_modules(stylecore.__path__):
        name = f"stylecore.{info.name}"
        if name not in NOT_OUTPUT_MODULES:
            values.update(_module_defaults(importlib.import_module(name)))
    return values


def _module_defaults(module: Any) -> dict[str, Any]:
    values = {}
    for name in _assigned_constants(Path(module.__file__)):
        value = _plain(getattr(module, name))
        if value is not None and f"{module.__name__}.{name}" not in NOT_OUTPUT:
            values[f"{module.__name__}.{name}"] = value
    for name, function in vars(module).items():
        if not inspect.isfunction(function) or function.__module__ != module.__name__:
            continue
        for parameter in inspect.signature(function).parameters.values():
            value = _plain(parameter.default)
            if value is not None and parameter.name not in NOT_OUTPUT:
                values[f"{module.__name__}.{name}({parameter.name})"] = value
    return values


def _assigned_constants(path: Path) -> list[str]:
    """Upper-case names assigned at the top level of the module's source (not those it imports)."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names += [target.id for target in targets if isinstance(target, ast.Name) and _CONSTANT.fullmatch(target.id)]
    return names


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data, or ``None`` when it is not plain data (a function, a lock, a class)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list, frozenset)):
        items = [_plain(item) for item in (sorted(value) if isinstance(value, frozenset) else value)]
        return items if all(item is not None for item in items) else None
    if isinstance(value, dict):
        items = {str(key): _plain(item) for key, item in value.items()}
        return items if all(item is not None for item in items.values()) else None
    return None


def record() -> None:
    """Write the current render version and defaults to :data:`RECORD`, one default a line (diffs read well)."""
    lines = [f"  {json.dumps(name)}: {json.dumps(value, sort_keys=True)}" for name, value in
             sorted(output_defaults().items())]
    RECORD.write_text(f'{{"render_version": {RENDER_VERSION}, "defaults": {{\n' + ",\n".join(lines) + "\n}}\n",
                      encoding="utf-8")


if __name__ == "__main__":
    record()
    print(f"recorded {len(output_defaults())} defaults of render version {RENDER_VERSION} in {RECORD}")
