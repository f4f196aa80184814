"""The render version: a number that changes whenever the image a transfer returns may change.

It is part of every batch row's resume key (:mod:`ray_jobs.fingerprint`), so a rerun after such a
change renders every row again instead of trusting images the old code made. The package version
cannot serve: it changes on releases that leave output alone, and not between commits.

Maintained by hand: bump :data:`RENDER_VERSION` in the same commit as any change that may change
the output pixels for the same inputs, configuration and weights (a loss, an optimiser setting,
mask cleaning, image loading or resizing, initialisation). ``tests/stylecore/test_render_version.py``
guards it twice: it renders one small example pair and compares a thumbnail of the result with the
one recorded for the current version, and it compares every default that may shape output (the
configuration's, the modules' constants, keyword defaults; :mod:`tests.stylecore.render_defaults`)
with those recorded beside the version in ``tests/stylecore/render_defaults.json``, which catches
what 3 iterations at 64 px cannot show (the L-BFGS history, the automatic masks' settings). Either
failure says what moved and how to record the new state (``python -m tests.stylecore.render_defaults``
rewrites the JSON). Thumbnail changes below its tolerance (float round-off between machines) do not
count as changes.
"""

RENDER_VERSION = 7
