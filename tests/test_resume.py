"""A real CLI process killed with SIGKILL mid-study resumes when the same command runs again."""

import csv
import json
import os
import signal
import subprocess
import sys

import pytest

from cifar_helpers.resume import KILL_SWITCH_ENV, keras_keeps_a_second_copy


def train(out, kill_after=None):
    """The same command every time; only the test-only kill switch differs."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop(KILL_SWITCH_ENV, None)
    if kill_after:
        env[KILL_SWITCH_ENV] = kill_after
    command = [sys.executable, "-m", "cifar_helpers", "train", "--profile", "quick",
               "--train-limit", "100", "--test-limit", "20", "--epochs-head", "2",
               "--epochs-finetune", "2", "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_killed_in_each_phase_then_resumed_loses_nothing(tmp_path):
    out = tmp_path / "run"
    first = train(out, kill_after="head:1")
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["in_progress"]["phase"] == "head" and manifest["finished"] == {}
    assert (out / "backup_head").is_dir() and not (out / "metrics.json").exists()

    second = train(out, kill_after="finetune:1")
    assert second.returncode == -signal.SIGKILL, second.stderr[-2000:]
    assert "Phase 1: training the head on the frozen base: resuming" in second.stdout
    assert "taking over the lock of a run that has ended" in second.stdout  # the killed one's
    assert not (out / "metrics.json").exists() and (out / "phase1.keras").exists()

    third = train(out)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "Phase 1: training the head on the frozen base: finished before" in third.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    assert history["epoch"] == [1, 2, 3, 4] and history["boundaries"] == [2]
    assert history["phase"] == ["head", "head", "finetune", "finetune"]
    head, finetune = metrics["phases"]["head"], metrics["phases"]["finetune"]
    # Each process trained only what was missing: epoch 2 of phase 1, then 3, then 4.
    assert head["epochs_trained_here"] == 1 and finetune["epochs_trained_here"] == 1
    assert head["epochs"] == finetune["epochs"] == 2 and len(finetune["history"]["loss"]) == 2
    assert finetune["trainable_params"] == 23_752_650 and metrics["resumed"] is True
    with open(out / "training_log.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2", "3"]
    assert not list(out.glob("backup_*")) and json.loads((out / "run.json").read_text())[
        "in_progress"] is None


def cut_off_bytes(weights):
    """What a kill in the middle of writing leaves: the file ends halfway."""
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def first_layers_only(weights):
    """What Ctrl-C in the middle of writing leaves: h5py closes the file cleanly, and it holds
    the layers written so far (a valid file that Keras cannot restore the model from)."""
    import h5py

    whole = weights.with_name("whole.h5")
    weights.rename(whole)
    with h5py.File(whole, "r") as source, h5py.File(weights, "w") as cut:
        source.copy(source["layers"], cut, name="layers")
        for name in list(cut["layers"])[len(cut["layers"]) // 2:]:
            del cut["layers"][name]
    whole.unlink()


def stopped_by_a_full_disk_after_phase_1(tmp_path, monkeypatch):
    """Run 2 + 0 epochs until saving phase 1 fails (no space left): one OutputError, no results,
    the backup and its second copy kept. Returns the config and the run folder."""
    import errno

    from cifar_helpers import model as model_module
    from cifar_helpers.config import load_config
    from cifar_helpers.errors import OutputError
    from cifar_helpers.study import run_study

    def disk_full(model, path):  # stops the run after phase 1's epochs, backup in place
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(model_module, "save_for_inference", disk_full)
    config = load_config("quick", environ={}, train_limit=100, test_limit=20, epochs_head=2,
                         epochs_finetune=0, out=str(tmp_path / "out"))
    with pytest.raises(OutputError, match="No space left on device"):
        run_study(config, log=lambda text: None, verbose=0)
    monkeypatch.undo()
    out = tmp_path / "out"
    assert not (out / "metrics.json").exists() and not (out / "phase1.keras").exists()
    assert (out / "training_log.csv").exists()
    assert (out / "backup_head" / "latest.weights.h5.bkp").exists()  # the second, complete copy
    return config, out


@pytest.mark.parametrize("cut_off", [cut_off_bytes, first_layers_only])
def test_full_disk_keeps_the_state_and_a_cut_off_backup_resumes_from_its_copy(tmp_path,
                                                                              monkeypatch,
                                                                              cut_off):
    """Saving fails (no space left): one OutputError, no results, the backup kept. Then the
    backup is cut off as a kill or Ctrl-C mid-write would leave it: the run resumes from its
    complete copy (Keras' double_checkpoint from Keras 3.7, our own second copy before)."""
    from cifar_helpers.study import run_study

    config, out = stopped_by_a_full_disk_after_phase_1(tmp_path, monkeypatch)
    backup = out / "backup_head"
    weights = backup / "latest.weights.h5"
    cut_off(weights)

    lines = []
    metrics = run_study(config, log=lines.append, verbose=0)
    assert any("was cut off while being written" in line for line in lines), lines
    # Keras' copy is the backup of the epoch before (epoch 2 runs again); ours, of the same one.
    redone = 1 if keras_keeps_a_second_copy() else 0
    assert metrics["phases"]["head"]["epochs_trained_here"] == redone
    assert metrics["history"]["epoch"] == [1, 2] and metrics["resumed"] is True
    assert not backup.exists() and (out / "model.keras").exists()


def test_a_backup_cut_off_with_its_copy_is_dropped_and_the_phase_starts_again(tmp_path,
                                                                              monkeypatch):
    """Both the backup and its second copy cut off (a copied run folder, say): nothing to resume
    from, so the backup is deleted, the run says so, and phase 1 trains from its first epoch."""
    from cifar_helpers.study import run_study

    config, out = stopped_by_a_full_disk_after_phase_1(tmp_path, monkeypatch)
    backup = out / "backup_head"
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        cut_off_bytes(backup / name)

    lines = []
    metrics = run_study(config, log=lines.append, verbose=0)
    assert [line for line in lines if "no complete copy" in line] == [
        f"The backup in {backup} is unreadable and has no complete copy; this phase starts "
        "again from its first epoch."]
    assert not any("was cut off while being written" in line for line in lines)
    assert metrics["phases"]["head"]["epochs_trained_here"] == 2  # both epochs trained again
    assert metrics["history"]["epoch"] == [1, 2]
    assert not backup.exists() and (out / "model.keras").exists()
