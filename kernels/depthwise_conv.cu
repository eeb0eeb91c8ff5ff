// Depthwise 2-D convolution (one filter per channel): forward, input gradient, weight gradient.
//
// Maths, for x (N, C, H, W), w (C, 1, kh, kw), stride (sh, sw), top/left padding (ph, pw),
// dilation (dh, dw), output (N, C, oh, ow):
//   forward      y[n,c,oy,ox]  = sum_{i,j} w[c,i,j] * x[n, c, oy*sh-ph+i*dh, ox*sw-pw+j*dw]
//   input grad   dx[n,c,iy,ix] = sum_{i,j} w[c,i,j] * dy[n, c, oy, ox]  where oy*sh-ph+i*dh == iy (etc.)
//   weight grad  dw[c,i,j]     = sum_{n,oy,ox} dy[n,c,oy,ox] * x[n, c, oy*sh-ph+i*dh, ox*sw-pw+j*dw]
// (taps outside the image read zero).
//
// Thread mapping: a block of 256 threads = one 16x16 tile (ty = tid/16, tx = tid%16). The block
// loops over tiles (block-stride loop, uniform across the block so barriers stay convergent):
//   forward      tile of y for one (n, c): the input patch the tile needs (halo included) and the
//                channel's kh*kw weights are staged in shared memory, then each thread sums its taps;
//   input grad   tile of dx for one (n, c): the dy patch that can reach the tile is staged; each
//                thread gathers its taps (exact-division test for strides), no atomics;
//   weight grad  one block per channel (block-stride over C): for every (n, output tile) it stages
//                the dy tile and the x patch; thread t owns tap t % (kh*kw) and every G-th pixel
//                (G = 256 / (kh*kw)); partial sums meet in a fixed-order shared-memory sum.
// Launch shape: 1-D, blockDim.x == 256 exactly, any number of blocks.
// Limits (checked by the launch code): kh*kw <= 64 and a staged patch side <= 48, i.e.
//   (16-1)*s + (k-1)*d + 1 <= 48 (forward, weight grad) and (15 + (k-1)*d)/s + 1 <= 48 (input grad).
// Reads x or dy and w; writes every element of y, dx or dw (overwrites).

#define DW_TILE 16
#define DW_THREADS 256
#define DW_PATCH 48
#define DW_TAPS 64

