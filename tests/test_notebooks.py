"""Static checks of the course notebooks: pairs in sync (never syncing them), no outputs, structure.

The notebooks themselves are executed by nbval (`pytest` collects notebooks/*.ipynb).
"""

import ast
import dataclasses
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import jupytext
import pytest

from cifar_helpers.config import Config
from cifar_helpers.lessons.course import BRANCH, REPO_URL, colab_url, expectations_text, kaggle_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["01_data_exploration", "02_preprocessing", "03_head_training", "04_fine_tuning",
            "05_error_analysis", "06_improvements", "07_deeper_error_analysis"]
# Notebooks that report accuracies, and so show the one "What to expect" block.
SHOW_EXPECTATIONS = ["03_head_training", "04_fine_tuning", "05_error_analysis", "06_improvements",
                     "07_deeper_error_analysis"]
# Phrases of the block once pasted into five notebooks, with unsourced figures: never again.
PASTED_BOX = ["Published figures, not ours", "community write-ups", "roughly 70%", "85–92%"]
KAGGLE_OFFLINE = ("Kaggle: turn Internet on (Settings panel › Internet, phone-verified account "
                  "needed) and run this cell again")


# what Jupyter's interface sets on a cell (folded, scrolled), kept by jupytext in the .ipynb only
VIEW_METADATA = {"autoscroll", "collapsed", "scrolled", "trusted", "execution", "ExecuteTime"}
# what the pair shares from the notebook's metadata (jupytext.toml): Colab opens a GPU runtime
SHARED_METADATA = ("accelerator", "colab", "kernelspec")


def cells(path: Path) -> list[tuple[str, str, dict]]:
    """(type, source, metadata) of every cell, as jupytext reads the file: a tag such as nbval's
    `raises-exception`, set in Jupyter on the .ipynb alone, would switch off a check cell."""
    return [(c.cell_type, c.source.strip(),
             {k: v for k, v in c.metadata.items() if k not in VIEW_METADATA})
            for c in jupytext.read(path).cells]


def test_every_course_notebook_exists_as_a_pair():
    stems = [p.stem for p in NOTEBOOKS]
    assert stems[:len(EXPECTED)] == EXPECTED
    twins = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert twins == stems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_is_in_sync(notebook):
    assert cells(notebook) == cells(notebook.with_suffix(".py")), (
        f"{notebook.name} and its .py twin differ: copy your edit to the other file "
        "(CONTRIBUTING.md, Editing a notebook)")
    shared = [{key: jupytext.read(path).metadata.get(key) for key in SHARED_METADATA}
              for path in (notebook, notebook.with_suffix(".py"))]
    assert shared[0] == shared[1] and shared[0]["accelerator"] == "GPU", shared


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_is_exempt_from_its_checks(notebook):
    """nbval tags and markers that let a cell fail or skip it: every check cell must run."""
    exempt = [i for i, (_, source, metadata) in enumerate(cells(notebook))
              if set(metadata.get("tags", [])) & {"raises-exception", "nbval-skip",
                                                  "nbval-ignore-output", "skip-execution"}
              or re.search(r"#\s*NBVAL_", source)]
    assert exempt == [], f"{notebook.name}: cells {exempt} are exempt from nbval's checks"


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
    assert f"[![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]" \
           f"({kaggle_url(notebook.name)})" in text, "Open-in-Kaggle badge missing or elsewhere"
    assert f"git+{REPO_URL}@{BRANCH}" in text, "Colab install cell missing or pointing elsewhere"
    assert '"google.colab" in sys.modules' in text
    assert 'IS_KAGGLE = "KAGGLE_KERNEL_RUN_TYPE" in os.environ' in text
    assert "environment_report()" in text and "load_config()" in text
    assert re.search(r"^# ## Exercises", text, re.M) and "<details>" in text
    assert "\nassert " in text, "nbval needs assertion cells that check something real"
    assert "pip install tensorflow" not in text.replace('"', "").lower()


