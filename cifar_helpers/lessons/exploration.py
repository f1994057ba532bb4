"""Analysis and figures for notebooks 01 and 02: class balance, pixel statistics, stage sizes.

Also the two small experiments of notebook 02: finding a strongly coloured pixel to follow through
preprocessing, and a simulated input pipeline that shows what `prefetch` buys.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..data import NUM_CLASSES

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# The last layer of each ResNet50 stage in Keras' implementation (conv1 before its max-pooling).
STAGE_OUTPUTS = {"conv1": "conv1_relu", "conv2": "conv2_block3_out", "conv3": "conv3_block4_out",
                 "conv4": "conv4_block6_out", "conv5": "conv5_block3_out"}
CHANNELS = ("red", "green", "blue")


def class_counts(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Images per class, zeros included, as an int array of length `num_classes`."""
    return np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)


def count_table(splits: Mapping[str, np.ndarray], class_names: Sequence[str]) -> str:
    """A text table: one row per class, per split its image count and share of that split."""
    counts = {name: class_counts(labels, len(class_names)) for name, labels in splits.items()}
    header = f"{'class':>12}" + "".join(f"{name:>20}" for name in splits)
    rows = [header]
    for index, class_name in enumerate(class_names):
        cells = "".join(f"{c[index]:>12,} ({c[index] / max(c.sum(), 1):5.1%})"
                        for c in counts.values())
        rows.append(f"{class_name:>12}{cells}")
    rows.append(f"{'total':>12}" + "".join(f"{c.sum():>12,}{'':8}" for c in counts.values()))
    return "\n".join(rows)


def plot_class_counts(counts: np.ndarray, class_names: Sequence[str], *,
                      title: str = "Images per class") -> Figure:
    """Bar chart of images per class, with each bar's count written on it."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    bars = ax.bar(list(class_names), counts, color="tab:blue")
    ax.bar_label(bars, labels=[f"{int(c):,}" for c in counts], fontsize=8)
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def examples_per_class(x: np.ndarray, y: np.ndarray, per_class: int, class_names: Sequence[str],
                       classes: Sequence[int] | None = None) -> tuple[np.ndarray, list[str]]:
    """The first `per_class` images of each class (all classes unless given), class after class."""
    classes = range(len(class_names)) if classes is None else classes
    picked = [np.flatnonzero(np.asarray(y) == c)[:per_class] for c in classes]
    indices = np.concatenate(picked)
    return x[indices], [class_names[int(label)] for label in np.asarray(y)[indices]]


def channel_histograms(x: np.ndarray) -> np.ndarray:
    """Pixel-value counts of uint8 RGB images: shape (3, 256), one row per channel."""
    if x.dtype != np.uint8 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images with 3 channels, got {x.dtype} {x.shape}")
    return np.stack([np.bincount(x[..., c].ravel(), minlength=256) for c in range(3)])


def histogram_mean_std(histograms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and standard deviation (in pixel units 0..255) from the histograms."""
    values = np.arange(histograms.shape[1], dtype=np.float64)
    totals = histograms.sum(axis=1)
    mean = histograms @ values / totals
    variance = histograms @ values**2 / totals - mean**2
    return mean, np.sqrt(np.maximum(variance, 0.0))


def plot_channel_histograms(histograms: np.ndarray, *,
                            title: str = "Pixel values per channel") -> Figure:
    """The three channel histograms as shares of all pixels, in their own colours."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    shares = histograms / histograms.sum(axis=1, keepdims=True)
    for channel, share in zip(CHANNELS, shares):
        ax.plot(np.arange(len(share)), share, color=channel, label=channel, linewidth=1.2)
    ax.set_xlabel("pixel value (0 = dark, 255 = bright)")
    ax.set_ylabel("share of pixels")
    ax.set_xlim(0, 255)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def resnet50_stages(weights: str | None = None) -> keras.Model:
    """ResNet50 without its top, for any input size, returning the output of each stage."""
    import keras

    base = keras.applications.ResNet50(include_top=False, weights=weights,
                                       input_shape=(None, None, 3))
    return stage_model(base)


def stage_model(model: keras.Model) -> keras.Model:
    """A model from `model`'s input to its ResNet50 stage outputs (names in STAGE_OUTPUTS)."""
    import keras

    outputs = {stage: model.get_layer(name).output for stage, name in STAGE_OUTPUTS.items()}
    return keras.Model(model.input, outputs, name="resnet50_stages")


def feature_map_sizes(stages: keras.Model, image_size: int) -> dict[str, tuple[int, int, int]]:
    """(height, width, channels) of each stage's output, measured on one black square image."""
    image = np.zeros((1, image_size, image_size, 3), dtype="float32")
    outputs = stages(image)
    return {stage: tuple(int(d) for d in outputs[stage].shape[1:]) for stage in STAGE_OUTPUTS}


def stage_table(sizes: Mapping[int, Mapping[str, tuple[int, int, int]]]) -> str:
    """A text table of stage output sizes, one column per input size (from `feature_map_sizes`)."""
    rows = [f"{'stage':<7}{'layer':<19}" + "".join(f"{f'{s}x{s} input':>16}" for s in sizes)]
    for stage, layer in STAGE_OUTPUTS.items():
        cells = [by_stage[stage] for by_stage in sizes.values()]
        sized = "".join(f"{f'{h}x{w} x{c}':>16}" for h, w, c in cells)
        rows.append(f"{stage:<7}{layer:<19}{sized}")
    return "\n".join(rows)


def reddest_image(images: np.ndarray) -> int:
    """Index of the image whose pixels are, on average, the most red compared with blue."""
    redness = images[..., 0].astype(np.int32) - images[..., 2].astype(np.int32)
    return int(redness.mean(axis=(1, 2)).argmax())


def reddest_pixel(image: np.ndarray) -> tuple[int, int]:
    """(row, column) of the pixel with the largest red-minus-blue difference."""
    redness = image[..., 0].astype(np.int32) - image[..., 2].astype(np.int32)
    row, column = np.unravel_index(int(redness.argmax()), redness.shape)
    return int(row), int(column)


def slow_pipeline(steps: int, produce_seconds: float, *, prefetch: bool) -> tf.data.Dataset:
    """A tf.data pipeline taking `produce_seconds` to make each element; optionally prefetched."""
    import tensorflow as tf

    def produce(index):
        time.sleep(produce_seconds)  # stands in for reading, decoding or augmenting a batch
        return index

    ds = tf.data.Dataset.range(steps).map(lambda i: tf.py_function(produce, [i], tf.int64))
    if prefetch:
        return ds.prefetch(1)
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False  # recent TF adds one by itself
    return ds.with_options(options)


def consume_seconds(dataset: tf.data.Dataset, step_seconds: float) -> tuple[float, int]:
    """Iterate `dataset` spending `step_seconds` per element, like training: (seconds, elements)."""
    start, elements = time.perf_counter(), 0
    for _ in dataset:
        time.sleep(step_seconds)  # stands in for the model's forward and backward pass
        elements += 1
    return time.perf_counter() - start, elements
