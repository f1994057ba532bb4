"""Grad-CAM: which part of the image made the model choose a class?

Grad-CAM (Selvaraju et al., ICCV 2017) weights the feature maps of one convolutional layer by how
much the class score changes with each of them (the mean gradient), sums them and keeps the
positive part. The map has the spatial size of that layer, so the layer must still have spatial
extent, and every cell of it must be able to change the score: a cell that no later layer reads
gets no gradient, and its heat would mean nothing. A convolution or pooling with strides larger
than its kernel skips cells. In ResNet50 at 32x32 input, conv5 is 1x1 and its stride-2 1x1
convolutions read only the top-left cell of `conv4_block6_out` (2x2); followed back, the last
2x2 layer all of whose cells count is `conv4_block6_1_relu`, which block 6's 3x3 convolution
gathers into that one cell. At 64x64 input `conv5_block3_out` (2x2, then pooled) qualifies.
"""

from __future__ import annotations

from typing import Sequence

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def spatial_size(layer: keras.layers.Layer) -> tuple[int, int] | None:
    """(height, width) of a layer's image-like output (batch, H, W, C), else None."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):  # layers without one symbolic output
        return None
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def _tensors(value: object) -> list:
    """A layer's input or output (one tensor, a list or a dict of them) as a flat list."""
    if isinstance(value, dict):
        value = list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _axis_reads(outputs: int, inputs: int, kernel: int, stride: int, dilation: int,
                same: bool) -> np.ndarray:
    """(outputs, inputs) booleans along one axis: which input cells each output cell reads."""
    reach = (kernel - 1) * dilation + 1
    pad = max((outputs - 1) * stride + reach - inputs, 0) // 2 if same else 0
    taps = np.arange(outputs)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation
    reads = np.zeros((outputs, inputs), dtype=bool)
    rows, columns = np.nonzero((taps >= 0) & (taps < inputs))
    reads[rows, taps[rows, columns]] = True
    return reads


def _cells_read(consumer: keras.layers.Layer, live: np.ndarray, size: tuple[int, int]
                ) -> np.ndarray:
    """Which cells of an input of `size` the live cells of `consumer`'s output read."""
    kernel = getattr(consumer, "kernel_size", None) or getattr(consumer, "pool_size", None)
    if (kernel is None or len(kernel) != 2 or live.ndim != 2
            or live.shape[0] > size[0] or live.shape[1] > size[1]):
        if live.shape == size:  # cell by cell: activations, normalisation, Add
            return live
        return np.full(size, bool(live.any()))  # flatten, global pooling, resizing: every cell
    dilation = getattr(consumer, "dilation_rate", (1, 1))
    same = consumer.padding == "same"
    rows, columns = (_axis_reads(live.shape[axis], size[axis], kernel[axis],
                                 consumer.strides[axis], dilation[axis], same) for axis in (0, 1))
    return (rows.T.astype(int) @ live.astype(int) @ columns.astype(int)) > 0


def _live_cells_from_the_end(model: keras.Model):
    """(layer, live cells of its (H, W) output or None if not image-like), last layer first."""
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)
              and any(isinstance(inner, keras.layers.Conv2D) for inner in layer.layers)]
    if nested:  # its layers read the nested model's own Input, not the tensor it was called on
        raise ValueError(f"{model.name}: the layers of the nested model {nested[0]!r} cannot be "
                         "traced from here; put the base's layers in the model itself, as "
                         "build_model does")
    consumers: dict[int, list] = {}
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in layers:
        for tensor in _tensors(layer.input):
            consumers.setdefault(id(tensor), []).append(layer)
    outputs = {id(tensor) for tensor in _tensors(model.outputs)}
    live: dict[str, np.ndarray] = {}
    for layer in reversed(layers):
        size = spatial_size(layer)
        if size is None:  # not image-like (or several outputs): read as a whole
            live[layer.name] = np.ones((), dtype=bool)
            yield layer, None
            continue
        cells = np.full(size, id(layer.output) in outputs)
        for consumer in consumers.get(id(layer.output), []):
            cells |= _cells_read(consumer, live.get(consumer.name, np.ones((), bool)), size)
        live[layer.name] = cells
        yield layer, cells


def live_cells(model: keras.Model, layer_name: str) -> np.ndarray:
    """(H, W) booleans: which cells of a layer's output can change the model's output at all."""
    for layer, cells in _live_cells_from_the_end(model):
        if layer.name == layer_name:
            if cells is None:
                raise ValueError(f"{layer_name}: the output is not an image-like (N, H, W, C)")
            return cells
    raise ValueError(f"{model.name} has no layer {layer_name!r}")