GITHUB_LINK = re.compile(r"(?:--branch ([\w.-]+) https://)?github\.com/([\w.-]+/[\w-]+(?:\.[\w-]+)*?)"
                         r"(?:\.git)?(?:/blob/([\w.-]+)|@([\w.-]+))?(?=[/\s)\"'`]|$)")


def repo_links(text: str) -> list[tuple[str, str | None]]:
    """(owner/name, branch or None) of every GitHub link, clone and install spec in a text."""
    return [(repo, cloned or blob or installed or None)
            for cloned, repo, blob, installed in GITHUB_LINK.findall(text)]


def test_every_repo_link_uses_the_one_repo_url_and_branch():
    texts = [p.read_text() for p in (ROOT / "notebooks").glob("*.py")]
    texts += [(ROOT / name).read_text() for name in ("README.md", "benchmarks/gpu_check.py")]
    repo = REPO_URL.removeprefix("https://github.com/")
    for text in texts:
        links = repo_links(text)
        assert links and set(links) <= {(repo, None), (repo, BRANCH)}, set(links)
        for link in re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"']+", text):
            assert link == colab_url(link.rsplit("/", 1)[-1]), link
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == REPO_URL


def test_set_repo_url_moves_every_link_to_the_fork_and_its_branch():
    """A fork or a release tag: every badge, clone and install spec follows (scripts/)."""
    spec = importlib.util.spec_from_file_location("set_repo_url", ROOT / "scripts" / "set_repo_url.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for path in [ROOT / "README.md", ROOT / "benchmarks" / "gpu_check.py",
                 *(ROOT / "notebooks").glob("*.py")]:
        moved = script.rewrite(path.read_text(), "https://github.com/me/fork", "v1.0")
        assert set(repo_links(moved)) <= {("me/fork", None), ("me/fork", "v1.0")}, path.name
        assert "cifar10-transfer-course" not in moved, path.name
    assert script.repository_url("https://github.com/me/fork.git/") == "https://github.com/me/fork"
    for wrong in (["--url-first"], ["github.com/me/fork"], ["https://github.com/me/fork", "-x"]):
        with pytest.raises(SystemExit) as stopped:  # nothing is rewritten
            script.main(wrong)
        assert stopped.value.code == 2


def code_cells(notebook: Path) -> list[str]:
    return [source for kind, source, _ in cells(notebook.with_suffix(".py")) if kind == "code"]


def test_set_up_cell_is_the_same_extra_code_cell_in_every_notebook():
    """One set-up cell, copied verbatim: Colab/Kaggle install, Kaggle's Internet switch, Drive."""
    set_ups = {notebook.stem: code_cells(notebook)[0] for notebook in NOTEBOOKS}
    first = set_ups[EXPECTED[0]]
    assert first.startswith("# extra code – set-up"), "the set-up cell is marked as extra code"
    strings = [node.value for node in ast.walk(ast.parse(first))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert KAGGLE_OFFLINE in strings, "one clear sentence when Kaggle's Internet is off"
    assert "raise SystemExit" in first and "check=True" not in first  # no raw pip stack trace
    assert "USE_DRIVE" in first and "CIFAR_RUNS_DIR" in first
    assert {stem: cell == first for stem, cell in set_ups.items()} == dict.fromkeys(set_ups, True)


@pytest.mark.parametrize("tensorflow, pip_calls", [("2.16.1", 1), ("2.19.0", 2)])
def test_set_up_cell_checks_the_runtime_before_pip_may_upgrade_it(monkeypatch, tensorflow,
                                                                   pip_calls):
    """In Kaggle (or Colab) the package comes first without dependencies: an older TensorFlow
    is told what to do before `pip install` with dependencies would replace it."""
    import socket
    import subprocess
    from types import SimpleNamespace

    from cifar_helpers import versions

    calls = []
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: SimpleNamespace(close=int))
    monkeypatch.setattr(subprocess, "run", lambda args, **kwargs: calls.append(args)
                        or SimpleNamespace(returncode=0, stderr=""))
    monkeypatch.setattr(versions, "installed_versions", lambda: {
        "python": "3.11.0", "tensorflow": tensorflow, "keras": "3.10.0"})
    set_up = code_cells(NOTEBOOKS[0])[0]
    if pip_calls == 1:
        with pytest.raises(SystemExit, match=f"tensorflow {tensorflow}: in Kaggle, set the"):
            exec(compile(set_up, "set-up cell", "exec"), {})
    else:
        exec(compile(set_up, "set-up cell", "exec"), {})
    assert len(calls) == pip_calls and "--no-deps" in calls[0]
    assert all("--no-deps" not in call for call in calls[1:])


