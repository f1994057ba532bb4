"""Calibration: does 0.9 confidence mean 90% right? Temperature scaling, ECE, reliability diagrams.

The model ends in a softmax, so it outputs probabilities, not logits. Their logarithms serve as
logits (softmax(log p) = p), and temperature scaling divides them by one number T fitted on the
validation set: softmax(log p / T). T > 1 softens over-confident predictions, T < 1 sharpens
under-confident ones; the predicted class (the argmax) never changes, so neither does accuracy.
"""

from __future__ import annotations

from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .analysis import _checked

TINY = 1e-12  # probabilities are clipped to this before taking logarithms
DEFAULT_BINS = 15


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) for each row: the probabilities after temperature scaling."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), TINY, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean of -log p(true class): the cross-entropy loss, lower is better."""
    probabilities, labels = _checked(probabilities, labels)
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, TINY, 1.0))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray,
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T minimising the NLL of `labels` (fit it on validation, never on test)."""
    from scipy.optimize import minimize_scalar

    probabilities, labels = _checked(probabilities, labels)
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on zero images")
    def nll(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(probabilities, np.exp(log_t)), labels)

    result = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])),
                             method="bounded", options={"xatol": 1e-4})
    # flat (e.g. uniform predictions): any T fits as well as none, so report none
    return 1.0 if nll(0.0) - result.fun < 1e-9 else float(np.exp(result.x))


class CalibrationBins(NamedTuple):
    """Equal-width confidence bins: edges, and per bin the count, mean confidence and accuracy."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray  # mean confidence of the images in each bin (NaN if empty)
    accuracy: np.ndarray  # share of correct predictions in each bin (NaN if empty)


def calibration_bins(probabilities: np.ndarray, labels: np.ndarray,
                     bins: int = DEFAULT_BINS) -> CalibrationBins:
    """Group predictions by confidence into `bins` equal-width bins (lo, hi] over [0, 1]."""
    probabilities, labels = _checked(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
    return CalibrationBins(edges, counts, mean_confidence, accuracy)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = DEFAULT_BINS) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    binned = calibration_bins(probabilities, labels, bins)
    if binned.counts.sum() == 0:
        return 0.0
    used = binned.counts > 0
    gaps = np.abs(binned.accuracy[used] - binned.confidence[used])
    return float(np.sum(binned.counts[used] * gaps) / binned.counts.sum())


def _draw_reliability(ax, probabilities: np.ndarray, labels: np.ndarray, bins: int,
                      title: str) -> None:
    """One reliability diagram: accuracy per confidence bin against the diagonal."""
    binned = calibration_bins(probabilities, labels, bins)
    width = binned.edges[1] - binned.edges[0]
    used = binned.counts > 0
    ax.bar(binned.edges[:-1][used], binned.accuracy[used], width=width, align="edge",
           color="tab:blue", edgecolor="white", label="accuracy in the bin")
    ax.bar(binned.edges[:-1][used], binned.confidence[used] - binned.accuracy[used],
           bottom=binned.accuracy[used], width=width, align="edge", color="tab:red", alpha=0.3,
           edgecolor="tab:red", label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ece = expected_calibration_error(probabilities, labels, bins)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (probability of the predicted class)",
           ylabel="accuracy", title=f"{title}: ECE {ece:.3f}")
    ax.legend(loc="upper left", fontsize=8)


def plot_reliability_diagram(probabilities: np.ndarray, labels: np.ndarray,
                             scaled: np.ndarray | None = None, *, bins: int = DEFAULT_BINS,
                             titles: tuple[str, str] = ("before", "after temperature scaling")
                             ) -> Figure:
    """Reliability diagram of `probabilities`, and beside it of `scaled` ones when given."""
    panels = [(probabilities, titles[0])] + ([(scaled, titles[1])] if scaled is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    for ax, (values, title) in zip(axes.flat, panels):
        _draw_reliability(ax, values, labels, bins, title)
    fig.tight_layout()
    return fig
