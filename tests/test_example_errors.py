"""examples/pneumonia_cnn.py on every bad input of issue 11: one line, no traceback, the right exit status.

Each case runs the real script in a subprocess: status 2 (argparse usage + one line naming the
option) for a bad option, 1 (one line naming the file or folder) for bad data, and nothing
written into --out beyond what was there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "pneumonia_cnn.py"


def run(args: list[str], tmp_path: Path, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    """The example with `args` (fast settings appended), offline, with its own empty data folder."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("MINICNN_TRACEBACK", None)
    empty = tmp_path / "no-data"
    empty.mkdir(exist_ok=True)
    env["MINICNN_DATA_DIR"] = str(data_dir or empty)
    fast = ["--epochs", "1", "--workers", "0", "--batch-size", "4", "--limit", "4"]
    given = {a for a in args if a.startswith("--")}
    extra = []
    for option, value in zip(fast[::2], fast[1::2]):
        if option not in given:
            extra += [option, value]
    if "--out" not in given:
        extra += ["--out", str(tmp_path / "out")]
    return subprocess.run([sys.executable, str(SCRIPT), *args, *extra], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)


def assert_one_line(p: subprocess.CompletedProcess, status: int, *named: str) -> str:
    """Exit `status`, no traceback, the last stderr line is the error and names every string in `named`."""
    assert p.returncode == status, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("pneumonia_cnn.py: error: "), p.stderr
    for s in named:
        assert s in last, (s, last)
    return last


def npz(path: Path, labels: dict[str, np.ndarray], side: int = 28) -> Path:
    """A MedMNIST-style .npz with the given labels per split (random images)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, y in labels.items():
        arrays[f"{split}_images"] = rng.integers(0, 255, (len(y), side, side), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.asarray(y, np.int64).reshape(-1, 1)
    np.savez(path, **arrays)
    return path


def two_class(n: int = 8) -> np.ndarray:
    return np.arange(n) % 2


# ---- bad options: exit 2, the option named ---------------------------------------------------------
@pytest.mark.parametrize("args, option", [
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-1"], "--epochs"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--workers", "-1"], "--workers"),
    (["--seed", "-1"], "--seed"),
    (["--size", "100"], "--size"),
    (["--limit", "2"], "--limit"),
    (["--threshold", "1.5"], "--threshold"),
    (["--val-fraction", "0"], "--val-fraction"),
])
def test_bad_option(tmp_path, args, option):
    p = run(args, tmp_path)
    assert_one_line(p, 2, f"argument {option}")
    assert "usage:" in p.stderr
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_missing_data_path(tmp_path):
    assert_one_line(run(["--data", str(tmp_path / "nowhere.npz")], tmp_path), 2, "--data",
                    str(tmp_path / "nowhere.npz"))


def test_out_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    assert_one_line(run(["--out", str(tmp_path / "f")], tmp_path), 2, "--out", str(tmp_path / "f"))


def test_out_unwritable(tmp_path):
    (tmp_path / "f").write_text("x")  # a folder inside a file cannot be made, even by root
    assert_one_line(run(["--out", str(tmp_path / "f" / "run")], tmp_path), 2, "--out", "cannot write")


def test_resume_without_state(tmp_path):
    assert_one_line(run(["--resume", "--synthetic"], tmp_path), 2, "--resume", "state.npz")


def test_resume_with_a_damaged_state(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "state.npz").write_bytes(b"PK\x03\x04 not a checkpoint")
    p = run(["--resume", "--synthetic", "--size", "28"], tmp_path)
    assert_one_line(p, 1, str(out / "state.npz"))
    assert not (out / "metrics.json").exists()


# ---- bad data: exit 1, the file or folder named, never a fallback onto phantoms -------------------------
def test_folder_without_test(tmp_path):
    root = tmp_path / "chest_xray"
    for c in ("NORMAL", "PNEUMONIA"):
        (root / "train" / c).mkdir(parents=True)
    p = run(["--data", str(root)], tmp_path)
    assert_one_line(p, 1, str(root), "test/")


def test_jpeg_files_that_are_not_images(tmp_path):
    root = tmp_path / "chest_xray"
    for split in ("train", "test"):
        for c in ("NORMAL", "PNEUMONIA"):
            (root / split / c).mkdir(parents=True)
            for i in range(6):
                (root / split / c / f"x{i}.jpeg").write_text("this is not a JPEG")
    p = run(["--data", str(root), "--size", "28", "--val-fraction", "0.5"], tmp_path)
    last = assert_one_line(p, 1, str(root / "train"), ".jpeg")
    assert "cannot read image" in last


@pytest.mark.parametrize("kind", ["three-class", "one-class", "empty"])
def test_npz_wrong_for_a_binary_model(tmp_path, kind):
    labels = {"three-class": np.arange(9) % 3, "one-class": np.zeros(8, np.int64),
              "empty": np.zeros(0, np.int64)}[kind]
    path = npz(tmp_path / f"{kind}.npz", {"train": labels, "val": two_class(), "test": two_class()})
    p = run(["--data", str(path)], tmp_path)
    last = assert_one_line(p, 1, str(path))
    assert {"three-class": "3-class", "one-class": "no samples of class", "empty": "holds no samples"}[kind] in last
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_truncated_npz_given_as_data(tmp_path):
    good = npz(tmp_path / "good.npz", {s: two_class() for s in ("train", "val", "test")})
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[:300])
    assert_one_line(run(["--data", str(bad)], tmp_path), 1, str(bad), "damaged")


@pytest.mark.parametrize("no_fallback", [False, True])
def test_damaged_cached_file_is_an_error_not_phantoms(tmp_path, no_fallback):
    """A truncated pneumoniamnist.npz in the data folder: exit 1 naming it, with or without --no-fallback."""
    cache = tmp_path / "cache"
    cache.mkdir()
    good = npz(tmp_path / "good.npz", {s: two_class() for s in ("train", "val", "test")})
    (cache / "pneumoniamnist.npz").write_bytes(good.read_bytes()[:300])
    p = run(["--no-fallback"] * no_fallback, tmp_path, data_dir=cache)
    assert_one_line(p, 1, str(cache / "pneumoniamnist.npz"))
    assert "SYNTHETIC" not in p.stdout and "phantom" not in p.stdout.lower()
