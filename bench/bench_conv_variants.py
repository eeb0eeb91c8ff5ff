"""minicnn's own CPU convolution algorithms against each other, in one process (issue 14).

    MINICNN_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=. /work/venv/bin/python \\
        bench/bench_conv_variants.py [--repeats 15] [--shapes 16,32,64,64 16,64,128,32] \\
        [--variants wide strided winograd "wide:BAND_BYTES=1048576"] [--forward-only]

Every variant computes the same convolution (3x3, padding 1, stride 1, with bias) on the same
inputs; the variants take turns, one call each, round after round, so a burst of load from other
jobs hits all of them alike (this machine is shared). A variant is an algorithm name, optionally
followed by `:NAME=VALUE,...` overrides of `minicnn.cpu.tuning` for its calls. Prints median and
minimum per variant, GFLOP/s of the minimum (forward, input and weight gradient products) and
each median's ratio to the first variant's, for wall time and for this thread's CPU time
(`time.thread_time`: with one thread all the work runs in the calling thread, and CPU time
does not count the time the process waited for a core, so it is the steadier signal under
load). Only minicnn is imported: this compares its own
algorithms; `bench_conv.py` compares with PyTorch.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def parse_variant(text: str) -> tuple[str, dict[str, int]]:
    """'wide:BAND_BYTES=1048576' -> ('wide', {'BAND_BYTES': 1048576})."""
    algo, _, rest = text.partition(":")
    over = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        over[k] = int(v)
    return algo, over


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--shapes", nargs="+", default=["16,32,64,64", "16,64,128,32", "16,16,16,180"],
                   help="N,C,O,HW of a 3x3 'same' convolution")
    p.add_argument("--variants", nargs="+", default=["wide", "strided"])
    p.add_argument("--forward-only", action="store_true", help="time forward under no_grad")
    p.add_argument("--op", choices=["conv", "depthwise"], default="conv",
                   help="depthwise: a 3x3 depthwise convolution (O must equal C; variants 'blocks', 'reference')")
    args = p.parse_args()

    import numpy as np

    import minicnn
    import minicnn.nn.functional as F
    from minicnn.cpu import tuning

    env = os.environ.get
    print(f"threads: MINICNN {env('MINICNN_NUM_THREADS')}, OPENBLAS {env('OPENBLAS_NUM_THREADS')}; "
          f"load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}")
    variants = [parse_variant(v) for v in args.variants]
    for shape in args.shapes:
        n, c, o, hw = (int(s) for s in shape.split(","))
        rng = np.random.default_rng(0)
        x = minicnn.tensor(rng.standard_normal((n, c, hw, hw), dtype=np.float32), requires_grad=True)
        cin = 1 if args.op == "depthwise" else c
        w = minicnn.tensor((0.1 * rng.standard_normal((o, cin, 3, 3))).astype(np.float32), requires_grad=True)
        op = F.depthwise_conv2d if args.op == "depthwise" else F.conv2d
        b = minicnn.tensor(rng.standard_normal(o, dtype=np.float32), requires_grad=True)
        gy = rng.standard_normal((n, o, hw, hw), dtype=np.float32)
        flops = 2 * n * o * cin * 9 * hw * hw * (1 if args.forward_only else 3)

        def call(algo: str, over: dict[str, int], x=x, w=w, b=b, gy=gy, op=op) -> tuple[float, float]:
            saved = {k: getattr(tuning, k) for k in over}
            for k, v in over.items():
                setattr(tuning, k, v)
            try:
                x.grad = w.grad = b.grad = None
                t0, c0 = time.perf_counter(), time.thread_time()
                if args.forward_only:
                    with minicnn.no_grad():
                        op(x, w, b, padding=1, algorithm=algo)
                else:
                    op(x, w, b, padding=1, algorithm=algo).backward(gy)
                return time.perf_counter() - t0, time.thread_time() - c0
            finally:
                for k, v in saved.items():
                    setattr(tuning, k, v)

        times: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(variants))}
        for v in variants:  # warm-up (and the workspace's first allocation)
            call(*v)
        for r in range(args.repeats):
            order = range(len(variants)) if r % 2 == 0 else reversed(range(len(variants)))
            for i in order:
                times[i].append(call(*variants[i]))
        base = [statistics.median(t[k] for t in times[0]) for k in (0, 1)]
        print(f"\n{args.op}3x3 N{n} C{c}->{o} {hw}x{hw} ({'forward' if args.forward_only else 'forward+backward'}, "
              f"{flops / 1e9:.2f} GFLOP per call, {args.repeats} rounds)")
        for i, text in enumerate(args.variants):
            wall, cpu = ([t[k] for t in times[i]] for k in (0, 1))
            med, lo, cmed, clo = statistics.median(wall), min(wall), statistics.median(cpu), min(cpu)
            print(f"  {text:34s} wall median {1e3 * med:7.1f} min {1e3 * lo:7.1f} ms ratio {med / base[0]:4.2f} | "
                  f"cpu median {1e3 * cmed:7.1f} min {1e3 * clo:7.1f} ms ratio {cmed / base[1]:4.2f} | "
                  f"{flops / clo / 1e9:5.1f} GFLOP/s per cpu-s")


if __name__ == "__main__":
    main()
