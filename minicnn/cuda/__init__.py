"""minicnn's CUDA path: kernel sources in kernels/*.cu, loaded with CuPy (imported lazily).

    import minicnn.cuda as mc
    mc.is_available()                  # False without CuPy / driver / device, never raises
    m = mc.module("im2col")            # compiled once per process and device
    mc.launches.im2col(m, x, cols, k, s, pads, d, (oh, ow))

`launches` holds the launch code for every kernel; it runs unchanged on the CPU harness
(`minicnn.cuda.cpu_harness.CpuModule`), which executes the same sources on the CPU for the tests.
"""
from . import launches  # noqa: F401
from .loader import (  # noqa: F401
    NVRTC_OPTIONS,
    CudaUnavailable,
    GpuModule,
    is_available,
    module,
    require,
)
from .sources import kernel_names, kernels_dir  # noqa: F401