def gradcam_layer(model: keras.Model) -> str:
    """Name of the last layer with an output larger than 1x1 every cell of which is read."""
    for layer, cells in _live_cells_from_the_end(model):
        if cells is not None and cells.shape[0] > 1 and cells.shape[1] > 1 and cells.all():
            return layer.name
    raise ValueError(f"{model.name}: no layer with a spatial output larger than 1x1 "
                     "every cell of which can change the output")


def _class_indices(class_index: int | Sequence[int] | None, predictions, count: int):
    """One class per image: the given one(s), or the predicted class."""
    import tensorflow as tf

    if class_index is None:
        return tf.argmax(predictions, axis=1, output_type=tf.int32)
    indices = np.broadcast_to(np.asarray(class_index, dtype=np.int32), (count,))
    return tf.constant(indices)


def _softmax_dense(model: keras.Model) -> keras.layers.Dense | None:
    """The last layer if it is a Dense layer with softmax (then its logits are reachable)."""
    last = model.layers[-1]
    softmax = getattr(getattr(last, "activation", None), "__name__", "") == "softmax"
    return last if isinstance(last, keras.layers.Dense) and softmax else None


def _class_scores(dense: keras.layers.Dense | None, last):
    """The logits (the softmax layer without its softmax), or log probabilities without one."""
    import tensorflow as tf

    if dense is None:
        return tf.math.log(last + 1e-12)
    scores = tf.matmul(last, tf.cast(dense.kernel, tf.float32))
    return scores + tf.cast(dense.bias, tf.float32) if dense.use_bias else scores


def gradcam(model: keras.Model, images: np.ndarray,
            class_index: int | Sequence[int] | None = None,
            layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM heatmaps in [0, 1], upsampled to the image size: (N, H, W), or (H, W) for one image.

    `images` are uint8 or float pixels 0-255, as the model takes them; `class_index` is one class
    for all images, one per image, or None for each image's predicted class. As in the paper the
    score is the class logit before the softmax (recomputed from the last Dense layer): the
    gradient of a softmax output vanishes when the model is sure. Other models: log p(class).
    """
    import tensorflow as tf

    single = np.ndim(images) == 3
    batch = tf.convert_to_tensor(np.asarray(images)[None] if single else np.asarray(images),
                                 dtype=tf.float32)
    layer = model.get_layer(layer_name or gradcam_layer(model))
    dense = _softmax_dense(model)
    last_output = dense.input if dense is not None else model.output
    features_and_output = keras.Model(model.inputs, [layer.output, last_output])
    with tf.GradientTape() as tape:
        raw_features, last = features_and_output(batch, training=False)
        scores = _class_scores(dense, tf.cast(last, tf.float32))  # bf16/float16 in mixed precision
        indices = _class_indices(class_index, scores, int(batch.shape[0]))
        # images do not interact (inference mode), so one gradient of the sum serves them all
        score = tf.reduce_sum(tf.gather(scores, indices, axis=1, batch_dims=1))
    # the gradient of the layer's own output: a cast copy of it would get none
    gradients = tf.cast(tape.gradient(score, raw_features), tf.float32)
    features = tf.cast(raw_features, tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # one weight per channel
    maps = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
    peaks = maps.max(axis=(1, 2), keepdims=True)
    maps = np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)
    upsampled = tf.image.resize(maps[..., None], batch.shape[1:3], method="bilinear")
    heatmaps = np.clip(upsampled.numpy()[..., 0], 0.0, 1.0)
    return heatmaps[0] if single else heatmaps


def plot_gradcam(images: np.ndarray, heatmaps: np.ndarray | Sequence[np.ndarray],
                 titles: Sequence[str] | None = None, *,
                 row_labels: Sequence[str] | None = None, alpha: float = 0.5, size: float = 1.8
                 ) -> Figure:
    """The images, then a row of overlays (red = important) per heatmap set (N, H, W) given."""
    rows = list(heatmaps) if np.ndim(heatmaps) == 4 else [heatmaps]
    count = len(images)
    fig, axes = plt.subplots(1 + len(rows), count,
                             figsize=(max(count, 2) * size, (1 + len(rows)) * size * 1.15),
                             squeeze=False)
    for column, image in enumerate(images):
        picture = np.asarray(image).astype("uint8")
        axes[0, column].imshow(picture)
        for row, maps in enumerate(rows, start=1):
            axes[row, column].imshow(picture)
            axes[row, column].imshow(maps[column], cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
        if titles is not None:
            axes[0, column].set_title(str(titles[column]), fontsize=8)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
    for ax, label in zip(axes[:, 0], ["image", *(row_labels or [])]):
        ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig
