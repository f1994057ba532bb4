"""Static checks of the course notebooks: pairs in sync (never syncing them), no outputs, structure.

The notebooks themselves are executed by nbval (`pytest` collects notebooks/*.ipynb).
"""

import json
import re
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import jupytext
import pytest

from cifar_helpers.lessons.course import BRANCH, REPO_URL, colab_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["01_data_exploration", "02_preprocessing", "03_head_training", "04_fine_tuning",
            "05_error_analysis", "06_improvements", "07_deeper_error_analysis"]


def cells(path: Path) -> list[tuple[str, str]]:
    """(type, source) of every cell, as jupytext reads the file."""
    return [(c.cell_type, c.source.strip()) for c in jupytext.read(path).cells]


def test_every_course_notebook_exists_as_a_pair():
    stems = [p.stem for p in NOTEBOOKS]
    assert stems[:len(EXPECTED)] == EXPECTED
    twins = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert twins == stems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_is_in_sync(notebook):
    assert cells(notebook) == cells(notebook.with_suffix(".py")), (
        f"{notebook.name} and its .py twin differ: edit one, then `jupytext --sync` it")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(notebook):
    raw = json.loads(notebook.read_text())
    dirty = [i for i, c in enumerate(raw["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert dirty == [], f"{notebook.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_the_course_structure(notebook):
    text = notebook.with_suffix(".py").read_text()
    assert colab_url(notebook.name) in text, "Open-in-Colab badge missing or pointing elsewhere"
    assert f"git+{REPO_URL}@{BRANCH}" in text, "Colab install cell missing or pointing elsewhere"
    assert '"google.colab" in sys.modules' in text
    assert "environment_report()" in text and "load_config()" in text
    assert re.search(r"^# ## Exercises", text, re.M) and "<details>" in text
    assert "\nassert " in text, "nbval needs assertion cells that check something real"
    assert "pip install tensorflow" not in text.replace('"', "").lower()


def test_every_repo_link_uses_the_one_repo_url_and_branch():
    texts = [p.read_text() for p in (ROOT / "notebooks").glob("*.py")]
    texts.append((ROOT / "README.md").read_text())
    for text in texts:
        for link in re.findall(r"github\.com/[\w.-]+/[\w.-]+(?:/blob/[\w.-]+|@[\w.-]+)?", text):
            assert link.startswith(REPO_URL.removeprefix("https://")), link
        for link in re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"']+", text):
            assert link == colab_url(link.rsplit("/", 1)[-1]), link
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == REPO_URL
