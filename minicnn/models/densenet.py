"""DenseNet-121/161/169/201 with torchvision's layout and parameter names, memory-efficient.

features: conv0 7x7/2 - norm0 - relu0 - pool0 3x3/2, then denseblock1, transition1, ...,
denseblock4, norm5; forward adds ReLU, a (1, 1) adaptive average pool and `classifier`.
Each dense layer sees the concatenation of every earlier output of its block. Stored naively,
that concatenation and its BatchNorm/ReLU copies make activation memory grow with the square
of the depth; with memory_efficient=True (the default) that first half of the layer is
recomputed in backward (`nn.checkpoint`), so only each layer's own small output is kept.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from .. import nn
from ..autograd import Tensor, is_grad_enabled
from ..nn import functional as F
from ..ops import concatenate
from ._init import torchvision_init_


class DenseLayer(nn.Module):
    """list of (N, C_i, H, W) -> (N, growth_rate, H, W): BN-ReLU-conv1x1 (bn_size*growth), BN-ReLU-conv3x3."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0,
                 memory_efficient: bool = True):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate, self.memory_efficient = float(drop_rate), memory_efficient

    def bottleneck(self, *features: Tensor) -> Tensor:
        """concat -> norm1 -> relu1 -> conv1: (N, sum C_i, H, W) -> (N, bn_size*growth, H, W)."""
        x = concatenate(list(features), axis=1) if len(features) > 1 else features[0]
        return self.conv1(self.relu1(self.norm1(x)))

    def forward(self, features: Sequence[Tensor] | Tensor) -> Tensor:
        feats = [features] if isinstance(features, Tensor) else list(features)
        if self.memory_efficient and is_grad_enabled():
            b = nn.checkpoint(self.bottleneck, *feats, modules=[self.norm1, self.relu1, self.conv1])
        else:
            b = self.bottleneck(*feats)
        y = self.conv2(self.relu2(self.norm2(b)))
        if self.drop_rate > 0:
            y = F.dropout(y, self.drop_rate, self.training)
        return y


class DenseBlock(nn.Module):
    """(N, C, H, W) -> (N, C + num_layers*growth_rate, H, W); children denselayer1, denselayer2, ..."""

    def __init__(self, num_layers: int, in_channels: int, bn_size: int, growth_rate: int, drop_rate: float,
                 memory_efficient: bool = True):
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return concatenate(features, axis=1)


class Transition(nn.Sequential):
    """BN - ReLU - conv1x1 - 2x2 average pool: (N, cin, H, W) -> (N, cout, H/2, W/2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(OrderedDict([("norm", nn.BatchNorm2d(cin)), ("relu", nn.ReLU()),
                                      ("conv", nn.Conv2d(cin, cout, 1, bias=False)),
                                      ("pool", nn.AvgPool2d(2, stride=2))]))


class DenseNet(nn.Module):
    """(N, in_channels, H, W) -> (N, num_classes) logits; `dropout` is the per-layer drop rate
    (torchvision's drop_rate)."""

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, dropout: float = 0.0, num_classes: int = 1000,
                 in_channels: int = 3, memory_efficient: bool = True):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU()),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1))]))
        c = num_init_features
        for i, n in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(n, c, bn_size, growth_rate, dropout, memory_efficient))
            c += n * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)
        torchvision_init_(self, conv_mode="fan_in")

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.features(x))
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)  # (N, C)
        return self.classifier(x)


def _densenet(growth: int, blocks: Sequence[int], init: int, num_classes: int, in_channels: int, dropout: float,
              memory_efficient: bool) -> DenseNet:
    model = DenseNet(growth, blocks, init, 4, dropout, num_classes, in_channels, memory_efficient)
    model.input_shape = (in_channels, 224, 224)
    return model


def densenet121(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0,
                memory_efficient: bool = True) -> DenseNet:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16), 64 initial features."""
    return _densenet(32, (6, 12, 24, 16), 64, num_classes, in_channels, dropout, memory_efficient)


def densenet161(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0,
                memory_efficient: bool = True) -> DenseNet:
    """DenseNet-161: growth 48, blocks (6, 12, 36, 24), 96 initial features."""
    return _densenet(48, (6, 12, 36, 24), 96, num_classes, in_channels, dropout, memory_efficient)


def densenet169(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0,
                memory_efficient: bool = True) -> DenseNet:
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32), 64 initial features."""
    return _densenet(32, (6, 12, 32, 32), 64, num_classes, in_channels, dropout, memory_efficient)


def densenet201(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0,
                memory_efficient: bool = True) -> DenseNet:
    """DenseNet-201: growth 32, blocks (6, 12, 48, 32), 64 initial features."""
    return _densenet(32, (6, 12, 48, 32), 64, num_classes, in_channels, dropout, memory_efficient)
