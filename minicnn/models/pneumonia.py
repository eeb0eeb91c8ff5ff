"""The Keras pneumonia CNN of the tutorial: separable-conv blocks, batch norm, dropout, sigmoid."""
from __future__ import annotations

from .. import nn
from ._init import keras_sequential

# Keras defaults the tutorial relied on, mapped onto minicnn:
#   BatchNormalization(momentum=0.99, epsilon=1e-3) -> BatchNorm(momentum=1 - 0.99, eps=1e-3)
#   glorot_uniform kernels and zero biases            -> nn.init.keras_init_(model)
KERAS_BN_MOMENTUM = 0.01  # PyTorch convention: the weight of the new batch
BN_EPS = 1e-3


def _conv_block(cin: int, cout: int, pool: bool, bn_momentum: float) -> nn.Sequential:
    layers = [nn.SeparableConv2d(cin, cout, 3, padding="same"), nn.ReLU(),
              nn.SeparableConv2d(cout, cout, 3, padding="same"), nn.ReLU(),
              nn.BatchNorm2d(cout, eps=BN_EPS, momentum=bn_momentum)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _dense_block(fin: int, fout: int, p: float, bn_momentum: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(fin, fout), nn.ReLU(), nn.BatchNorm1d(fout, eps=BN_EPS, momentum=bn_momentum),
                         nn.Dropout(p))


def pneumonia_cnn(input_size: int = 180, in_channels: int = 1, sigmoid: bool = True,
                  keras_init: bool = True, bn_momentum: float = KERAS_BN_MOMENTUM) -> nn.Sequential:
    """(N, in_channels, S, S) -> (N, 1) pneumonia probability (logit if sigmoid=False).

    Stem conv3x3(16)-relu x2 + maxpool; separable blocks of 32, 64, 128, 256 filters
    (two separable 3x3 'same' convs with relu, batch norm, max-pool), dropout 0.2 after the
    128 and 256 blocks; flatten; dense blocks (512, p=0.7), (128, 0.5), (64, 0.3) of
    linear-relu-batchnorm-dropout; linear(1) and a sigmoid.

    There are five 2x2 max-pools (stem and four blocks). A pool that would shrink the
    feature map below 1x1 is dropped: at 28 px the last pool goes (28->14->7->3->1), so the
    head sees 256x1x1; 64 px ends at 2x2, 180 px at 5x5 (as in the tutorial), 224 px at 7x7.

    Keras defaults: glorot-uniform weights and zero biases (keras_init=True), batch norm
    eps 1e-3 and Keras momentum 0.99 (bn_momentum=0.01 in PyTorch's convention). Beware
    that momentum: these activations have variances near 1e-4, and a running variance that
    starts at 1.0 forgets it at 1% per step, so eval-mode outputs are off for the first
    ~1000 steps (the tutorial's "everything is pneumonia" epochs). bn_momentum=0.1
    (PyTorch's default) tracks within ~50 steps; examples/pneumonia_cnn.py uses that.
    """
    if input_size < 8:
        raise ValueError(f"pneumonia_cnn: input_size must be >= 8 pixels, got {input_size}")
    side = input_size
    pools = []
    for _ in range(5):
        pools.append(side // 2 >= 1)
        side = side // 2 if side // 2 >= 1 else side
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 16, 3, padding="same"), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding="same"), nn.ReLU(),
    ]
    if pools[0]:
        layers.append(nn.MaxPool2d(2))
    cin = 16
    for i, f in enumerate((32, 64, 128, 256)):
        layers.append(_conv_block(cin, f, pools[i + 1], bn_momentum))
        if f >= 128:
            layers.append(nn.Dropout(0.2))
        cin = f
    layers += [nn.Flatten(), _dense_block(256 * side * side, 512, 0.7, bn_momentum),
               _dense_block(512, 128, 0.5, bn_momentum), _dense_block(128, 64, 0.3, bn_momentum), nn.Linear(64, 1)]
    return keras_sequential(layers, sigmoid, keras_init, in_channels, input_size)
