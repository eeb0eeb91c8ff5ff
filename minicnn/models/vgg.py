"""VGG-11/13/16/19 with and without batch norm, torchvision's layout and parameter names.

`features` (convs and max-pools, indices as in torchvision: features.0.weight, ...), `avgpool`
AdaptiveAvgPool2d(7, 7), `classifier` Linear(25088, 4096)-ReLU-Dropout-Linear(4096, 4096)-
ReLU-Dropout-Linear(4096, num_classes). The adaptive pool lets any input of >= 32 px through
(at 64 px the 2x2 feature map is spread over 7x7 bins).
"""
from __future__ import annotations

from .. import nn
from ..autograd import Tensor
from ._init import torchvision_init_

M = "M"  # a 2x2 max-pool in the configurations below
CONFIGS: dict[int, list[int | str]] = {
    11: [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    13: [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    16: [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
    19: [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M],
}


def make_features(cfg: list[int | str], in_channels: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The conv stack: 3x3 convs (padding 1) with ReLU (and BatchNorm before it), 2x2 max-pools."""
    layers: list[nn.Module] = []
    cin = in_channels
    for v in cfg:
        if v == M:
            layers.append(nn.MaxPool2d(2, 2))
            continue
        assert isinstance(v, int)
        layers.append(nn.Conv2d(cin, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        cin = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """(N, in_channels, H, W) -> (N, num_classes) logits."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5, init: bool = True):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes))
        if init:
            torchvision_init_(self, conv_mode="fan_out", linear_std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))  # (N, 512*7*7) -> (N, num_classes)


def _vgg(depth: int, batch_norm: bool, num_classes: int, in_channels: int, dropout: float) -> VGG:
    model = VGG(make_features(CONFIGS[depth], in_channels, batch_norm), num_classes, dropout)
    model.input_shape = (in_channels, 224, 224)
    return model


def vgg11(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A)."""
    return _vgg(11, False, num_classes, in_channels, dropout)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 with BatchNorm after every conv."""
    return _vgg(11, True, num_classes, in_channels, dropout)


def vgg13(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 (configuration B)."""
    return _vgg(13, False, num_classes, in_channels, dropout)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 with BatchNorm after every conv."""
    return _vgg(13, True, num_classes, in_channels, dropout)


def vgg16(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D)."""
    return _vgg(16, False, num_classes, in_channels, dropout)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 with BatchNorm after every conv."""
    return _vgg(16, True, num_classes, in_channels, dropout)


def vgg19(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 (configuration E), the 3-class Covid tutorial's backbone."""
    return _vgg(19, False, num_classes, in_channels, dropout)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 with BatchNorm after every conv."""
    return _vgg(19, True, num_classes, in_channels, dropout)
