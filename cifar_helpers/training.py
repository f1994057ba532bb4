"""The two training phases: train the head on a frozen base, then fine-tune at a low learning rate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import keras

from .config import Config
from .errors import TrainingError
from .model import freeze_base, unfreeze_base


def compile_model(model: keras.Model, learning_rate, label_smoothing: float = 0.0,
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


def learning_rate_for(config: Config, peak: float, epochs: int, steps_per_epoch: int):
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


def _compile_phase(model: keras.Model, config: Config, peak: float, epochs: int, train_ds
                   ) -> list[keras.callbacks.Callback]:
    """Compile for one phase; returns the callbacks its learning-rate rule needs."""
    steps = int(train_ds.cardinality())  # negative when unknown: then count one step
    rate, extra = learning_rate_for(config, peak, epochs, max(steps, 1))
    compile_model(model, rate, config.label_smoothing, fused_adam=config.fast_ops)
    return extra


def standard_callbacks(out_dir: str | Path | None, early_stopping_patience: int = 0,
                       best_so_far: float | None = None) -> list[keras.callbacks.Callback]:
    """Best checkpoint, stop on NaN, CSV log, optional early stopping; reuse the list for both phases.

    `best_so_far`: the best validation accuracy before an interruption, so a resumed run does not
    overwrite the best checkpoint with a worse one.
    """
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN()]
    if out_dir is not None:
        out_dir = Path(out_dir)
        callbacks += [
            keras.callbacks.ModelCheckpoint(out_dir / "best.weights.h5", monitor="val_accuracy",
                                            mode="max", save_best_only=True,
                                            save_weights_only=True,
                                            initial_value_threshold=best_so_far),
            keras.callbacks.CSVLogger(str(out_dir / "training_log.csv"), append=True),
        ]
    if early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True))
    return callbacks


def _fit(model: keras.Model, train_ds, val_ds, *, first_epoch: int, last_epoch: int,
         callbacks: Sequence[keras.callbacks.Callback], verbose) -> keras.callbacks.History:
    """`model.fit` with epochs numbered across phases, refusing to go on after a NaN loss."""
    try:
        history = model.fit(train_ds, validation_data=val_ds, initial_epoch=first_epoch,
                            epochs=last_epoch, callbacks=list(callbacks), verbose=verbose,
                            shuffle=False)  # the tf.data pipeline already shuffles, seeded
    finally:
        # BackupAndRestore sets this on restore and nothing resets it: the next phase's fit
        # would start at the restored epoch instead of its own `initial_epoch` (Keras 3.15).
        model._initial_epoch = None
    losses = history.history.get("loss", [])
    if any(not math.isfinite(value) for value in losses):
        raise TrainingError(
            f"loss became NaN or infinite in epoch {first_epoch + len(losses)}; training stopped. "
            "Lower the learning rate or check the input data.")
    return history


def train_head(model: keras.Model, train_ds, val_ds, config: Config,
               callbacks: Sequence[keras.callbacks.Callback] = (), verbose="auto"
               ) -> keras.callbacks.History:
    """Phase 1: freeze ResNet50, compile at `lr_head`, train the head for `epochs_head` epochs."""
    freeze_base(model)
    extra = _compile_phase(model, config, config.lr_head, config.epochs_head, train_ds)
    return _fit(model, train_ds, val_ds, first_epoch=0, last_epoch=config.epochs_head,
                callbacks=[*callbacks, *extra], verbose=verbose)


def uses_feature_cache(config: Config) -> bool:
    """Phase 1 may run on cached features: asked for, and no augmentation changes the images."""
    return config.feature_cache and not config.augment


class _OnModel(keras.callbacks.Callback):
    """Runs a callback against another model: the full model while its head trains alone."""

    def __init__(self, callback: keras.callbacks.Callback, model: keras.Model):
        super().__init__()
        self.callback = callback
        callback.set_model(model)

    def set_model(self, model):
        pass  # fit hands us the head-only model; the wrapped callback keeps the full one

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs)


def train_head_on_cached_features(model: keras.Model, train, val, config: Config,
                                  callbacks: Sequence[keras.callbacks.Callback] = (),
                                  verbose="auto", *, cache_dir: str | Path
                                  ) -> keras.callbacks.History:
    """Phase 1 as `train_head`, but the frozen base runs once: the head trains on cached features.

    Applies because the base is frozen (BatchNorm in inference mode) and nothing augments the
    images, so every epoch would compute the same features (with augmentation it does not apply:
    `uses_feature_cache` says when it does). The head layers are shared with
    `model`, so training them trains the full model's head. `train`/`val` are (images, labels).
    Checkpoints are written from the full model; no mid-phase backup (the phase takes seconds).
    """
    from .speed import dtype_policy, feature_datasets, head_on_features

    freeze_base(model)
    with dtype_policy(model.dtype_policy.name):
        head = head_on_features(model)
    train_ds, val_ds = feature_datasets(model, train, val, config, cache_dir)
    extra = _compile_phase(head, config, config.lr_head, config.epochs_head, train_ds)
    kept = [_OnModel(c, model) if isinstance(c, keras.callbacks.ModelCheckpoint) else c
            for c in callbacks if not isinstance(c, keras.callbacks.BackupAndRestore)]
    return _fit(head, train_ds, val_ds, first_epoch=0, last_epoch=config.epochs_head,
                callbacks=[*kept, *extra], verbose=verbose)


def fine_tune(model: keras.Model, train_ds, val_ds, config: Config,
              callbacks: Sequence[keras.callbacks.Callback] = (), verbose="auto"
              ) -> keras.callbacks.History:
    """Phase 2: unfreeze (BatchNorm stays frozen), recompile at `lr_finetune`, continue the epochs."""
    unfreeze_base(model)
    extra = _compile_phase(model, config, config.lr_finetune, config.epochs_finetune, train_ds)
    return _fit(model, train_ds, val_ds, first_epoch=config.epochs_head,
                last_epoch=config.total_epochs, callbacks=[*callbacks, *extra], verbose=verbose)


def history_record(history: keras.callbacks.History, phase: str) -> dict:
    """A History as plain lists: 1-based epoch numbers, the phase of each epoch, each metric."""
    return {"epoch": [int(e) + 1 for e in history.epoch], "phase": [phase] * len(history.epoch),
            **{k: [float(v) for v in values] for k, values in history.history.items()}}


def merge_histories(phases: dict[str, keras.callbacks.History | dict]) -> dict:
    """One record of all epochs of consecutive phases, with the epoch where each new phase starts.

    Values may be Keras History objects or records made earlier by this function (for example
    phase 1 saved by notebook 03 and merged with phase 2 in notebook 04).
    """
    merged: dict = {"epoch": [], "phase": [], "boundaries": []}
    for name, history in phases.items():
        record = history if isinstance(history, dict) else history_record(history, name)
        if merged["epoch"] and record["epoch"]:
            merged["boundaries"].append(merged["epoch"][-1])
        merged["boundaries"] += record.get("boundaries", [])
        for key, values in record.items():
            if key != "boundaries":
                merged.setdefault(key, []).extend(values)
    return merged
