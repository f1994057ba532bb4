"""Notebook plumbing: Colab and Kaggle links, source display, expectations block, environment
report, the BatchNorm demo."""

import re
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from cifar_helpers import config as config_module
from cifar_helpers.config import runs_root
from cifar_helpers.lessons.batchnorm import (moving_statistics, nested_training_false_model,
                                     statistics_drift)
from cifar_helpers.lessons.course import (BRANCH, REPO_URL, colab_url, environment_report,
                                          kaggle_url, show_expectations, show_source)
from cifar_helpers.versions import (WHAT_TO_DO, UnsupportedRuntimeError, hosted_runtime,
                                    require_supported)
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


@pytest.mark.parametrize("kaggle, colab_module, runtime, runs", [
    (None, False, "local", None), ("Interactive", False, "kaggle", "/kaggle/working/runs"),
    ("", False, "kaggle", "/kaggle/working/runs"), (None, True, "colab", "/content/runs"),
    ("Batch", True, "kaggle", "/kaggle/working/runs"),  # Kaggle's image is built on Colab's
])
def test_one_runtime_detection_decides_the_run_folder_and_the_advice(
        monkeypatch, kaggle, colab_module, runtime, runs):
    environ = {} if kaggle is None else {"KAGGLE_KERNEL_RUN_TYPE": kaggle}
    for name, value in {"KAGGLE_KERNEL_RUN_TYPE": kaggle, "CIFAR_RUNS_DIR": None}.items():
        monkeypatch.delenv(name, raising=False)
        if value is not None:
            monkeypatch.setenv(name, value)
    if colab_module:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(config_module, "__file__", "/nowhere/cifar_helpers/config.py")
    assert hosted_runtime(environ) == hosted_runtime() == runtime
    assert runs_root(environ) == (Path(runs) if runs else Path.home() / "cifar10-course" / "runs")
    with pytest.raises(UnsupportedRuntimeError, match=re.escape(WHAT_TO_DO[runtime])):
        require_supported({"python": "3.9.0", "tensorflow": "2.21.0", "keras": "3.15.0"})


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
