"""Error analysis of test predictions: confident mistakes, confidence when right or wrong, pairs.

Everything works on the `probabilities` (N, classes) and integer `labels` (N,) of an `Evaluation`,
so the functions are cheap, need no model and can be tested on tiny synthetic arrays.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _checked(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes: probabilities (N, classes) and integer labels (N,)."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels).reshape(-1)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"expected probabilities (N, classes) and N labels, got "
                         f"{probabilities.shape} and {labels.shape}")
    return probabilities, labels


def confidences(probabilities: np.ndarray) -> np.ndarray:
    """The probability the model gave its own prediction (the largest one), per image."""
    return np.asarray(probabilities).max(axis=1)


def split_confidence(probabilities: np.ndarray, labels: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Confidences of the correct predictions and of the wrong ones."""
    probabilities, labels = _checked(probabilities, labels)
    right = probabilities.argmax(axis=1) == labels
    confidence = confidences(probabilities)
    return confidence[right], confidence[~right]


def confused_examples(probabilities: np.ndarray, labels: np.ndarray,
                      true_class: int | None = None, predicted_class: int | None = None,
                      k: int = 8) -> np.ndarray:
    """Indices of up to k mistakes (of one true and/or predicted class), most confident first."""
    probabilities, labels = _checked(probabilities, labels)
    predictions = probabilities.argmax(axis=1)
    wrong = predictions != labels
    if true_class is not None:
        wrong &= labels == true_class
    if predicted_class is not None:
        wrong &= predictions == predicted_class
    candidates = np.flatnonzero(wrong)
    order = np.argsort(-confidences(probabilities)[candidates], kind="stable")
    return candidates[order][:k]


def most_confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, k: int = 16
                            ) -> np.ndarray:
    """Indices of the k wrong predictions made with the highest confidence, most confident first."""
    return confused_examples(probabilities, labels, k=k)


def prediction_titles(indices: Sequence[int], probabilities: np.ndarray, labels: np.ndarray,
                      class_names: Sequence[str]) -> list[str]:
    """A 'true→pred p=0.93' caption for each index."""
    probabilities, labels = _checked(probabilities, labels)
    return [f"{class_names[labels[i]]}→{class_names[probabilities[i].argmax()]} "
            f"p={probabilities[i].max():.2f}" for i in indices]


def pair_confusion(confusion: np.ndarray, class_names: Sequence[str], a: str, b: str
                   ) -> dict[str, int]:
    """The four confusion-matrix cells (rows true, columns predicted) of classes a and b."""
    i, j = list(class_names).index(a), list(class_names).index(b)
    return {f"{a}→{a}": int(confusion[i, i]), f"{a}→{b}": int(confusion[i, j]),
            f"{b}→{a}": int(confusion[j, i]), f"{b}→{b}": int(confusion[j, j])}


def plot_confidence_histogram(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 10
                              ) -> Figure:
    """Confidence histogram of correct and of wrong predictions, each as shares of its group."""
    right, wrong = split_confidence(probabilities, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for values, name, color in ((right, "correct", "tab:green"), (wrong, "wrong", "tab:red")):
        if len(values):
            ax.hist(values, bins=edges, weights=np.full(len(values), 1 / len(values)), alpha=0.55,
                    color=color, edgecolor="white", label=f"{name} ({len(values)} images)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("share of the group")
    ax.set_title("How sure is the model when it is right, and when it is wrong?")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_confused_pair(images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
                       class_names: Sequence[str], a: str, b: str, *, k: int = 6,
                       size: float = 1.5) -> Figure:
    """Two rows of images: a predicted as b, then b predicted as a (most confident first)."""
    i, j = list(class_names).index(a), list(class_names).index(b)
    fig, axes = plt.subplots(2, k, figsize=(k * size, 2 * size * 1.25), squeeze=False)
    for row, (true, predicted) in enumerate(((i, j), (j, i))):
        picked = confused_examples(probabilities, labels, true, predicted, k)
        titles = prediction_titles(picked, probabilities, labels, class_names)
        for ax in axes[row]:
            ax.axis("off")
        for ax, index, title in zip(axes[row], picked, titles):
            ax.imshow(images[index])
            ax.set_title(title, fontsize=8)
        if len(picked) == 0:
            axes[row, 0].text(0, 0.5, f"no {class_names[true]}→{class_names[predicted]} mistakes",
                              fontsize=9, va="center", transform=axes[row, 0].transAxes)
    fig.suptitle(f"{a} and {b}: the confusions in both directions")
    fig.tight_layout()
    return fig
