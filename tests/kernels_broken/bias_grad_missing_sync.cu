// BROKEN ON PURPOSE (test fixture for tests/test_kernels_broken.py): a copy of kernels/bias_act.cu
// with one bug: bias_grad's tree reduction has no __syncthreads() between levels.
// The CPU harness must catch it.

// Fused bias + activation after a convolution or linear layer, its backward, and the bias gradient.
//
// Maths, for x viewed as (N, C, inner) (inner = H*W after a conv, 1 after a linear layer):
//   bias_act        y = act(x + bias[c]),  act = identity (act == 0) or ReLU max(v, 0) (act == 1)
//   relu_backward   dx = dy where y > 0, else 0                     (uses the saved OUTPUT y)
//   bias_grad       db[c] = sum over n and inner of dy[n, c, :]
// Thread mapping: bias_act and relu_backward: one thread per element, grid-stride; bias_grad: one
//   block per channel (block-stride over C), thread t sums elements t, t+256, ...; partial sums
//   meet in a fixed shared-memory tree (deterministic, no atomics).
// Launch shape: 1-D; bias_grad needs blockDim.x == 256 exactly, the others any size (256 used).
// bias_act may run in place (x == y): each element is read once, then written by the same thread,
// so x and y are deliberately not __restrict__.

#define BA_THREADS 256

template <class T>
__device__ __forceinline__ void bias_act_impl(const T* x, const T* __restrict__ bias, T* y, int N, int C,
                                              long long inner, int act) {
    const long long total = (long long)N * C * inner;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        T v = x[e] + bias[(e / inner) % C];
        if (act == 1 && !(v > T(0))) v = T(0);
        y[e] = v;
    }
}

template <class T>
__device__ __forceinline__ void relu_backward_impl(const T* __restrict__ y, const T* dy, T* dx, long long total) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step)
        dx[e] = y[e] > T(0) ? dy[e] : T(0);
}

template <class T>
__device__ __forceinline__ void bias_grad_impl(const T* __restrict__ dy, T* __restrict__ db, int N, int C, long long inner) {
    __shared__ T part[BA_THREADS];
    const long long M = (long long)N * inner;
    const int t = threadIdx.x;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        T s = T(0);
        for (long long e = t; e < M; e += BA_THREADS) s += dy[((e / inner) * C + c) * inner + e % inner];
        part[t] = s;
        __syncthreads();
        for (int half = BA_THREADS / 2; half > 0; half /= 2) {
            if (t < half) part[t] += part[t + half];
        }
        if (t == 0) db[c] = part[0];
        __syncthreads();
    }
}

extern "C" __global__ void __launch_bounds__(256)
bias_act_f32(const float* x, const float* __restrict__ bias, float* y, int N, int C, long long inner, int act) {
    bias_act_impl<float>(x, bias, y, N, C, inner, act);
}
extern "C" __global__ void __launch_bounds__(256)
bias_act_f64(const double* x, const double* __restrict__ bias, double* y, int N, int C, long long inner, int act) {
    bias_act_impl<double>(x, bias, y, N, C, inner, act);
}
extern "C" __global__ void __launch_bounds__(256)
relu_backward_f32(const float* __restrict__ y, const float* dy, float* dx, long long total) {
    relu_backward_impl<float>(y, dy, dx, total);
}
extern "C" __global__ void __launch_bounds__(256)
relu_backward_f64(const double* __restrict__ y, const double* dy, double* dx, long long total) {
    relu_backward_impl<double>(y, dy, dx, total);
}
extern "C" __global__ void __launch_bounds__(256)
bias_grad_f32(const float* __restrict__ dy, float* __restrict__ db, int N, int C, long long inner) {
    bias_grad_impl<float>(dy, db, N, C, inner);
}
extern "C" __global__ void __launch_bounds__(256)
bias_grad_f64(const double* __restrict__ dy, double* __restrict__ db, int N, int C, long long inner) {
    bias_grad_impl<double>(dy, db, N, C, inner);
}
