"""Error-analysis helpers on tiny hand-made predictions whose answers are known."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cifar_helpers.lessons.analysis import (confidences, confused_examples, most_confident_mistakes,
                                    pair_confusion, plot_confidence_histogram,
                                    plot_confused_pair, prediction_titles, split_confidence)

NAMES = ("cat", "dog", "truck")
# Predictions: 0 (right), 1 (wrong, 0.70), 0 (wrong, 0.60), 2 (right), 1 (wrong, 0.95), 1 (right)
PROBABILITIES = np.array([[0.90, 0.10, 0.00],
                          [0.20, 0.70, 0.10],
                          [0.60, 0.30, 0.10],
                          [0.10, 0.10, 0.80],
                          [0.05, 0.95, 0.00],
                          [0.30, 0.50, 0.20]])
LABELS = np.array([0, 0, 1, 2, 2, 1])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_confidence_is_the_probability_of_the_prediction():
    np.testing.assert_allclose(confidences(PROBABILITIES), [0.9, 0.7, 0.6, 0.8, 0.95, 0.5])


def test_most_confident_mistakes_are_sorted_by_confidence():
    assert most_confident_mistakes(PROBABILITIES, LABELS).tolist() == [4, 1, 2]
    assert most_confident_mistakes(PROBABILITIES, LABELS, k=2).tolist() == [4, 1]


def test_no_mistakes_gives_an_empty_integer_index():
    perfect = np.eye(3)[[0, 1, 2]]
    picked = most_confident_mistakes(perfect, np.array([0, 1, 2]))
    assert picked.size == 0 and np.issubdtype(picked.dtype, np.integer)


def test_confused_examples_filter_by_true_and_predicted_class():
    assert confused_examples(PROBABILITIES, LABELS, true_class=0, predicted_class=1).tolist() == [1]
    assert confused_examples(PROBABILITIES, LABELS, true_class=1, predicted_class=0).tolist() == [2]
    assert confused_examples(PROBABILITIES, LABELS, predicted_class=1).tolist() == [4, 1]
    assert confused_examples(PROBABILITIES, LABELS, true_class=2, predicted_class=0).size == 0


def test_titles_name_true_and_predicted_class_and_confidence():
    titles = prediction_titles([4, 2], PROBABILITIES, LABELS, NAMES)
    assert titles == ["truck→dog p=0.95", "dog→cat p=0.60"]


def test_split_confidence_separates_right_from_wrong():
    right, wrong = split_confidence(PROBABILITIES, LABELS)
    np.testing.assert_allclose(right, [0.9, 0.8, 0.5])
    np.testing.assert_allclose(wrong, [0.7, 0.6, 0.95])


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="expected probabilities"):
        split_confidence(PROBABILITIES, LABELS[:-1])


def test_pair_confusion_reads_both_directions():
    confusion = np.array([[5, 2, 0], [3, 7, 1], [0, 0, 9]])
    assert pair_confusion(confusion, NAMES, "cat", "dog") == {
        "cat→cat": 5, "cat→dog": 2, "dog→cat": 3, "dog→dog": 7}


def test_confidence_histogram_shows_each_group_as_shares():
    fig = plot_confidence_histogram(PROBABILITIES, LABELS, bins=5)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["correct (3 images)", "wrong (3 images)"]
    heights = [patch.get_height() for patch in ax.patches]
    assert len(heights) == 10 and sum(heights) == pytest.approx(2.0)


def test_confused_pair_figure_has_one_row_per_direction():
    images = np.zeros((6, 32, 32, 3), dtype=np.uint8)
    fig = plot_confused_pair(images, PROBABILITIES, LABELS, NAMES, "cat", "dog", k=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 6
    assert titles[0] == "cat→dog p=0.70" and titles[3] == "dog→cat p=0.60"
    assert sum(1 for ax in fig.axes if ax.images) == 2


def test_confused_pair_figure_says_when_a_direction_has_no_mistakes():
    images = np.zeros((6, 32, 32, 3), dtype=np.uint8)
    fig = plot_confused_pair(images, PROBABILITIES, LABELS, NAMES, "cat", "truck", k=2)
    notes = [text.get_text() for ax in fig.axes for text in ax.texts]
    assert notes == ["no cat→truck mistakes", "no truck→cat mistakes"]
