// BROKEN ON PURPOSE (test fixture for tests/test_kernels_broken.py): a copy of kernels/conv3x3.cu
// with one bug: each thread stores only 3 of its 4 output channels.
// The CPU harness must catch it.

// Direct (implicit-GEMM) 3x3 convolution: never materialises the im2col column matrix.
//
// Maths, for x (N, C, H, W), w (O, C, 3, 3), stride (sh, sw) in {1, 2}, top/left padding (ph, pw),
// no dilation, output (N, O, oh, ow):
//   y[n,o,oy,ox] = sum_{c,i,j} w[o,c,i,j] * x[n, c, oy*sh-ph+i, ox*sw-pw+j]     (zero outside the image)
// Seen as a GEMM: rows o, columns (n, oy, ox), reduction over (c, i, j); a column of the virtual
// im2col matrix is built on the fly in shared memory from the input patch.
// Thread mapping: a block of 256 threads computes one output tile: 16 output channels x 8x8
//   pixels of one image. Thread t owns pixel p = t % 64 (py = p / 8, px = p % 8) and output
//   channels oc0 + 4*(t / 64) + r for r = 0..3 (4 accumulators in registers). The reduction runs
//   over input channels in chunks of 8: the block stages the chunk's input patch
//   (8 x (7*sh+3) x (7*sw+3), zero-padded) and its 16x8x9 weights in shared memory, syncs, and
//   every thread does 8*9*4 multiply-adds from shared memory. Tiles are visited by a block-stride
//   loop (uniform across the block, so the barriers stay convergent).
// Launch shape: 1-D, blockDim.x == 256 exactly, any number of blocks.
// Shared memory: (8*17*17 + 16*8*9) elements = 13.9 KiB (float) / 27.7 KiB (double).
// Reads x and w; writes every element of y (overwrites). Bias and activation: bias_act.cu.
// The input gradient for stride 1 is the same kernel on dy with w flipped and transposed
// (w'[c,o,i,j] = w[o,c,2-i,2-j], padding 2-p): see minicnn/cuda/launches.py.

#define C3_THREADS 256
#define C3_TP 8       // output tile side (pixels)
#define C3_OC 16      // output channels per tile
#define C3_IC 8       // input channels per staged chunk
#define C3_PATCH 17   // (C3_TP - 1) * 2 + 3: patch side for stride 2
#define C3_R 4        // output channels per thread

template <class T>
__device__ __forceinline__ void conv3x3_impl(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                                             int N, int C, int H, int W, int O, int sh, int sw, int ph, int pw,
                                             int oh, int ow) {
    __shared__ T patch[C3_IC * C3_PATCH * C3_PATCH];
    __shared__ T wt[C3_OC * C3_IC * 9];
    const int t = threadIdx.x, p = t % (C3_TP * C3_TP), grp = t / (C3_TP * C3_TP);
    const int py = p / C3_TP, px = p % C3_TP;
    const int rows = (C3_TP - 1) * sh + 3, cols = (C3_TP - 1) * sw + 3;
    const long long tiles_y = (oh + C3_TP - 1) / C3_TP, tiles_x = (ow + C3_TP - 1) / C3_TP;
    const long long tiles_o = (O + C3_OC - 1) / C3_OC;
    const long long total = (long long)N * tiles_o * tiles_y * tiles_x;
    for (long long tile = blockIdx.x; tile < total; tile += gridDim.x) {
        const long long bx = tile % tiles_x, by = (tile / tiles_x) % tiles_y;
        const long long bo = (tile / (tiles_x * tiles_y)) % tiles_o, n = tile / (tiles_x * tiles_y * tiles_o);
        const long long oc0 = bo * C3_OC, iy0 = by * C3_TP * sh - ph, ix0 = bx * C3_TP * sw - pw;
        T acc[C3_R];
        for (int r = 0; r < C3_R; ++r) acc[r] = T(0);
        for (int ic0 = 0; ic0 < C; ic0 += C3_IC) {
            for (int k = t; k < C3_IC * rows * cols; k += C3_THREADS) {
                const int ci = k / (rows * cols), rem = k % (rows * cols);
                const long long iy = iy0 + rem / cols, ix = ix0 + rem % cols;
                const int c = ic0 + ci;
                patch[(ci * C3_PATCH + rem / cols) * C3_PATCH + rem % cols] =
                    (c < C && iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[((n * C + c) * H + iy) * W + ix] : T(0);
            }
            for (int k = t; k < C3_OC * C3_IC * 9; k += C3_THREADS) {
                const int o = k / (C3_IC * 9), ci = (k / 9) % C3_IC, tap = k % 9;
                const long long oc = oc0 + o;
                const int c = ic0 + ci;
                wt[k] = (oc < O && c < C) ? w[(oc * C + c) * 9 + tap] : T(0);
            }
            __syncthreads();
            for (int ci = 0; ci < C3_IC; ++ci)
                for (int i = 0; i < 3; ++i)
                    for (int j = 0; j < 3; ++j) {
                        const T xv = patch[(ci * C3_PATCH + py * sh + i) * C3_PATCH + px * sw + j];
                        for (int r = 0; r < C3_R; ++r)
                            acc[r] += xv * wt[((grp * C3_R + r) * C3_IC + ci) * 9 + i * 3 + j];
                    }
            __syncthreads();  // the next chunk overwrites patch and wt
        }
        const long long oy = by * C3_TP + py, ox = bx * C3_TP + px;
        if (oy < oh && ox < ow)
            for (int r = 0; r < C3_R - 1; ++r) {
                const long long oc = oc0 + grp * C3_R + r;
                if (oc < O) y[((n * O + oc) * oh + oy) * ow + ox] = acc[r];
            }
    }
}

extern "C" __global__ void __launch_bounds__(256)
conv3x3_f32(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, int N, int C, int H, int W,
            int O, int sh, int sw, int ph, int pw, int oh, int ow) {
    conv3x3_impl<float>(x, w, y, N, C, H, W, O, sh, sw, ph, pw, oh, ow);
}
extern "C" __global__ void __launch_bounds__(256)
conv3x3_f64(const double* __restrict__ x, const double* __restrict__ w, double* __restrict__ y, int N, int C, int H, int W,
            int O, int sh, int sw, int ph, int pw, int oh, int ow) {
    conv3x3_impl<double>(x, w, y, N, C, H, W, O, sh, sw, ph, pw, oh, ow);
}
