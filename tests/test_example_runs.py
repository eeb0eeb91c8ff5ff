"""examples/pneumonia_cnn.py keeps the user's run (issue 11): no silent overwrite, Ctrl-C is not success,
resume refuses a run without its best weights and stretches the schedule over new epochs, metrics.json
is strict JSON, and every plot calls a prediction by the threshold the metrics use."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minicnn import plots as P

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "pneumonia_cnn.py"
FAST = ["--synthetic", "--size", "28", "--limit", "8", "--batch-size", "4", "--workers", "0"]


def env() -> dict:
    e = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    e.pop("MINICNN_TRACEBACK", None)
    return e


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *FAST, *args], env=env(), capture_output=True, text=True,
                          timeout=300)


def strict_json(path: Path) -> dict:
    """json.loads that refuses NaN/Infinity, as any non-Python JSON reader does."""
    def refuse(word: str) -> None:
        raise ValueError(f"{path} is not strict JSON: {word}")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def done_run(tmp_path_factory) -> Path:
    """One finished 2-epoch run; tests copy it rather than train again."""
    out = tmp_path_factory.mktemp("base") / "run"
    p = run(["--epochs", "2", "--out", str(out)])
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def copy_run(done_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(done_run, out)
    return out


def test_rerun_never_overwrites_a_run(done_run, tmp_path):
    out = copy_run(done_run, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    p = run(["--epochs", "1", "--out", str(out)])
    assert p.returncode == 2 and "Traceback" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert "argument --out" in last and "--resume" in last and "--overwrite" in last, last
    assert {q.name: q.read_bytes() for q in out.iterdir()} == before  # not one byte changed
    # --overwrite starts again: a fresh 1-epoch run replaces the 2-epoch one
    p = run(["--epochs", "1", "--out", str(out), "--overwrite"])
    assert p.returncode == 0, p.stderr[-3000:]
    assert strict_json(out / "metrics.json")["epochs_run"] == 1


def test_ctrl_c_exits_130_with_the_resume_command_and_no_final_results(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *FAST, "--epochs", "300", "--out", str(out)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / "state.npz").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (stdout[-2000:], stderr[-3000:])
    assert "Traceback" not in stderr
    assert "--resume" in stderr and str(out) in stderr, stderr
    assert not (out / "metrics.json").exists()  # not written as if the run had finished
    for name in ("training_curves.png", "predictions.png", "probabilities.png", "roc_curve.png"):
        assert not (out / name).exists(), name
    assert (out / "state.npz").exists()


def test_resume_without_best_weights_is_one_line(done_run, tmp_path):
    out = copy_run(done_run, tmp_path)
    (out / "metrics.json").unlink()
    (out / "best.npz").unlink()
    p = run(["--epochs", "3", "--out", str(out), "--resume"])
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-3000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("pneumonia_cnn.py: error: ") and str(out / "best.npz") in last, last
    assert "Epoch 3/3" not in p.stdout  # refused before training, not after it
    assert not (out / "metrics.json").exists()


def test_resume_with_more_epochs_stretches_the_cosine_schedule(done_run, tmp_path):
    """A 2-epoch run resumed with --epochs 4 anneals over 4 epochs: no epoch runs at lr 0."""
    out = copy_run(done_run, tmp_path)
    p = run(["--epochs", "4", "--out", str(out), "--resume"])
    assert p.returncode == 0, p.stderr[-3000:]
    saved = strict_json(out / "metrics.json")
    lrs = saved["history"]["lr"]
    assert saved["epochs_run"] == 4 and len(lrs) == 4
    assert min(lrs) > 1e-5, lrs
    assert lrs[:2] == pytest.approx([1e-3, 1e-3 * (1 + math.cos(math.pi / 2)) / 2])  # the first 2 epochs as run


def test_resume_with_a_mismatched_state_is_one_line(done_run, tmp_path):
    out = copy_run(done_run, tmp_path)
    (out / "metrics.json").unlink()
    p = subprocess.run([sys.executable, str(SCRIPT), *[a if a != "28" else "64" for a in FAST], "--epochs", "3",
                        "--out", str(out), "--resume"], env=env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-3000:]
    error = p.stderr[p.stderr.index("pneumonia_cnn.py: error: "):]
    assert error.startswith(f"pneumonia_cnn.py: error: cannot resume from {out / 'state.npz'}"), error
    assert "12.0.weight" in error and len(error.splitlines()) <= 3  # the first mismatched tensor, briefly


# ---- in-process: what the plots and metrics.json say ----------------------------------------------
@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("pneumonia_example_runs", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_metrics_json_is_strict_with_null_for_undefined(example, tmp_path, monkeypatch):
    real = example.binary_metrics

    def undefined_auc(*a, **k):
        m = real(*a, **k)
        m["auc"] = float("nan")  # as for a split the model cannot rank
        return m
    monkeypatch.setattr(example, "binary_metrics", undefined_auc)
    out = tmp_path / "run"
    example.main([*FAST, "--epochs", "1", "--out", str(out)])
    saved = strict_json(out / "metrics.json")
    assert saved["test"]["auc"] is None and saved["test_at_0.5"]["auc"] is None
    assert saved["hyperparameters"]["epochs"] == 1 and saved["metrics"] == saved["test"]


def capture_figures(monkeypatch) -> dict:
    """Record, for every PNG the plots write, what a reader sees: titles, bar colours and widths, legends."""
    seen: dict = {}
    real = P._save

    def save(fig, path, *a, **k):
        axes = []
        for ax in fig.axes:
            bars = [(tuple(round(c, 3) for c in r.get_facecolor()[:3]), r.get_width()) for r in ax.patches]
            legend = ax.get_legend()
            axes.append({"title": ax.get_title(), "title_color": ax.title.get_color(), "bars": bars,
                         "legend": [t.get_text() for t in legend.get_texts()] if legend else []})
        seen[Path(path).name] = {"suptitle": fig._suptitle.get_text() if fig._suptitle else "", "axes": axes}
        return real(fig, path, *a, **k)
    monkeypatch.setattr(P, "_save", save)
    return seen


def rgb(hex_color: str) -> tuple:
    return tuple(round(int(hex_color[i:i + 2], 16) / 255, 3) for i in (1, 3, 5))


def test_every_plot_uses_the_metrics_threshold(example, tmp_path, monkeypatch):
    seen = capture_figures(monkeypatch)
    import minicnn.gradcam
    maps = []
    real_cam = minicnn.gradcam.grad_cam

    def grad_cam(*a, **k):
        maps.append(np.asarray(real_cam(*a, **k)))
        return maps[-1]
    monkeypatch.setattr(minicnn.gradcam, "grad_cam", grad_cam)
    threshold = 0.3  # far from 0.5, so an arg-max rule would call some images differently
    result = example.main([*FAST, "--epochs", "1", "--threshold", str(threshold), "--out", str(tmp_path / "run")])
    assert result["threshold"] == threshold
    # probabilities.png: the coloured bar is the class P(pneumonia) >= threshold calls, green iff that is right
    bar_axes = [a for a in seen["probabilities.png"]["axes"] if a["bars"]]
    image_axes = [a for a in seen["probabilities.png"]["axes"] if a["title"].startswith("true: ")]
    assert len(bar_axes) == len(image_axes) == 6
    called_by_bars = []
    for bars, img in zip(bar_axes, image_axes):
        (c_normal, p_normal), (c_pneu, p_pneu) = bars["bars"][:2]
        called = int(p_pneu >= threshold)
        truth = example.CLASSES.index(img["title"].removeprefix("true: "))
        expected = rgb(P.GOOD) if called == truth else rgb(P.BAD)
        assert (c_normal, c_pneu)[called] == expected and (c_normal, c_pneu)[1 - called] == rgb(P.NEUTRAL)
        called_by_bars.append(called)
    # predictions.png: the same first six calls, and its title says "true / predicted" once
    pred = seen["predictions.png"]
    assert pred["suptitle"].count("true / predicted") == 1 and f"threshold {threshold:.2f}" in pred["suptitle"]
    captions = [a["title"] for a in pred["axes"] if a["title"]][:6]
    assert [example.CLASSES.index(c.split("\n")[0].split(" / ")[1]) for c in captions] == called_by_bars
    # the ROC's marked operating point is the metrics' threshold
    assert any(f"threshold {threshold:g}" in t for t in seen["roc_curve.png"]["axes"][0]["legend"])
    # and the confusion matrix / metrics count the same calls (recall and specificity at that threshold)
    cm = np.array(result["test_confusion_matrix"])
    assert result["test"]["recall"] == pytest.approx(cm[1, 1] / cm[1].sum())
    # gradcam.png explains a layer whose map is >= 7x7 at 28 px. (Whether the maps vary depends on
    # what one epoch on 8 phantoms happened to learn; tests/test_gradcam.py checks that on a model
    # that has learned.)
    (heat,) = maps
    assert heat.shape[-2:] >= (7, 7) and "gradcam.png" in seen


def test_weights_start_from_an_earlier_run(done_run, tmp_path):
    p = run(["--epochs", "1", "--out", str(tmp_path / "again"), "--weights", str(done_run / "best.npz")])
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"initial weights from {done_run / 'best.npz'}: loaded" in p.stdout
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    p = run(["--epochs", "1", "--out", str(tmp_path / "bad"), "--weights", str(bad)])
    assert p.returncode == 1 and "Traceback" not in p.stderr and str(bad) in p.stderr
