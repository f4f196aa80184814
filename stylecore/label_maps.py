"""Label maps as datasets ship them: class-id images (``ids``) and exact-colour images (``colours``), with class groups.

A dataset's masks are not drawn in the 9-colour palette of :mod:`stylecore.masks`: street scenes
and scene parsing (Cityscapes, ADE20K, COCO-Stuff) ship single-channel PNGs of integer class ids
(8 or 16 bit, 255 or 0 often meaning "ignore"), or colour PNGs in the dataset's own palette of
19 to 150+ colours. Neither is read through colour snapping: an id or an exact colour is a label.

Every label of a file becomes an integer **key**, the same on both photos of a pair:

- a class id or colour listed in the group table (:class:`LabelGroups`) becomes its group's
  position in the table (0, 1, ...), named by the group;
- any other id ``v`` becomes ``len(groups) + v``, named ``"class v"``; any other colour, packed
  as ``0xRRGGBB``, becomes ``len(groups) + packed``, named ``"#rrggbb"``;
- the ignore id (``ignore_label``) becomes :data:`IGNORED` (-1), which cleaning fills from the
  nearest labelled pixel (:func:`stylecore.masks.clean_label_keys`).

Keys sort as the user would read them: groups in table order, then ids (or colours) ascending.
Refused with one sentence (:class:`InputImageError`): a group table that is not a JSON object of
lists, an entry that is neither a class id nor ``"#rrggbb"``, a label in two groups, a colour
image given as ids, a 16-bit single-channel image given as colours, more distinct labels in one
file than a label map carries (:data:`MAX_LABELS`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from typing import Any

import numpy as np

from stylecore.errors import InputImageError
from stylecore.images import decoded, open_checked, without_alpha
from stylecore.storage import read_bytes

IGNORED = -1
"""Key of an ignored pixel."""
MAX_LABELS = 255
"""Most distinct labels in one mask file or one pair: a cleaned label map is uint8, and 255 leaves
the spare value cleaning needs for ignored pixels."""
MAX_CLASS_ID = 65535
"""Largest class id: a 16-bit label map's."""
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclasses.dataclass(frozen=True)
class LabelGroups:
    """A class-group table: each group's name, and the group (table position) of each listed id and colour."""

    names: tuple[str, ...] = ()
    ids: dict[int, int] = dataclasses.field(default_factory=dict)
    """Class id to group position."""
    colours: dict[int, int] = dataclasses.field(default_factory=dict)
    """Colour packed as 0xRRGGBB to group position."""


