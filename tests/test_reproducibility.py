"""Same seed and profile on a CPU: identical accuracy and loss figures in metrics.json."""

from cifar_helpers.config import load_config
from cifar_helpers.study import run_study

FIGURES = ("loss", "accuracy", "val_loss", "val_accuracy")


def quiet(text):
    pass


def test_two_runs_with_the_same_seed_give_identical_figures(tmp_path):
    runs = []
    for name in ("first", "second"):
        config = load_config("quick", environ={}, train_limit=100, test_limit=20,
                             out=str(tmp_path / name))
        runs.append(run_study(config, log=quiet, verbose=0))
    first, second = runs
    assert first["test_accuracy"] == second["test_accuracy"]
    assert first["per_class_accuracy"] == second["per_class_accuracy"]
    for figure in FIGURES:
        assert first["history"][figure] == second["history"][figure], figure
    different_seed = run_study(load_config("quick", environ={}, train_limit=100, test_limit=20,
                                           seed=7, out=str(tmp_path / "third")), log=quiet,
                               verbose=0)
    assert different_seed["history"]["loss"] != first["history"]["loss"]
