"""Temperature scaling and calibration error on synthetic predictors whose answers are known."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cifar_helpers.lessons.calibration import (apply_temperature, calibration_bins,
                                       expected_calibration_error, fit_temperature,
                                       negative_log_likelihood, plot_reliability_diagram)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def sampled_predictor(n: int, sharpen: float, seed: int = 0):
    """True class probabilities, labels drawn from them, and the model's sharpened version."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(n, 10))
    truth = softmax(logits)
    labels = np.array([rng.choice(10, p=row) for row in truth])
    return truth, labels, softmax(sharpen * logits)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_temperature_one_changes_nothing_and_never_changes_the_prediction():
    _, _, probabilities = sampled_predictor(50, 2.0)
    np.testing.assert_allclose(apply_temperature(probabilities, 1.0), probabilities, atol=1e-9)
    for temperature in (0.3, 2.0, 10.0):
        scaled = apply_temperature(probabilities, temperature)
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0, atol=1e-9)
        assert np.array_equal(scaled.argmax(axis=1), probabilities.argmax(axis=1))
    # T > 1 lowers every confidence of a sharp prediction, T < 1 raises it
    assert np.all(apply_temperature(probabilities, 2.0).max(axis=1)
                  <= probabilities.max(axis=1) + 1e-12)
    assert np.all(apply_temperature(probabilities, 0.5).max(axis=1)
                  >= probabilities.max(axis=1) - 1e-12)


def test_an_over_confident_predictor_gets_t_above_one_and_better_scores():
    _, labels, probabilities = sampled_predictor(3000, sharpen=3.0)
    temperature = fit_temperature(probabilities, labels)
    assert 2.0 < temperature < 4.5  # the predictor is the truth sharpened by 3
    scaled = apply_temperature(probabilities, temperature)
    assert negative_log_likelihood(scaled, labels) < negative_log_likelihood(probabilities, labels)
    ece_before = expected_calibration_error(probabilities, labels)
    ece_after = expected_calibration_error(scaled, labels)
    assert ece_before > 0.1 and ece_after < ece_before / 2


def test_an_under_confident_predictor_gets_t_below_one():
    _, labels, probabilities = sampled_predictor(3000, sharpen=0.5)
    assert fit_temperature(probabilities, labels) < 0.8


def test_a_constant_predictor_gets_t_one_not_an_arbitrary_bound():
    """Uniform probabilities: every T gives the same NLL (the search ended at T = 20)."""
    labels = np.arange(50) % 10
    assert fit_temperature(np.full((50, 10), 0.1), labels) == 1.0


def test_a_calibrated_toy_case_has_zero_ece():
    # ten images at confidence 0.8 of which eight are right, four at 0.5 of which two are right
    probabilities = np.array([[0.8, 0.2]] * 10 + [[0.5, 0.5]] * 4)
    labels = np.array([0] * 8 + [1] * 2 + [0, 0, 1, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0, abs=1e-12)


def test_labels_drawn_from_the_predictions_give_a_small_ece():
    truth, labels, _ = sampled_predictor(5000, 1.0)
    assert expected_calibration_error(truth, labels) < 0.03


def test_ece_of_a_always_wrong_sure_model_is_its_confidence():
    probabilities = np.array([[0.9, 0.1, 0.0]] * 5)
    assert expected_calibration_error(probabilities, np.ones(5, dtype=int)) == pytest.approx(0.9)


def test_bins_are_equal_width_and_count_every_image():
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5], [0.7, 0.3], [0.72, 0.28]])
    binned = calibration_bins(probabilities, np.array([0, 0, 1, 0]), bins=10)
    np.testing.assert_allclose(binned.edges, np.linspace(0, 1, 11))
    assert binned.counts.sum() == 4
    assert binned.counts[9] == 1 and binned.counts[4] == 1  # 1.0 in the last bin, 0.5 in (0.4, 0.5]
    assert binned.counts[6] == 1 and binned.counts[7] == 1  # 0.7 in (0.6, 0.7], 0.72 in (0.7, 0.8]
    assert np.isnan(binned.accuracy[0]) and binned.accuracy[9] == 1.0 and binned.accuracy[6] == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        apply_temperature(np.full((2, 2), 0.5), 0.0)
    with pytest.raises(ValueError):
        negative_log_likelihood(np.full((3, 2), 0.5), np.array([0, 1]))


def test_reliability_diagram_draws_before_and_after():
    _, labels, probabilities = sampled_predictor(200, 3.0)
    fig = plot_reliability_diagram(probabilities, labels, apply_temperature(probabilities, 3.0))
    assert len(fig.axes) == 2
    assert "ECE" in fig.axes[0].get_title() and "after" in fig.axes[1].get_title()
    assert len(plot_reliability_diagram(probabilities, labels).axes) == 1
