"""Model building shared by the zoo: torchvision's initialisation, and the Keras tutorials' finish."""
from __future__ import annotations

from .. import nn


def torchvision_init_(model: nn.Module, conv_mode: str = "fan_out", linear_std: float | None = None) -> None:
    """Kaiming-normal convs (ReLU gain, fan_out for VGG/ResNet, fan_in for DenseNet), BatchNorm
    weight 1 / bias 0, Linear bias 0 (and weight N(0, linear_std) when given, as VGG does)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=conv_mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.weight is not None and m.bias is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def keras_sequential(layers: list[nn.Module], sigmoid: bool, keras_init: bool, in_channels: int,
                     size: int) -> nn.Sequential:
    """The Keras tutorials' models: layers (+ a sigmoid), input shape recorded, Keras initialisation."""
    if sigmoid:
        layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    model.input_shape = (in_channels, size, size)
    if keras_init:
        nn.init.keras_init_(model)
    return model
