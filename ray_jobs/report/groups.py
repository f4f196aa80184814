"""Rows counted together: errors by message, medians by style photo and by configuration, notes.

Errors: up to :data:`ERRORS_LISTED` are listed one by one; beyond that, grouped by error type and
message pattern, the message with its paths and numbers replaced by ``…`` (``image not found:
/data/c1.png`` and ``…/c2.png`` are one problem), each with its count and a few example ids.

Medians: per style photo (``style_path``) and per configuration (``config_hash``), the output
metrics' medians over the group's rendered rows, for the :data:`GROUPS_SHOWN` largest groups of
more than one row, in natural order of their names (``tar2`` before ``tar10``). A group of one row
is that row, already on the page with its own metrics: 60 pairs with 60 style photos make no
table. A configuration is named by the fields in which the configurations shown differ
(``init=noise``), since a hash says nothing to a reader.

Notes: the values of :data:`NOTE_COLUMNS` (the fallbacks a row took, which masks were found
automatically), counted over the run.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ray_jobs.run_summary import RENDERED_STATUSES, Spread, float_column, status_is, work_seconds
from ray_jobs.schema import metric_column
from stylecore.metrics import METRIC_NAMES

ERRORS_LISTED = 50
"""Up to this many errors, each is listed; more are grouped by message pattern."""
EXAMPLES_PER_GROUP = 5
GROUPS_SHOWN = 50
"""Largest groups whose medians the page shows; the rest are counted in a line."""
NOTE_COLUMNS = ("fallbacks", "masks_found")
"""Columns that say what happened to a row beyond its status, shown beside it and counted over the
run when the metadata has them (a string, or a list of strings)."""
_VARIABLE = re.compile(r"\S*/\S*|\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\b", re.IGNORECASE)
"""A path or URI (a token with a slash) or a number: what differs between messages of one kind."""


@dataclasses.dataclass(frozen=True)
class ErrorGroup:
    """Errors of one type whose messages share a pattern."""

    error_type: str
    pattern: str
    count: int
    example_ids: list[str]
    """The first :data:`EXAMPLES_PER_GROUP` ids, in id order."""
    example_message: str
    """The first example's message in full."""


@dataclasses.dataclass(frozen=True)
class GroupTable:
    """The groups a table shows and those it leaves out."""

    groups: list[GroupMedians]
    """Groups of more than one row, the :data:`GROUPS_SHOWN` largest, in natural order of label."""
    single: int
    """Groups of one row, not shown."""
    left_out: int
    """Groups of more than one row beyond the :data:`GROUPS_SHOWN` largest."""


@dataclasses.dataclass(frozen=True)
class GroupMedians:
    """One group of rows and its medians."""

    label: str
    detail: str
    """The group's full key (a path, a configuration hash), for a tooltip."""
    rows: int
    errors: int
    medians: dict[str, float]
    """Output metric (and ``seconds``) to its median over the group's rendered rows; NaN when none."""


def message_pattern(message: str) -> str:
    """``message`` with its paths and numbers replaced by ``…``."""
    return _VARIABLE.sub("…", message)


def error_rows(table: pa.Table) -> pa.Table:
    """The ``id``, ``error_type`` and ``error_message`` of the error rows, in id order."""
    errors = table.filter(pc.equal(table["status"], "error"))
    return pa.table({name: errors[name] if name in errors.column_names else pa.nulls(errors.num_rows, pa.string())
                     for name in ("id", "error_type", "error_message")})


def error_groups(errors: pa.Table) -> list[ErrorGroup]:
    """``errors`` (:func:`error_rows`) grouped by type and message pattern, largest group first."""
    grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in errors.to_pylist():
        message = row["error_message"] or ""
        grouped.setdefault((row["error_type"] or "", message_pattern(message)), []).append((row["id"], message))
    ordered = sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0]))
    return [ErrorGroup(error_type, pattern, len(members), [row_id for row_id, _ in members[:EXAMPLES_PER_GROUP]],
                       members[0][1])
            for (error_type, pattern), members in ordered]


def group_medians(table: pa.Table, column: str, labels: Callable[[pa.Table], list[str]]) -> GroupTable:
    """Medians of the :data:`GROUPS_SHOWN` largest groups of more than one row of equal ``column``
    (module docstring); ``labels`` names the groups from their first rows."""
    keys = np.array(["" if key is None else key for key in table[column].to_pylist()], dtype=object)
    codes, first, inverse, sizes = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    several = [code for code in range(len(codes)) if sizes[code] > 1]
    largest = sorted(several, key=lambda code: (-sizes[code], codes[code]))[:GROUPS_SHOWN]
    rendered, failed = status_is(table, RENDERED_STATUSES), status_is(table, ("error",))
    values = {metric: float_column(table, metric_column("output", metric)) for metric in METRIC_NAMES}
    values["seconds"] = work_seconds(table)
    groups = []
    for code, label in zip(largest, labels(table.take(first[largest])) if largest else [], strict=True):
        members = inverse == code
        groups.append(GroupMedians(label, codes[code], int(sizes[code]), int(np.sum(members & failed)),
                                   {name: Spread.of(column_values[members & rendered]).median
                                    for name, column_values in values.items()}))
    groups.sort(key=lambda group: natural_key(group.label))
    return GroupTable(groups, single=len(codes) - len(several), left_out=len(several) - len(largest))


def natural_key(text: str) -> tuple:
    """Sort key that orders the digits in ``text`` by number: ``tar2`` before ``tar10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


def style_labels(rows: pa.Table) -> list[str]:
    """Each row's style photo without the folders that all of them share; ``(none)`` for a row without."""
    paths = rows["style_path"].to_pylist()
    named = [path for path in paths if path]
    common = posixpath.dirname(posixpath.commonprefix(named)) if named else ""
    return [posixpath.relpath(path, common) if path and common else path or "(none)" for path in paths]


def configuration_labels(rows: pa.Table) -> list[str]:
    """Each row's configuration named by the fields in which the rows' configurations differ,
    ``name=value, ...``; ``one configuration`` when they do not."""
    fields = [json.loads(configuration) for configuration in rows["config_json"].to_pylist()]
    names = sorted({name for config in fields for name in config})
    differing = [name for name in names if len({json.dumps(config.get(name)) for config in fields}) > 1]
    return [", ".join(f"{name}={_value_text(config.get(name))}" for name in differing) or "one configuration"
            for config in fields]


def _value_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def note_counts(table: pa.Table) -> dict[str, list[tuple[str, int]]]:
    """For each of :data:`NOTE_COLUMNS` the table has, each value (a list column's items counted
    one by one) and its number of rows, most frequent first; empty values are left out."""
    counts = {}
    for column in NOTE_COLUMNS:
        if column not in table.column_names:
            continue
        values = table[column]
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_flatten(values)
        frequencies = pc.value_counts(pc.drop_null(values)).to_pylist()
        counts[column] = sorted(((str(entry["values"]), entry["counts"]) for entry in frequencies
                                 if entry["values"] not in ("", None)), key=lambda item: (-item[1], item[0]))
    return {column: values for column, values in counts.items() if values}
