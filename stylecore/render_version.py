"""The render version: a number that changes whenever the image a transfer returns may change.

It is part of every batch row's resume key (:mod:`ray_jobs.fingerprint`), so a rerun after such a
change renders every row again instead of trusting images the old code made. The package version
cannot serve: it changes on releases that leave output alone, and not between commits.

Maintained by hand: bump :data:`RENDER_VERSION` in the same commit as any change that may change
the output pixels for the same inputs, configuration and weights (a loss, an optimiser setting,
mask cleaning, image loading or resizing, initialisation). ``tests/stylecore/test_render_version.py``
guards it: it renders one small example pair and compares a thumbnail of the result with the one
recorded for the current version; output that moved without a bump fails there, with a message
saying to bump the version and record the new thumbnail. Changes below its tolerance (float
round-off between machines) do not count as changes.
"""

RENDER_VERSION = 5
