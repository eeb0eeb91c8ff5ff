// 2-D max pooling: forward with argmax, backward as a gather.
//
// Maths, for x (N, C, H, W), window (kh, kw), stride (sh, sw), top/left padding (ph, pw):
//   forward   y[n,c,oy,ox] = max over taps (i, j) inside the image of x[n,c, oy*sh-ph+i, ox*sw-pw+j]
//             idx[n,c,oy,ox] = iy*W + ix of the FIRST maximum in row-major tap order
//             (padding acts as -inf: taps outside the image are skipped)
//   backward  dx[n,c,iy,ix] = sum of dy[n,c,oy,ox] over every output whose window contains
//             (iy, ix) and whose idx points at it.
// Thread mapping: forward one thread per output element, backward one thread per input element
//   (it enumerates the <= kh*kw outputs whose window covers it: exact-division test on strides),
//   so the backward needs no atomics and sums in a fixed order. Grid-stride loops.
// Launch shape: 1-D, 256 threads per block, any number of blocks.
// Reads x (forward) or dy and idx (backward); writes every element of y and idx, or of dx.

template <class T> __device__ __forceinline__ T mp_neg_inf();
template <> __device__ __forceinline__ float mp_neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double mp_neg_inf<double>() { return __longlong_as_double(0xfff0000000000000LL); }

template <class T>
__device__ __forceinline__ void maxpool_forward_impl(const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ idx,
                                                     int N, int C, int H, int W, int kh, int kw, int sh, int sw,
                                                     int ph, int pw, int oh, int ow) {
    const long long total = (long long)N * C * oh * ow;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long ox = e % ow, oy = (e / ow) % oh, nc = e / ((long long)oh * ow);
        const T* plane = x + nc * H * W;
        T best = mp_neg_inf<T>();
        long long arg = -1;
        for (int i = 0; i < kh; ++i) {
            const long long iy = oy * sh - ph + i;
            if (iy < 0 || iy >= H) continue;
            for (int j = 0; j < kw; ++j) {
                const long long ix = ox * sw - pw + j;
                if (ix < 0 || ix >= W) continue;
                const T v = plane[iy * W + ix];
                if (arg < 0 || v > best) { best = v; arg = iy * W + ix; }
            }
        }
        y[e] = best;
        idx[e] = arg;
    }
}

template <class T>
__device__ __forceinline__ void maxpool_backward_impl(const T* __restrict__ dy, const long long* __restrict__ idx,
                                                      T* __restrict__ dx, int N, int C, int H, int W, int kh, int kw,
                                                      int sh, int sw, int ph, int pw, int oh, int ow) {
    const long long total = (long long)N * C * H * W;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long q = e / W, nc = q / H;             // coordinates as int: see col2im.cu
        const int ix = (int)(e - q * W), iy = (int)(q - nc * H);
        const long long here = (long long)iy * W + ix, base = nc * oh * ow;
        T acc = T(0);
        for (int i = 0; i < kh; ++i) {
            const int ty = iy + ph - i;
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            for (int j = 0; j < kw; ++j) {
                const int tx = ix + pw - j;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                const long long o = base + (long long)(ty / sh) * ow + tx / sw;
                if (idx[o] == here) acc += dy[o];
            }
        }
        dx[e] = acc;
    }
}

extern "C" __global__ void __launch_bounds__(256)
maxpool_forward_f32(const float* __restrict__ x, float* __restrict__ y, long long* __restrict__ idx, int N, int C, int H, int W,
                    int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    maxpool_forward_impl<float>(x, y, idx, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow);
}
extern "C" __global__ void __launch_bounds__(256)
maxpool_forward_f64(const double* __restrict__ x, double* __restrict__ y, long long* __restrict__ idx, int N, int C, int H, int W,
                    int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    maxpool_forward_impl<double>(x, y, idx, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow);
}
extern "C" __global__ void __launch_bounds__(256)
maxpool_backward_f32(const float* __restrict__ dy, const long long* __restrict__ idx, float* __restrict__ dx, int N, int C,
                     int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    maxpool_backward_impl<float>(dy, idx, dx, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow);
}
extern "C" __global__ void __launch_bounds__(256)
maxpool_backward_f64(const double* __restrict__ dy, const long long* __restrict__ idx, double* __restrict__ dx, int N, int C,
                     int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    maxpool_backward_impl<double>(dy, idx, dx, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow);
}
