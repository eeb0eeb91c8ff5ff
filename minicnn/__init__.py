"""minicnn: a readable convolutional-network engine on NumPy (CPU) and CuPy (GPU).

    import minicnn
    from minicnn import nn, optim
"""
# The engine and its op library come first: importing minicnn.ops attaches Tensor's operators
# (+, @, x[i], .sum() ...), which the subpackages after the split may use as they load.
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor  # noqa: F401
from .backend import get_array_module, gpu_available  # noqa: F401
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
from .ops import (  # noqa: F401
    abs,
    cat,
    clip,
    concatenate,
    exp,
    flatten,
    log,
    matmul,
    maximum,
    mean,
    minimum,
    pad,
    permute,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    stack,
    sum,
    tanh,
    transpose,
    where,
)
from .random import manual_seed  # noqa: F401
from .serialization import CheckpointError, load, save  # noqa: F401

# isort: split
from . import cuda, data, metrics, nn, ops, optim, plots  # noqa: F401  (cuda imports no CuPy: see cuda/loader.py)
from .cpu import get_num_threads, set_num_threads  # noqa: F401
from .gradcam import grad_cam  # noqa: F401

__version__ = "0.1.0"
