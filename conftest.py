"""Test-session defaults: quick profile for the notebooks (nbval kernels inherit this environment)."""

import functools
import os
import re
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
# at once. Notebooks 03 -> 04 -> 05 -> 07 run in one process, in this order, and each notebook's
# exercise-solution run follows it in its process and store (scheduler below).
# Workers inherit the controller's environment, so the base folder travels in a variable of its
# own; each process starts from an empty store, so every session trains what it tests.
RUNS_BASE = os.environ.setdefault("CIFAR_TEST_RUNS_BASE", os.environ.get("CIFAR_RUNS_DIR")
                                  or str(Path(__file__).parent / "runs"))
RUNS_DIR = Path(RUNS_BASE) / f"pytest-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
shutil.rmtree(RUNS_DIR, ignore_errors=True)
os.environ["CIFAR_RUNS_DIR"] = str(RUNS_DIR)

NOTEBOOK_CHAIN = ("03_head_training", "04_fine_tuning", "05_error_analysis",
                  "07_deeper_error_analysis")


def notebook_scope(stem: str) -> str:
    """The process group of a notebook: the chain's notebooks share one, the others their file."""
    return "notebook-chain" if stem in NOTEBOOK_CHAIN else f"notebooks/{stem}.ipynb"


def process_group(nodeid: str) -> str:
    """The tests one process runs together, in collection order: a test file, as --dist=loadfile
    groups them, but the notebook chain stays whole, and each exercise-solution run follows its
    notebook in that notebook's process: it runs the notebook again there, as a student does, so
    it loads the runs nbval's kernel finished instead of training them again."""
    path = Path(nodeid.split("::")[0])
    if path.suffix == ".ipynb":
        return notebook_scope(path.stem)
    solved = re.search(r"::test_solutions_run_after_the_notebook\[(.+)\]$", nodeid)
    return notebook_scope(solved[1]) if solved else str(path)


def pytest_xdist_make_scheduler(config, log):
    """Test files spread over processes as --dist=loadfile does, grouped by process_group, and
    queued in collection order: the notebooks (the longest groups) first. pytest-xdist queues
    the groups with the most tests first (before 3.8 always, since then by default), which leaves
    the files of one long test (the 64-pixel chain, the GPU check) to the end, each alone."""
    from xdist.scheduler import LoadScopeScheduling

    class ProcessGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return process_group(nodeid)

        @functools.cached_property
        def collection_order(self) -> dict[str, int]:
            """Each group's place in the queue: where its first test was collected."""
            order: dict[str, int] = {}
            for nodeid in self.collection:
                order.setdefault(process_group(nodeid), len(order))
            return order

        def _assign_work_unit(self, node) -> None:
            for group in sorted(self.workqueue, key=self.collection_order.__getitem__):
                self.workqueue.move_to_end(group)
            super()._assign_work_unit(node)

    return ProcessGroups(config, log)
