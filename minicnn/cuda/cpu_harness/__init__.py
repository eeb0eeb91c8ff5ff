"""Run the unmodified kernels/*.cu sources on the CPU (a test tool; needs g++, not a GPU).

`CpuModule(name)` compiles kernels/<name>.cu with g++ against `cuda_cpu.h` (CUDA built-ins, blocks
run one after another, the threads of a block as cooperative fibers) and exposes the same
`launch(kernel, grid, block, args)` as the GPU loader, so the launch code in `minicnn.cuda.launches`
runs unchanged on both. Every pointer argument is copied into a buffer with guard zones on both
sides; a write into a guard zone raises `OutOfBoundsWrite` naming the argument.
"""
from .build import build_library, compiler_available  # noqa: F401
from .runner import CpuModule, HarnessError, OutOfBoundsWrite  # noqa: F401
