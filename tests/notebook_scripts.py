"""Run a notebook's py:percent twin as a script in a subprocess: the notebook's own code path,
with the environment (profile, run folder, kill switch) each test chooses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def environment(runs_dir: Path, **settings: str) -> dict[str, str]:
    """This environment without the caller's CIFAR_* settings, the run store under `runs_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFAR_")}
    return {**env, "CIFAR_RUNS_DIR": str(runs_dir), "MPLBACKEND": "Agg",
            "TF_CPP_MIN_LOG_LEVEL": "2", **settings}


def run_notebook(stem: str, runs_dir: Path, **settings: str) -> subprocess.CompletedProcess:
    """Execute notebooks/<stem>.py in the quick profile with its run store under `runs_dir`."""
    return subprocess.run([sys.executable, f"{stem}.py"], cwd=NOTEBOOKS,
                          env=environment(runs_dir, CIFAR_PROFILE="quick", **settings),
                          capture_output=True, text=True, timeout=900)


def cli_train(runs_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    """`python -m cifar_helpers train --profile quick ARGS` with the run store under `runs_dir`
    and extra environment `settings`."""
    return subprocess.run([sys.executable, "-m", "cifar_helpers", "train", "--profile", "quick",
                           *args], env=environment(runs_dir, **settings), capture_output=True,
                          text=True, timeout=900)
