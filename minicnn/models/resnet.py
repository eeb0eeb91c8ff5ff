"""ResNet-18/34/50/101 (v1.5: the stride sits in the 3x3 conv), torchvision's layout and names.

conv1 7x7/2 (no bias) - bn1 - relu - maxpool 3x3/2 - layer1..layer4 - avgpool (1, 1) - fc.
A block's shortcut is `downsample` = Sequential(conv 1x1/stride, BatchNorm) where the shape
changes, so keys read layer2.0.downsample.0.weight exactly as in a torchvision state dict.
"""
from __future__ import annotations

from .. import nn
from ..autograd import Tensor
from ..nn import functional as F
from ._init import torchvision_init_


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs plus the shortcut: (N, cin, H, W) -> (N, planes, H/stride, W/stride)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand x4, plus the shortcut:
    (N, cin, H, W) -> (N, 4*planes, H/stride, W/stride)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


Block = type[BasicBlock | Bottleneck]


class ResNet(nn.Module):
    """(N, in_channels, H, W) -> (N, num_classes) logits; `dropout` > 0 drops features before fc
    (torchvision has none; it adds no parameter, so state dicts still match)."""

    def __init__(self, block: Block, layers: list[int], num_classes: int = 1000, in_channels: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        self.inplanes = 64
        self.dropout = dropout
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        torchvision_init_(self, conv_mode="fan_out")

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x).flatten(1)  # (N, 512*expansion)
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        return self.fc(x)


def _resnet(block: Block, layers: list[int], num_classes: int, in_channels: int, dropout: float) -> ResNet:
    model = ResNet(block, layers, num_classes, in_channels, dropout)
    model.input_shape = (in_channels, 224, 224)
    return model


def resnet18(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0) -> ResNet:
    """ResNet-18: BasicBlocks [2, 2, 2, 2]."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, dropout)


def resnet34(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0) -> ResNet:
    """ResNet-34: BasicBlocks [3, 4, 6, 3]."""
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, dropout)


def resnet50(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0) -> ResNet:
    """ResNet-50: Bottlenecks [3, 4, 6, 3], 2048 features into fc."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, dropout)


def resnet101(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0) -> ResNet:
    """ResNet-101: Bottlenecks [3, 4, 23, 3]."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, dropout)
