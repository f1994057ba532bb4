"""The two training phases: train the head on a frozen base, then fine-tune at a low learning rate."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import keras

from .config import Config, settings_varying_images
from .errors import LossNotFiniteError, TrainingError
from .fast_ops import resolve_fast_ops
from .model import freeze_base, train_everything, unfreeze_base

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule  # a fixed rate or a schedule


def compile_model(model: keras.Model, learning_rate: LearningRate, label_smoothing: float = 0.0,
                  fused_adam: bool = False) -> None:
    """Adam + categorical cross-entropy on one-hot labels, as in the seed.

    Compiling is what makes a change of `trainable` take effect, so each phase compiles again.
    `learning_rate` may be a schedule; label smoothing needs the one-hot labels the seed uses;
    `fused_adam` runs the same update as one TensorFlow kernel (fast_ops.FusedAdam).
    """
    from .fast_ops import FusedAdam

    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    optimizer = (FusedAdam if fused_adam else keras.optimizers.Adam)(learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


def learning_rate_for(config: Config, peak: float, epochs: int, steps_per_epoch: int
                      ) -> tuple[LearningRate, list[keras.callbacks.Callback]]:
    """(learning rate or schedule, extra callbacks) for a phase, as `config.lr_schedule` says.

    constant: the seed's fixed rate. cosine: linear warm-up over the first epoch (at most a tenth
    of the phase), then cosine decay to zero. plateau: divide by 5 when val_loss stalls 2 epochs.
    """
    if config.lr_schedule == "cosine":
        total = max(1, epochs * steps_per_epoch)
        warmup = min(steps_per_epoch, total // 10)
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else peak, decay_steps=max(1, total - warmup),
            warmup_target=peak if warmup else None, warmup_steps=warmup), []
    if config.lr_schedule == "plateau":
        return peak, [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2,
                                                        patience=2, min_lr=peak / 100)]
    return peak, []


def steps_per_epoch(dataset: tf.data.Dataset) -> int:
    """Batches per epoch of a tf.data pipeline (1 when unknown), for learning-rate schedules."""
    return max(int(dataset.cardinality()), 1)


def standard_callbacks(log_file: str | Path | None, early_stopping_patience: int = 0
                       ) -> list[keras.callbacks.Callback]:
    """Stop on NaN, log every epoch to CSV, optional early stopping; a new list for every `fit`.

    No best-weights file: it would hold the optimizer state too (Keras 3 saves it with the
    weights); early stopping with `restore_best_weights` keeps the best epoch in the model itself.
    Reused for a second `fit`, Keras 3.4's EarlyStopping would keep the first fit's best loss.
    """
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN()]
    if log_file is not None:
        callbacks.append(keras.callbacks.CSVLogger(str(log_file), append=True))
    if early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True))
    return callbacks


def close_csv_logs(callbacks: Sequence[keras.callbacks.Callback]) -> None:
    """Close the CSV log of a `fit` that ended early (Keras closes it only when `fit` finishes),
    so the file can be replaced or deleted: Windows refuses that while it is open."""
    for callback in callbacks:
        handle = getattr(callback, "csv_file", None)
        if isinstance(callback, keras.callbacks.CSVLogger) and handle and not handle.closed:
            handle.close()


def interactive() -> bool:
    """True on a terminal or in a notebook, where a progress bar helps; False in logs and CI."""
    import sys

    if os.environ.get("CI"):
        return False
    return sys.stdout.isatty() or "ipykernel" in sys.modules


def fit_verbosity() -> int:
    """Keras `verbose` for fit: a live progress bar when interactive, one line per epoch in logs."""
    return 1 if interactive() else 2


def predict_verbosity() -> int:
    """Keras `verbose` for long predictions (feature extraction): a progress bar when interactive."""
    return 1 if interactive() else 0


@contextlib.contextmanager
def restartable(model: keras.Model) -> Iterator[None]:
    """Let each `fit` inside start at its own `initial_epoch`, even after a resumed one.

    BackupAndRestore sets the model's private `_initial_epoch` when it restores a phase, and
    nothing resets it: the next phase's `fit` would start at the restored epoch (Keras 3.3-3.15).
    """
    if "_initial_epoch" not in vars(model):
        raise TrainingError("this Keras version no longer keeps model._initial_epoch, which "
                            "resuming relies on (see training.restartable); use a Keras version "
                            "named in the README")
    try:
        yield
    finally:
        model._initial_epoch = None


def checked(history: keras.callbacks.History) -> keras.callbacks.History:
    """The History of a phase, or a TrainingError naming the epoch whose loss was NaN or infinite."""
    bad = [epoch for epoch, value in zip(history.epoch, history.history.get("loss", []))
           if not math.isfinite(value)]  # History keeps the absolute epoch, resumed or not
    if bad:
        raise LossNotFiniteError(f"loss became NaN or infinite in epoch {bad[0] + 1}; training "
                                 "stopped. Lower the learning rate or check the input data.")
    return history


def train_head(model: keras.Model, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset,
               config: Config, callbacks: Sequence[keras.callbacks.Callback] = (),
               verbose: int | str = "auto") -> keras.callbacks.History:
    """Phase 1: freeze ResNet50, compile at `lr_head`, train the head for `epochs_head` epochs."""
    freeze_base(model)
    learning_rate, schedule_callbacks = learning_rate_for(
        config, config.lr_head, config.epochs_head, steps_per_epoch(train_ds))
    compile_model(model, learning_rate, config.label_smoothing,
                  fused_adam=resolve_fast_ops(config.fast_ops))
    with restartable(model):  # the tf.data pipeline shuffles (seeded), so fit must not
        history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs_head,
                            callbacks=[*callbacks, *schedule_callbacks], verbose=verbose,
                            shuffle=False)
    return checked(history)


def feature_cache_obstacle(config: Config) -> str | None:
    """Why phase 1 cannot run on cached features, or None: the base must be frozen, and no
    setting may vary the images per epoch."""
    if config.recipe != "transfer":
        return "the scratch control trains the base"
    if any(getattr(config, name) for name in settings_varying_images()):
        return "augmentation changes the images every epoch"
    return None


def uses_feature_cache(config: Config) -> bool:
    """Phase 1 runs on cached features: asked for, and nothing stands in the way."""
    return config.feature_cache and feature_cache_obstacle(config) is None


def train_head_on_cached_features(model: keras.Model, train: tuple[np.ndarray, np.ndarray],
                                  val: tuple[np.ndarray, np.ndarray], config: Config,
                                  callbacks: Sequence[keras.callbacks.Callback] = (),
                                  verbose: int | str = "auto", *, cache_dir: str | Path
                                  ) -> keras.callbacks.History:
    """Phase 1 as `train_head`, but the frozen base runs once: the head trains on cached features.

    Applies because the base is frozen (BatchNorm in inference mode) and nothing changes the
    images from epoch to epoch (`uses_feature_cache` says when). The head layers are shared with
    `model`, so training them trains the full model's head. `train`/`val` are (images, labels).
    Pass no BackupAndRestore: the features stay cached, and the head trains again in seconds.
    """
    from .speed import dtype_policy, feature_datasets, head_on_features

    freeze_base(model)
    with dtype_policy(model.dtype_policy.name):
        head = head_on_features(model)
    train_ds, val_ds = feature_datasets(model, train, val, config, cache_dir)
    learning_rate, schedule_callbacks = learning_rate_for(
        config, config.lr_head, config.epochs_head, steps_per_epoch(train_ds))
    compile_model(head, learning_rate, config.label_smoothing,
                  fused_adam=resolve_fast_ops(config.fast_ops))
    history = head.fit(train_ds, validation_data=val_ds, epochs=config.epochs_head,
                       callbacks=[*callbacks, *schedule_callbacks], verbose=verbose, shuffle=False)
    return checked(history)


def fine_tune(model: keras.Model, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset,
              config: Config, callbacks: Sequence[keras.callbacks.Callback] = (),
              verbose: int | str = "auto") -> keras.callbacks.History:
    """Phase 2: unfreeze from `fine_tune_at` (BatchNorm stays frozen), recompile at `lr_finetune`."""
    unfreeze_base(model, config.fine_tune_at)
    learning_rate, schedule_callbacks = learning_rate_for(
        config, config.lr_finetune, config.epochs_finetune, steps_per_epoch(train_ds))
    compile_model(model, learning_rate, config.label_smoothing,
                  fused_adam=resolve_fast_ops(config.fast_ops))
    with restartable(model):  # epochs numbered after phase 1's, so the curves line up
        history = model.fit(train_ds, validation_data=val_ds, initial_epoch=config.epochs_head,
                            epochs=config.total_epochs, verbose=verbose, shuffle=False,
                            callbacks=[*callbacks, *schedule_callbacks])
    return checked(history)


def train_from_scratch(model: keras.Model, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset,
                       config: Config, phase: str,
                       callbacks: Sequence[keras.callbacks.Callback] = (),
                       verbose: int | str = "auto") -> keras.callbacks.History:
    """The control: random weights, every layer (BatchNorm too) trains at `lr_head` throughout.

    Same epochs as the two phases together; 'head' runs the first `epochs_head` of them and
    'finetune' the rest, so the run store, log and curves work as for the transfer recipe. Each
    part compiles afresh (Adam's moments and the schedule restart), as the recipe's phase 2 does;
    a saved phase holds no optimizer state, so carrying it over only in one process would make
    the control depend on how it was run.
    """
    first, last = ((0, config.epochs_head) if phase == "head"
                   else (config.epochs_head, config.total_epochs))
    train_everything(model)
    learning_rate, schedule_callbacks = learning_rate_for(
        config, config.lr_head, last - first, steps_per_epoch(train_ds))
    compile_model(model, learning_rate, config.label_smoothing,
                  fused_adam=resolve_fast_ops(config.fast_ops))
    with restartable(model):
        history = model.fit(train_ds, validation_data=val_ds, initial_epoch=first, epochs=last,
                            callbacks=[*callbacks, *schedule_callbacks], verbose=verbose,
                            shuffle=False)
    return checked(history)
