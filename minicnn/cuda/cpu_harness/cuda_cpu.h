// cuda_cpu.h: just enough of CUDA's device-side language for g++ to compile an UNMODIFIED
// kernels/*.cu file into a shared library that runs a grid on the CPU.
//
// How a launch runs (see cucpu::launch below):
//   - blocks run one after another (in forward or shuffled order);
//   - the threads of a block are cooperative fibers (ucontext, one stack each). A thread runs
//     until it reaches __syncthreads() or returns; when every thread has stopped, the block
//     checks that all live threads wait at the same barrier (same file:line) and that none has
//     returned while others wait, then releases them all. Between barriers the threads run in
//     forward order or in a fresh shuffled order per phase, so a missing barrier shows up as a
//     wrong result in at least one of the two orders;
//   - every __shared__ variable lives in the linker section "cucpu_shared", which is filled with
//     0xFF bytes (NaN for float/double, -1 for integers) before each block, so a tile element that
//     is read before it is written poisons the result instead of reading C++'s zero.
// Failures (divergent barrier, launch shape errors) are reported through cucpu_last_error().
//
// What it cannot show: races between blocks (blocks never overlap), the order of float atomics,
// denormal flushing (-ftz), warp-synchronous tricks (warp shuffles are not implemented: kernels
// must not use them), and speed.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>
#include <ucontext.h>

// ---- qualifiers ------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static __attribute__((section("cucpu_shared")))

// ---- index built-ins -------------------------------------------------------------------------
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

// ---- math and bit intrinsics used by the kernels ------------------------------------------------
template <class T> static inline T min(T a, T b) { return b < a ? b : a; }
template <class T> static inline T max(T a, T b) { return a < b ? b : a; }
static inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
static inline double rsqrt(double v) { return 1.0 / sqrt(v); }
// __expf: glibc already declares it (an alias of expf).
static inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
static inline int __float_as_int(float v) { int i; std::memcpy(&i, &v, 4); return i; }
static inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
static inline long long __double_as_longlong(double v) { long long i; std::memcpy(&i, &v, 8); return i; }
template <class T> static inline T __ldg(const T* p) { return *p; }
// Blocks never overlap on the CPU, so an atomic is a plain read-modify-write.
template <class T> static inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
static inline void __threadfence() {}

// ---- the fiber scheduler ---------------------------------------------------------------------
extern "C" char __start_cucpu_shared[] __attribute__((weak));
extern "C" char __stop_cucpu_shared[] __attribute__((weak));

namespace cucpu {

enum State { READY, AT_BARRIER, DONE };

struct Fiber {
    ucontext_t ctx;
    State state = READY;
    int line = 0;
    const char* file = "";
};

static ucontext_t sched_ctx;
static std::vector<Fiber> fibers;
static std::vector<char> stacks;
static const size_t kStack = 64 * 1024;  // plenty for a kernel's locals; fibers never recurse
static unsigned current = 0;
static const std::function<void()>* body = nullptr;
static std::string error;

static void fiber_main() {
    (*body)();
    fibers[current].state = DONE;  // uc_link returns to the scheduler
}

static void set_thread(unsigned t) {
    current = t;
    threadIdx.x = t % blockDim.x;
    threadIdx.y = (t / blockDim.x) % blockDim.y;
    threadIdx.z = t / (blockDim.x * blockDim.y);
}

static std::string where(const Fiber& f) { return std::string(f.file) + ":" + std::to_string(f.line); }

// One block: returns false (and sets `error`) on a divergent barrier.
static bool run_block(unsigned nthreads, bool shuffle, std::mt19937_64& rng) {
    char *lo = __start_cucpu_shared, *hi = __stop_cucpu_shared;
    if (lo && hi > lo) std::memset(lo, 0xFF, size_t(hi - lo));
    for (unsigned t = 0; t < nthreads; ++t) {
        Fiber& f = fibers[t];
        f.state = READY;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = stacks.data() + size_t(t) * kStack;
        f.ctx.uc_stack.ss_size = kStack;
        f.ctx.uc_link = &sched_ctx;
        makecontext(&f.ctx, fiber_main, 0);
    }
    std::vector<unsigned> order(nthreads);
    for (;;) {
        for (unsigned t = 0; t < nthreads; ++t) order[t] = t;
        if (shuffle) std::shuffle(order.begin(), order.end(), rng);
        for (unsigned t : order) {
            if (fibers[t].state == DONE) continue;
            set_thread(t);
            fibers[t].state = READY;
            swapcontext(&sched_ctx, &fibers[t].ctx);
        }
        int waiting = -1, done = -1;
        for (unsigned t = 0; t < nthreads; ++t) {
            if (fibers[t].state == DONE) { if (done < 0) done = int(t); continue; }
            if (waiting < 0) { waiting = int(t); continue; }
            const Fiber &a = fibers[waiting], &b = fibers[t];
            if (a.line != b.line || std::strcmp(a.file, b.file) != 0) {
                error = "divergent __syncthreads: thread " + std::to_string(waiting) + " waits at " + where(a) +
                        " while thread " + std::to_string(t) + " waits at " + where(b);
                return false;
            }
        }
        if (waiting < 0) return true;  // every thread returned
        if (done >= 0) {
            error = "divergent __syncthreads: thread " + std::to_string(done) + " returned while thread " +
                    std::to_string(waiting) + " waits at " + where(fibers[waiting]);
            return false;
        }
    }
}

// Run `kernel` over the grid; 0 on success, 1 with cucpu_last_error() set otherwise.
static int launch(dim3 grid, dim3 block, int shuffle, unsigned long long seed, const std::function<void()>& kernel) {
    error.clear();
    unsigned long long nthreads = 1ull * block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0) {
        error = "bad launch shape: grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," +
                std::to_string(grid.z) + ") block of " + std::to_string(nthreads) + " threads";
        return 1;
    }
    if (fibers.size() < nthreads) {
        fibers.resize(nthreads);
        stacks.resize(nthreads * kStack);
    }
    body = &kernel;
    gridDim = grid;
    blockDim = block;
    std::mt19937_64 rng(seed);
    std::vector<unsigned long long> blocks(1ull * grid.x * grid.y * grid.z);
    for (size_t b = 0; b < blocks.size(); ++b) blocks[b] = b;
    if (shuffle) std::shuffle(blocks.begin(), blocks.end(), rng);
    for (unsigned long long b : blocks) {
        blockIdx.x = unsigned(b % grid.x);
        blockIdx.y = unsigned((b / grid.x) % grid.y);
        blockIdx.z = unsigned(b / (1ull * grid.x * grid.y));
        if (!run_block(unsigned(nthreads), shuffle != 0, rng)) {
            error += " (block " + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
                     std::to_string(blockIdx.z) + ")";
            return 1;
        }
    }
    return 0;
}

}  // namespace cucpu

// __syncthreads records where it was called from, so a divergent barrier can be named.
static inline void __syncthreads(int line = __builtin_LINE(), const char* file = __builtin_FILE()) {
    cucpu::Fiber& f = cucpu::fibers[cucpu::current];
    f.state = cucpu::AT_BARRIER;
    f.line = line;
    f.file = file;
    swapcontext(&f.ctx, &cucpu::sched_ctx);
}

extern "C" __attribute__((visibility("default"))) const char* cucpu_last_error() { return cucpu::error.c_str(); }
