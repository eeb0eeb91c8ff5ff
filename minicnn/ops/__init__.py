"""Every differentiable op, one small module per family; each Function's forward beside its backward.

    elementwise    + - * / @ exp log sqrt abs clip maximum minimum where (and `sum_to`)
    activations    relu leaky_relu sigmoid tanh softmax log_softmax
    reductions     sum mean max min var
    shapes         reshape transpose permute getitem concatenate stack np_pad flatten
    padding        F.pad: PyTorch's flat tuple, constant / reflect / replicate / circular
    geometry       argument checks, padding rules and output sizes for window ops
    im2col         im2col / col2im and the strided window views they are built from
    conv           conv2d = W @ im2col(x), the reference; CPU algorithms in minicnn.cpu.conv
    depthwise      depthwise and separable convolution
    pooling        max, average, adaptive (average, max) and global average pooling
    normalization  batch norm with a fused backward
    linear, dropout, losses
    naive          plain-loop references of the window ops, for tests and for reading

Importing this package also attaches Tensor's operators (`tensor_methods`).
"""
from .activations import (
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from .conv import Conv2dFn, conv2d
from .depthwise import DepthwiseConv2dFn, depthwise_conv2d, separable_conv2d
from .dropout import DropoutFn, dropout
from .elementwise import (
    Abs,
    Add,
    Clip,
    Div,
    Exp,
    Log,
    MatMul,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Sqrt,
    Sub,
    Where,
    abs,
    add,
    clip,
    div,
    exp,
    log,
    matmul,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    sum_to,
    where,
)
from .geometry import same_padding
from .im2col import col2im, im2col
from .linear import LinearFn, linear
from .losses import (
    BCEFn,
    BCEWithLogitsFn,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from .naive import (
    adaptive_avg_pool2d_naive,
    adaptive_max_pool2d_naive,
    avg_pool2d_naive,
    batch_norm_naive,
    col2im_naive,
    conv2d_naive,
    depthwise_conv2d_naive,
    im2col_naive,
    max_pool2d_naive,
)
from .normalization import BatchNormFn, batch_norm
from .padding import PadFn, pad
from .pooling import (
    AdaptiveAvgPool2dFn,
    AdaptiveMaxPool2dFn,
    AvgPool2dFn,
    GlobalAvgPool2dFn,
    MaxPool2dFn,
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    global_avg_pool2d,
    max_pool2d,
)
from .reductions import Max, Mean, Sum, Var, max, mean, min, std, sum, var
from .shapes import (
    Concatenate,
    GetItem,
    Pad,
    Reshape,
    Stack,
    Transpose,
    cat,
    concatenate,
    flatten,
    getitem,
    np_pad,
    permute,
    reshape,
    stack,
    transpose,
)
from .tensor_methods import install_tensor_methods

install_tensor_methods()  # Tensor's + - * / @ [] .sum() ... (the engine itself imports no op)

__all__ = [
    "install_tensor_methods",
    "LeakyReLU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh", "leaky_relu", "log_softmax", "relu",
    "sigmoid", "softmax", "tanh", "Conv2dFn", "conv2d", "DepthwiseConv2dFn", "depthwise_conv2d",
    "separable_conv2d", "DropoutFn", "dropout", "Abs", "Add", "Clip", "Div", "Exp", "Log", "MatMul", "Maximum",
    "Minimum", "Mul", "Neg", "Pow", "Sqrt", "Sub", "Where", "abs", "add", "clip", "div", "exp", "log", "matmul",
    "maximum", "minimum", "mul", "neg", "pow", "sqrt", "sub", "sum_to", "where", "same_padding", "col2im",
    "im2col", "LinearFn", "linear", "BCEFn", "BCEWithLogitsFn", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "mse_loss", "nll_loss", "adaptive_avg_pool2d_naive",
    "avg_pool2d_naive", "batch_norm_naive", "col2im_naive", "conv2d_naive", "depthwise_conv2d_naive",
    "im2col_naive", "max_pool2d_naive", "BatchNormFn", "batch_norm", "AdaptiveAvgPool2dFn", "AvgPool2dFn",
    "GlobalAvgPool2dFn", "MaxPool2dFn", "adaptive_avg_pool2d", "AdaptiveMaxPool2dFn", "adaptive_max_pool2d",
    "adaptive_max_pool2d_naive", "avg_pool2d", "global_avg_pool2d", "max_pool2d",
    "Max", "Mean", "Sum", "Var", "max", "mean", "min", "std", "sum", "var", "PadFn", "np_pad",
    "Concatenate", "GetItem", "Pad", "Reshape",
    "Stack", "Transpose", "cat", "concatenate", "flatten", "getitem", "pad", "permute", "reshape", "stack",
    "transpose",
]