@pytest.mark.parametrize("use_drive, runs_dir", [
    (False, "/content/runs"), (True, "/content/drive/MyDrive/cifar10-course/runs")])
def test_set_up_cell_exports_colabs_run_folder_for_command_line_runs(monkeypatch, use_drive,
                                                                     runs_dir):
    """In Colab the set-up exports the notebooks' run folder: a `!python -m cifar_helpers`
    process has no google.colab module, so it would otherwise train in ~/cifar10-course/runs."""
    import socket
    import subprocess
    import types

    from cifar_helpers import versions
    from cifar_helpers.config import runs_root

    colab, mounted = types.ModuleType("google.colab"), []
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setenv("CIFAR_RUNS_DIR", "")  # unset, and restored after the test
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: types.SimpleNamespace(close=int))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=0))
    monkeypatch.setattr(versions, "require_supported", lambda: None)
    set_up = code_cells(NOTEBOOKS[0])[0].replace("USE_DRIVE = False", f"USE_DRIVE = {use_drive}")
    exec(compile(set_up, "set-up cell", "exec"), {})
    assert mounted == (["/content/drive"] if use_drive else [])
    monkeypatch.delitem(sys.modules, "google.colab")  # as in a `!python` child process
    assert runs_root() == Path(runs_dir)
    monkeypatch.setitem(sys.modules, "google.colab", colab)  # back in the notebook
    exec(compile(set_up.replace(f"USE_DRIVE = {use_drive}", f"USE_DRIVE = {not use_drive}"),
                 "set-up cell run again", "exec"), {})
    assert runs_root() != Path(runs_dir)  # USE_DRIVE changed, the cell run again: it follows
    monkeypatch.setenv("CIFAR_RUNS_DIR", "/content/drive/MyDrive/shared/runs")  # a user's own
    exec(compile(set_up, "set-up cell", "exec"), {})
    assert runs_root() == Path("/content/drive/MyDrive/shared/runs")
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")  # Kaggle's image is built on Colab's
    monkeypatch.setenv("CIFAR_RUNS_DIR", "")
    mounted.clear()
    exec(compile(set_up.replace("USE_DRIVE = False", "USE_DRIVE = True"), "in Kaggle", "exec"), {})
    assert mounted == [] and os.environ["CIFAR_RUNS_DIR"] == ""  # Kaggle keeps /kaggle/working


def test_set_up_cell_says_what_to_do_when_drive_is_not_mounted(monkeypatch, capsys):
    """A refused Drive mount (Colab raises e.g. MessageError) stops with one sentence, and
    USE_DRIVE outside Colab says it is ignored."""
    import socket
    import subprocess
    import types

    from cifar_helpers import versions

    def refuse(path):
        raise RuntimeError("credential propagation was unsuccessful")

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=refuse)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("CIFAR_RUNS_DIR", "")  # unset, and restored after the test
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: types.SimpleNamespace(close=int))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(returncode=0))
    monkeypatch.setattr(versions, "require_supported", lambda: None)
    set_up = code_cells(NOTEBOOKS[0])[0].replace("USE_DRIVE = False", "USE_DRIVE = True")
    with pytest.raises(SystemExit, match=r"^Google Drive could not be mounted \(credential "
                                         r"propagation was unsuccessful\): allow access"):
        exec(compile(set_up, "set-up cell", "exec"), {})
    assert os.environ["CIFAR_RUNS_DIR"] == ""  # nothing points at the unmounted Drive
    monkeypatch.delitem(sys.modules, "google.colab")  # a local Jupyter
    exec(compile(set_up, "set-up cell, not in Colab", "exec"), {})
    assert "USE_DRIVE applies only in Colab" in capsys.readouterr().out


