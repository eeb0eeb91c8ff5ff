// Batch norm, given the statistics: fused normalize + affine, and its backward.
//
// Maths, for x (N, C, HW), per-channel mean and var (double, from batchnorm_stats.cu or the
// running statistics), gamma, beta, r = 1/sqrt(var + eps), M = N*HW:
//   forward         y = (x - mean) * r * gamma + beta                        (one pass, elementwise)
//   backward sums   dbeta[c] = sum dy,   dgamma[c] = sum dy * xhat,   xhat = (x - mean) * r
//   backward input  training: dx = gamma * r * (dy - dbeta/M - xhat * dgamma/M)
//                   eval (statistics are constants): dx = gamma * r * dy
// Accuracy at float32 whatever |mean| / sigma: the mean is split into hi = mean rounded to x's type
// and the double remainder lo = mean - hi. Every pass works on x - hi, which is exact for x near
// the mean (Sterbenz), and lo goes into per-channel coefficients computed in double once per
// channel, never per element:
//   forward         y = (x - hi) * scale + shift,  scale = gamma * r,  shift = beta - lo * scale
//   backward sums   double sums of dy and dy * (x - hi); dgamma = (sum dy*(x - hi) - lo * dbeta) * r
//   backward input  dx = k * ((dy - gbar) - (x - hi) * w),  k = gamma * r, and in training
//                   w = dgamma * r / M, gbar = dbeta / M - lo * w (eval: w = gbar = 0)
// For float64 x, hi = mean and lo = 0: the same formulas. The backward sums accumulate in double
// (2 double FMAs per element; memory-bound on an H200, where FP64 runs at half the FP32 rate).
// Thread mapping: forward and input gradient: a 2-D grid, blockIdx.y over channels (block-stride),
//   blockIdx.x and the thread over the channel's M elements (grid-stride), so a thread computes its
//   channel's coefficients once and each element costs one subtract and two multiply-adds.
//   Backward sums: one block per channel (block-stride over C), thread t takes elements t, t+256, ...;
//   the two partial sums meet in a fixed shared-memory tree (deterministic).
// Launch shape: bn_forward and bn_backward_input: 2-D grid, 1-D blocks of any multiple of 32 threads
//   (the launch code uses 256); bn_backward_reduce: 1-D, blockDim.x == 256 exactly.
// Reads x, dy, mean, var, gamma, beta; writes y, or dgamma and dbeta, or dx (all overwritten).

#define BNA_THREADS 256

// Element e = n*HW + s of one channel sits at x[(n*C + c)*HW + s]; a thread visiting e = first,
// first + step, ... moves (n, s) by (step / HW, step % HW), dividing once per thread, not per element.
struct BnWalk {
    long long n, s, dn, ds;
    __device__ __forceinline__ BnWalk(long long first, long long step, long long HW)
        : n(first / HW), s(first % HW), dn(step / HW), ds(step % HW) {}
    __device__ __forceinline__ long long offset(long long c, long long C, long long HW) const { return (n * C + c) * HW + s; }
    __device__ __forceinline__ void next(long long HW) {
        s += ds; n += dn;
        if (s >= HW) { s -= HW; n += 1; }
    }
};

// A channel's statistics as used here: hi = mean rounded to T, lo = the double remainder,
// r = 1/sqrt(var + eps) in double.
template <class T>
struct BnChannel {
    T hi;
    double lo, r;
    __device__ __forceinline__ BnChannel(const double* __restrict__ mean, const double* __restrict__ var, long long c, double eps)
        : hi(T(mean[c])), lo(mean[c] - double(T(mean[c]))), r(rsqrt(var[c] + eps)) {}
};

template <class T>
__device__ __forceinline__ void bn_forward_impl(const T* __restrict__ x, const double* __restrict__ mean,
                                                const double* __restrict__ var, const T* __restrict__ gamma,
                                                const T* __restrict__ beta, T* __restrict__ y,
                                                int N, int C, long long HW, double eps) {
    const long long M = (long long)N * HW;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x, step = (long long)gridDim.x * blockDim.x;
    const BnWalk start(first, step, HW);
    for (long long c = blockIdx.y; c < C; c += gridDim.y) {
        const BnChannel<T> ch(mean, var, c, eps);
        const double sc = double(gamma[c]) * ch.r;
        const T scale = T(sc), shift = T(double(beta[c]) - ch.lo * sc);
        BnWalk w = start;
        for (long long e = first; e < M; e += step) {
            const long long o = w.offset(c, C, HW);
            w.next(HW);
            y[o] = (x[o] - ch.hi) * scale + shift;
        }
    }
}

