// im2col: unfold sliding windows of an image batch into columns, so a convolution becomes a GEMM.
//
// Maths: for x (N, C, H, W), kernel (kh, kw), stride (sh, sw), top/left padding (ph, pw),
// dilation (dh, dw) and output size (oh, ow):
//   cols[n, (c*kh + i)*kw + j, oy*ow + ox] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]
// and 0 where that input position falls in the padding.
// Thread mapping: one thread per element of cols (N * C*kh*kw * oh*ow), grid-stride loop, so
//   consecutive threads write consecutive output pixels (coalesced stores).
// Launch shape: 1-D, 256 threads per block, any number of blocks (capped; blocks loop).
// Reads x; writes every element of cols (padding included). No shared memory, no atomics.

template <class T>
__device__ __forceinline__ void im2col_impl(const T* __restrict__ x, T* __restrict__ cols, int N, int C, int H, int W,
                                            int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                            int oh, int ow) {
    const long long L = (long long)oh * ow;                 // output pixels per image
    const long long K = (long long)C * kh * kw;             // rows of cols per image
    const long long total = (long long)N * K * L;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long p = e % L;                          // output pixel
        const long long r = (e / L) % K;                    // row: (c, i, j)
        const long long n = e / (L * K);
        const int j = (int)(r % kw), i = (int)((r / kw) % kh);
        const long long c = r / ((long long)kh * kw);
        const long long iy = (p / ow) * sh - ph + (long long)i * dh;
        const long long ix = (p % ow) * sw - pw + (long long)j * dw;
        T v = T(0);
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = x[((n * C + c) * H + iy) * W + ix];
        cols[e] = v;
    }
}

extern "C" __global__ void __launch_bounds__(256)
im2col_f32(const float* __restrict__ x, float* __restrict__ cols, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    im2col_impl<float>(x, cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
}

extern "C" __global__ void __launch_bounds__(256)
im2col_f64(const double* __restrict__ x, double* __restrict__ cols, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    im2col_impl<double>(x, cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
}
