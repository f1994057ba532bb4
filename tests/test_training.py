"""Phase behaviour on tiny data: what each phase may and may not change."""

import keras
import numpy as np
import pytest

from cifar_helpers import speed, training
from cifar_helpers.config import load_config
from cifar_helpers.data import make_dataset
from cifar_helpers.errors import TrainingError
from cifar_helpers.model import base_layers, build_model, head_layers
from cifar_helpers.run_store import history_from_log
from cifar_helpers.training import checked, fine_tune, standard_callbacks, train_head

CONFIG = load_config("quick", environ={}, epochs_head=1, epochs_finetune=1, batch_size=16)


def tiny_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % 10
    return make_dataset(x, y, 16, shuffle=True, seed=seed), make_dataset(x[:16], y[:16], 16)


def snapshot(layers):
    return {v.path: v.numpy().copy() for layer in layers for v in layer.weights}


def batch_norm_statistics(model):
    return {v.path: v.numpy().copy() for layer in base_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)}


def changed(before, after):
    return [k for k in before if not np.array_equal(before[k], after[k])]


@pytest.fixture(scope="module")
def two_phase_run(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_model(weights=None)
    train_ds, val_ds = tiny_data()
    out = tmp_path_factory.mktemp("run")
    callbacks = standard_callbacks(out / "training_log.csv")
    record = {"base_0": snapshot(base_layers(model)), "head_0": snapshot(head_layers(model)),
              "out": out}
    record["h1"] = train_head(model, train_ds, val_ds, CONFIG, callbacks, verbose=0)
    record["base_1"], record["head_1"] = snapshot(base_layers(model)), snapshot(head_layers(model))
    record["bn_1"] = batch_norm_statistics(model)
    record["h2"] = fine_tune(model, train_ds, val_ds, CONFIG, callbacks, verbose=0)
    record["base_2"], record["bn_2"] = snapshot(base_layers(model)), batch_norm_statistics(model)
    record["model"] = model
    return record


def test_phase1_leaves_base_bit_identical_and_trains_head(two_phase_run):
    assert two_phase_run["base_0"] and changed(two_phase_run["base_0"],
                                               two_phase_run["base_1"]) == []
    assert len(changed(two_phase_run["head_0"], two_phase_run["head_1"])) == 6  # 3 kernels + biases


def test_phase2_keeps_batchnorm_statistics_and_trains_convolutions(two_phase_run):
    """The control that this can fail (statistics do move when BatchNorm is not frozen) is
    tests/test_course.py::test_keras_io_training_false_pattern_still_moves_statistics_in_fit."""
    assert two_phase_run["bn_1"] and changed(two_phase_run["bn_1"], two_phase_run["bn_2"]) == []
    moved = changed(two_phase_run["base_1"], two_phase_run["base_2"])
    assert any("conv1_conv/kernel" in k for k in moved)
    assert any("conv5_block3_3_conv/kernel" in k for k in moved)
    assert not any("_bn/" in k for k in moved)


def test_phase2_is_recompiled_at_the_low_learning_rate(two_phase_run):
    model = two_phase_run["model"]
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-5)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 23_752_650


def test_histories_merge_with_continuous_epochs_and_a_boundary(two_phase_run):
    assert two_phase_run["h2"].epoch == [1]
    merged = history_from_log(two_phase_run["out"] / "training_log.csv", CONFIG.epochs_head)
    assert merged["epoch"] == [1, 2] and merged["phase"] == ["head", "finetune"]
    assert merged["boundaries"] == [1] and len(merged["val_accuracy"]) == 2
    assert all(np.isfinite(merged["loss"]))


def test_callbacks_wrote_the_log_and_no_weights_file(two_phase_run):
    out = two_phase_run["out"]
    assert sorted(p.name for p in out.iterdir()) == ["training_log.csv"]
    lines = (out / "training_log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch") and [l.split(",")[0] for l in lines[1:]] == ["0", "1"]


