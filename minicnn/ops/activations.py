"""Activations. ReLU has a CPU body that runs its passes block by block over threads
(`minicnn.cpu.elementwise`); the others are plain array code for both backends."""
from __future__ import annotations

from typing import Any

from ..autograd import Function, Tensor
from ..backend import Array, get_array_module


class ReLU(Function):
    """max(x, 0); keeps a bool mask (4x smaller than the output) for backward."""

    def forward_gpu(self, x: Array) -> Array:
        from . import gpu_layers  # bias_act.cu with a zero bias; backward from the output
        return gpu_layers.relu_forward(self, x)

    def backward_gpu(self, gy: Array) -> Array:
        from . import gpu_layers
        return gpu_layers.relu_backward(self, gy)

    def forward_cpu(self, x: Array) -> Array:
        from ..cpu import elementwise as kernels
        y, self.mask = kernels.relu_forward(x)
        return y

    def backward_cpu(self, gy: Array) -> Array:
        from ..cpu import elementwise as kernels
        return kernels.relu_backward(gy, self.mask)


class LeakyReLU(Function):
    def __init__(self, slope: float = 0.01):
        self.slope = slope

    def forward(self, x: Array) -> Array:
        self.mask = x > 0
        return get_array_module(x).where(self.mask, x, x * x.dtype.type(self.slope))

    def backward(self, gy: Array) -> Any:
        return get_array_module(gy).where(self.mask, gy, gy * gy.dtype.type(self.slope))


def sigmoid_parts(x: Array) -> tuple[Array, Array]:
    """(sigmoid(x), e = exp(-|x|)), accurate in both tails and never overflowing.

    sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0: exp(-|x|) <= 1, and the
    left tail is a quotient of small numbers rather than 1 - (something near 1), so its
    relative accuracy holds down to the smallest normal number (the tanh form is 0 at x = -40).
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, x.dtype.type(1), e) / (1 + e), e


class Sigmoid(Function):
    def forward(self, x: Array) -> Array:
        self.y, _ = sigmoid_parts(x)
        return self.y

    def backward(self, gy: Array) -> Any:
        # y * (1 - y), the derivative *of the output computed* (PyTorch's choice): accurate wherever
        # y is (the left tail now too), and 0 where y has rounded to 1. The exact e / (1 + e)^2
        # would be tiny but not 0 there, and BCELoss's backward, which divides by its clamped
        # p * (1 - p) = 1e-12 at p == 1, would turn it into a huge step.
        return gy * self.y * (1 - self.y)


class Tanh(Function):
    def forward(self, x: Array) -> Array:
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy: Array) -> Any:
        return gy * (1 - self.y * self.y)


class Softmax(Function):
    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: Array) -> Array:
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy: Array) -> Any:
        gx = self.y * gy
        return gx - self.y * gx.sum(axis=self.axis, keepdims=True)


class LogSoftmax(Function):
    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: Array) -> Array:
        xp = get_array_module(x)
        m = x.max(axis=self.axis, keepdims=True)
        lse = m + xp.log(xp.exp(x - m).sum(axis=self.axis, keepdims=True))
        self.y = x - lse
        return self.y

    def backward(self, gy: Array) -> Any:
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)



def relu(x) -> Tensor: return ReLU()(x)
def leaky_relu(x, negative_slope: float = 0.01) -> Tensor: return LeakyReLU(negative_slope)(x)
def sigmoid(x) -> Tensor: return Sigmoid()(x)
def tanh(x) -> Tensor: return Tanh()(x)
def softmax(x, dim: int = -1) -> Tensor: return Softmax(dim)(x)
def log_softmax(x, dim: int = -1) -> Tensor: return LogSoftmax(dim)(x)
