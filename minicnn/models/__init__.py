"""Ready-made CNNs of the chest X-ray tutorials, built from minicnn.nn layers.

The model zoo (issue 12) uses torchvision's names, so their state dicts load 1:1.
"""
from .ct import reduced_inception, simple_cnn, tiny_cnn  # noqa: F401
from .densenet import (  # noqa: F401
    DenseNet,
    densenet121,
    densenet161,
    densenet169,
    densenet201,
)
from .pneumonia import pneumonia_cnn  # noqa: F401
from .resnet import (  # noqa: F401
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
)
from .vgg import (  # noqa: F401
    VGG,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
