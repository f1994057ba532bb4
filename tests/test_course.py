"""Notebook plumbing: Colab and Kaggle links, source display, expectations block, environment
report, the BatchNorm demo."""

import keras
import numpy as np

from cifar_helpers.lessons.batchnorm import (moving_statistics, nested_training_false_model,
                                     statistics_drift)
from cifar_helpers.lessons.course import (BRANCH, REPO_URL, colab_url, environment_report,
                                          is_kaggle, kaggle_url, show_expectations, show_source)
from cifar_helpers.data import make_dataset
from cifar_helpers.model import freeze_base


def test_colab_url_and_source_display():
    assert colab_url("03_head_training.ipynb").startswith("https://colab.research.google.com/github/")
    assert colab_url("03_head_training.ipynb").endswith(
        f"/blob/{BRANCH}/notebooks/03_head_training.ipynb")
    assert "def freeze_base" in show_source(freeze_base).data


def test_kaggle_url_imports_the_notebook_from_the_repository(monkeypatch):
    url = kaggle_url("03_head_training.ipynb")
    assert url == ("https://kaggle.com/kernels/welcome?src="
                   f"{REPO_URL}/blob/{BRANCH}/notebooks/03_head_training.ipynb")
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert not is_kaggle()
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert is_kaggle()


def test_show_expectations_displays_the_shipped_block():
    shown = show_expectations().data
    assert shown.startswith("### What to expect") and "Kornblith, Shlens & Le" in shown


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
