"""Shared benchmark harness: every framework in its own fresh process, same inputs, same threads.

A benchmark script (bench_conv.py, bench_step.py) defines `FRAMEWORKS` (the framework under
test first, the reference last) and `workloads(options) -> list[Workload]`, then calls
`run_benchmark`. For each workload the parent process (which imports no framework):

1. draws the inputs once from a seeded generator and writes them to an .npz file;
2. starts one fresh worker process per framework (`bench/worker.py`) with the same thread
   count in OPENBLAS/OMP/MKL/MINICNN_NUM_THREADS, set before NumPy is imported;
3. compares the outputs and gradients each worker computed from those inputs against the
   reference framework's, and stops with an error before any timing if they differ by more
   than the workload's float32 tolerance;
4. times the frameworks in alternating order, one call per turn (after warm-up calls). A worker
   answers only once its process has stopped using CPU (OpenBLAS's threads spin for ~0.1 s
   after each call), so an idle framework's threads never compete with the timed one;
5. reports median, quartiles, min and max per framework, the ratio of medians from this one run,
   and a roofline line against the machine's measured sgemm and copy ceilings.

This module imports only the standard library at module level, so a script can call
`parse_args` before NumPy is imported (BLAS reads its thread count at import).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINICNN_NUM_THREADS")
SLACK = 4.0  # allowed error against float64, in units of the reference's own float32 error
DEFAULT_TORCH_PYTHON = os.environ.get("MINICNN_BENCH_TORCH_PYTHON", str(REPO / ".venv-bench" / "bin" / "python"))

Arrays = dict  # name -> numpy array; a plain alias so this module stays NumPy-free at import


class BenchError(RuntimeError):
    """A benchmark could not produce trustworthy numbers (mismatch, crashed worker, bad option)."""


@dataclass
class Case:
    """What a framework's setup returns: `run()` is the timed call, `check()` the compared results.

    `check64`, on the reference framework, computes the same results in float64: then every
    framework's float32 results are compared with those, and each array may differ from them
    by `SLACK` times the reference's worst float32 error (or the tolerance, if larger). Deep
    networks need this: float32 rounding alone moves PyTorch's gradients by up to 1e-2.
    """
    run: Callable[[], Any]
    check: Callable[[], Arrays]
    check64: Callable[[], Arrays] | None = None


@dataclass
class Workload:
    """One benchmarked operation; `setups[framework](arrays)` runs inside that framework's worker."""
    name: str
    make_inputs: Callable[[Any], Arrays]  # (numpy Generator) -> arrays, called once in the parent
    setups: dict[str, Callable[[Arrays], Case]]
    tolerance: float = 1e-4  # max |a - ref| / max |ref| per compared array (float32)
    flops: float = 0.0  # arithmetic per call (multiply-adds count 2), for the roofline
    bytes: float = 0.0  # compulsory memory traffic per call (each operand read or written once)
    target: float | None = None  # wanted ratio framework[0] / framework[-1]
    note: str = ""


@dataclass
class Framework:
    """How to start a worker: interpreter and extra PYTHONPATH entries."""
    name: str
    python: str
    pythonpath: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- command line and threads

def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_thread_env(threads: int, env: dict | None = None) -> None:
    """Pin every BLAS/OpenMP/minicnn pool to `threads`; must run before NumPy is imported."""
    target = os.environ if env is None else env
    for var in THREAD_VARS:
        target[var] = str(threads)


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=default_threads(), help="threads for every framework")


def add_harness_args(p: argparse.ArgumentParser, frameworks: tuple[str, ...]) -> None:
    """Options shared by the scripts that compare frameworks."""
    add_common_args(p)
    p.add_argument("--repeats", type=int, default=9, help="timed calls per framework (alternating)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per framework first")
    p.add_argument("--only", default="", help="run workloads whose name contains this")
    p.add_argument("--tree", default=str(REPO), help="minicnn source tree to benchmark (put on PYTHONPATH)")
    p.add_argument("--python", action="append", default=[], metavar="NAME=PATH",
                   help=f"interpreter for a framework (defaults: minicnn={sys.executable}, "
                        f"torch={DEFAULT_TORCH_PYTHON})")
    p.add_argument("--frameworks", nargs="+", default=list(frameworks), choices=list(frameworks),
                   help="subset to run (one framework alone: no check, no ratio)")
    p.add_argument("--json", help="write all results to this JSON file")
    p.add_argument("--compare", help="earlier JSON result: print its numbers beside this run's")
    p.add_argument("--label", default="", help="name of this run in tables (e.g. 'before', 'after')")
    p.add_argument("--commit", help="what the tree is, when it has no git checkout (e.g. an exported commit)")


