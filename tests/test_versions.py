"""The supported runtime window is stated once (cifar_helpers/versions.py); every other place that
names a version agrees with it, and a too-old runtime is told in one sentence what to do."""

import subprocess
import sys
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest
from packaging.requirements import Requirement

from cifar_helpers.versions import (SUPPORTED, UnsupportedRuntimeError, major_minor,
                                    require_supported, too_old)

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("tensorflow", "keras")


def requirement_specs(lines) -> dict[str, dict[str, str]]:
    """{'tensorflow': {'>=': '2.17', '<': '2.22'}, ...} for requirement lines such as
    'tensorflow>=2.17,<2.22' (comments and pip options such as '-e .' skipped)."""
    specs = {}
    for line in lines:
        text = line.split("#")[0].strip()
        if text and not text.startswith("-"):
            requirement = Requirement(text)
            specs[requirement.name] = {spec.operator: spec.version
                                       for spec in requirement.specifier}
    return specs


def file_specs(name: str) -> dict[str, dict[str, str]]:
    """`requirement_specs` of a file at the repository's root."""
    return requirement_specs((ROOT / name).read_text().splitlines())


def test_pyproject_lower_bounds_are_the_floor_and_nothing_caps_them():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name in LIBRARIES:
        assert requirement_specs(project["dependencies"])[name] == {">=": SUPPORTED[name][0]}
    assert project["requires-python"] == f">={SUPPORTED['python'][0]}"


def test_requirements_ranges_span_the_window():
    for name in LIBRARIES:
        bounds = file_specs("requirements.txt")[name]
        newest = major_minor(SUPPORTED[name][1])
        assert bounds[">="] == SUPPORTED[name][0]
        assert bounds["<"] == f"{newest[0]}.{newest[1] + 1}"  # the newest tested minor, no further


def test_ci_floor_pins_the_oldest_supported_minor():
    for name in LIBRARIES:
        pinned = file_specs("constraints-oldest.txt")[name]["=="]
        assert major_minor(pinned) == major_minor(SUPPORTED[name][0]), name
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-c constraints-oldest.txt" in ci and "notebooks/03_head_training.ipynb" in ci


def floors(specs: dict[str, dict[str, str]]) -> dict[str, str]:
    """{'scikit-learn': '1.2', ...}: the lower bound (>=) of each requirement."""
    return {name: bounds[">="] for name, bounds in specs.items()}


def test_pyproject_floors_are_the_requirements_floors():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    requirements = floors(file_specs("requirements.txt"))
    requirements.pop("jupyterlab")  # a local front end only: Colab and Kaggle bring their own
    assert floors(requirement_specs(declared)) == requirements


def test_ci_pins_every_floor_of_requirements_txt():
    """A lower bound CI never installs is a guess: constraints-oldest.txt pins each one."""
    lower_bounds = floors(file_specs("requirements.txt"))
    pins = file_specs("constraints-oldest.txt")
    assert pins.keys() == lower_bounds.keys()
    for name, pin in pins.items():
        floor = lower_bounds[name] if "." in lower_bounds[name] else lower_bounds[name] + ".0"
        assert list(pin) == ["=="] and major_minor(pin["=="]) == major_minor(floor), name


def test_readme_names_the_window():
    readme = (ROOT / "README.md").read_text()
    for name, label in (("python", "Python"), ("tensorflow", "TensorFlow"), ("keras", "Keras")):
        oldest, newest = SUPPORTED[name]
        assert f"{label} {oldest}–{newest}" in readme, label


@pytest.mark.parametrize("versions, old", [
    ({"python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1"}, []),
    ({"python": "3.10.0", "tensorflow": "2.17.1", "keras": "3.4.1"}, []),
    ({"python": "3.11.7", "tensorflow": "2.16.2", "keras": "3.3.3"},
     ["tensorflow 2.16.2", "keras 3.3.3"]),
    ({"python": "3.9.18", "tensorflow": "not installed", "keras": "3.10.0"},
     ["python 3.9.18", "tensorflow not installed"]),
])
def test_too_old_runtimes_are_named(versions, old):
    assert too_old(versions) == old


def test_a_too_old_runtime_is_told_what_to_do_in_one_sentence():
    with pytest.raises(UnsupportedRuntimeError) as error:
        require_supported({"python": "3.11.7", "tensorflow": "2.16.2", "keras": "3.3.3"})
    message = str(error.value)
    assert "tensorflow 2.16.2" in message and "pip install -r requirements.txt" in message
    assert message.count(". ") == 0 and "\n" not in message
    require_supported({"python": "3.11.7", "tensorflow": "2.17.0", "keras": "3.4.0"})  # no error


def test_a_too_old_runtime_stops_a_script_without_a_traceback():
    code = ("from cifar_helpers.versions import require_supported; "
            "require_supported({'python': '3.11.7', 'tensorflow': '2.16.2', 'keras': '3.4.0'})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("This course needs at least")
