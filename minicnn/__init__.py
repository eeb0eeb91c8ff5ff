"""minicnn: a readable convolutional-network engine on NumPy (CPU) and CuPy (GPU).

    import minicnn
    from minicnn import nn, optim
"""
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor  # noqa: F401
from .backend import get_array_module, gpu_available  # noqa: F401
from .gradcheck import GradcheckError, gradcheck  # noqa: F401
from .ops import (abs, cat, clip, concatenate, exp, flatten, log, matmul, maximum, mean,  # noqa: F401
                  minimum, pad, permute, relu, reshape, sigmoid, softmax, sqrt, stack, sum, tanh,
                  transpose, where)
from .random import manual_seed  # noqa: F401
from .serialization import CheckpointError, load, save  # noqa: F401
from . import data, metrics, nn, optim, plots  # noqa: F401,E402
from .gradcam import grad_cam  # noqa: F401,E402
from . import ops  # noqa: F401,E402
from . import cuda  # noqa: F401,E402  (imports no CuPy: see minicnn/cuda/loader.py)
from .cpu import get_num_threads, set_num_threads  # noqa: F401,E402

__version__ = "0.1.0"