def parse_args(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and apply the thread count to this process's environment (before NumPy import)."""
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    set_thread_env(args.threads)
    return args


def frameworks_from_args(args: argparse.Namespace) -> list[Framework]:
    pythons = {"minicnn": sys.executable, "torch": DEFAULT_TORCH_PYTHON}
    for item in args.python:
        name, sep, path = item.partition("=")
        if not sep:
            raise BenchError(f"--python expects NAME=PATH, got {item!r}")
        pythons[name] = path
    out = []
    for name in args.frameworks:
        if name not in pythons:
            raise BenchError(f"no interpreter for framework {name!r}: pass --python {name}=PATH")
        if not Path(pythons[name]).exists():
            raise BenchError(f"interpreter for {name} not found: {pythons[name]} (pass --python {name}=PATH)")
        # only minicnn's worker sees the tree under test; the others see just bench/
        out.append(Framework(name, pythons[name], [str(Path(args.tree).resolve())] if name == "minicnn" else []))
    return out


# ---------------------------------------------------------------- statistics and checks

def quantile(xs: list[float], q: float) -> float:
    """Linear-interpolated quantile of a non-empty list."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(seconds: list[float]) -> dict:
    ms = [1e3 * t for t in seconds]
    return {"median": quantile(ms, 0.5), "q1": quantile(ms, 0.25), "q3": quantile(ms, 0.75),
                "min": min(ms), "max": max(ms), "n": len(ms), "samples": ms}


def compare_arrays(got: Arrays, ref: Arrays, tolerance: float) -> tuple[dict[str, float], list[str]]:
    """Per array max|a - r| / max|r| (inf for a shape or finiteness fault), and the failures as text."""
    import numpy as np

    if set(got) != set(ref):
        return {}, [f"compared names differ: {sorted(got)} vs {sorted(ref)}"]
    errs: dict[str, float] = {}
    problems = []
    for name in sorted(ref):
        a, r = np.asarray(got[name], np.float64), np.asarray(ref[name], np.float64)
        if a.shape != r.shape:
            errs[name] = float("inf")
            problems.append(f"{name}: shape {a.shape} vs reference {r.shape}")
        elif not (np.all(np.isfinite(a)) and np.all(np.isfinite(r))):
            errs[name] = float("inf")
            problems.append(f"{name}: non-finite values")
        else:
            scale = float(np.abs(r).max()) if r.size else 0.0
            errs[name] = float(np.abs(a - r).max()) / (scale or 1.0) if r.size else 0.0
            if errs[name] > tolerance:
                problems.append(f"{name} {a.shape}: max|diff|/max|ref| = {errs[name]:.2e} > tolerance {tolerance:.0e}")
    return errs, problems


def check_results(wl: Workload, names: list[str], tmp: str) -> tuple[float | None, dict]:
    """Compare the workers' check files (written in `tmp`); raise BenchError on a mismatch."""
    import numpy as np

    def load(name: str) -> Arrays:
        with np.load(os.path.join(tmp, name), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    if len(names) < 2:
        return None, {}
    ref = names[-1]
    checks = {n: load(f"check-{n}.npz") for n in names}
    errors: dict[str, dict[str, float]] = {}
    if os.path.exists(os.path.join(tmp, f"check-{ref}.f64.npz")):
        truth = load(f"check-{ref}.f64.npz")
        errors[f"{ref} (float32 vs float64)"], problems = compare_arrays(checks[ref], truth, float("inf"))
        if problems:
            raise BenchError(f"{wl.name}: {ref}'s float32 and float64 results differ in kind:\n  "
                             + "\n  ".join(problems))
        # one bound for all arrays: which array float32 rounding hits hardest (a ReLU kink
        # flipping, a small batch variance) differs between frameworks by chance
        ref_worst = max(errors[f"{ref} (float32 vs float64)"].values(), default=0.0)
        allowed = max(wl.tolerance, SLACK * ref_worst)
        for n in names[:-1]:
            errors[n], _ = compare_arrays(checks[n], truth, float("inf"))
            bad = [f"{k}: {e:.2e} from float64 > allowed {allowed:.2e} (max(tolerance, {SLACK:g} x "
                   f"{ref}'s worst float32 error {ref_worst:.2e}))" for k, e in errors[n].items() if not e <= allowed]
            if bad or set(checks[n]) != set(truth):
                bad = bad or [f"compared names differ: {sorted(checks[n])} vs {sorted(truth)}"]
                raise BenchError(f"{wl.name}: {n} disagrees with {ref} (float64) before timing:\n  " + "\n  ".join(bad))
    else:
        for n in names[:-1]:
            errors[n], problems = compare_arrays(checks[n], checks[ref], wl.tolerance)
            if problems:
                raise BenchError(f"{wl.name}: {n} disagrees with {ref} before timing:\n  " + "\n  ".join(problems))
    worst = max((e for n in names[:-1] for e in errors[n].values()), default=0.0)
    return worst, errors


# ---------------------------------------------------------------- worker processes

class Worker:
    """A framework's process: line-delimited JSON requests on stdin, replies on stdout."""

    def __init__(self, fw: Framework, spec: dict, threads: int):
        env = dict(os.environ)
        set_thread_env(threads, env)
        env["PYTHONPATH"] = os.pathsep.join(fw.pythonpath + [str(BENCH_DIR)])
        self.name = fw.name
        self.proc = subprocess.Popen([fw.python, str(BENCH_DIR / "worker.py"), json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def request(self, **msg: Any) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self.reply()

    def reply(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise BenchError(f"{self.name} worker exited (code {code}) without answering; its stderr is above")
        out = json.loads(line)
        if "error" in out:
            raise BenchError(f"{self.name} worker: {out['error']}")
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request(cmd="quit")
            except (BenchError, BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure_ceilings(fw: Framework, threads: int) -> dict:
    """sgemm GFLOP/s and copy GB/s of this machine, from a fresh NumPy-only process."""
    w = Worker(fw, {"mode": "ceilings"}, threads)
    try:
        return w.reply()
    finally:
        w.close()


def run_workload(script: str, options: dict, wl: Workload, fws: list[Framework], args: argparse.Namespace,
                 tmp: str, seed: int) -> dict:
    """Check then time one workload across the frameworks; returns its JSON record."""
    import numpy as np

    tmp = tempfile.mkdtemp(dir=tmp)  # this workload's own files: no stale check from another
    path = os.path.join(tmp, "inputs.npz")
    arrays = wl.make_inputs(np.random.default_rng(seed))
    np.savez(path, **arrays)
    load0 = os.getloadavg()
    workers: list[Worker] = []
    try:
        for fw in fws:  # started one after another so that their imports do not overlap
            spec = {"mode": "workload", "script": script, "options": options, "workload": wl.name,
                    "inputs": path, "framework": fw.name, "check": os.path.join(tmp, f"check-{fw.name}.npz"),
                    "threads": args.threads}
            workers.append(Worker(fw, spec, args.threads))
            workers[-1].reply()  # ready: set up, check results written
        max_err, errors = check_results(wl, [w.name for w in workers], tmp)
        for w in workers:
            w.request(cmd="time", calls=args.warmup)
        times: dict[str, list[float]] = {w.name: [] for w in workers}
        cpu: dict[str, list[float]] = {w.name: [] for w in workers}
        busy_after: dict[str, float] = {w.name: 0.0 for w in workers}
        for r in range(args.repeats):
            for w in (workers if r % 2 == 0 else workers[::-1]):  # alternate who goes first
                out = w.request(cmd="time", calls=1)
                times[w.name] += out["seconds"]
                cpu[w.name] += out["cpu_seconds"]
                busy_after[w.name] = max(busy_after[w.name], out["unsettled_cpu_s"])
        memory = {w.name: w.request(cmd="memory") for w in workers}
    finally:
        for w in workers:
            w.close()
    stats = {name: summarize(ts) for name, ts in times.items()}
    for name, st in stats.items():  # CPU seconds per wall second while timed: below `threads` when
        st["cpu_per_wall"] = sum(cpu[name]) / sum(times[name])  # the process waited or was descheduled
    rec: dict[str, Any] = {"name": wl.name, "flops": wl.flops, "bytes": wl.bytes, "target": wl.target,
                           "note": wl.note, "tolerance": wl.tolerance, "max_rel_err": max_err, "rel_err": errors,
                           "stats": stats, "memory": memory, "worst_unsettled_cpu_s": busy_after,
                           "load_before": load0, "load_after": os.getloadavg()}
    names = [w.name for w in workers]
    if len(names) > 1:
        rec["ratio"] = stats[names[0]]["median"] / stats[names[-1]]["median"]
        # fastest against fastest: the least disturbed calls, the better estimate on a shared machine
        rec["ratio_min"] = stats[names[0]]["min"] / stats[names[-1]]["min"]
    return rec


def versions(fws: list[Framework]) -> dict:
    out = {}
    for fw in fws:
        code = ("import sys, numpy; v = {'python': sys.version.split()[0], 'numpy': numpy.__version__}\n"
                f"if {fw.name!r} == 'torch':\n import torch; v['torch'] = torch.__version__\n"
                "print(v)")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(fw.pythonpath))
        res = subprocess.run([fw.python, "-c", code], capture_output=True, text=True, check=False, env=env)
        out[fw.name] = res.stdout.strip() or res.stderr.strip()[-200:]
    return out


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {default_threads()} usable cores, {platform.system()} {platform.release()}"


def git_commit(tree: str) -> str:
    res = subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", tree, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return (res.stdout.strip() or "unknown") + (" (modified)" if dirty else "")


def run_benchmark(script: str, workloads: list[Workload], options: dict, args: argparse.Namespace,
                  title: str, seed: int = 0) -> dict:
    """Run `workloads` (from `script`, a bench/*.py path) as described in the module docstring."""
    fws = frameworks_from_args(args)
    picked = [w for w in workloads if args.only in w.name]
    if not picked:
        raise BenchError(f"no workload name contains {args.only!r}: {[w.name for w in workloads]}")
    result: dict[str, Any] = {"title": title, "label": args.label, "command": " ".join([sys.executable] + sys.argv),
                                  "machine": machine(), "threads": args.threads, "tree": str(Path(args.tree).resolve()),
                                  "commit": args.commit or git_commit(args.tree), "frameworks": [fw.name for fw in fws],
                                  "versions": versions(fws), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "load_before": os.getloadavg(), "repeats": args.repeats, "warmup": args.warmup}
    result["ceilings"] = measure_ceilings(Framework("numpy", sys.executable), args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="minicnn-bench-") as tmp:
        for wl in picked:
            try:
                rows.append(run_workload(script, options, wl, fws, args, tmp, seed))
            except BenchError as e:
                raise SystemExit(f"benchmark stopped: {e}") from e
            print(f"  done: {wl.name}", file=sys.stderr, flush=True)
    result["workloads"] = rows
    result["load_after"] = os.getloadavg()
    if args.json:
        write_json(args.json, result)
    previous = load_json(args.compare) if args.compare else None
    print(markdown(result, previous))
    return result


# ---------------------------------------------------------------- reporting

def write_json(path: str, data: dict) -> None:
    """Atomic write: a crash never leaves a half-written result file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _rate(rec: dict, fw: str, ceilings: dict) -> str:
    """Achieved rate and share of the matching ceiling, e.g. '120 GFLOP/s 62%'."""
    med_s = rec["stats"][fw]["median"] / 1e3
    if rec["flops"]:
        rate = rec["flops"] / med_s / 1e9
        return f"{rate:.0f} GFLOP/s {100 * rate / ceilings['sgemm_gflops']:.0f}%"
    if rec["bytes"]:
        rate = rec["bytes"] / med_s / 1e9
        return f"{rate:.1f} GB/s {100 * rate / ceilings['copy_gbs']:.0f}%"
    return "-"


def _ms(s: dict) -> str:
    return f"{s['median']:.1f} [{s['min']:.1f}-{s['max']:.1f}]"


def markdown(result: dict, previous: dict | None = None) -> str:
    """Header lines and one table; with `previous`, its minicnn median and ratio sit beside."""
    fws, ceil = result["frameworks"], result["ceilings"]
    lines = [f"### {result['title']}" + (f" ({result['label']})" if result["label"] else ""), "",
             f"- command: `{result['command']}`",
             (f"- tree: {result['tree']} at {result['commit']}; threads: {result['threads']}; "
             f"repeats {result['repeats']} (+{result['warmup']} warm-up) per framework, alternating"),
             f"- machine: {result['machine']}; " + "; ".join(f"{k}: {v}" for k, v in result["versions"].items()),
             (f"- ceilings: sgemm {ceil['sgemm_gflops']:.0f} GFLOP/s ({ceil['sgemm_n']}^3 float32), "
             f"copy {ceil['copy_gbs']:.1f} GB/s (read + write, {ceil['copy_mib']} MiB)"),
             "- load average (1/5/15 min) before: " + "/".join(f"{x:.2f}" for x in result["load_before"]) +
             ", after: " + "/".join(f"{x:.2f}" for x in result["load_after"]), ""]
    prev = {r["name"]: r for r in previous["workloads"]} if previous else {}
    plabel = (previous.get("label") or "previous") if previous else ""
    head = ["workload"] + [f"{fw} ms median [min-max]" for fw in fws]
    if len(fws) > 1:
        head += [f"ratio {fws[0]}/{fws[-1]} (medians)", "ratio (mins)", "target", "max rel diff"]
    head += [f"{fw} rate, % of ceiling" for fw in fws] + ["FLOP or bytes per call", "CPU s per wall s"]
    if previous:
        head += [f"{plabel}: {fws[0]} ms", f"{plabel}: ratio"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec in result["workloads"]:
        row = [rec["name"]] + [_ms(rec["stats"][fw]) for fw in fws]
        if len(fws) > 1:
            t = rec["target"]
            met = "" if t is None else (" yes" if rec["ratio"] <= t else " **no**")
            own = [max(v.values(), default=0.0) for k, v in rec["rel_err"].items() if "float64" in k]
            diff = f"{rec['max_rel_err']:.1e}" + (f" vs f64 ({fws[-1]} f32: {own[0]:.1e})" if own else "")
            row += [f"{rec['ratio']:.2f}", f"{rec['ratio_min']:.2f}", "-" if t is None else f"<= {t}{met}", diff]
        row += [_rate(rec, fw, ceil) for fw in fws]
        row += [f"{rec['flops'] / 1e9:.2f} GFLOP" if rec["flops"] else
                (f"{rec['bytes'] / 2**20:.0f} MiB" if rec["bytes"] else "-")]
        # near `threads` on an idle machine for BLAS-bound work; far below it: descheduled or waiting
        row += ["/".join(f"{rec['stats'][fw].get('cpu_per_wall', float('nan')):.2f}" for fw in fws)]
        if previous:
            p = prev.get(rec["name"])
            row += [_ms(p["stats"][fws[0]]) if p and fws[0] in p["stats"] else "-",
                    f"{p['ratio']:.2f}" if p and "ratio" in p else "-"]
        lines.append("| " + " | ".join(row) + " |")

    def peak(rec: dict, fw: str) -> str:
        m = rec["memory"][fw]
        grown = m["peak_rss_mib"] - m["rss_after_import_mib"]
        return f"{fw} {m['peak_rss_mib']:.0f} MiB peak (+{grown:.0f} after import)"

    mem = [f"{rec['name']}: " + ", ".join(peak(rec, fw) for fw in fws) for rec in result["workloads"]]
    lines += ["", "Peak resident memory per worker process: " + "; ".join(mem) + "."]
    return "\n".join(lines)


def _render_main() -> None:
    """`python bench/harness.py RESULT.json [--compare EARLIER.json]`: print a saved run's table."""
    p = argparse.ArgumentParser(description=_render_main.__doc__)
    p.add_argument("result")
    p.add_argument("--compare")
    a = p.parse_args()
    print(markdown(load_json(a.result), load_json(a.compare) if a.compare else None))


if __name__ == "__main__":
    _render_main()
