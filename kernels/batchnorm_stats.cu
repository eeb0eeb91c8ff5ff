// Batch-norm statistics: per-channel mean and biased variance of x (N, C, HW), as DOUBLES for
// both entry points (float32 x too): batchnorm_apply.cu splits the mean into a float32 part
// hi = float(mean), exact to subtract from x near the mean, and a double remainder lo, which is what
// keeps float32 batch norm accurate when |mean| >> sigma (a mean rounded to float32 is off by up
// to ulp(mean) / 2, e.g. 4e-6 at 100, which is 4e-4 sigma when sigma = 0.01).
//
// Maths: M = N*HW, mean[c] = sum x / M, var[c] = sum (x - mean[c])^2 / M, in ONE pass that
// never subtracts two large nearly equal numbers (the flaw of sum(x^2)/M - mean^2 on data with a
// large mean, such as post-ReLU activations or raw pixels), every sum in double:
//   thread:  shifted sums around its own first value K: s1 = sum (v - K), s2 = sum (v - K)^2, k values,
//            then m = K + s1/k and m2 = s2 - s1*s1/k (the error scales with (m - K)^2 / var, small
//            because K is one of the samples; no division per element, which on the GPU is a call)
//   merge (a, b) (Chan et al.): k = ka + kb; d = mb - ma; m = ma + d*kb/k; m2 = m2a + m2b + d*d*ka*kb/k
// Double accumulation costs 2 double adds and 1 double FMA per element: on an H200 (FP64 at half
// the FP32 rate) that is far below what 4.8 TB/s of float32 input needs, so the kernel stays
// memory-bound (on a GPU with 1/32-rate FP64 it may not).
// Thread mapping: one block per channel (block-stride loop over C); thread t visits elements
//   t, t+256, ... of the channel's M values (row n, column s, at x[(n*C + c)*HW + s]); the 256
//   partial (k, m, m2) triples merge in a fixed shared-memory tree (deterministic).
// Launch shape: 1-D, blockDim.x == 256 exactly (the tree assumes it), any number of blocks.
// Reads x; writes mean[C] and var[C] (double).

#define BNS_THREADS 256

template <class T>
__device__ __forceinline__ void bn_stats_impl(const T* __restrict__ x, double* __restrict__ mean, double* __restrict__ var,
                                              int N, int C, long long HW) {
    __shared__ long long sk[BNS_THREADS];
    __shared__ double sm[BNS_THREADS];
    __shared__ double sm2[BNS_THREADS];
    const long long M = (long long)N * HW;
    const int t = threadIdx.x;
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        long long k = 0;
        double shift = 0.0, s1 = 0.0, s2 = 0.0;
        // element e = n*HW + s of the channel, walked with one division per thread, not per element
        long long n = t < HW ? 0 : (int)t / (int)HW, s = t < HW ? t : (int)t % (int)HW;
        const long long dn = BNS_THREADS < HW ? 0 : BNS_THREADS / (int)HW, ds = BNS_THREADS < HW ? BNS_THREADS : BNS_THREADS % (int)HW;
        for (long long e = t; e < M; e += BNS_THREADS) {
            const double v = (double)x[(n * C + c) * HW + s];
            s += ds; n += dn;
            if (s >= HW) { s -= HW; n += 1; }
            if (k == 0) shift = v;
            const double d = v - shift;
            s1 += d;
            s2 += d * d;
            k += 1;
        }
        double m = 0.0, m2 = 0.0;
        if (k > 0) {
            const double q = s1 / double(k);
            m = shift + q;
            m2 = max(s2 - s1 * q, 0.0);   // rounding can leave a tiny negative
        }
        sk[t] = k; sm[t] = m; sm2[t] = m2;
        __syncthreads();
        for (int half = BNS_THREADS / 2; half > 0; half /= 2) {
            if (t < half) {
                const long long ka = sk[t], kb = sk[t + half], kk = ka + kb;
                if (kb > 0) {  // ka >= kb always (lower threads take the earlier elements), so kk > 0 here
                    const double d = sm[t + half] - sm[t];
                    sm[t] = sm[t] + d * (double(kb) / double(kk));
                    sm2[t] = sm2[t] + sm2[t + half] + d * d * (double(ka) * (double(kb) / double(kk)));
                    sk[t] = kk;
                }
            }
            __syncthreads();
        }
        if (t == 0) {
            mean[c] = sm[0];
            var[c] = sm2[0] / double(sk[0]);
        }
        __syncthreads();  // sk/sm/sm2 are reused by the next channel
    }
}

extern "C" __global__ void __launch_bounds__(256)
bn_stats_f32(const float* __restrict__ x, double* __restrict__ mean, double* __restrict__ var, int N, int C, long long HW) {
    bn_stats_impl<float>(x, mean, var, N, C, HW);
}
extern "C" __global__ void __launch_bounds__(256)
bn_stats_f64(const double* __restrict__ x, double* __restrict__ mean, double* __restrict__ var, int N, int C, long long HW) {
    bn_stats_impl<double>(x, mean, var, N, C, HW);
}
