"""Command-line plumbing shared by the example scripts: options, checks, errors, the end of a run.

Every example script follows this pattern, so its body reads as the tutorial it rebuilds
(parse -> data -> model -> training -> evaluation -> plots) with no plumbing in between::

    from minicnn.train import cli

    def main(argv=None):
        p = argparse.ArgumentParser(description=__doc__)
        cli.add_common_args(p, defaults={"epochs": 20, "lr": 1e-3, "out": "runs/x"}, sizes=(64, 224),
                            outputs=("*.png",))                # files of ours that --overwrite may delete
        args = cli.validate_args(p, p.parse_args(argv))        # bad option: exit 2; args.out is a Path
        splits = ...                                            # data (DataError etc. -> exit 1 via run_main)
        model, opt = ...                                        # model
        history = fit(..., checkpoint=str(args.out / "state.npz"), resume=cli.resume_path(args))
        metrics = ...; plots...                                 # evaluation, plots (never reached on Ctrl-C)
        cli.write_run_summary(args.out, hyper=args, metrics=metrics, dataset=name)
        cli.print_results(metrics, title=f"TEST ({n} images)", out=args.out)

    if __name__ == "__main__":
        cli.run_main(main)

Exit statuses: 0 done; 1 a problem with the data or the machine, as one line on stderr naming the
file (`DataError`, `DownloadError`, `CheckpointError` and "cannot resume ...", `NonFiniteLossError`,
`FileNotFoundError` and any other `OSError`, e.g. a full disk); 2 a bad option (argparse's usage
and one error line naming the option); 130 Ctrl-C, printing what was saved and the exact command
that resumes (the script's metrics and plots are not written: the interrupt skips them). Any other
exception is a bug and keeps its traceback. MINICNN_TRACEBACK=1 prints the traceback of the
one-line errors too, for debugging; the exit status stays the same.

The output folder is the user's work: a folder holding a run (state.npz, best.npz or
metrics.json) is refused unless --resume (continue it from OUT/state.npz) or --overwrite (delete
that run's own files: those three, their temp files and the script's declared `outputs`; nothing
else) is given.
"""
from __future__ import annotations

import argparse
import fnmatch
import math
import os
import re
import shlex
import sys
import tempfile
import time
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

RUN_MARKERS = ("state.npz", "best.npz", "metrics.json")  # their presence means "a run lives here"
TRACEBACK_ENV = "MINICNN_TRACEBACK"
EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

DEFAULTS: dict[str, Any] = {"data": None, "size": None, "epochs": 10, "batch_size": 32, "lr": 1e-3,
                            "device": "cpu", "workers": 2, "seed": 0, "out": "runs/run", "limit": None,
                            "weights": None}

T = TypeVar("T")


@dataclass(frozen=True)
class _Spec:
    """What add_common_args was told, for validate_args: allowed sizes, extra outputs, smallest --limit."""
    sizes: tuple[int, ...] | None
    outputs: tuple[str, ...]
    min_limit: int


_specs: weakref.WeakKeyDictionary[argparse.ArgumentParser, _Spec] = weakref.WeakKeyDictionary()
_active: dict[str, Any] = {}  # the last validated run (out folder, prog), for run_main's Ctrl-C message


# ---- options -----------------------------------------------------------------------------------
def add_common_args(parser: argparse.ArgumentParser, defaults: Mapping[str, Any] | None = None, *,
                    sizes: Sequence[int] | None = None, outputs: Sequence[str] = (),
                    min_limit: int = 1) -> argparse.ArgumentParser:
    """Add --data --size --epochs --batch-size --lr --device --workers --seed --out --resume --overwrite
    --limit --weights to `parser`, with the script's `defaults` (keys are dest names: batch_size, ...).

    `sizes`: the input sizes the script supports (--size must be one of them); `outputs`: file
    names or glob patterns the script writes into --out besides the run markers (plots), which
    --overwrite also deletes; `min_limit`: the smallest --limit that makes sense (e.g. 4 = two
    images per class).
    """
    d = dict(DEFAULTS)
    for k, v in (defaults or {}).items():
        if k not in DEFAULTS:
            raise TypeError(f"add_common_args: unknown default {k!r}; known: {sorted(DEFAULTS)}")
        d[k] = v
    size_help = "input size in pixels" + (f", one of {', '.join(map(str, sizes))}" if sizes else "")
    size_help += f" (default: {d['size']})" if d["size"] is not None else " (default: the data's own size)"
    g = parser.add_argument_group("common options")
    g.add_argument("--data", default=d["data"], help="dataset file or folder (default: %(default)s)")
    g.add_argument("--size", type=int, default=d["size"], help=size_help)
    g.add_argument("--epochs", type=int, default=d["epochs"], help="epochs to train (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=d["batch_size"], help="images per batch (default: %(default)s)")
    g.add_argument("--lr", type=float, default=d["lr"], help="learning rate (default: %(default)s)")
    g.add_argument("--device", choices=["cpu", "cuda"], default=d["device"],
                   help="cpu (NumPy) or cuda (CuPy, NVIDIA GPU) (default: %(default)s)")
    g.add_argument("--workers", type=int, default=d["workers"],
                   help="data-loading threads, 0 = load in the main thread (default: %(default)s)")
    g.add_argument("--seed", type=int, default=d["seed"], help="random seed (default: %(default)s)")
    g.add_argument("--out", default=d["out"], help="output folder (default: %(default)s)")
    g.add_argument("--resume", action="store_true", help="continue the run in OUT from OUT/state.npz")
    g.add_argument("--overwrite", action="store_true",
                   help="delete the previous run's files in OUT and start again")
    g.add_argument("--limit", type=int, default=d["limit"], help="use at most N images per split (smoke runs)")
    g.add_argument("--weights", default=d["weights"],
                   help="pretrained weights (.safetensors or .pth) to start from (default: train from scratch)")
    _specs[parser] = _Spec(tuple(int(s) for s in sizes) if sizes else None, tuple(outputs), int(min_limit))
    return parser


def validate_args(parser: argparse.ArgumentParser, args: argparse.Namespace, *,
                  sizes: Sequence[int] | None = None) -> argparse.Namespace:
    """Check every common option; a bad one exits with status 2 via `parser.error` naming it.

    Then makes --out (a Path afterwards) and applies the output-folder guard: an existing run is
    refused unless --resume (needs OUT/state.npz) or --overwrite (deletes that run's own files:
    the run markers, their temp files and the script's declared outputs, nothing else).
    `sizes` overrides the set given to add_common_args.
    """
    spec = _specs.get(parser, _Spec(None, (), 1))
    allowed = tuple(int(s) for s in sizes) if sizes else spec.sizes

    def bad(option: str, message: str) -> None:
        parser.error(f"argument {option}: {message}")

    def at_least(option: str, value: int | None, low: int) -> None:
        if value is not None and value < low:
            bad(option, f"must be at least {low}, got {value}")

    at_least("--epochs", args.epochs, 1)
    at_least("--batch-size", args.batch_size, 1)
    at_least("--workers", args.workers, 0)
    at_least("--seed", args.seed, 0)
    at_least("--limit", args.limit, spec.min_limit)
    if not (math.isfinite(args.lr) and args.lr > 0):
        bad("--lr", f"must be a finite number > 0, got {args.lr}")
    if args.size is not None:
        if args.size < 1:
            bad("--size", f"must be a positive number of pixels, got {args.size}")
        if allowed and args.size not in allowed:
            bad("--size", f"{args.size} is not supported by {parser.prog}; choose one of "
                          f"{', '.join(map(str, allowed))}")
    if args.weights is not None:
        w = Path(args.weights).expanduser()
        if not w.exists():
            bad("--weights", f"{w} does not exist")
        if not w.is_file():
            bad("--weights", f"{w} is not a file (expected a .safetensors or .pth file)")
        args.weights = w
    if args.device == "cuda":
        # asked only when cuda is requested: probing the driver may be slow
        from ..backend import gpu_available
        if not gpu_available():
            bad("--device", "cuda needs CuPy and an NVIDIA GPU (pip install 'minicnn[gpu]') and none was found; "
                            "use --device cpu")
    if args.resume and args.overwrite:
        bad("--overwrite", "not allowed with --resume (continue the run, or start it again, not both)")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        bad("--out", f"{out} is a file, not a folder")
    doomed = _guard_run(out, args.resume, args.overwrite, spec.outputs, bad)
    _make_writable_folder(out, bad)
    for path in doomed:
        path.unlink()
    args.out = out
    _active.update(out=out, prog=parser.prog)
    return args


def _guard_run(out: Path, resume: bool, overwrite: bool, outputs: Sequence[str],
               bad: Callable[[str, str], None]) -> list[Path]:
    """Refuse to clobber a run in `out`; returns the files --overwrite is to delete."""
    found = [m for m in RUN_MARKERS if (out / m).exists()]
    if resume:
        if not (out / "state.npz").is_file():
            then = "start it again with --overwrite" if found else "drop --resume to start a new run"
            bad("--resume", f"nothing to continue: {out / 'state.npz'} does not exist; {then}")
        return []
    if not found:
        return []
    if not overwrite:
        bad("--out", f"{out} already holds a run ({', '.join(found)}); pass --resume to continue it, "
                     f"--overwrite to delete it and start again, or choose another --out")
    return run_files(out, outputs)


def _make_writable_folder(out: Path, bad: Callable[[str, str], None]) -> None:
    """Create the output folder and prove it is writable by writing (permission bits do not stop root)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".minicnn-write-test."):
            pass
    except OSError as e:
        bad("--out", f"cannot write to {out} ({e.strerror or e})")


def run_files(out: Path, outputs: Sequence[str] = ()) -> list[Path]:
    """The files in `out` that a run made: run markers, their leftover temp files, and `outputs` (globs)."""
    temp = re.compile(r"^\.(" + "|".join(re.escape(m) for m in RUN_MARKERS) + r")\..+\.tmp$")
    found = []
    for path in sorted(out.iterdir()):
        name = path.name
        if not (path.is_file() or path.is_symlink()):
            continue
        if name in RUN_MARKERS or temp.match(name) or any(fnmatch.fnmatchcase(name, g) for g in outputs):
            found.append(path)
    return found


def resume_path(args: argparse.Namespace) -> str | None:
    """OUT/state.npz when --resume was given, else None: the `resume=` argument of `fit`."""
    return str(Path(args.out) / "state.npz") if args.resume else None


# ---- errors ------------------------------------------------------------------------------------
def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that describe the user's data or machine, not a bug in the code."""
    from ..data.errors import DataError, DownloadError
    from ..serialization import CheckpointError
    from ..weights.errors import WeightsError
    from .callbacks import NonFiniteLossError
    return (DataError, DownloadError, CheckpointError, WeightsError, NonFiniteLossError, OSError)


def _is_user_error(e: BaseException) -> bool:
    if isinstance(e, _user_errors()):
        return True
    return isinstance(e, ValueError) and str(e).startswith("cannot resume")


def rerun_command(argv: Sequence[str] | None = None, out: str | os.PathLike | None = None, *,
                  resume: bool = True, overwrite: bool = False) -> str:
    """This script's command line again with --resume (or --overwrite) set and --out made explicit."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("--overwrite", "--resume")]
    if out is not None and not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", os.fspath(out)]
    args += ["--resume"] * resume + ["--overwrite"] * overwrite
    return shlex.join([Path(sys.executable).name, sys.argv[0] or "script.py"] + args)


def _interrupted_message(argv: Sequence[str] | None, prog: str) -> str:
    out = _active.get("out")
    if out is None:
        return f"{prog}: interrupted before the run started; nothing was written"
    state = Path(out) / "state.npz"
    if state.is_file():
        return (f"{prog}: interrupted; {state} keeps the last complete epoch (no final metrics or plots were "
                f"written). Continue with:\n  {rerun_command(argv, out)}")
    again = rerun_command(argv, out, resume=False, overwrite=bool(run_files(Path(out))))
    return f"{prog}: interrupted before the first epoch was saved; nothing to resume. Start again with:\n  {again}"


def run_main(main: Callable[[list[str] | None], T], argv: Sequence[str] | None = None) -> T:
    """Call `main(argv)` and turn a data/environment error into one line + exit 1, Ctrl-C into exit 130.

    Other exceptions (bugs) propagate with their traceback; MINICNN_TRACEBACK=1 prints the
    traceback of the one-line errors too.
    """
    prog = Path(sys.argv[0]).name or "minicnn"
    show = os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
    _active.clear()
    try:
        return main(None if argv is None else list(argv))
    except KeyboardInterrupt as e:
        exc: BaseException = e
        code, message = EXIT_INTERRUPTED, _interrupted_message(argv, prog)
    except Exception as e:
        if not _is_user_error(e):
            raise
        exc, code, message = e, EXIT_DATA, f"{prog}: error: {str(e) or type(e).__name__}"
    sys.stdout.flush()
    if show:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(code)


# ---- the end of a run --------------------------------------------------------------------------
def _plain(obj: Any) -> Any:
    """Namespaces and mappings to dicts, paths to strings (the rest is json_safe's job)."""
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_run_summary(out: str | os.PathLike, *, hyper: Any, metrics: Mapping[str, Any],
                      name: str = "metrics.json", **info: Any) -> Path:
    """Write OUT/metrics.json: {"hyperparameters", "metrics", **info, "command", "minicnn", "finished"}.

    Strict JSON (NaN/Inf -> null) written atomically; `hyper` may be the argparse Namespace.
    """
    from .. import __version__
    from ..jsonio import write_json
    path = Path(out) / name
    summary = {"hyperparameters": _plain(hyper), "metrics": _plain(metrics), **_plain(info),
               "command": shlex.join([Path(sys.executable).name, sys.argv[0]] + sys.argv[1:]),
               "minicnn": __version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_json(path, summary)
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "n/a" if v is None else str(v)
    if isinstance(v, float):
        return f"{v:.4f}" if math.isfinite(v) else "n/a (undefined)"
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return _fmt(v.item())
    return str(v)


def format_results(metrics: Mapping[str, Any], title: str = "results") -> str:
    """The run's final numbers as one aligned block; nested mappings indented, matrices as rows."""
    lines = [f"==== {title} ===="]

    def walk(m: Mapping[str, Any], indent: str) -> None:
        width = max((len(str(k)) for k in m), default=0)
        for k, v in m.items():
            if isinstance(v, Mapping):
                lines.append(f"{indent}{k}:")
                walk(v, indent + "  ")
                continue
            rows = v.tolist() if hasattr(v, "tolist") and getattr(v, "ndim", 0) == 2 else v
            if isinstance(rows, (list, tuple)) and rows and all(isinstance(r, (list, tuple)) for r in rows):
                lines.append(f"{indent}{k!s:<{width}}  " + str(list(rows[0])))
                lines.extend(f"{indent}{'':<{width}}  {list(r)}" for r in rows[1:])
            else:
                lines.append(f"{indent}{k!s:<{width}}  {_fmt(v)}")

    walk(metrics, "  ")
    return "\n".join(lines)


def print_results(metrics: Mapping[str, Any], *, title: str = "results", out: os.PathLike | str | None = None,
                  file: TextIO | None = None) -> None:
    """Print `format_results` and, with `out`, which files the run left there."""
    text = format_results(metrics, title)
    if out is not None:
        files = sorted(p.name for p in Path(out).iterdir() if p.is_file() and not p.name.startswith("."))
        text += f"\n  files in {out}: {', '.join(files)}"
    print("\n" + text, file=file or sys.stdout, flush=True)
