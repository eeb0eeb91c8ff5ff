"""minicnn.plots calls a prediction by the rule of minicnn.metrics: P(positive) >= threshold (issue 11, item 10)."""
from __future__ import annotations

import numpy as np
import pytest

from minicnn import metrics
from minicnn import plots as P

NAMES = ["normal", "pneumonia"]


def capture(monkeypatch) -> list:
    """Each figure saved: its suptitle and, per axes, title, title colour and bar colours."""
    figs = []
    real = P._save

    def save(fig, path, *a, **k):
        figs.append({"suptitle": fig._suptitle.get_text() if fig._suptitle else "",
                     "axes": [(ax.get_title(), ax.title.get_color(),
                               [tuple(round(c, 3) for c in r.get_facecolor()[:3]) for r in ax.patches])
                              for ax in fig.axes]})
        return real(fig, path, *a, **k)
    monkeypatch.setattr(P, "_save", save)
    return figs


def rgb(hex_color: str) -> tuple:
    return tuple(round(int(hex_color[i:i + 2], 16) / 255, 3) for i in (1, 3, 5))


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    images = rng.random((6, 1, 12, 12)).astype(np.float32)
    prob = np.array([0.40, 0.40, 0.20, 0.70, 0.35, 0.05])  # P(pneumonia)
    y = np.array([1, 0, 0, 1, 1, 0])
    return images, y, prob


def test_decide_matches_binary_metrics(case):
    _, y, prob = case
    for thr in (0.3, 0.5, 0.4):
        called = P.decide(prob, thr)
        m = metrics.binary_metrics(y, prob, threshold=thr)
        assert int(((called == 1) & (y == 1)).sum()) == m["tp"] and int(((called == 1) & (y == 0)).sum()) == m["fp"]
    assert P.decide(prob).tolist() == (prob >= 0.5).astype(int).tolist()  # default: 0.5, as binary_metrics
    assert P.decide(np.array([[0.2, 0.5, 0.3]])).tolist() == [1]  # multi-class: arg-max
    with pytest.raises(ValueError, match="binary"):
        P.decide(np.array([[0.2, 0.5, 0.3]]), 0.3)


def test_probability_bars_colour_by_the_threshold(case, tmp_path, monkeypatch):
    images, y, prob = case
    figs = capture(monkeypatch)
    P.plot_probability_bars(images, prob, NAMES, tmp_path / "bars.png", y_true=y, threshold=0.3)
    bar_rows = [bars for _, _, bars in figs[0]["axes"] if bars]
    assert len(bar_rows) == 6
    for i, bars in enumerate(bar_rows):
        called = int(prob[i] >= 0.3)  # 0.40 for a normal image is "pneumonia" at 0.3: red, not green
        assert bars[called] == (rgb(P.GOOD) if called == y[i] else rgb(P.BAD)), i
        assert bars[1 - called] == rgb(P.NEUTRAL)


def test_predictions_by_the_threshold_and_title_once(case, tmp_path, monkeypatch):
    images, y, prob = case
    figs = capture(monkeypatch)
    P.plot_predictions(images, y, None, NAMES, tmp_path / "pred.png", probs=prob, threshold=0.3,
                       title="Test predictions")
    suptitle = figs[0]["suptitle"]
    assert suptitle.count("true / predicted") == 1 and "threshold 0.30" in suptitle
    captions = [(t, c) for t, c, _ in figs[0]["axes"] if t]
    for i, (text, color) in enumerate(captions):
        called = int(prob[i] >= 0.3)
        assert text.split("\n")[0] == f"{NAMES[y[i]]} / {NAMES[called]}"
        assert color == (P.GOOD if called == y[i] else P.BAD)
    # predictions computed by another rule than the threshold given are refused, not drawn
    with pytest.raises(ValueError, match="disagrees"):
        P.plot_predictions(images, y, (prob >= 0.5).astype(int), NAMES, tmp_path / "bad.png", probs=prob,
                           threshold=0.3)


def test_gradcam_says_when_a_map_is_flat(tmp_path, monkeypatch):
    """A uniform Grad-CAM (an untrained model) is labelled on the image, not shown as a silent tint."""
    texts = []
    real = P._save

    def save(fig, path, *a, **k):
        texts.append([[t.get_text() for t in ax.texts] for ax in fig.axes])
        return real(fig, path, *a, **k)
    monkeypatch.setattr(P, "_save", save)
    images = np.random.default_rng(0).random((2, 1, 8, 8))
    heat = np.stack([np.zeros((7, 7)), np.random.default_rng(1).random((7, 7))])
    P.plot_gradcam(images, heat, tmp_path / "cam.png")
    flat, informative = texts[0][:2]
    assert any("flat map" in t for t in flat) and not informative
