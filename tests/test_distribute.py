"""tf.distribute: the study on two devices (two logical CPUs stand in for two GPUs).

Subprocesses, because the CPU can only be split before TensorFlow starts.
"""

import json
import signal

import numpy as np
import pytest
from notebook_scripts import cli_train

from cifar_helpers.config import load_config
from cifar_helpers.devices import keras_scales_replica_losses, requested_logical_cpus
from cifar_helpers.errors import ConfigError
from cifar_helpers.resume import KILL_SWITCH_ENV
from cifar_helpers.run_store import RunStore

# The fast pieces on (fused Adam, matmul convolutions, cached features), 90 training images in
# global batches of 32: 3 steps per epoch, each split into two per-replica halves.
FAST_PIECES = ("--fast-ops", "on", "--feature-cache", "--train-limit", "100", "--test-limit", "20",
               "--epochs-head", "2", "--epochs-finetune", "1", "--distribute", "mirrored")


def study(runs_dir, out, **env):
    done = cli_train(runs_dir, *FAST_PIECES, "--out", str(out), **env)
    return done, (json.loads((out / "metrics.json").read_text())
                  if (out / "metrics.json").exists() else None)


needs_scaled_losses = pytest.mark.skipif(
    not keras_scales_replica_losses(), reason="Keras < 3.8 trains wrongly under MirroredStrategy; "
    "test_mirrored_is_refused_where_keras_would_train_it_wrongly covers it")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One device, and two devices killed after phase 2's epoch, then run again (resumed).

    Both under MirroredStrategy: Keras draws one batch before the first epoch of a distributed
    fit, which moves the seeded shuffle on by one reshuffle, so only runs under a strategy see
    the images in the same order.
    """
    folder = tmp_path_factory.mktemp("distribute")
    two = folder / "two"
    single = study(folder, folder / "one")
    killed = study(folder, two, CIFAR_LOGICAL_CPUS="2", **{KILL_SWITCH_ENV: "finetune:1"})
    manifest = json.loads((two / "run.json").read_text()) if (two / "run.json").exists() else {}
    resumed = study(folder, two, CIFAR_LOGICAL_CPUS="2")
    return single, killed, manifest, resumed


@needs_scaled_losses
def test_mirrored_study_runs_end_to_end_and_records_two_replicas(runs):
    (_, single), _, _, (done, mirrored) = runs
    assert done.returncode == 0, done.stderr[-3000:]
    assert mirrored["devices"]["strategy"] == "mirrored" and mirrored["devices"]["replicas"] == 2
    assert [d.split("/")[-1] for d in mirrored["devices"]["devices"]] == ["device:CPU:0",
                                                                       "device:CPU:1"]
    assert single["devices"] == {"strategy": "mirrored", "replicas": 1,
                                 "devices": ["/job:localhost/replica:0/task:0/device:CPU:0"]}
    assert "devices: 2 (mirrored)" in done.stdout


@needs_scaled_losses
def test_two_replicas_train_as_one_device_with_the_same_global_batch(runs):
    """Keras scales each replica's loss; our fused update, matmul convolutions and feature
    cache must keep that: the same losses up to float32 summation order."""
    (_, single), _, _, (_, mirrored) = runs
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(mirrored["history"][key], single["history"][key],
                                   rtol=1e-4, err_msg=key)
    assert mirrored["history"]["phase"] == ["head", "head", "finetune"]


@needs_scaled_losses
def test_a_killed_mirrored_run_resumes_under_the_strategy(runs):
    _, (killed, _), manifest, (resumed, metrics) = runs
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert manifest["finished"]["head"]["resolved"]["replicas"] == 2
    assert manifest["in_progress"]["phase"] == "finetune"
    assert "finished before" in resumed.stdout and "resuming" in resumed.stdout
    assert metrics["phases"]["finetune"]["epochs_trained_here"] == 0  # its epoch was backed up
    assert metrics["resumed"] is True


@needs_scaled_losses
def test_mixed_float16_with_loss_scaling_trains_on_two_replicas(runs, tmp_path):
    """A GPU's precision under the strategy (Keras wraps Adam, fused or not, in a
    LossScaleOptimizer): it trains, and its first epoch matches float32 on one device. Later
    epochs need not: dynamic loss scaling skips a step whose float16 gradients overflow, and a
    replica's gradient is half the size, so one device can skip a step that two replicas take."""
    (_, single), *_ = runs
    out = tmp_path / "float16"
    done = cli_train(tmp_path, *FAST_PIECES, "--precision", "mixed_float16", "--out", str(out),
                     CIFAR_LOGICAL_CPUS="2")
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["precision"] == "mixed_float16" and metrics["devices"]["replicas"] == 2
    assert np.all(np.isfinite(metrics["history"]["loss"]))
    np.testing.assert_allclose(metrics["history"]["loss"][0], single["history"]["loss"][0],
                               rtol=5e-3)  # float16 rounding: 0.16 % apart on our test machine


def test_a_phase_interrupted_on_other_devices_starts_again_and_the_log_says_why(tmp_path):
    """Its backup holds mirrored optimizer state; a finished phase is loaded (test_pipeline)."""
    config = load_config("quick", environ={}, out=str(tmp_path))
    two = {"distribute": "mirrored", "replicas": 2}
    RunStore.open(tmp_path, config, two).start("head")
    (tmp_path / "backup_head").mkdir()
    assert RunStore.open(tmp_path, config, two).in_progress["phase"] == "head"
    again = RunStore.open(tmp_path, config, {"distribute": "default", "replicas": 1})
    assert again.in_progress is None and (tmp_path / "backup_head").exists()  # until it trains
    assert len(again.notes) == 1 and "'head' phase" in again.notes[0]
    assert "replicas 2 -> 1" in again.notes[0] and "'mirrored' -> 'default'" in again.notes[0]
    assert not again.start("head") and not (tmp_path / "backup_head").exists()


def test_logical_cpus_must_be_a_positive_whole_number():
    assert requested_logical_cpus({}) == 1
    assert requested_logical_cpus({"CIFAR_LOGICAL_CPUS": "3"}) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(ConfigError, match="CIFAR_LOGICAL_CPUS"):
            requested_logical_cpus({"CIFAR_LOGICAL_CPUS": bad})


def test_splitting_the_cpu_after_tensorflow_started_says_what_to_do_instead():
    import os
    import subprocess
    import sys

    late = ("import tensorflow as tf; tf.constant(1.0)\n"
            "from cifar_helpers.devices import split_cpu; split_cpu()")
    done = subprocess.run([sys.executable, "-c", late], capture_output=True, text=True,
                          env={**os.environ, "CIFAR_LOGICAL_CPUS": "2",
                               "TF_CPP_MIN_LOG_LEVEL": "3"},
                          timeout=300)
    assert done.returncode == 1
    assert "ConfigError: CIFAR_LOGICAL_CPUS=2 came too late" in done.stderr
    assert "restart the kernel" in done.stderr


def test_mirrored_is_refused_where_keras_would_train_it_wrongly(monkeypatch):
    from cifar_helpers import devices

    monkeypatch.setattr(devices, "keras_scales_replica_losses", lambda: False)
    with pytest.raises(ConfigError, match="needs Keras 3.8 or later"):
        devices.resolve_strategy("mirrored")
    lines = []
    monkeypatch.setattr(devices, "training_devices", lambda: ["/gpu:0", "/gpu:1"])
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [object()] * 2)
    strategy = devices.resolve_strategy("auto", lines.append)
    assert strategy.num_replicas_in_sync == 1 and "Upgrade Keras" in lines[0]
