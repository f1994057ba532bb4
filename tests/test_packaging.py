"""The built wheel: complete, importable outside the checkout, with the installed run store."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "cifar_helpers"
SAMPLE = f"{PACKAGE}/sample_data/cifar10_sample.npz"
EXPECTATIONS = f"{PACKAGE}/lessons/expectations.md"  # shown by lessons.course.show_expectations
# Build from a copy without local state: an in-place build writes build/ into the checkout, and
# setuptools packs whatever a stale build/lib holds, so a deleted module would survive in the wheel.
NOT_SOURCE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "runs", "outputs",
                                    "__pycache__", "venv", ".venv*", ".ipynb_checkpoints",
                                    ".pytest_cache", ".hypothesis")
# Run in the installed copy: import every module (not __main__, which would run the CLI).
IMPORT_ALL = """
import importlib, json, pkgutil, sys
import cifar_helpers
from cifar_helpers.config import runs_root
names = [m.name for m in pkgutil.walk_packages(cifar_helpers.__path__, "cifar_helpers.")
         if not m.name.endswith(".__main__")]
for name in names:
    importlib.import_module(name)
files = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()
         if name.split(".")[0] == "cifar_helpers"}
print(json.dumps({"walked": names, "files": files, "runs_root": str(runs_root()),
                  "kaggle": str(runs_root({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}))}))
"""


def pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], check=False,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"pip {args[0]} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel once (with build isolation) and install it into TMP/site."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    pip("wheel", "--no-deps", "-w", str(tmp / "dist"), str(source))
    built = list((tmp / "dist").glob("*.whl"))
    assert len(built) == 1, built
    pip("install", "--no-deps", "--target", str(tmp / "site"), str(built[0]))
    return SimpleNamespace(tmp=tmp, source=source, path=built[0], site=tmp / "site")


def module_name(relative: Path) -> str:
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_wheel_holds_every_module_and_the_sample_data(wheel):
    names = set(zipfile.ZipFile(wheel.path).namelist())
    sources = {p.relative_to(wheel.source).as_posix()
               for p in (wheel.source / PACKAGE).rglob("*.py")}
    assert any(name.startswith(f"{PACKAGE}/lessons/") for name in sources)
    assert sorted(sources - names) == [], "source modules missing from the wheel"
    assert sorted({n for n in names if n.endswith(".py")} - sources) == [], "stale modules"
    assert SAMPLE in names and EXPECTATIONS in names


@pytest.fixture(scope="module")
def installed(wheel):
    """Import every module of the installed wheel in a fresh Python outside the checkout."""
    home = wheel.tmp / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "CIFAR_RUNS_DIR"}
    env.update(PYTHONPATH=str(wheel.site), HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], check=False, cwd=wheel.tmp,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return SimpleNamespace(home=home, **json.loads(done.stdout.strip().splitlines()[-1]))


def test_installed_wheel_answers_the_imports_not_the_checkout(wheel, installed):
    site = wheel.site.resolve()
    assert Path(installed.files[PACKAGE]).resolve().is_relative_to(site)
    outside = {name: file for name, file in installed.files.items()
               if file and not Path(file).resolve().is_relative_to(site)}
    assert outside == {}, "modules imported from outside the installed wheel"
    assert (wheel.site / SAMPLE).is_file()


def test_installed_wheel_keeps_runs_under_home(installed):
    assert Path(installed.runs_root) == installed.home / "cifar10-course" / "runs"
    assert installed.kaggle == "/kaggle/working/runs"  # the folder Kaggle keeps as output


def test_pkgutil_walks_to_every_installed_module(wheel, installed):
    modules = {module_name(p.relative_to(wheel.site))
               for p in (wheel.site / PACKAGE).rglob("*.py")} - {PACKAGE, f"{PACKAGE}.__main__"}
    unreached = sorted(modules - set(installed.walked))
    assert unreached == [], "not imported: pkgutil skips folders without __init__.py"
