// Batch norm, given the statistics: fused normalize + affine, and its backward.
//
// Maths, for x (N, C, HW), per-channel mean, var, gamma, beta, r = 1/sqrt(var + eps), M = N*HW:
//   forward         y = (x - mean) * r * gamma + beta                        (one pass, elementwise)
//   backward sums   dbeta[c] = sum dy,   dgamma[c] = sum dy * xhat,   xhat = (x - mean) * r
//   backward input  training: dx = gamma * r * (dy - dbeta/M - xhat * dgamma/M)
//                   eval (statistics are constants): dx = gamma * r * dy
// Thread mapping: forward and input gradient: one thread per element, grid-stride, channel
//   c = (e / HW) % C. Backward sums: one block per channel (block-stride over C), thread t takes
//   elements t, t+256, ...; the two partial sums meet in a fixed shared-memory tree (deterministic).
// Launch shape: 1-D; bn_backward_reduce needs blockDim.x == 256 exactly, the others take any
//   multiple of 32 (the launch code uses 256).
// Reads x, dy, mean, var, gamma, beta; writes y, or dgamma and dbeta, or dx (all overwritten).

#define BNA_THREADS 256

template <class T> __device__ __forceinline__ T bna_rsqrt(T v);
template <> __device__ __forceinline__ float bna_rsqrt<float>(float v) { return rsqrtf(v); }
template <> __device__ __forceinline__ double bna_rsqrt<double>(double v) { return rsqrt(v); }

template <class T>
__device__ __forceinline__ void bn_forward_impl(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ var,
                                                const T* __restrict__ gamma, const T* __restrict__ beta, T* __restrict__ y,
                                                int N, int C, long long HW, T eps) {
    const long long total = (long long)N * C * HW;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long c = (e / HW) % C;
        const T scale = gamma[c] * bna_rsqrt<T>(var[c] + eps);
        y[e] = (x[e] - mean[c]) * scale + beta[c];
    }
}

template <class T>
__device__ __forceinline__ void bn_backward_reduce_impl(const T* __restrict__ x, const T* __restrict__ dy,
                                                        const T* __restrict__ mean, const T* __restrict__ var,
                                                        T* __restrict__ dgamma, T* __restrict__ dbeta,
                                                        int N, int C, long long HW, T eps) {
    __shared__ T s_dy[BNA_THREADS];
    __shared__ T s_dyx[BNA_THREADS];
    const long long M = (long long)N * HW;
    const int t = threadIdx.x;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        const T mu = mean[c], r = bna_rsqrt<T>(var[c] + eps);
        T a = T(0), b = T(0);
        long long n = t < HW ? 0 : (int)t / (int)HW, s = t < HW ? t : (int)t % (int)HW;  // walk as in batchnorm_stats.cu
        const long long dn = BNA_THREADS < HW ? 0 : BNA_THREADS / (int)HW, ds = BNA_THREADS < HW ? BNA_THREADS : BNA_THREADS % (int)HW;
        for (long long e = t; e < M; e += BNA_THREADS) {
            const long long o = (n * C + c) * HW + s;
            s += ds; n += dn;
            if (s >= HW) { s -= HW; n += 1; }
            a += dy[o];
            b += dy[o] * (x[o] - mu);
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
            dbeta[c] = s_dy[0];
            dgamma[c] = s_dyx[0] * r;
        }
        __syncthreads();
    }
}

template <class T>
__device__ __forceinline__ void bn_backward_input_impl(const T* __restrict__ x, const T* __restrict__ dy,
                                                       const T* __restrict__ mean, const T* __restrict__ var,
                                                       const T* __restrict__ gamma, const T* __restrict__ dgamma,
                                                       const T* __restrict__ dbeta, T* __restrict__ dx,
                                                       int N, int C, long long HW, T eps, int training) {
    const long long total = (long long)N * C * HW;
    const T inv_m = T(1) / T((long long)N * HW);
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        const long long c = (e / HW) % C;
        const T r = bna_rsqrt<T>(var[c] + eps);
        T g = dy[e];
        if (training) g -= dbeta[c] * inv_m + (x[e] - mean[c]) * r * dgamma[c] * inv_m;
        dx[e] = gamma[c] * r * g;
    }
}

extern "C" __global__ void __launch_bounds__(256)
bn_forward_f32(const float* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ var,
               const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y,
               int N, int C, long long HW, float eps) {
    bn_forward_impl<float>(x, mean, var, gamma, beta, y, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_forward_f64(const double* __restrict__ x, const double* __restrict__ mean, const double* __restrict__ var,
               const double* __restrict__ gamma, const double* __restrict__ beta, double* __restrict__ y,
               int N, int C, long long HW, double eps) {
    bn_forward_impl<double>(x, mean, var, gamma, beta, y, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_backward_reduce_f32(const float* __restrict__ x, const float* __restrict__ dy, const float* __restrict__ mean,
                       const float* __restrict__ var, float* __restrict__ dgamma, float* __restrict__ dbeta,
                       int N, int C, long long HW, float eps) {
    bn_backward_reduce_impl<float>(x, dy, mean, var, dgamma, dbeta, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_backward_reduce_f64(const double* __restrict__ x, const double* __restrict__ dy, const double* __restrict__ mean,
                       const double* __restrict__ var, double* __restrict__ dgamma, double* __restrict__ dbeta,
                       int N, int C, long long HW, double eps) {
    bn_backward_reduce_impl<double>(x, dy, mean, var, dgamma, dbeta, N, C, HW, eps);
}
extern "C" __global__ void __launch_bounds__(256)
bn_backward_input_f32(const float* __restrict__ x, const float* __restrict__ dy, const float* __restrict__ mean,
                      const float* __restrict__ var, const float* __restrict__ gamma, const float* __restrict__ dgamma,
                      const float* __restrict__ dbeta, float* __restrict__ dx, int N, int C, long long HW, float eps,
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
