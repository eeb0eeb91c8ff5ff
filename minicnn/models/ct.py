"""The CT tutorial's Keras models: `simple_cnn`, `tiny_cnn` and `reduced_inception`.

Keras conventions kept: 'valid' 3x3 convs with ReLU, 2x2 max-pools (floor), glorot-uniform
weights and zero biases (keras_init=True), a one-unit sigmoid output (sigmoid=False gives the
logit, for BCEWithLogitsLoss). The tutorial feeds 150x150 grayscale slices.
"""
from __future__ import annotations

from .. import nn
from ._init import keras_sequential


def _after_conv_pool(size: int, convs: int) -> int:
    """Side length after `convs` rounds of (3x3 valid conv, 2x2 pool)."""
    for _ in range(convs):
        size = (size - 2) // 2
    return size


def simple_cnn(input_size: int = 150, in_channels: int = 1, sigmoid: bool = True,
               keras_init: bool = True) -> nn.Sequential:
    """(N, in_channels, S, S) -> (N, 1): conv 32 - pool - dropout 0.5 - conv 64 - pool - flatten -
    dropout 0.5 - dense 64 (ReLU) - dense 1 (sigmoid). 5.3M parameters at 150 px."""
    side = _after_conv_pool(input_size, 2)
    if side < 1:
        raise ValueError(f"simple_cnn: input_size must be >= 10 pixels, got {input_size}")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(64 * side * side, 64), nn.ReLU(), nn.Linear(64, 1)]
    return keras_sequential(layers, sigmoid, keras_init, in_channels, input_size)


def tiny_cnn(input_size: int = 150, in_channels: int = 1, sigmoid: bool = True,
             keras_init: bool = True) -> nn.Sequential:
    """(N, in_channels, S, S) -> (N, 1): conv 6 - pool - dropout 0.8 - flatten - dense 2 (ReLU) -
    dense 1 (sigmoid)."""
    side = _after_conv_pool(input_size, 1)
    if side < 1:
        raise ValueError(f"tiny_cnn: input_size must be >= 4 pixels, got {input_size}")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.8),
        nn.Flatten(), nn.Linear(6 * side * side, 2), nn.ReLU(), nn.Linear(2, 1)]
    return keras_sequential(layers, sigmoid, keras_init, in_channels, input_size)


def reduced_inception(input_size: int = 150, in_channels: int = 1, filters: int = 1, sigmoid: bool = True,
                      keras_init: bool = True) -> nn.Sequential:
    """(N, in_channels, S, S) -> (N, 1): one Inception block at full resolution, then flatten and
    dense 1 (sigmoid). Branches of `filters` channels each ('same', ReLU): 7x7 conv; 1x1 -> 3x3;
    1x1 -> 5x5; 4x4 max-pool stride 1 -> 1x1. 90,093 parameters at 150 px with filters=1."""
    if input_size < 1:
        raise ValueError(f"reduced_inception: input_size must be positive, got {input_size}")
    f = filters
    block = nn.InceptionBlock(in_channels, f, f, f, f, f, f, c1_kernel=7, pool_kernel=4)
    # concatenating channels then flattening (c, h, w) equals Keras' concatenation of the
    # four flattened single-filter branches
    layers: list[nn.Module] = [block, nn.Flatten(), nn.Linear(4 * f * input_size * input_size, 1)]
    return keras_sequential(layers, sigmoid, keras_init, in_channels, input_size)
