import threading
import time

import matplotlib.pyplot as plt  # the root conftest.py selects the Agg backend
import numpy as np
import pytest

from cifar_helpers.data import CLASS_NAMES, load_sample
from cifar_helpers.lessons.exploration import (STAGE_OUTPUTS, channel_histograms, class_counts,
                                       consume_seconds, count_table, examples_per_class,
                                       feature_map_sizes, histogram_mean_std,
                                       plot_channel_histograms, plot_class_counts,
                                       reddest_image, reddest_pixel, resnet50_stages,
                                       slow_pipeline, stage_model, stage_table)


def test_class_counts_include_empty_classes():
    counts = class_counts(np.array([0, 0, 3, 9]))
    assert counts.tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert class_counts(np.array([[1], [1]]), num_classes=3).tolist() == [0, 2, 0]


def test_count_table_lists_every_class_with_counts_and_shares():
    table = count_table({"train": np.array([0, 0, 0, 1]), "val": np.array([1])}, ("cat", "dog"))
    lines = table.splitlines()
    assert len(lines) == 4 and "train" in lines[0] and "val" in lines[0]
    assert "cat" in lines[1] and "3 (75.0%)" in lines[1] and "0 ( 0.0%)" in lines[1]
    assert "1 (25.0%)" in lines[2] and "1 (100.0%)" in lines[2]
    assert lines[3].split()[1:] == ["4", "1"]


def test_examples_per_class_keeps_class_order_and_titles():
    y = np.array([2, 0, 1, 0, 2, 1, 0])
    x = np.arange(len(y)) * 10
    images, titles = examples_per_class(x, y, 2, ("a", "b", "c"))
    assert images.tolist() == [10, 30, 20, 50, 0, 40]
    assert titles == ["a", "a", "b", "b", "c", "c"]
    images, titles = examples_per_class(x, y, 5, ("a", "b", "c"), classes=(2, 1))
    assert images.tolist() == [0, 40, 20, 50] and titles == ["c", "c", "b", "b"]


def test_histogram_statistics_equal_direct_numpy_statistics():
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    histograms = channel_histograms(x)
    assert histograms.shape == (3, 256) and (histograms.sum(axis=1) == 20 * 32 * 32).all()
    assert histograms[1, 7] == np.count_nonzero(x[..., 1] == 7)
    mean, std = histogram_mean_std(histograms)
    pixels = x.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-9)


def test_channel_histograms_refuse_float_images():
    with pytest.raises(ValueError, match="uint8"):
        channel_histograms(np.zeros((1, 32, 32, 3), dtype=np.float32))


def test_shipped_sample_statistics_are_those_of_real_photos():
    mean, std = histogram_mean_std(channel_histograms(load_sample().x_train))
    assert ((100 < mean) & (mean < 140)).all() and ((50 < std) & (std < 80)).all()
    assert mean[2] < mean[0]  # CIFAR-10 is less blue than red on average


def test_plots_draw_one_bar_per_class_and_three_channels():
    fig = plot_class_counts(np.arange(10), CLASS_NAMES)
    assert len(fig.axes[0].patches) == 10
    plt.close(fig)
    fig = plot_channel_histograms(np.ones((3, 256)))
    assert [line.get_label() for line in fig.axes[0].lines] == ["red", "green", "blue"]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), 1 / 256)
    plt.close(fig)


def test_reddest_image_and_pixel():
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    images[1, ..., 0] = 200
    images[2, 1, 2] = (255, 0, 0)
    images[2, ..., 2] += 10
    assert reddest_image(images) == 1
    assert reddest_pixel(images[2]) == (1, 2)


@pytest.fixture(scope="module")
def stages():
    return resnet50_stages(weights=None)


def test_resnet50_stage_sizes_for_cifar_and_imagenet_inputs(stages):
    small, large = feature_map_sizes(stages, 32), feature_map_sizes(stages, 224)
    assert [small[s][:2] for s in STAGE_OUTPUTS] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert [large[s][:2] for s in STAGE_OUTPUTS] == [(112, 112), (56, 56), (28, 28), (14, 14),
                                                     (7, 7)]
    assert [small[s][2] for s in STAGE_OUTPUTS] == [64, 256, 512, 1024, 2048]
    table = stage_table({32: small, 224: large}).splitlines()
    assert len(table) == 6 and "1x1 x2048" in table[-1] and "7x7 x2048" in table[-1]


def test_stage_model_works_on_the_course_model():
    from cifar_helpers.model import build_model

    sizes = feature_map_sizes(stage_model(build_model(weights=None)), 32)
    assert sizes["conv5"] == (1, 1, 2048) and sizes["conv1"] == (16, 16, 64)


class RecordedSleeps:
    """Stands in for the `time` module of the exploration helpers: every sleep is recorded as
    (making or using an element, start, end), so overlap is seen, not inferred from totals."""

    def __init__(self):
        self.intervals, self.perf_counter = [], time.perf_counter
        self.main = threading.get_ident()

    def sleep(self, seconds):
        start = time.perf_counter()
        time.sleep(seconds)
        role = "use" if threading.get_ident() == self.main else "make"
        self.intervals.append((role, start, time.perf_counter()))

    def overlaps(self) -> int:
        made = [(a, b) for role, a, b in self.intervals if role == "make"]
        used = [(a, b) for role, a, b in self.intervals if role == "use"]
        return sum(1 for a, b in made for c, d in used if a < d and c < b)


@pytest.mark.parametrize("prefetch", [False, True])
def test_prefetch_overlaps_making_and_using_elements(monkeypatch, prefetch):
    """Without prefetch, making and using take turns; with it, the next element is made while
    the current one is used (seen in the recorded sleeps, not in noisy wall-clock totals)."""
    from cifar_helpers.lessons import exploration

    clock = RecordedSleeps()
    monkeypatch.setattr(exploration, "time", clock)
    seconds, count = consume_seconds(slow_pipeline(10, 0.03, prefetch=prefetch), 0.03)
    roles = [role for role, _, _ in clock.intervals]
    assert count == 10 and roles.count("use") == 10 and roles.count("make") >= 10
    if prefetch:
        assert clock.overlaps() >= 1
    else:
        assert clock.overlaps() == 0 and seconds >= 10 * 0.06  # the sleeps add up
    assert [int(v) for v in slow_pipeline(4, 0.0, prefetch=True)] == [0, 1, 2, 3]
