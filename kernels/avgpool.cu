// 2-D average pooling: forward and backward (gather).
//
// Maths, for x (N, C, H, W), window (kh, kw), stride (sh, sw), top/left padding (ph, pw):
//   forward   y[n,c,oy,ox]  = (sum of the taps inside the image) / count(oy, ox)
//   backward  dx[n,c,iy,ix] = sum over outputs whose window contains (iy, ix) of dy[n,c,oy,ox] / count(oy, ox)
//   count = kh*kw when include_pad != 0, else the number of taps inside the image.
// Thread mapping: forward one thread per output, backward one thread per input element (it
//   enumerates the outputs covering it, exact-division test on strides; no atomics). Grid-stride.
// Launch shape: 1-D, 256 threads per block, any number of blocks.
// Reads x or dy; writes every element of y or dx.

// Divisor of output (oy, ox). int arithmetic: coordinates inside one image fit, and 64-bit
// min/max/division here made the backward spill registers on sm_80.
__device__ __forceinline__ int ap_count(int oy, int ox, int H, int W, int kh, int kw, int sh, int sw,
                                        int ph, int pw, int include_pad) {
    if (include_pad) return kh * kw;
    const int y0 = oy * sh - ph, x0 = ox * sw - pw;
    return (min(y0 + kh, H) - max(y0, 0)) * (min(x0 + kw, W) - max(x0, 0));
}

// 1/count without a double division: fp64 division compiles to a subroutine call whose calling
// convention made the backward loop spill. A float reciprocal refined by two Newton steps
// r <- r*(2 - c*r) is accurate to about 1 ulp of double for the small integer counts seen here.
template <class T> __device__ __forceinline__ T ap_recip(int c);
template <> __device__ __forceinline__ float ap_recip<float>(int c) { return 1.0f / (float)c; }
template <> __device__ __forceinline__ double ap_recip<double>(int c) {
    double r = (double)(1.0f / (float)c);
    r = r * (2.0 - c * r);
    return r * (2.0 - c * r);
}

template <class T>
__device__ __forceinline__ void avgpool_forward_impl(const T* __restrict__ x, T* __restrict__ y, int N, int C, int H, int W,
                                                     int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow,
                                                     int include_pad) {
    const long long total = (long long)N * C * oh * ow;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long ox = e % ow, oy = (e / ow) % oh, nc = e / ((long long)oh * ow);
        const T* plane = x + nc * H * W;
        T acc = T(0);
        for (int i = 0; i < kh; ++i) {
            const long long iy = oy * sh - ph + i;
            if (iy < 0 || iy >= H) continue;
            for (int j = 0; j < kw; ++j) {
                const long long ix = ox * sw - pw + j;
                if (ix >= 0 && ix < W) acc += plane[iy * W + ix];
            }
        }
        y[e] = acc * ap_recip<T>(ap_count((int)oy, (int)ox, H, W, kh, kw, sh, sw, ph, pw, include_pad));
    }
}

template <class T>
__device__ __forceinline__ void avgpool_backward_impl(const T* __restrict__ dy, T* __restrict__ dx, int N, int C, int H, int W,
                                                      int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow,
                                                      int include_pad) {
    const long long total = (long long)N * C * H * W;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long q = e / W, nc = q / H;             // coordinates as int: see col2im.cu
        const int ix = (int)(e - q * W), iy = (int)(q - nc * H);
        T acc = T(0);
        for (int i = 0; i < kh; ++i) {
            const int ty = iy + ph - i;
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            for (int j = 0; j < kw; ++j) {
                const int tx = ix + pw - j;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                const int oy = ty / sh, ox = tx / sw;
                acc += dy[(nc * oh + oy) * ow + ox] * ap_recip<T>(ap_count(oy, ox, H, W, kh, kw, sh, sw, ph, pw, include_pad));
            }
        }
        dx[e] = acc;
    }
}

extern "C" __global__ void __launch_bounds__(256)
avgpool_forward_f32(const float* __restrict__ x, float* __restrict__ y, int N, int C, int H, int W, int kh, int kw,
                    int sh, int sw, int ph, int pw, int oh, int ow, int include_pad) {
    avgpool_forward_impl<float>(x, y, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow, include_pad);
}
extern "C" __global__ void __launch_bounds__(256)
avgpool_forward_f64(const double* __restrict__ x, double* __restrict__ y, int N, int C, int H, int W, int kh, int kw,
                    int sh, int sw, int ph, int pw, int oh, int ow, int include_pad) {
    avgpool_forward_impl<double>(x, y, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow, include_pad);
}
extern "C" __global__ void __launch_bounds__(256)
avgpool_backward_f32(const float* __restrict__ dy, float* __restrict__ dx, int N, int C, int H, int W, int kh, int kw,
                     int sh, int sw, int ph, int pw, int oh, int ow, int include_pad) {
    avgpool_backward_impl<float>(dy, dx, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow, include_pad);
}
extern "C" __global__ void __launch_bounds__(256)
avgpool_backward_f64(const double* __restrict__ dy, double* __restrict__ dx, int N, int C, int H, int W, int kh, int kw,
                     int sh, int sw, int ph, int pw, int oh, int ow, int include_pad) {
    avgpool_backward_impl<double>(dy, dx, N, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow, include_pad);
}
