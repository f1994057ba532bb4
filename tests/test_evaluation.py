"""Test-set metrics, the confusion heatmap and the training curves, on inputs with known answers."""

import matplotlib.pyplot as plt  # the root conftest.py selects the Agg backend
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from cifar_helpers.data import CLASS_NAMES
from cifar_helpers.evaluation import evaluate, most_confused_pairs, per_class_accuracy
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


def images_showing(classes):
    """uint8 images whose every pixel holds the class the stub model will predict for it."""
    return np.broadcast_to(np.asarray(classes, np.uint8)[:, None, None, None],
                           (len(classes), 32, 32, 3)).copy()


def pixel_value_classifier():
    """A Keras model that gives probability 0.91 to the class written in an image's pixels."""
    import keras

    images = keras.Input((32, 32, 3))
    classes = keras.ops.cast(keras.ops.mean(images, axis=(1, 2, 3)), "int32")
    probabilities = keras.ops.one_hot(classes, 10) * 0.9 + 0.01
    return keras.Model(images, probabilities)


def test_evaluate_counts_true_classes_in_rows_and_predictions_in_columns():
    truth = np.repeat(np.arange(9), 3)  # 27 images, 3 per class; no truck in this test set
    predicted = truth.copy()
    predicted[[9, 10]] = 5  # two of the three cats called dogs
    predicted[15] = 3  # one of the three dogs called a cat
    result = evaluate(pixel_value_classifier(), images_showing(predicted), truth, CLASS_NAMES,
                      batch_size=4)  # several batches, kept in order
    assert result.confusion.shape == (10, 10) and result.confusion.sum() == 27
    assert result.confusion[3, 5] == 2 and result.confusion[5, 3] == 1  # [true, predicted]
    assert result.confusion[3, 3] == 1 and result.confusion[5, 5] == 2
    assert result.per_class_accuracy["cat"] == pytest.approx(1 / 3)
    assert result.per_class_accuracy["dog"] == pytest.approx(2 / 3)
    assert result.per_class_accuracy["truck"] == 0.0 and result.per_class_accuracy["frog"] == 1.0
    assert result.accuracy == pytest.approx(24 / 27)
    assert result.most_confused == [("cat", "dog", 2), ("dog", "cat", 1)]
    np.testing.assert_array_equal(result.predictions, predicted)
    assert result.probabilities.shape == (27, 10)
    np.testing.assert_allclose(result.probabilities[np.arange(27), predicted], 0.91, rtol=1e-6)
    report_rows = {line.split()[0]: line.split()[1:] for line in result.report.splitlines()
                   if line.split() and line.split()[0] in CLASS_NAMES}
    assert report_rows["cat"][:3] == ["0.500", "0.333", "0.400"]  # precision, recall, f1
    assert report_rows["truck"] == ["0.000", "0.000", "0.000", "0"]  # support 0


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
