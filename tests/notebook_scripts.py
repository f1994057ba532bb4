"""Run a notebook's py:percent twin as a script in a subprocess: the notebook's own code path,
with the environment (profile, run folder, kill switch) each test chooses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def environment(runs_dir: Path, **settings: str) -> dict[str, str]:
    """This environment without the caller's CIFAR_* settings, the run store under `runs_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFAR_")}
    return {**env, "CIFAR_RUNS_DIR": str(runs_dir), "MPLBACKEND": "Agg",
            "TF_CPP_MIN_LOG_LEVEL": "2", **settings}


def run_script(script: Path, runs_dir: Path, **settings: str) -> subprocess.CompletedProcess:
    """Execute `script` from notebooks/ in the quick profile with its run store under `runs_dir`."""
    return subprocess.run([sys.executable, str(script)], cwd=NOTEBOOKS,
                          env=environment(runs_dir, CIFAR_PROFILE="quick", **settings),
                          capture_output=True, text=True, timeout=900)


def run_notebook(stem: str, runs_dir: Path, **settings: str) -> subprocess.CompletedProcess:
    """Execute notebooks/<stem>.py in the quick profile with its run store under `runs_dir`."""
    return run_script(NOTEBOOKS / f"{stem}.py", runs_dir, **settings)


def solutions(stem: str) -> list[str]:
    """The code of each exercise solution (the ```python block in a "Solution" <details> cell)."""
    notebook = jupytext.read(NOTEBOOKS / f"{stem}.py")
    return [code for cell in notebook.cells if cell.cell_type == "markdown"
            and "<summary>Solution" in cell.source
            for code in re.findall(r"^```python\n(.*?)^```", cell.source, re.M | re.S)]


def run_notebook_with_solutions(stem: str, runs_dir: Path,
                                script_dir: Path) -> subprocess.CompletedProcess:
    """Execute notebooks/<stem>.py, then each solution after it, as a student would at the end
    (the script written to `script_dir`); each solution first prints `=== solution N ===`."""
    script = (NOTEBOOKS / f"{stem}.py").read_text() + "".join(
        f"\n# %%\nprint('=== solution {number} ===', flush=True)\n{code}"
        for number, code in enumerate(solutions(stem), 1))
    path = script_dir / f"{stem}_with_solutions.py"
    path.write_text(script)
    return run_script(path, runs_dir)


def cli_train(runs_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    """`python -m cifar_helpers train --profile quick ARGS` with the run store under `runs_dir`
    and extra environment `settings`."""
    return subprocess.run([sys.executable, "-m", "cifar_helpers", "train", "--profile", "quick",
                           *args], env=environment(runs_dir, **settings), capture_output=True,
                          text=True, timeout=900)