@functools.lru_cache(maxsize=16)
def read_label_groups(path: str | os.PathLike[str]) -> LabelGroups:
    """The group table in the JSON file ``path`` (a path or a URI): ``{"sky": [10, "#4682b4"], ...}``;
    see the module docstring. Cached: a batch job's every row names the same table."""
    try:
        table = json.loads(read_bytes(path))
    except FileNotFoundError:
        raise InputImageError(f"the label groups file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputImageError(f"the label groups file {path} is not JSON: {error}") from None
    return parse_label_groups(table, what=f"the label groups file {path}")


def parse_label_groups(table: Any, *, what: str = "the label groups") -> LabelGroups:
    """A :class:`LabelGroups` from a decoded JSON object mapping group names to lists of ids and colours."""
    if not isinstance(table, dict) or not table:
        raise InputImageError(f"{what} must be a JSON object mapping group names to lists of class ids "
                              'or "#rrggbb" colours, like {"sky": [10], "road": [0, 1]}')
    ids: dict[int, int] = {}
    colours: dict[int, int] = {}
    names = tuple(table)
    for position, (name, members) in enumerate(table.items()):
        if not isinstance(members, list) or not members:
            raise InputImageError(f"{what}: group {name!r} must be a non-empty list of class ids or "
                                  '"#rrggbb" colours')
        for member in members:
            key, into = _member(member, name, what), ids if isinstance(member, int) else colours
            if key in into:
                raise InputImageError(f"{what}: {member!r} is in both group {names[into[key]]!r} and group {name!r}; "
                                      "a label can be in one group only")
            into[key] = position
    return LabelGroups(names=names, ids=ids, colours=colours)


def _member(member: Any, group: str, what: str) -> int:
    """A table entry as a class id or a packed colour."""
    if isinstance(member, int) and not isinstance(member, bool) and 0 <= member <= MAX_CLASS_ID:
        return member
    if isinstance(member, str) and _COLOUR.fullmatch(member):
        return int(member[1:], 16)
    raise InputImageError(f"{what}: group {group!r} lists {member!r}, which is neither a class id "
                          f"(0 to {MAX_CLASS_ID}) nor a colour written \"#rrggbb\"")


def read_class_ids(path: str | os.PathLike[str], *, what: str, max_pixels: int) -> np.ndarray:
    """An ``ids`` mask file as an (H, W) integer array of its stored values, upright.

    Single-channel files (8-bit, 16-bit, 32-bit) and palette PNGs (whose indices are the ids, as
    PASCAL VOC's are) are read as they are; an RGB file only if it is grey (R = G = B).
    """
    with open_checked(path, what=what, max_pixels=max_pixels) as opened:
        image = decoded(opened, what=what, path=path)
        if image.mode in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
            return np.asarray(image).astype(np.int64)
        rgb = np.asarray(without_alpha(image).convert("RGB"))
    return ids_from_array(rgb, what=what)


def ids_from_array(mask: np.ndarray, *, what: str) -> np.ndarray:
    """An (H, W) integer class-id map from an (H, W) array, or from an (H, W, 3) grey one."""
    if mask.ndim == 3 and mask.shape[2] == 3 and (mask == mask[..., :1]).all():
        mask = mask[..., 0]
    if mask.ndim != 2 or mask.size == 0 or not np.issubdtype(mask.dtype, np.integer):
        colours = len(np.unique(mask.reshape(-1, mask.shape[-1]), axis=0)) if mask.ndim == 3 else 0
        raise InputImageError(
            f"{what} is not a class-id map: it is an image of shape {mask.shape}" +
            (f" with {colours} distinct colours; give --mask-format colours for a dataset's exact colours, or "
             "palette for a mask drawn in the 9-colour palette" if colours else ""))
    return mask.astype(np.int64)


def id_keys(ids: np.ndarray, groups: LabelGroups, ignore_label: int | None, *, what: str) -> np.ndarray:
    """Class ids (H, W) as keys (module docstring); ``ignore_label`` pixels as :data:`IGNORED`."""
    if ids.min() < 0 or ids.max() > MAX_CLASS_ID:
        raise InputImageError(f"{what} holds class ids from {ids.min()} to {ids.max()}, outside 0 to {MAX_CLASS_ID}")
    present, inverse = np.unique(ids, return_inverse=True)
    keys = np.array([IGNORED if value == ignore_label else groups.ids.get(int(value), len(groups.names) + int(value))
                     for value in present], np.int64)
    return keys[inverse].reshape(ids.shape)


def colour_keys(rgb: np.ndarray, groups: LabelGroups, *, what: str) -> np.ndarray:
    """An (H, W, 3) uint8 exact-colour mask as keys (module docstring)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise InputImageError(f"{what} must be an RGB image, got shape {rgb.shape}")
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    present, inverse = np.unique(packed, return_inverse=True)
    if len(present) > MAX_LABELS:
        raise InputImageError(
            f"{what} has {len(present)} distinct colours, more than the {MAX_LABELS} labels a label map can carry; "
            "an anti-aliased or JPEG mask is read with --mask-format palette, a dataset's label map with its "
            "exact colours")
    keys = np.array([groups.colours.get(int(value), len(groups.names) + int(value)) for value in present], np.int64)
    return keys[inverse].reshape(packed.shape)


def key_name(key: int, groups: LabelGroups, mask_format: str) -> str:
    """How a key is called in diagnostics and metadata: its group, ``"class v"`` or ``"#rrggbb"``."""
    if key < len(groups.names):
        return groups.names[key]
    value = key - len(groups.names)
    return f"class {value}" if mask_format == "ids" else f"#{value:06x}"


def read_colours(path: str | os.PathLike[str], *, what: str, max_pixels: int) -> np.ndarray:
    """A ``colours`` mask file as (H, W, 3) uint8 RGB, upright, transparency composited onto white.

    A 16-bit single-channel file is refused: it holds class ids, not colours.
    """
    with open_checked(path, what=what, max_pixels=max_pixels) as opened:
        image = decoded(opened, what=what, path=path)
        if image.mode in ("I", "I;16", "I;16B", "I;16L"):
            raise InputImageError(f"{what} is a single-channel {image.mode} image, which holds class ids rather "
                                  "than colours; give --mask-format ids")
        return np.asarray(without_alpha(image).convert("RGB"))
