"""`minicnn.nn`: layers, losses and the Module system, named as in PyTorch."""
from . import functional, init, utils  # noqa: F401
from .activation import Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401
from .batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
from .checkpoint import checkpoint  # noqa: F401
from .container import Flatten, ModuleList, Sequential  # noqa: F401
from .conv import Conv2d, DepthwiseConv2d, SeparableConv2d  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .inception import InceptionBlock  # noqa: F401
from .linear import Linear  # noqa: F401
from .losses import (  # noqa: F401
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    NLLLoss,
    sample_weights_from_class_weight,
)
from .module import Module  # noqa: F401
from .parameter import Parameter  # noqa: F401
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d  # noqa: F401
