// col2im: the adjoint of im2col (the input gradient of a GEMM convolution), written as a GATHER.
//
// Maths: x[n, c, iy, ix] = sum over taps (i, j) and output pixels (oy, ox) with
//   oy*sh - ph + i*dh == iy  and  ox*sw - pw + j*dw == ix
// of cols[n, (c*kh + i)*kw + j, oy*ow + ox].
// For each tap the output pixel is found by division: oy = (iy + ph - i*dh) / sh, valid when the
// division is exact and 0 <= oy < oh. Each thread owns one x element, so no atomics are needed and
// the sum order is fixed (taps in row-major order): the result is deterministic.
// Thread mapping: one thread per element of x (N*C*H*W), grid-stride loop.
// Launch shape: 1-D, 256 threads per block, any number of blocks.
// Reads cols; writes every element of x (overwrites, does not accumulate).

template <class T>
__device__ __forceinline__ void col2im_impl(const T* __restrict__ cols, T* __restrict__ x, int N, int C, int H, int W,
                                            int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                            int oh, int ow) {
    const long long L = (long long)oh * ow;
    const long long total = (long long)N * C * H * W;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        // 64-bit only for the flat index; coordinates inside one image fit in int, and 32-bit
        // divisions in the tap loop stay inline (64-bit ones become calls that cost registers).
        const long long q = e / W, nc = q / H;              // nc = n*C + c
        const int ix = (int)(e - q * W), iy = (int)(q - nc * H);
        const T* base = cols + nc * (long long)kh * kw * L; // rows of this (n, c): cols is (N, C*kh*kw, L)
        T acc = T(0);
        for (int i = 0; i < kh; ++i) {
            const int ty = iy + ph - i * dh;
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            const int oy = ty / sh;
            for (int j = 0; j < kw; ++j) {
                const int tx = ix + pw - j * dw;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                acc += base[((long long)i * kw + j) * L + (long long)oy * ow + tx / sw];
            }
        }
        x[e] = acc;
    }
}

extern "C" __global__ void __launch_bounds__(256)
col2im_f32(const float* __restrict__ cols, float* __restrict__ x, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    col2im_impl<float>(cols, x, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
}

extern "C" __global__ void __launch_bounds__(256)
col2im_f64(const double* __restrict__ cols, double* __restrict__ x, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int dh, int dw, int oh, int ow) {
    col2im_impl<double>(cols, x, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow);
}