def fit_drifting_away_from_validation(early_stopping_patience):
    """Fit w*x to train targets 1 while validation wants 0: val_loss = w**2 rises every epoch.

    Plain SGD at rate 0.1 from w = 0 moves w to 0.2, 0.36, 0.488, ...: epoch 1 is the best.
    Returns the History and the final weight.
    """
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ones = np.ones((1, 1), dtype="float32")
    history = model.fit(ones, ones, validation_data=(ones, 0 * ones), epochs=6, batch_size=1,
                        shuffle=False, verbose=0,
                        callbacks=standard_callbacks(None, early_stopping_patience))
    return history, float(model.layers[0].kernel.numpy()[0, 0])


def test_early_stopping_stops_when_val_loss_rises_and_restores_the_best_epoch():
    history, weight = fit_drifting_away_from_validation(early_stopping_patience=1)
    assert history.epoch == [0, 1]  # epoch 2 did not improve: stopped after 1 more epoch
    assert history.history["val_loss"][1] > history.history["val_loss"][0]
    assert weight == pytest.approx(0.2)  # epoch 1's weight, not epoch 2's 0.36


def test_without_early_stopping_every_epoch_runs_and_the_last_weights_stay():
    history, weight = fit_drifting_away_from_validation(early_stopping_patience=0)
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    assert weight == pytest.approx(1 - 0.8 ** 6)  # w_k = 1 - 0.8**k after k SGD steps


@pytest.fixture(scope="module")
def untrained_model():
    keras.utils.set_random_seed(0)
    return build_model(weights=None)


def callbacks_given_to_fit(monkeypatch, run_phase, model, lr_schedule):
    """The callbacks a phase passes to `fit` (every Keras model's fit replaced by a recorder)."""
    from types import SimpleNamespace

    fits = []
    monkeypatch.setattr(keras.Model, "fit", lambda self, *args, **kwargs: fits.append(kwargs)
                        or SimpleNamespace(epoch=[0], history={"loss": [1.0]}))
    config = load_config("quick", environ={}, lr_schedule=lr_schedule)
    batches = SimpleNamespace(cardinality=lambda: 3)
    mine = keras.callbacks.TerminateOnNaN()
    run_phase(model, batches, config, mine)
    assert len(fits) == 1 and fits[0]["callbacks"][0] is mine  # the caller's come first
    return fits[0]["callbacks"]


def cached_head_phase(model, batches, config, callback, monkeypatch):
    """Phase 1 on cached features, with the feature extraction replaced by `batches`."""
    monkeypatch.setattr(speed, "feature_datasets", lambda *args: (batches, None))
    images = (np.zeros((2, 32, 32, 3), np.uint8), np.zeros(2, int))
    training.train_head_on_cached_features(model, images, images, config, [callback],
                                           cache_dir="unused")


PHASES = {
    "train_head": lambda model, batches, config, callback, _: train_head(
        model, batches, None, config, [callback]),
    "fine_tune": lambda model, batches, config, callback, _: fine_tune(
        model, batches, None, config, [callback]),
    "train_from_scratch": lambda model, batches, config, callback, _: training.train_from_scratch(
        model, batches, None, config, "finetune", [callback]),
    "train_head_on_cached_features": cached_head_phase,
}


