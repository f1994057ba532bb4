"""Test-session defaults: quick profile for the notebooks (nbval kernels inherit this environment)."""

import os
import shutil
from dataclasses import fields
from pathlib import Path

from cifar_helpers.config import Config

# Every notebook runs in the quick profile, whatever the shell exported (CIFAR_PROFILE=seed, or
# CIFAR_EPOCHS_FINETUNE=0, would otherwise turn tests into hours of training or failures).
for setting in fields(Config):
    os.environ.pop(f"CIFAR_{setting.name.upper()}", None)
os.environ["CIFAR_PROFILE"] = "quick"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# Notebooks run by nbval in one test process share a run store, as they would for a student;
# processes (pytest-xdist workers) never share one, so two notebooks never write the same store
# at once. Notebooks 03 -> 04 -> 05 -> 07 run in one process, in this order (scheduler below).
# Workers inherit the controller's environment, so the base folder travels in a variable of its
# own; each process starts from an empty store, so every session trains what it tests.
RUNS_BASE = os.environ.setdefault("CIFAR_TEST_RUNS_BASE", os.environ.get("CIFAR_RUNS_DIR")
                                  or str(Path(__file__).parent / "runs"))
RUNS_DIR = Path(RUNS_BASE) / f"pytest-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
shutil.rmtree(RUNS_DIR, ignore_errors=True)
os.environ["CIFAR_RUNS_DIR"] = str(RUNS_DIR)

NOTEBOOK_CHAIN = ("03_head_training", "04_fine_tuning", "05_error_analysis",
                  "07_deeper_error_analysis")


def pytest_xdist_make_scheduler(config, log):
    """Files spread over processes as --dist=loadfile does, but the notebook chain stays whole
    and the exercise-solution runs (a notebook each, minutes in all) spread one by one."""
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndNotebookChain(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            if path == "tests/test_exercise_solutions.py":
                return nodeid
            chained = any(path == f"notebooks/{stem}.ipynb" for stem in NOTEBOOK_CHAIN)
            return "notebook-chain" if chained else path

    return FilesAndNotebookChain(config, log)
