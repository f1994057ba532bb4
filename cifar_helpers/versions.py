"""The runtimes this course supports, stated once.

pyproject.toml (lower bounds), requirements.txt (ranges), constraints-oldest.txt (the floor CI
installs), the README and the notebooks' set-up check all follow this; tests/test_versions.py
fails when one of them disagrees. The floor is where the whole test suite was run and passed.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from typing import Mapping


# name: (oldest supported "major.minor", newest tested "major.minor")
SUPPORTED = {
    "python": ("3.10", "3.13"),
    "tensorflow": ("2.17", "2.21"),
    "keras": ("3.4", "3.15"),
}
WHAT_TO_DO = {
    "colab": "in Colab, choose Runtime > Change runtime version > Latest, then run this cell again",
    "kaggle": "in Kaggle, set the notebook's environment to the latest one (Settings > "
              "Environment), then run this cell again",
    "local": "in a fresh virtual environment run `pip install -r requirements.txt` "
             "(README, Quick start)",
}


class UnsupportedRuntimeError(SystemExit):
    """Python, TensorFlow or Keras is too old: a SystemExit, so a notebook shows one sentence."""


def major_minor(version: str) -> tuple[int, int]:
    """'2.17.1' -> (2, 17); '3.10.0rc1' -> (3, 10)."""
    major, minor = version.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def installed_versions() -> dict[str, str]:
    """Python, TensorFlow and Keras versions of this environment (without importing TensorFlow)."""
    def distribution(*names: str) -> str:
        for name in names:
            try:
                return importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
        return "not installed"
    return {"python": sys.version.split()[0],
            "tensorflow": distribution("tensorflow", "tensorflow-cpu", "tf-nightly"),
            "keras": distribution("keras", "keras-nightly")}


def too_old(versions: dict[str, str] | None = None) -> list[str]:
    """'name version' for each runtime older than the floor (or missing)."""
    versions = versions or installed_versions()
    return [f"{name} {versions[name]}" for name, (oldest, _) in SUPPORTED.items()
            if versions[name] == "not installed"
            or major_minor(versions[name]) < major_minor(oldest)]


def hosted_runtime(environ: Mapping[str, str] | None = None) -> str:
    """'kaggle', 'colab' or 'local'; Kaggle first, since its image is built on Colab's."""
    if "KAGGLE_KERNEL_RUN_TYPE" in (os.environ if environ is None else environ):
        return "kaggle"
    return "colab" if "google.colab" in sys.modules else "local"


def require_supported(versions: dict[str, str] | None = None) -> None:
    """Stop with one sentence saying what to do when the runtime is older than the floor."""
    old = too_old(versions)
    if old:
        where = hosted_runtime()
        floor = ", ".join(f"{name} {oldest}" for name, (oldest, _) in SUPPORTED.items())
        raise UnsupportedRuntimeError(f"This course needs at least {floor}, but this runtime has "
                                      f"{', '.join(old)}: {WHAT_TO_DO[where]}.")
