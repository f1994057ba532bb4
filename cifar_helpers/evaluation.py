"""Test-set evaluation: accuracy, per-class accuracy, classification report, confusions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

from .data import make_dataset

if TYPE_CHECKING:
    import keras


@dataclass
class Evaluation:
    """Everything error analysis needs about one model on one test set."""

    accuracy: float
    per_class_accuracy: dict[str, float]
    report: str
    confusion: np.ndarray  # rows: true class, columns: predicted class (counts)
    most_confused: list[tuple[str, str, int]]
    probabilities: np.ndarray
    predictions: np.ndarray


def predict_proba(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for uint8 images, batched through tf.data."""
    return model.predict(make_dataset(x, None, batch_size), verbose=0)


def most_confused_pairs(confusion: np.ndarray, class_names: Sequence[str], k: int = 5
                        ) -> list[tuple[str, str, int]]:
    """The k largest off-diagonal cells as (true, predicted, count), largest first."""
    off_diagonal = confusion.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(off_diagonal, axis=None)[::-1][:k]
    pairs = [np.unravel_index(i, confusion.shape) for i in order]
    return [(class_names[t], class_names[p], int(off_diagonal[t, p])) for t, p in pairs
            if off_diagonal[t, p] > 0]


def per_class_accuracy(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Recall of each class: correct / present (NaN-free: absent classes give 0)."""
    totals = confusion.sum(axis=1)
    correct = np.diag(confusion)
    return {name: float(c / t) if t else 0.0 for name, c, t in zip(class_names, correct, totals)}


def evaluate(model: keras.Model, x_test: np.ndarray, y_test: np.ndarray,
             class_names: Sequence[str], batch_size: int = 256) -> Evaluation:
    """Run the model on the test set and compute the metrics of the study."""
    probabilities = predict_proba(model, x_test, batch_size)
    predictions = probabilities.argmax(axis=1)
    labels = list(range(len(class_names)))
    confusion = confusion_matrix(y_test, predictions, labels=labels)
    report = classification_report(y_test, predictions, labels=labels,
                                   target_names=list(class_names), digits=3, zero_division=0)
    return Evaluation(
        accuracy=float(accuracy_score(y_test, predictions)),
        per_class_accuracy=per_class_accuracy(confusion, class_names),
        report=report,
        confusion=confusion,
        most_confused=most_confused_pairs(confusion, class_names),
        probabilities=probabilities,
        predictions=predictions,
    )