__device__ __forceinline__ long long dw_floordiv(long long a, long long b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// Stage x[n, c, iy0 .. iy0+rows, ix0 .. ix0+cols] (zero outside the image) into patch.
template <class T>
__device__ __forceinline__ void dw_stage(T* patch, const T* __restrict__ plane, int H, int W,
                                         long long iy0, long long ix0, int rows, int cols) {
    for (int k = threadIdx.x; k < rows * cols; k += DW_THREADS) {
        const int py = k / cols, px = k % cols;
        const long long iy = iy0 + py, ix = ix0 + px;
        patch[py * DW_PATCH + px] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? plane[iy * W + ix] : T(0);
    }
}

template <class T>
__device__ __forceinline__ void dw_forward_impl(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                                                int N, int C, int H, int W, int kh, int kw, int sh, int sw,
                                                int ph, int pw, int dh, int dw, int oh, int ow) {
    __shared__ T patch[DW_PATCH * DW_PATCH];
    __shared__ T wt[DW_TAPS];
    const int ty = threadIdx.x / DW_TILE, tx = threadIdx.x % DW_TILE;
    const long long tiles_y = (oh + DW_TILE - 1) / DW_TILE, tiles_x = (ow + DW_TILE - 1) / DW_TILE;
    const long long total = (long long)N * C * tiles_y * tiles_x;
    const int rows = (DW_TILE - 1) * sh + (kh - 1) * dh + 1, cols = (DW_TILE - 1) * sw + (kw - 1) * dw + 1;
    for (long long t = blockIdx.x; t < total; t += gridDim.x) {
        const long long bx = t % tiles_x, by = (t / tiles_x) % tiles_y, nc = t / (tiles_x * tiles_y);
        const int c = (int)(nc % C);
        dw_stage(patch, x + nc * H * W, H, W, by * DW_TILE * sh - ph, bx * DW_TILE * sw - pw, rows, cols);
        for (int k = threadIdx.x; k < kh * kw; k += DW_THREADS) wt[k] = w[(long long)c * kh * kw + k];
        __syncthreads();
        const long long oy = by * DW_TILE + ty, ox = bx * DW_TILE + tx;
        if (oy < oh && ox < ow) {
            T acc = T(0);
            for (int i = 0; i < kh; ++i)
                for (int j = 0; j < kw; ++j)
                    acc += wt[i * kw + j] * patch[(ty * sh + i * dh) * DW_PATCH + tx * sw + j * dw];
            y[(nc * oh + oy) * ow + ox] = acc;
        }
        __syncthreads();  // the next tile overwrites patch and wt
    }
}

template <class T>
__device__ __forceinline__ void dw_input_grad_impl(const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx,
                                                   int N, int C, int H, int W, int kh, int kw, int sh, int sw,
                                                   int ph, int pw, int dh, int dw, int oh, int ow) {
    __shared__ T patch[DW_PATCH * DW_PATCH];
    __shared__ T wt[DW_TAPS];
    const int ty = threadIdx.x / DW_TILE, tx = threadIdx.x % DW_TILE;
    const long long tiles_y = (H + DW_TILE - 1) / DW_TILE, tiles_x = (W + DW_TILE - 1) / DW_TILE;
    const long long total = (long long)N * C * tiles_y * tiles_x;
    for (long long t = blockIdx.x; t < total; t += gridDim.x) {
        const long long bx = t % tiles_x, by = (t / tiles_x) % tiles_y, nc = t / (tiles_x * tiles_y);
        const int c = (int)(nc % C);
        const long long iy0 = by * DW_TILE, ix0 = bx * DW_TILE;
        // output rows that can reach input rows iy0 .. iy0+15: ceil((iy0+ph-(kh-1)dh)/sh) .. floor((iy0+15+ph)/sh)
        const long long oy_lo = dw_floordiv(iy0 + ph - (long long)(kh - 1) * dh + sh - 1, sh);
        const long long ox_lo = dw_floordiv(ix0 + pw - (long long)(kw - 1) * dw + sw - 1, sw);
        const int rows = (int)(dw_floordiv(iy0 + DW_TILE - 1 + ph, sh) - oy_lo + 1);
        const int cols = (int)(dw_floordiv(ix0 + DW_TILE - 1 + pw, sw) - ox_lo + 1);
        dw_stage(patch, dy + nc * oh * ow, oh, ow, oy_lo, ox_lo, rows, cols);
        for (int k = threadIdx.x; k < kh * kw; k += DW_THREADS) wt[k] = w[(long long)c * kh * kw + k];
        __syncthreads();
        const long long iy = iy0 + ty, ix = ix0 + tx;
        if (iy < H && ix < W) {
            T acc = T(0);
            for (int i = 0; i < kh; ++i) {
                const long long sy = iy + ph - (long long)i * dh;
                if (dw_floordiv(sy, sh) * sh != sy) continue;
                const long long py = dw_floordiv(sy, sh) - oy_lo;
                for (int j = 0; j < kw; ++j) {
                    const long long sx = ix + pw - (long long)j * dw;
                    if (dw_floordiv(sx, sw) * sw != sx) continue;
                    acc += wt[i * kw + j] * patch[py * DW_PATCH + dw_floordiv(sx, sw) - ox_lo];
                }
            }
            dx[(nc * H + iy) * W + ix] = acc;
        }
        __syncthreads();
    }
}

template <class T>
__device__ __forceinline__ void dw_weight_grad_impl(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dwt,
                                                    int N, int C, int H, int W, int kh, int kw, int sh, int sw,
                                                    int ph, int pw, int dh, int dw, int oh, int ow) {
    __shared__ T patch[DW_PATCH * DW_PATCH];
    __shared__ T dyt[DW_TILE * DW_TILE];
    __shared__ T red[DW_THREADS];
    const int taps = kh * kw, groups = DW_THREADS / taps;
    const int tap = threadIdx.x % taps, g = threadIdx.x / taps;
    const int i = tap / kw, j = tap % kw;
    const long long tiles_y = (oh + DW_TILE - 1) / DW_TILE, tiles_x = (ow + DW_TILE - 1) / DW_TILE;
    const int rows = (DW_TILE - 1) * sh + (kh - 1) * dh + 1, cols = (DW_TILE - 1) * sw + (kw - 1) * dw + 1;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        T acc = T(0);
        for (long long n = 0; n < N; ++n) {
            const long long nc = n * C + c;
            for (long long t = 0; t < tiles_y * tiles_x; ++t) {
                const long long by = t / tiles_x, bx = t % tiles_x;
                dw_stage(patch, x + nc * H * W, H, W, by * DW_TILE * sh - ph, bx * DW_TILE * sw - pw, rows, cols);
                {   // dy tile, zero past the output's edge so those pixels add nothing
                    const long long oy = by * DW_TILE + threadIdx.x / DW_TILE, ox = bx * DW_TILE + threadIdx.x % DW_TILE;
                    dyt[threadIdx.x] = (oy < oh && ox < ow) ? dy[(nc * oh + oy) * ow + ox] : T(0);
                }
                __syncthreads();
                if (g < groups)
                    for (int p = g; p < DW_TILE * DW_TILE; p += groups) {
                        const int py = p / DW_TILE, px = p % DW_TILE;
                        acc += dyt[p] * patch[(py * sh + i * dh) * DW_PATCH + px * sw + j * dw];
                    }
                __syncthreads();
            }
        }
        red[threadIdx.x] = (g < groups) ? acc : T(0);
        __syncthreads();
        if (threadIdx.x < taps) {
            T s = T(0);
            for (int q = 0; q < groups; ++q) s += red[q * taps + threadIdx.x];
            dwt[c * taps + threadIdx.x] = s;
        }
        __syncthreads();
    }
}

#define DW_PASS N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow

extern "C" __global__ void __launch_bounds__(256)
depthwise_forward_f32(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    dw_forward_impl<float>(x, w, y, DW_PASS);
}
extern "C" __global__ void __launch_bounds__(256)
depthwise_forward_f64(const double* __restrict__ x, const double* __restrict__ w, double* __restrict__ y, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    dw_forward_impl<double>(x, w, y, DW_PASS);
}
extern "C" __global__ void __launch_bounds__(256)
depthwise_input_grad_f32(const float* __restrict__ dy, const float* __restrict__ w, float* __restrict__ dx, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    dw_input_grad_impl<float>(dy, w, dx, DW_PASS);
}
extern "C" __global__ void __launch_bounds__(256)
depthwise_input_grad_f64(const double* __restrict__ dy, const double* __restrict__ w, double* __restrict__ dx, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    dw_input_grad_impl<double>(dy, w, dx, DW_PASS);
}
extern "C" __global__ void __launch_bounds__(256)
depthwise_weight_grad_f32(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dw_out, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    dw_weight_grad_impl<float>(x, dy, dw_out, DW_PASS);
}
extern "C" __global__ void __launch_bounds__(256)
depthwise_weight_grad_f64(const double* __restrict__ x, const double* __restrict__ dy, double* __restrict__ dw_out, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    dw_weight_grad_impl<double>(x, dy, dw_out, DW_PASS);
}
