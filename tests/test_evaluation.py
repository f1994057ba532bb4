"""Test-set metrics, the confusion heatmap and the training curves, on inputs with known answers."""

import matplotlib.pyplot as plt  # the root conftest.py selects the Agg backend
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from cifar_helpers.data import CLASS_NAMES
from cifar_helpers.evaluation import most_confused_pairs, per_class_accuracy
from cifar_helpers.plots import plot_confusion


@pytest.fixture
def three_mistakes():
    """100 test labels, 10 per class, all predicted right but cat->dog, dog->cat twice, auto->truck."""
    truth = np.repeat(np.arange(10), 10)
    predicted = truth.copy()
    predicted[30] = 5  # a cat called a dog
    predicted[[50, 51]] = 3  # two dogs called cats
    predicted[10] = 9  # an automobile called a truck
    return confusion_matrix(truth, predicted, labels=range(10))


def test_most_confused_lists_only_mistakes_largest_first(three_mistakes):
    # Fewer mistakes than k: no correct-prediction cell (e.g. truck -> truck) may fill the list.
    pairs = most_confused_pairs(three_mistakes, CLASS_NAMES, k=5)
    assert pairs[0] == ("dog", "cat", 2)
    assert sorted(pairs[1:]) == [("automobile", "truck", 1), ("cat", "dog", 1)]
    assert most_confused_pairs(three_mistakes, CLASS_NAMES, k=1) == [("dog", "cat", 2)]


def test_a_perfect_model_has_no_confused_pairs():
    assert most_confused_pairs(np.diag(np.full(10, 7)), CLASS_NAMES) == []


def test_per_class_accuracy_is_recall_by_row(three_mistakes):
    accuracy = per_class_accuracy(three_mistakes, CLASS_NAMES)
    assert accuracy["dog"] == 0.8 and accuracy["cat"] == 0.9 and accuracy["automobile"] == 0.9
    assert accuracy["truck"] == 1.0  # predicted 11 times, but all 10 trucks were found


@pytest.mark.parametrize("normalize, first_row_text", [(True, "1.00"), (False, "10")])
def test_the_heatmap_shows_recall_or_counts(three_mistakes, normalize, first_row_text):
    fig = plot_confusion(three_mistakes, CLASS_NAMES, normalize=normalize)
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert len(texts) == 100 and texts[0] == first_row_text
    assert texts[5 * 10 + 3] == ("0.20" if normalize else "2")  # row dog, column cat
    plt.close(fig)


def test_curves_of_a_run_without_epochs_plot_without_warnings():
    import warnings

    from cifar_helpers.plots import plot_history

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib: "No artists with labels found"
        fig = plot_history({"epoch": [], "boundaries": []})
    assert len(fig.axes) == 2
    plt.close(fig)
