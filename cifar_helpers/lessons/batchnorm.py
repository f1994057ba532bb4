"""Why phase 2 freezes BatchNormalization layers instead of calling the base with `training=False`.

The keras-io transfer-learning guide calls a nested base as `base(x, training=False)`. On Keras 3
(checked on 3.15) that does not keep BatchNorm in inference mode during `fit`: the moving
statistics still change. These helpers let notebook 04 and the tests show it on real layers.
"""

from __future__ import annotations

import keras
import numpy as np

from ..data import IMAGE_SHAPE, NUM_CLASSES
from ..model import ResNet50Preprocess


def nested_training_false_model(weights: str | None = None) -> keras.Model:
    """The keras-io pattern: a trainable nested ResNet50 base called with `training=False`."""
    base = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=IMAGE_SHAPE)
    base.trainable = True
    inputs = keras.Input(shape=IMAGE_SHAPE)
    x = base(ResNet50Preprocess()(inputs), training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer, including those inside nested models."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += batchnorm_layers(layer)
    return found


def moving_statistics(model: keras.Model) -> dict[str, np.ndarray]:
    """Copies of every BatchNorm moving mean and variance, keyed by variable path."""
    return {v.path: v.numpy().copy() for layer in batchnorm_layers(model)
            for v in (layer.moving_mean, layer.moving_variance)}


def statistics_drift(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict:
    """How many moving-statistics arrays changed, and the largest absolute change."""
    changes = [float(np.abs(after[k] - before[k]).max()) for k in before]
    return {"arrays": len(changes), "changed": sum(c > 0 for c in changes),
            "max_abs_change": max(changes, default=0.0)}
