"""minicnn.train.cli: every bad option is a one-line usage error (exit 2) naming it, the output
folder guard, and run_main's exit statuses (data error 1, Ctrl-C 130 with a working resume command)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minicnn.data import DataError
from minicnn.train import NonFiniteLossError, cli

ROOT = Path(__file__).resolve().parents[1]

# A throwaway example script: the common options, a real tiny fit with a checkpoint, and switches
# that raise each kind of error from inside main.
TOY = textwrap.dedent('''
    import argparse, sys
    import numpy as np
    import minicnn
    from minicnn import nn, optim
    from minicnn import data as D
    from minicnn.train import Callback, ModelCheckpoint, fit, cli

    class Toy(D.Dataset):
        def __init__(self, n):
            r = np.random.default_rng(0)
            self.x = r.normal(size=(n, 1, 4, 4)).astype(np.float32)
            self.targets = (self.x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
        def __len__(self):
            return len(self.x)
        def __getitem__(self, i):
            return self.x[i], int(self.targets[i])

    class CtrlC(Callback):
        def __init__(self, at):
            self.at = at
        def on_epoch_begin(self, trainer, epoch):
            if epoch + 1 == self.at:
                raise KeyboardInterrupt

    def main(argv=None):
        p = argparse.ArgumentParser(prog="toy.py")
        cli.add_common_args(p, defaults={"epochs": 3, "batch_size": 8, "workers": 0}, sizes=(4, 8),
                            outputs=("*.png",))
        p.add_argument("--fail", choices=["data", "nan", "disk", "resume", "bug", "ctrlc-early"])
        p.add_argument("--interrupt-at", type=int, default=0)
        args = cli.validate_args(p, p.parse_args(argv))
        if args.fail == "data":
            raise D.DataError("toy: /data/x.npz is damaged (BadZipFile); delete it and download it again")
        if args.fail == "nan":
            raise minicnn.train.NonFiniteLossError("loss is nan on the train data at epoch 1, batch 2: stopped")
        if args.fail == "disk":
            raise OSError(28, "No space left on device", str(args.out / "state.npz"))
        if args.fail == "resume":
            raise ValueError(f"cannot resume from {args.out / 'state.npz'}: it was saved by a different setup")
        if args.fail == "bug":
            raise ValueError("an internal bug")
        if args.fail == "ctrlc-early":
            raise KeyboardInterrupt
        minicnn.manual_seed(args.seed)
        loader = D.DataLoader(Toy(args.limit or 32), batch_size=args.batch_size, num_workers=args.workers)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        opt = optim.SGD(model.parameters(), lr=args.lr)
        best = ModelCheckpoint(str(args.out / "best.npz"), monitor="val_accuracy", verbose=False)
        hist = fit(model, loader, loader, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=args.epochs,
                   callbacks=[best, CtrlC(args.interrupt_at)], checkpoint=str(args.out / "state.npz"),
                   resume=cli.resume_path(args), verbose=0)
        (args.out / "curves.png").write_bytes(b"png")
        m = {"accuracy": hist["val_accuracy"][-1], "auc": float("nan"), "epochs_run": len(hist["loss"])}
        cli.write_run_summary(args.out, hyper=args, metrics=m, dataset="toy")
        cli.print_results(m, title="TEST (toy)", out=args.out)
        return m

    if __name__ == "__main__":
        cli.run_main(main)
''')


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.py"
    path.write_text(TOY)

    def run(*args, env=None):
        e = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
        e.pop(cli.TRACEBACK_ENV, None)
        e.update(env or {})
        return subprocess.run([sys.executable, str(path), *map(str, args)], check=False, cwd=tmp_path, env=e,
                              capture_output=True, text=True, timeout=120)
    return run


def assert_usage_error(r, option: str, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("toy.py: error: ") and option in last, last
    for w in words:
        assert w in last, last


# ---- each bad option of issue 11 item 4, in a real process -----------------------------------------
@pytest.mark.parametrize("args, option, words", [
    (["--batch-size", "0"], "--batch-size", ["at least 1", "got 0"]),
    (["--epochs", "0"], "--epochs", ["at least 1"]),
    (["--epochs", "-1"], "--epochs", ["got -1"]),
    (["--lr", "nan"], "--lr", ["finite", "nan"]),
    (["--lr", "inf"], "--lr", ["finite"]),
    (["--lr", "-1"], "--lr", ["> 0", "-1"]),
    (["--lr", "0"], "--lr", ["> 0"]),
    (["--workers", "-1"], "--workers", ["at least 0"]),
    (["--seed", "-1"], "--seed", ["at least 0"]),
    (["--limit", "0"], "--limit", ["at least 1"]),
    (["--size", "0"], "--size", ["positive"]),
    (["--size", "100"], "--size", ["not supported by toy.py", "4, 8"]),
    (["--weights", "nowhere.safetensors"], "--weights", ["nowhere.safetensors", "does not exist"]),
    (["--epochs", "abc"], "--epochs", ["invalid int value"]),  # argparse's own check
    (["--resume", "--overwrite"], "--overwrite", ["--resume"]),
])
def test_bad_option_is_one_line_usage_error(toy, args, option, words):
    assert_usage_error(toy(*args, "--out", "run"), option, *words)


def test_out_is_a_file(toy, tmp_path):
    (tmp_path / "afile").write_text("x")
    assert_usage_error(toy("--out", "afile"), "--out", "afile", "is a file")


def test_out_unwritable(toy, tmp_path):
    # a folder below a regular file can never be created, even by root (chmod would not stop root)
    (tmp_path / "afile").write_text("x")
    assert_usage_error(toy("--out", tmp_path / "afile" / "run"), "--out", "cannot write to", "afile")


def test_resume_without_state(toy, tmp_path):
    assert_usage_error(toy("--resume", "--out", "fresh"), "--resume", "state.npz does not exist",
                       "drop --resume")
    assert not (tmp_path / "fresh").exists()  # a refused --resume creates nothing
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "best.npz").write_bytes(b"x")
    assert_usage_error(toy("--resume", "--out", "half"), "--resume", "--overwrite")


def test_cuda_without_gpu(toy):
    from minicnn.backend import gpu_available
    if gpu_available():
        pytest.skip("a GPU is present: --device cuda is valid here")
    assert_usage_error(toy("--device", "cuda", "--out", "run"), "--device", "CuPy", "--device cpu")


# ---- the output folder guard, Ctrl-C and resume, end to end ----------------------------------------
def test_existing_run_is_never_overwritten_silently(toy, tmp_path):
    out = tmp_path / "run"
    r = toy("--out", out, "--epochs", "1")
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"state.npz", "best.npz", "metrics.json", "curves.png"} <= set(before)

    r = toy("--out", out, "--epochs", "1")
    assert_usage_error(r, "--out", "already holds a run", "--resume", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched

    (out / "notes.txt").write_text("mine")  # the user's own file survives --overwrite
    (out / ".state.npz.abcd1234.tmp").write_bytes(b"stale")  # a killed save's leftovers do not
    r = toy("--out", out, "--epochs", "1", "--overwrite", "--fail", "bug")  # stops right after the guard
    assert r.returncode == 1 and "Traceback" in r.stderr  # an unexpected ValueError keeps its traceback
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_ctrl_c_exits_130_and_the_printed_command_resumes(toy, tmp_path):
    out = tmp_path / "run"
    r = toy("--out", out, "--epochs", "3", "--interrupt-at", "2")
    assert r.returncode == 130, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert (out / "state.npz").is_file()
    assert not (out / "metrics.json").exists() and not (out / "curves.png").exists()  # nothing "final"
    assert "keeps the last complete epoch" in r.stderr
    cmd = r.stderr.strip().splitlines()[-1].split()
    assert cmd[-1] == "--resume" and "--out" in cmd and "--interrupt-at" in cmd
    # run the printed command (with the interruption moved out of the way): it finishes the run
    cmd[cmd.index("--interrupt-at") + 1] = "0"
    r = toy(*cmd[2:])
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["metrics"]["epochs_run"] == 3 and summary["metrics"]["auc"] is None  # NaN -> null
    assert summary["hyperparameters"]["out"] == str(out) and summary["hyperparameters"]["resume"] is True
    assert summary["dataset"] == "toy"
    assert "==== TEST (toy) ====" in r.stdout and "n/a" in r.stdout


def test_ctrl_c_before_first_epoch(toy, tmp_path):
    r = toy("--out", "run", "--fail", "ctrlc-early")
    assert r.returncode == 130 and "Traceback" not in r.stderr
    assert "nothing to resume" in r.stderr and "--resume" not in r.stderr.splitlines()[-1]


@pytest.mark.parametrize("fail, words", [
    ("data", ["/data/x.npz is damaged"]),
    ("nan", ["loss is nan", "epoch 1, batch 2"]),
    ("disk", ["No space left on device", "state.npz"]),
    ("resume", ["cannot resume from", "state.npz"]),
])
def test_user_errors_are_one_line_exit_1(toy, fail, words):
    r = toy("--out", "run", "--fail", fail)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("toy.py: error: ")
    for w in words:
        assert w in lines[0]


def test_traceback_on_request(toy):
    r = toy("--out", "run", "--fail", "data", env={cli.TRACEBACK_ENV: "1"})
    assert r.returncode == 1
    assert "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1].startswith("toy.py: error: ")


# ---- direct calls ------------------------------------------------------------------------------
def parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="direct.py")
    cli.add_common_args(p, **kw)
    return p


def test_defaults_and_paths(tmp_path):
    p = parser(defaults={"epochs": 7, "batch_size": 16, "out": str(tmp_path / "o")}, sizes=(64,))
    args = cli.validate_args(p, p.parse_args([]))
    assert (args.epochs, args.batch_size, args.lr, args.device, args.limit, args.weights) == (7, 16, 1e-3, "cpu",
                                                                                               None, None)
    assert args.out == tmp_path / "o" and args.out.is_dir() and cli.resume_path(args) is None
    with pytest.raises(TypeError, match="unknown default 'epoch'"):
        parser(defaults={"epoch": 3})


def test_min_limit_and_weights(tmp_path, capsys):
    p = parser(min_limit=4)
    with pytest.raises(SystemExit) as e:
        cli.validate_args(p, p.parse_args(["--limit", "3", "--out", str(tmp_path / "o")]))
    assert e.value.code == 2 and "argument --limit: must be at least 4, got 3" in capsys.readouterr().err
    w = tmp_path / "w.pth"
    w.write_bytes(b"x")
    args = cli.validate_args(p, p.parse_args(["--weights", str(w), "--out", str(tmp_path / "o")]))
    assert args.weights == w
    with pytest.raises(SystemExit):
        cli.validate_args(p, p.parse_args(["--weights", str(tmp_path), "--out", str(tmp_path / "o")]))
    assert "is not a file" in capsys.readouterr().err


def test_run_files_only_ours(tmp_path):
    for name in ["state.npz", "best.npz", "metrics.json", ".best.npz.k3j2h1g0.tmp", "a.png", "data.npz",
                 "notes.txt", ".hidden"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in cli.run_files(tmp_path)] == [".best.npz.k3j2h1g0.tmp", "best.npz", "metrics.json",
                                                          "state.npz"]
    assert "a.png" in [p.name for p in cli.run_files(tmp_path, ["*.png"])]
    assert "sub.png" not in [p.name for p in cli.run_files(tmp_path, ["*.png"])]


def test_run_main_maps_exceptions(capsys):
    def raising(exc):
        def main(argv):
            raise exc
        return main

    for exc in [DataError("d: /x.npz is damaged"), NonFiniteLossError("loss is nan"), FileNotFoundError("no /y"),
                OSError(28, "No space left on device")]:
        with pytest.raises(SystemExit) as e:
            cli.run_main(raising(exc), [])
        assert e.value.code == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(exc) in err
    with pytest.raises(SystemExit) as e:
        cli.run_main(raising(KeyboardInterrupt()), [])
    assert e.value.code == 130 and "interrupted before the run started" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.run_main(raising(ZeroDivisionError("bug")), [])
    with pytest.raises(ValueError, match="other"):
        cli.run_main(raising(ValueError("other")), [])
    assert cli.run_main(lambda argv: argv, ["--x"]) == ["--x"]


def test_rerun_command():
    cmd = cli.rerun_command(["--epochs", "5", "--overwrite"], "runs/a b")
    assert cmd.endswith("--epochs 5 --out 'runs/a b' --resume")
    assert cli.rerun_command(["--out=r", "--resume"], "r").endswith("--out=r --resume")
    assert cli.rerun_command(["--out", "r"], "r", resume=False, overwrite=True).endswith("--out r --overwrite")


def test_summary_and_results_block(tmp_path):
    ns = argparse.Namespace(out=tmp_path, lr=1e-3, weights=None)
    m = {"accuracy": np.float32(0.875), "auc": float("nan"), "confusion": np.array([[3, 1], [0, 4]]),
         "per_class": {"normal": 0.75, "pneumonia": 1.0}}
    path = cli.write_run_summary(tmp_path, hyper=ns, metrics=m, dataset="toy")
    text = path.read_text()
    assert "NaN" not in text
    s = json.loads(text)
    assert s["hyperparameters"] == {"out": str(tmp_path), "lr": 1e-3, "weights": None}
    assert s["metrics"]["auc"] is None and s["metrics"]["confusion"] == [[3, 1], [0, 4]]
    assert s["dataset"] == "toy" and s["minicnn"] and "command" in s
    block = cli.format_results(m, title="TEST")
    assert block.splitlines() == [
        "==== TEST ====",
        "  accuracy   0.8750",
        "  auc        n/a (undefined)",
        "  confusion  [3, 1]",
        "             [0, 4]",
        "  per_class:",
        "    normal     0.7500",
        "    pneumonia  1.0000",
    ]
