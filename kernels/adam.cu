// Fused Adam / AdamW update: one pass over parameter, gradient and both moments.
//
// Maths (PyTorch's order, as minicnn.optim.Adam on the CPU), step t, bias1 = 1 - beta1^t,
// bias2 = 1 - beta2^t (computed on the host in float64):
//   decoupled (AdamW):  p *= 1 - lr*wd           else (Adam, L2):  g += wd * p
//   m = beta1*m + (1-beta1)*g
//   v = beta2*v + (1-beta2)*g*g
//   p -= (lr/bias1) * m / (sqrt(v)/sqrt(bias2) + eps)
// Thread mapping: one thread per element, grid-stride loop. Hyper-parameters arrive as double and
//   are rounded once to the parameter's type.
// Launch shape: 1-D, 256 threads per block, any number of blocks.
// Reads g; reads and writes p, m, v in place (n elements each).

template <class T> __device__ __forceinline__ T adam_sqrt(T v);
template <> __device__ __forceinline__ float adam_sqrt<float>(float v) { return sqrtf(v); }
template <> __device__ __forceinline__ double adam_sqrt<double>(double v) { return sqrt(v); }

template <class T>
__device__ __forceinline__ void adam_impl(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                                          long long n, double lr, double beta1, double beta2, double eps,
                                          double weight_decay, double bias1, double bias2, int decoupled) {
    const T b1 = T(beta1), b2 = T(beta2), one_b1 = T(1.0 - beta1), one_b2 = T(1.0 - beta2);
    const T step_size = T(lr / bias1), inv_sqrt_b2 = T(1.0 / sqrt(bias2)), e_ = T(eps), wd = T(weight_decay);
    const T decay = T(1.0 - lr * weight_decay);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        T pi = p[i], g = grad[i];
        if (decoupled) pi *= decay;
        else g += wd * pi;
        const T mi = b1 * m[i] + one_b1 * g;
        const T vi = b2 * v[i] + one_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (adam_sqrt<T>(vi) * inv_sqrt_b2 + e_);
    }
}

extern "C" __global__ void __launch_bounds__(256)
adam_f32(float* __restrict__ p, const float* __restrict__ grad, float* __restrict__ m, float* __restrict__ v, long long n,
         double lr, double beta1, double beta2, double eps, double weight_decay, double bias1, double bias2, int decoupled) {
    adam_impl<float>(p, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bias1, bias2, decoupled);
}
extern "C" __global__ void __launch_bounds__(256)
adam_f64(double* __restrict__ p, const double* __restrict__ grad, double* __restrict__ m, double* __restrict__ v, long long n,
         double lr, double beta1, double beta2, double eps, double weight_decay, double bias1, double bias2, int decoupled) {
    adam_impl<double>(p, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bias1, bias2, decoupled);
}
