"""Notebook plumbing shared by every lesson: environment report, showing helper code, timing,
and the one "What to expect" block (expectations.md, shipped with the package).

The repository URL and branch live here (and in pyproject.toml's [project.urls]); a test checks
that every Colab and Kaggle badge and install cell in the notebooks and README uses exactly these.
"""

from __future__ import annotations

import inspect
import sys
import time
from contextlib import contextmanager
from importlib import resources
from typing import Iterator

REPO_URL = "https://github.com/cifar10-transfer-course/resnet50-cifar10"
BRANCH = "main"


def colab_url(notebook: str) -> str:
    """The Colab address that opens `notebook` (e.g. '03_head_training.ipynb') from GitHub."""
    path = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{notebook}"


def kaggle_url(notebook: str) -> str:
    """The Kaggle address that imports `notebook` from GitHub into a new Kaggle notebook."""
    return f"https://kaggle.com/kernels/welcome?src={REPO_URL}/blob/{BRANCH}/notebooks/{notebook}"


def environment_report() -> dict:
    """Print and check library versions and the accelerator; tell CPU users what to expect."""
    import keras
    import tensorflow as tf

    from ..versions import hosted_runtime, require_supported

    versions = {"python": sys.version.split()[0], "tensorflow": tf.__version__,
                "keras": keras.__version__}
    require_supported(versions)
    gpus = [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    where = {"colab": "| Colab", "kaggle": "| Kaggle"}.get(hosted_runtime(), "")
    print(", ".join(f"{k} {v}" for k, v in versions.items()), where)
    if gpus:
        print(f"GPU: {', '.join(gpus)}")
    else:
        print("No GPU found: everything runs on the CPU. The quick profile runs each notebook in "
              "about a minute or less on a 2-core CPU (notebook 06: 2-2.5 minutes); the full "
              "seed profile trained for 68-76 minutes there (measured: README, Speed). To try "
              "things quickly on the CPU, change config = load_config() in this cell to "
              "config = load_config(\"quick\"). For a GPU, in Colab: Runtime > Change runtime "
              "type > GPU; in Kaggle: Settings > Accelerator > GPU; then run the notebook again "
              "from the top.")
    return {**versions, "gpus": gpus}


def show_source(obj: object) -> object:
    """Display the source code of a `cifar_helpers` function, so the notebook shows the real code."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def expectations_text() -> str:
    """The course's one "What to expect" block (Markdown), shipped as lessons/expectations.md."""
    return resources.files(__package__).joinpath("expectations.md").read_text(encoding="utf-8")


def show_expectations() -> object:
    """Display the "What to expect" block: published figures, cited, and what your run shows."""
    from IPython.display import Markdown

    return Markdown(expectations_text())


@contextmanager
def timed(label: str) -> Iterator[None]:
    """Print how long the block took: students see the cost of each step on their machine."""
    start = time.perf_counter()
    yield
    print(f"{label}: {time.perf_counter() - start:.1f} s")
