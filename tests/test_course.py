"""Notebook plumbing: checkpoints shared between notebooks, source display, the BatchNorm demo."""

import json

import keras
import numpy as np

from cifar_helpers.batchnorm import (moving_statistics, nested_training_false_model,
                                     statistics_drift)
from cifar_helpers.config import load_config
from cifar_helpers.course import (colab_url, environment_report, load_or_recreate,
                                  save_checkpoint, show_source)
from cifar_helpers.data import make_dataset
from cifar_helpers.model import freeze_base


def tiny_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


def test_load_or_recreate_reuses_only_a_checkpoint_with_the_same_settings(tmp_path):
    path = tmp_path / "phase1.keras"
    config = load_config("quick", environ={}, out=str(tmp_path))
    calls = []

    def recreate(seed=0):
        calls.append(seed)
        return tiny_model(seed), {"epoch": [1], "loss": [0.5]}

    first, history = load_or_recreate(path, config, recreate)
    assert calls == [0] and path.exists() and history["loss"] == [0.5]
    again, history = load_or_recreate(path, config, lambda: recreate(1))
    assert calls == [0] and history == {"epoch": [1], "loss": [0.5]}
    np.testing.assert_array_equal(again.get_weights()[0], first.get_weights()[0])
    other = load_config("quick", environ={}, out=str(tmp_path), epochs_head=3)
    load_or_recreate(path, other, lambda: recreate(2))
    assert calls == [0, 2]
    assert json.loads(path.with_suffix(".json").read_text())["settings"]["epochs_head"] == 3


def test_phase1_checkpoint_ignores_phase2_settings(tmp_path):
    path = tmp_path / "phase1.keras"
    config = load_config("quick", environ={}, out=str(tmp_path))
    save_checkpoint(tiny_model(0), path, config, {"epoch": [1]})
    changed_phase2 = load_config("quick", environ={}, out=str(tmp_path), lr_finetune=3e-5)
    calls = []
    load_or_recreate(path, changed_phase2, lambda: calls.append(1) or (tiny_model(1), {}),
                     phase="head")
    assert calls == []
    load_or_recreate(path, changed_phase2, lambda: calls.append(1) or (tiny_model(1), {}))
    assert calls == [1]


def test_checkpoint_records_settings_but_not_the_output_folder(tmp_path):
    config = load_config("quick", environ={}, out=str(tmp_path))
    save_checkpoint(tiny_model(0), tmp_path / "m.keras", config, {"epoch": [1]})
    record = json.loads((tmp_path / "m.keras").with_suffix(".json").read_text())
    assert "out" not in record["settings"] and record["settings"]["seed"] == config.seed


def test_colab_url_and_source_display():
    assert colab_url("03_head_training.ipynb").startswith("https://colab.research.google.com/github/")
    assert colab_url("03_head_training.ipynb").endswith("/blob/main/notebooks/03_head_training.ipynb")
    assert "def freeze_base" in show_source(freeze_base).data


def test_environment_report_names_versions_and_devices(capsys):
    report = environment_report()
    assert report["keras"].startswith("3.") and isinstance(report["gpus"], list)
    assert "tensorflow" in capsys.readouterr().out


def test_keras_io_training_false_pattern_still_moves_statistics_in_fit():
    """The trap notebook 04 teaches: if Keras changes this behaviour, the lesson must change too."""
    model = nested_training_false_model()
    before = moving_statistics(model)
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="categorical_crossentropy")
    model.fit(make_dataset(x, np.arange(32) % 10, 16), epochs=1, verbose=0, shuffle=False)
    drift = statistics_drift(before, moving_statistics(model))
    assert drift["arrays"] == 106 and drift["changed"] == 106 and drift["max_abs_change"] > 0
