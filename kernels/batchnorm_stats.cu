// Batch-norm statistics: per-channel mean and biased variance of x (N, C, HW).
//
// Maths: M = N*HW, mean[c] = sum x / M, var[c] = sum (x - mean[c])^2 / M, in ONE pass that
// never subtracts two large nearly equal numbers (the flaw of sum(x^2)/M - mean^2 in float32 on
// data with a large mean, such as post-ReLU activations or raw pixels):
//   thread:  shifted sums around its own first value K: s1 = sum (v - K), s2 = sum (v - K)^2, k values,
//            then m = K + s1/k and m2 = s2 - s1*s1/k (the error scales with (m - K)^2 / var, small
//            because K is one of the samples; no division per element, which on the GPU is a call)
//   merge (a, b) (Chan et al.): k = ka + kb; d = mb - ma; m = ma + d*kb/k; m2 = m2a + m2b + d*d*ka*kb/k
// Thread mapping: one block per channel (block-stride loop over C); thread t visits elements
//   t, t+256, ... of the channel's M values (row n, column s, at x[(n*C + c)*HW + s]); the 256
//   partial (k, m, m2) triples merge in a fixed shared-memory tree (deterministic).
// Launch shape: 1-D, blockDim.x == 256 exactly (the tree assumes it), any number of blocks.
// Reads x; writes mean[C] and var[C].

#define BNS_THREADS 256

template <class T>
__device__ __forceinline__ void bn_stats_impl(const T* __restrict__ x, T* __restrict__ mean, T* __restrict__ var,
                                              int N, int C, long long HW) {
    __shared__ long long sk[BNS_THREADS];
    __shared__ T sm[BNS_THREADS];
    __shared__ T sm2[BNS_THREADS];
    const long long M = (long long)N * HW;
    const int t = threadIdx.x;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        long long k = 0;
        T shift = T(0), s1 = T(0), s2 = T(0);
        // element e = n*HW + s of the channel, walked with one division per thread, not per element
        long long n = t < HW ? 0 : (int)t / (int)HW, s = t < HW ? t : (int)t % (int)HW;
        const long long dn = BNS_THREADS < HW ? 0 : BNS_THREADS / (int)HW, ds = BNS_THREADS < HW ? BNS_THREADS : BNS_THREADS % (int)HW;
        for (long long e = t; e < M; e += BNS_THREADS) {
            const T v = x[(n * C + c) * HW + s];
            s += ds; n += dn;
            if (s >= HW) { s -= HW; n += 1; }
            if (k == 0) shift = v;
            const T d = v - shift;
            s1 += d;
            s2 += d * d;
            k += 1;
        }
        T m = T(0), m2 = T(0);
        if (k > 0) {
            const T q = s1 / T(k);
            m = shift + q;
            m2 = max(s2 - s1 * q, T(0));   // rounding can leave a tiny negative
        }
        sk[t] = k; sm[t] = m; sm2[t] = m2;
        __syncthreads();
        for (int half = BNS_THREADS / 2; half > 0; half /= 2) {
            if (t < half) {
                const long long ka = sk[t], kb = sk[t + half], kk = ka + kb;
                if (kb > 0) {  // ka >= kb always (lower threads take the earlier elements), so kk > 0 here
                    const T d = sm[t + half] - sm[t];
                    sm[t] = sm[t] + d * (T(kb) / T(kk));
                    sm2[t] = sm2[t] + sm2[t + half] + d * d * (T(ka) * (T(kb) / T(kk)));
                    sk[t] = kk;
                }
            }
            __syncthreads();
        }
        if (t == 0) {
            mean[c] = sm[0];
            var[c] = sm2[0] / T(sk[0]);
        }
        __syncthreads();  // sk/sm/sm2 are reused by the next channel
    }
}

extern "C" __global__ void __launch_bounds__(256)
bn_stats_f32(const float* __restrict__ x, float* __restrict__ mean, float* __restrict__ var, int N, int C, long long HW) {
    bn_stats_impl<float>(x, mean, var, N, C, HW);
}
extern "C" __global__ void __launch_bounds__(256)
bn_stats_f64(const double* __restrict__ x, double* __restrict__ mean, double* __restrict__ var, int N, int C, long long HW) {
    bn_stats_impl<double>(x, mean, var, N, C, HW);
}
