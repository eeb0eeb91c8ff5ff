"""Cache-size constants of the CPU kernels, in one place (measured on a 2-core AVX-512 Xeon
with 1 MiB L2 per core; see bench/RESULTS.md). They change speed, never results."""
from __future__ import annotations

# convolution (minicnn.cpu.conv)
CHUNK_BYTES = 4 << 20    # "strided": column buffer per chunk of samples
BAND_BYTES = 4 << 20     # "wide": column buffer per band of positions
WIDE_MIN_WORK = 1 << 16  # column entries per sample below which batching samples ("strided") is faster
# "winograd": transformed tiles per block (input V, product M, split rows). Measured at 1 thread
# (bench_conv_variants.py): 0.5 and 1 MiB were 1.3-2.6x slower (per-call overhead of the many
# small NumPy passes), 32 MiB 1.1-1.2x slower (out of cache); 4-8 MiB best.
WINOGRAD_BLOCK_BYTES = 4 << 20
# "auto" takes "winograd" (3x3, stride 1) when in_channels * out_channels reaches this. CPU time
# per call against "wide", 1 thread, N16, final code (bench/RESULTS.md, "Issue 14: experiments"):
# 16->16 1.37x, 32->32 1.13x, 32->64 0.94x (another run 0.97x), 64->64 0.84x, 48->96 0.87x,
# 64->128 0.78x, 128->128 0.75x: the transforms' NumPy passes cost per channel, the products'
# savings grow with the channel pair.
WINOGRAD_MIN_CO = 32 * 64
# Split samples over threads (each calling BLAS) instead of letting BLAS thread? Measured slower on
# 2 cores for both convolution and depthwise: BLAS already threads, and the Python threads fight
# over the GIL with their many small calls.
THREAD_SAMPLES = False

# depthwise convolution (minicnn.cpu.depthwise)
DEPTHWISE_BLOCK_BYTES = 1 << 20  # per-thread tap matrix: small enough to stay in L2

# batch norm (minicnn.cpu.batchnorm)
BN_BLOCK_ELEMS = 1 << 18  # per block of channels: the passes over one block run in L2

# threads (minicnn.cpu.threads)
MIN_WORK = 1 << 16  # elements; below this a thread hand-off costs more than it saves
BLOCK = 1 << 15     # elements per piece of a blocked elementwise pass: a few pieces fit in L2
