"""Deep Photo Style Transfer (Luan et al. 2017): images and masks, feature extractors, losses,
optimisation and metrics. No Ray here; the batch layer is :mod:`ray_jobs`.

The one call is :func:`stylecore.transfer.transfer`; its settings are
:class:`stylecore.config.TransferConfig`.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# TensorFlow's C++ start-up chatter (oneDNN notices, CPU feature lists) would bury the progress
# lines of the command line and of every batch worker; errors still show. Set before TensorFlow
# is first imported, which every module that uses it does through this package.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    __version__ = version("stylecore")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
