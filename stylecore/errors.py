"""Errors a user can act on. Each carries one sentence that says what is wrong and what to do.

The batch layer records ``type(error).__name__`` and ``str(error)`` in a row's ``error_type`` and
``error_message`` columns, so the class names are part of the output's vocabulary.
"""


class StyleCoreError(Exception):
    """Base class: an expected failure whose message is meant for the user, not a traceback."""


class InputImageError(StyleCoreError):
    """A photo or mask could not be read or is unusable (missing, corrupt, empty)."""


class WeightsError(StyleCoreError):
    """The feature extractor's weights are missing, unreadable or fail their checksum."""


class OptimisationError(StyleCoreError):
    """The optimisation produced a non-finite loss or image."""


class StorageError(StyleCoreError):
    """An object store or file system refused or could not be reached (missing bucket, access denied,
    missing credentials, unreachable endpoint); a missing file itself is ``FileNotFoundError``."""


class OutputError(StyleCoreError):
    """A result cannot be written as asked (an output format that is not supported)."""
