"""`InceptionBlock`: GoogLeNet's four parallel branches, concatenated along channels."""
from __future__ import annotations

from ..autograd import Tensor
from ..ops import concatenate
from .activation import ReLU
from .container import Sequential
from .conv import Conv2d
from .module import Module
from .pooling import MaxPool2d


def _conv_relu(cin: int, cout: int, k: int) -> Sequential:
    return Sequential(Conv2d(cin, cout, k, padding="same"), ReLU())


class InceptionBlock(Module):
    """(N, in_channels, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W).

    Branches (every conv 'same' padded and followed by ReLU, as in GoogLeNet and the Keras
    tutorials): `branch1` c1_kernel x c1_kernel conv (1x1 in GoogLeNet); `branch3` 1x1 to
    c3_reduce then 3x3 to c3; `branch5` 1x1 to c5_reduce then 5x5 to c5; `branch_pool`
    pool_kernel x pool_kernel max-pool, stride 1, 'same', then 1x1 to pool_proj.
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
                 pool_proj: int, c1_kernel: int = 1, pool_kernel: int = 3):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("c1", c1), ("c3_reduce", c3_reduce), ("c3", c3),
                        ("c5_reduce", c5_reduce), ("c5", c5), ("pool_proj", pool_proj)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"InceptionBlock: {name} must be a positive int, got {v!r}")
        self.in_channels = in_channels
        self.out_channels = c1 + c3 + c5 + pool_proj
        self.branch1 = _conv_relu(in_channels, c1, c1_kernel)
        self.branch3 = Sequential(*_conv_relu(in_channels, c3_reduce, 1), *_conv_relu(c3_reduce, c3, 3))
        self.branch5 = Sequential(*_conv_relu(in_channels, c5_reduce, 1), *_conv_relu(c5_reduce, c5, 5))
        self.branch_pool = Sequential(MaxPool2d(pool_kernel, stride=1, padding="same"),
                                      *_conv_relu(in_channels, pool_proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"InceptionBlock: expected input (N, {self.in_channels}, H, W), "
                             f"got shape {tuple(x.shape)}")
        outs = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        return concatenate(outs, axis=1)  # (N, c1 + c3 + c5 + pool_proj, H, W)

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.out_channels}"
