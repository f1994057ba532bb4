"""Phase behaviour on tiny data: what each phase may and may not change."""

import keras
import numpy as np
import pytest

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
