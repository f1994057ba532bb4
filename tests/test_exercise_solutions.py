"""Every exercise solution runs: each notebook's py:percent twin is executed in the quick profile
with its solutions appended, as a student who opens them at the end of the notebook runs them.

It runs in this test process's run store (conftest.py): where nbval ran the notebook, in the same
process before it (conftest.py's scheduler), the notebook loads the runs nbval finished instead of
training them again, as it does for a student who runs it a second time; alone, it trains them."""

import os
import re
from pathlib import Path

import pytest

from notebook_scripts import NOTEBOOKS, run_notebook_with_solutions, solutions

STEMS = sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
# What a solution says it prints (in a comment or in the text next to it), checked.
PRINTS = {
    "03_head_training": ["271178"],
    "04_fine_tuning": ["changed: False\nchanged: True", "'changed': 106"],
    "06_improvements": ["peak at step 0", "peak at step 141"],
}


@pytest.mark.parametrize("stem", STEMS)
def test_every_solution_is_one_python_block(stem):
    text = (NOTEBOOKS / f"{stem}.py").read_text()
    shown = len(re.findall(r"<summary>Solution", text))
    codes = solutions(stem)
    assert shown >= 1, "each notebook ends with exercises and their solutions"
    assert len(codes) == shown, "a solution without exactly one ```python block"
    for code in codes:
        compile(code, stem, "exec")


@pytest.mark.parametrize("stem", STEMS)
def test_solutions_run_after_the_notebook(stem, tmp_path):
    done = run_notebook_with_solutions(stem, Path(os.environ["CIFAR_RUNS_DIR"]), tmp_path)
    assert done.returncode == 0, f"{stem}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    printed = done.stdout.split("=== solution 1 ===", 1)[-1]
    for number in range(1, len(solutions(stem)) + 1):
        assert f"=== solution {number} ===" in done.stdout
    for expected in PRINTS.get(stem, []):
        assert expected in printed, f"{stem}: a solution no longer prints {expected!r}"


def test_each_solution_run_follows_its_notebook_in_that_notebooks_process():
    from conftest import NOTEBOOK_CHAIN, process_group  # the root conftest.py

    def solution_run(stem: str) -> str:
        return f"tests/{Path(__file__).name}::{test_solutions_run_after_the_notebook.__name__}" \
               f"[{stem}]"

    for stem in STEMS:
        assert process_group(solution_run(stem)) == process_group(f"notebooks/{stem}.ipynb::Cell 3")
    assert {process_group(solution_run(stem)) for stem in NOTEBOOK_CHAIN} == {"notebook-chain"}
    assert len({process_group(solution_run(stem)) for stem in STEMS}) == len(STEMS) - 3
    assert process_group("tests/test_cli.py::test_a") == process_group("tests/test_cli.py::test_b")
