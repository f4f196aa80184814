"""What a manifest file is: its columns and its file formats, shared by the reader and the builder.

:mod:`ray_jobs.manifest` reads manifests (and its ``python -m ray_jobs.manifest build`` runs the
builder); :mod:`ray_jobs.manifest_builder` writes them. Both need these names, which live here so
that neither module imports the other back. The columns' meanings are in :mod:`ray_jobs.manifest`.
"""

REQUIRED_COLUMNS = ("id", "content", "style")
PATH_COLUMNS = ("content", "style", "content_mask", "style_mask")
LABEL_COLUMNS = ("mask_format", "ignore_label", "label_groups")
"""Columns that set the row's configuration field of the same name (how its masks are read)."""
COLUMNS = ("id", *PATH_COLUMNS, *LABEL_COLUMNS, "config")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
"""The manifest format of each file suffix."""
