"""Deep Photo Style Transfer (Luan et al. 2017): images and masks, feature extractors, losses,
optimisation and metrics. No Ray here; the batch layer is :mod:`ray_jobs`.

The one call is :func:`stylecore.transfer.transfer`; its settings are
:class:`stylecore.config.TransferConfig`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stylecore")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