@pytest.mark.parametrize("lr_schedule", ["constant", "cosine", "plateau"])
@pytest.mark.parametrize("phase", sorted(PHASES))
def test_the_plateau_schedule_gives_fit_a_reduce_lr_on_plateau_and_no_other_does(
        monkeypatch, untrained_model, phase, lr_schedule):
    callbacks = callbacks_given_to_fit(
        monkeypatch, lambda *args: PHASES[phase](*args, monkeypatch), untrained_model, lr_schedule)
    plateaus = [c for c in callbacks if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert len(plateaus) == (lr_schedule == "plateau")
    if plateaus:
        assert plateaus[0].monitor == "val_loss" and plateaus[0].factor == 0.2


def test_nan_loss_stops_training_with_a_clear_error():
    model = build_model(weights=None)
    x = np.zeros((16, 32, 32, 3), dtype=np.uint8)
    train_ds = make_dataset(x, np.zeros(16, dtype=int), 8)
    model.get_layer("predictions").kernel.assign(
        np.full(model.get_layer("predictions").kernel.shape, np.nan, dtype="float32"))
    with pytest.raises(TrainingError, match="NaN or infinite"):
        train_head(model, train_ds, None, CONFIG, standard_callbacks(None), verbose=0)


def test_a_nan_after_a_resume_names_its_own_epoch():
    history = keras.callbacks.History()  # phase 2 resumed at epoch 16 of 20: Keras' 0-based 15
    history.epoch, history.history = [15, 16], {"loss": [0.5, float("nan")]}
    with pytest.raises(TrainingError, match="in epoch 17;"):
        checked(history)


def test_history_up_to_phase_1_keeps_only_its_epochs(two_phase_run):
    head = history_from_log(two_phase_run["out"] / "training_log.csv", CONFIG.epochs_head,
                            CONFIG.epochs_head)
    assert head["epoch"] == [1] and head["boundaries"] == [] and head["phase"] == ["head"]


def test_history_up_to_phase_1_ends_at_its_last_epoch_when_it_stopped_early(tmp_path):
    log = tmp_path / "training_log.csv"  # phase 1 stopped after 2 of 3 epochs; phase 2 at epoch 3
    log.write_text("epoch,loss\n0,2.0\n1,1.5\n3,1.2\n4,1.0\n")
    head = history_from_log(log, 3, 3)
    assert head["epoch"] == [1, 2] and head["loss"] == [2.0, 1.5] and head["phase"] == ["head"] * 2
    both = history_from_log(log, 3)
    assert both["epoch"] == [1, 2, 4, 5] and both["boundaries"] == [2]


def test_a_keras_without_the_resume_attribute_fails_loudly():
    """restartable relies on Keras' private model._initial_epoch; if it disappears, say so."""
    from cifar_helpers.training import restartable

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    del model._initial_epoch
    with pytest.raises(TrainingError, match="_initial_epoch"):
        with restartable(model):
            pass


@pytest.mark.parametrize("ci, tty, fit, predict", [("true", True, 2, 0), ("", True, 1, 1),
                                                    ("", False, 2, 0)])
def test_progress_bars_on_terminals_one_line_per_epoch_in_logs(monkeypatch, ci, tty, fit,
                                                                 predict):
    import sys
    import types

    from cifar_helpers.training import fit_verbosity, predict_verbosity

    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(sys, "stdout", types.SimpleNamespace(isatty=lambda: tty))
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert (fit_verbosity(), predict_verbosity()) == (fit, predict)


def lesson_cell(notebook: str, first_line: str) -> str:
    """The source of the code cell of a notebook's .py twin that starts with `first_line`."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "notebooks" / f"{notebook}.py").read_text()
    cells = [cell.strip() for cell in text.split("# %%\n")]
    found = [cell for cell in cells if cell.startswith(first_line)]
    assert len(found) == 1, f"{notebook}: no single cell starts with {first_line!r}"
    return found[0]


@pytest.mark.parametrize("profile", ["seed", "quick"])
def test_notebook_03_compiles_phase_1_exactly_as_train_head_does(monkeypatch, profile):
    from types import SimpleNamespace

    from cifar_helpers.model import freeze_base, trainable_count

    config = load_config(profile, environ={})
    cell = lesson_cell("03_head_training", "LEARNING_RATE_HEAD = config.lr_head")
    in_notebook = build_model(weights=None)
    namespace = {"keras": keras, "config": config, "model": in_notebook,
                 "freeze_base": freeze_base, "trainable_count": trainable_count}
    exec(compile(cell, "03_head_training.py", "exec"), namespace)
    in_package = build_model(weights=None)
    fits = []
    monkeypatch.setattr(in_package, "fit", lambda *args, **kwargs: fits.append(kwargs)
                        or SimpleNamespace(epoch=[0], history={"loss": [1.0]}), raising=False)
    train_head(in_package, SimpleNamespace(cardinality=lambda: 3), None, config)

    assert namespace["EPOCHS_HEAD"] == fits[0]["epochs"] == config.epochs_head
    assert type(in_notebook.optimizer) is type(in_package.optimizer) is keras.optimizers.Adam
    rate = [float(keras.ops.convert_to_numpy(m.optimizer.learning_rate))
            for m in (in_notebook, in_package)]
    assert rate[0] == rate[1] == pytest.approx(config.lr_head)
    assert in_notebook.loss.get_config() == in_package.loss.get_config()
    assert [layer.trainable for layer in in_notebook.layers] == [
        layer.trainable for layer in in_package.layers]
    assert trainable_count(in_notebook) == trainable_count(in_package) == 271_178
