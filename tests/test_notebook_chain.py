"""Notebooks 03 -> 04 -> 05 -> 07 in order at 64 pixels: each later notebook continues from what
the one before left in the run store, and every model is built at the configured size.

(At the default 32 pixels nbval runs the same chain, in one process and in order: conftest.py.)"""

import json

import pytest

from notebook_scripts import run_notebook

CHAIN = ("03_head_training", "04_fine_tuning", "05_error_analysis", "07_deeper_error_analysis")


@pytest.mark.parametrize("size", [64])
def test_chain_in_order(tmp_path, size):
    settings = {"CIFAR_IMAGE_SIZE": str(size), "CIFAR_TRAIN_LIMIT": "100",
                "CIFAR_TEST_LIMIT": "50"}
    outputs = {}
    for stem in CHAIN:
        done = run_notebook(stem, tmp_path, **settings)
        assert done.returncode == 0, f"{stem}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs[stem] = done.stdout
    assert "Phase 1: training the head on the frozen base: finished before" in outputs[CHAIN[1]]
    for later in CHAIN[2:]:  # the fine-tuned model of 04 is loaded, nothing is trained again
        assert "Phase 2: fine-tuning everything but BatchNorm at a low learning rate: finished " \
               "before" in outputs[later]
        assert "Epoch" not in outputs[later]
    manifest = json.loads((tmp_path / "quick" / "run.json").read_text())
    assert {p: manifest["finished"][p]["settings"]["image_size"] for p in manifest["finished"]} \
        == {"head": size, "finetune": size}
