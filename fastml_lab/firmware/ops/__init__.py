"""The firmware's operations, one class each; importing this package registers them all."""

from . import dense  # noqa: F401  (registration order: the order of the supported functions)
from . import activations, normalize, softmax  # noqa: F401
from . import conv, pooling  # noqa: F401  (convolutional networks)
from . import reshape  # noqa: F401
from . import quantize  # noqa: F401
from . import bdt  # noqa: F401  (boosted decision trees: conifer's HLS ensemble)
from . import dais  # noqa: F401  (da4ml RTL pipeline stages)