def test_run_store_note_precedes_the_set_up_in_every_notebook():
    """Colab (Drive) and Kaggle (its own /kaggle/working, output as input) said once, at the top."""
    notes = set()
    for notebook in NOTEBOOKS:
        sources = cells(notebook.with_suffix(".py"))
        first_code = next(i for i, (kind, *_) in enumerate(sources) if kind == "code")
        kind, note, _ = sources[first_code - 1]
        assert kind == "markdown" and "USE_DRIVE = True" in note and "/kaggle/working" in note
        notes.add(note)
    assert len(notes) == 1, "the Colab/Kaggle note differs between notebooks"


def settings_used(notebook: Path) -> tuple[str, ...]:
    """The SETTINGS_USED tuple assigned in the notebook's .py twin."""
    tree = ast.parse(notebook.with_suffix(".py").read_text())
    found = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
             and any(getattr(target, "id", None) == "SETTINGS_USED" for target in node.targets)]
    assert len(found) == 1, "one SETTINGS_USED = (...) per notebook"
    return ast.literal_eval(found[0])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_prints_the_settings_it_uses(notebook):
    names = settings_used(notebook)
    fields = {field.name for field in dataclasses.fields(Config)}
    assert names and len(set(names)) == len(names)
    assert set(names) <= fields, f"not settings: {sorted(set(names) - fields)}"
    text = notebook.with_suffix(".py").read_text()
    assert "print(describe(config, SETTINGS_USED))" in text
    assert not re.search(r"^print\(describe\(config\)\)", text, re.M), "print SETTINGS_USED only"
    assert "# print(describe(config)) lists all settings" in text, "say how to see all settings"


def test_expectations_live_in_one_block_that_notebooks_show():
    block = expectations_text()
    assert "Kornblith, Shlens & Le" in block and "arXiv:1805.08974" in block
    assert "Your own run produces the real figures" in block
    for phrase in PASTED_BOX:
        assert phrase not in block
    for notebook in NOTEBOOKS:
        text = notebook.with_suffix(".py").read_text()
        pasted = [phrase for phrase in PASTED_BOX if phrase in text]
        assert pasted == [], f"{notebook.name}: pasted {pasted}; call show_expectations()"
        if notebook.stem in SHOW_EXPECTATIONS:
            assert "\nshow_expectations()\n" in text, notebook.name


WAITS_FOR_THE_USER = {"input", "upload"}  # input(), google.colab.files.upload()


def required_names(test: ast.expr) -> set[str]:
    """Names that must be true for `test` to be: `FLAG`, or every bare name of `a and FLAG`."""
    if isinstance(test, ast.Name):
        return {test.id}
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return {value.id for value in test.values if isinstance(value, ast.Name)}
    return set()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_run_all_never_waits_for_the_user(notebook):
    """No input() and no upload dialog unless behind an opt-in flag that defaults to False."""
    for cell in code_cells(notebook):
        tree = ast.parse(cell)
        flags = {node.targets[0].id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and isinstance(node.targets[0], ast.Name)
                 and isinstance(node.value, ast.Constant) and node.value.value is False}
        guarded = {id(inner) for node in ast.walk(tree)  # the body of `if FLAG` or `if ... and FLAG`
                   if isinstance(node, ast.If) and flags & required_names(node.test)
                   for statement in node.body for inner in ast.walk(statement)}
        for node in ast.walk(tree):
            name = getattr(node, "func", None)
            name = getattr(name, "attr", getattr(name, "id", None))
            if isinstance(node, ast.Call) and name in WAITS_FOR_THE_USER:
                assert id(node) in guarded, f"{notebook.name}: {ast.unparse(node)} blocks Run all"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_extra_code_cells_use_one_marker(notebook):
    """handson-ml3's convention: plumbing and checks start with '# extra code – what it does'."""
    for cell in code_cells(notebook):
        first = cell.splitlines()[0] if cell else ""
        assert not first.startswith("# Plumbing"), "use '# extra code – ...' for plumbing cells"
        if first.startswith("# extra code"):
            assert re.match(r"# extra code – \S", first), f"say what it does: {first}"