template <class T>
__device__ __forceinline__ void bn_backward_reduce_impl(const T* __restrict__ x, const T* __restrict__ dy,
                                                        const double* __restrict__ mean, const double* __restrict__ var,
                                                        T* __restrict__ dgamma, T* __restrict__ dbeta,
                                                        int N, int C, long long HW, double eps) {
    __shared__ double s_dy[BNA_THREADS];
    __shared__ double s_dyx[BNA_THREADS];
    const long long M = (long long)N * HW;
    const int t = threadIdx.x;
    const BnWalk start(t, BNA_THREADS, HW);
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        const BnChannel<T> ch(mean, var, c, eps);
        double a = 0.0, b = 0.0;                          // sum dy, sum dy * (x - hi)
        BnWalk w = start;
        for (long long e = t; e < M; e += BNA_THREADS) {
            const long long o = w.offset(c, C, HW);
            w.next(HW);
            const double g = (double)dy[o];
            a += g;
            b += g * (double)(x[o] - ch.hi);
        }
        s_dy[t] = a;
        s_dyx[t] = b;
        __syncthreads();
        for (int half = BNA_THREADS / 2; half > 0; half /= 2) {
            if (t < half) {
                s_dy[t] += s_dy[t + half];
                s_dyx[t] += s_dyx[t + half];
            }
            __syncthreads();
        }
        if (t == 0) {
            dbeta[c] = T(s_dy[0]);
            dgamma[c] = T((s_dyx[0] - ch.lo * s_dy[0]) * ch.r);   // sum dy * (x - mean) * r
        }
        __syncthreads();
    }
}

template <class T>
__device__ __forceinline__ void bn_backward_input_impl(const T* __restrict__ x, const T* __restrict__ dy,
                                                       const double* __restrict__ mean, const double* __restrict__ var,
                                                       const T* __restrict__ gamma, const T* __restrict__ dgamma,
                                                       const T* __restrict__ dbeta, T* __restrict__ dx,
                                                       int N, int C, long long HW, double eps, int training) {
    const long long M = (long long)N * HW;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x, step = (long long)gridDim.x * blockDim.x;
    const BnWalk start(first, step, HW);
    for (long long c = blockIdx.y; c < C; c += gridDim.y) {
        const BnChannel<T> ch(mean, var, c, eps);
        double wd = 0.0, gbard = 0.0;                     // eval: the statistics do not depend on x
        if (training) {
            wd = double(dgamma[c]) * ch.r / double(M);
            gbard = double(dbeta[c]) / double(M) - ch.lo * wd;
        }
        const T k = T(double(gamma[c]) * ch.r), wc = T(wd), gbar = T(gbard);
        BnWalk w = start;
        for (long long e = first; e < M; e += step) {
            const long long o = w.offset(c, C, HW);
            w.next(HW);
            dx[o] = k * ((dy[o] - gbar) - (x[o] - ch.hi) * wc);
        }
    }
}

extern "C" __global__ void __launch_bounds__(256)
bn_forward_f32(const float* __restrict__ x, const double* __restrict__ mean, const double* __restrict__ var,
               const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y,
               int N, int C, long long HW, double eps) {
    bn_forward_impl<float>(x, mean, var, gamma, beta, y, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_forward_f64(const double* __restrict__ x, const double* __restrict__ mean, const double* __restrict__ var,
               const double* __restrict__ gamma, const double* __restrict__ beta, double* __restrict__ y,
               int N, int C, long long HW, double eps) {
    bn_forward_impl<double>(x, mean, var, gamma, beta, y, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_backward_reduce_f32(const float* __restrict__ x, const float* __restrict__ dy, const double* __restrict__ mean,
                       const double* __restrict__ var, float* __restrict__ dgamma, float* __restrict__ dbeta,
                       int N, int C, long long HW, double eps) {
    bn_backward_reduce_impl<float>(x, dy, mean, var, dgamma, dbeta, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_backward_reduce_f64(const double* __restrict__ x, const double* __restrict__ dy, const double* __restrict__ mean,
                       const double* __restrict__ var, double* __restrict__ dgamma, double* __restrict__ dbeta,
                       int N, int C, long long HW, double eps) {
    bn_backward_reduce_impl<double>(x, dy, mean, var, dgamma, dbeta, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_backward_input_f32(const float* __restrict__ x, const float* __restrict__ dy, const double* __restrict__ mean,
                      const double* __restrict__ var, const float* __restrict__ gamma, const float* __restrict__ dgamma,
                      const float* __restrict__ dbeta, float* __restrict__ dx, int N, int C, long long HW, double eps,
                      int training) {
    bn_backward_input_impl<float>(x, dy, mean, var, gamma, dgamma, dbeta, dx, N, C, HW, eps, training);
}
extern "C" __global__ void __launch_bounds__(256)
bn_backward_input_f64(const double* __restrict__ x, const double* __restrict__ dy, const double* __restrict__ mean,
                      const double* __restrict__ var, const double* __restrict__ gamma, const double* __restrict__ dgamma,
                      const double* __restrict__ dbeta, double* __restrict__ dx, int N, int C, long long HW, double eps,
                      int training) {
    bn_backward_input_impl<double>(x, dy, mean, var, gamma, dgamma, dbeta, dx, N, C, HW, eps, training);
}
