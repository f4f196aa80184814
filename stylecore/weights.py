"""Where the SqueezeNet weights file is looked for and what it must hash to, without TensorFlow.

These names live apart from :mod:`stylecore.extractors` (which loads TensorFlow and Keras) so that
code which only needs to know the weights' identity, such as the batch job's driver computing a
row's resume key, never loads TensorFlow.
"""

from pathlib import Path

SQUEEZENET_FILE = "squeezenet_v1.1_notop_tf.h5"
SQUEEZENET_SHA256 = "17154246284f555591549ac2c83e127abfbf4307dc4b0060fdaa2931d0fa38da"
SQUEEZENET_URL = ("https://github.com/rcmalli/keras-squeezenet/releases/download/v0.4/"
                  "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
WEIGHTS_DIR_VARIABLE = "STYLECORE_WEIGHTS_DIR"
DEFAULT_WEIGHTS_DIR = Path.home() / ".cache" / "stylecore" / "weights"
