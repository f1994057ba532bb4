"""Interrupted phases: resume by making the same call again, losing at most the current epoch.

Keras' `BackupAndRestore` saves weights, optimizer state and epoch after every epoch into the
run store's `backup_<phase>/` (run_store.py says what else the store keeps). Traps handled,
checked in the Keras 3.15 source: it sets the model's private `_initial_epoch` on restore and
nothing resets it before the next `fit` (training.restartable does); it deletes its folder when
a `fit` ends (we keep it with `delete_checkpoint=False` until the phase's model is saved).

A backup cut off while being written (a kill in the middle of saving 290 MB) must not end the
next run in a crash: a second, complete copy is kept, by Keras' `double_checkpoint` (Keras 3.7
and later) or, on older Keras, by `_SecondCopy` under the same file names; `recover_backup`
checks the backup before a phase resumes and says what it falls back to.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Callable

import keras

from .files import atomic_path

KILL_SWITCH_ENV = "CIFAR_TEST_KILL_AFTER"  # test-only: "PHASE:K" SIGKILLs after epoch K of PHASE


WEIGHTS, METADATA = "latest.weights.h5", "training_metadata.json"  # Keras' names
SECOND = ".bkp"  # Keras' suffix for the second copy


def keras_keeps_a_second_copy() -> bool:
    """Whether this Keras' BackupAndRestore has `double_checkpoint` (Keras 3.7 and later)."""
    return "double_checkpoint" in inspect.signature(keras.callbacks.BackupAndRestore).parameters


def backup_callbacks(backup_dir: Path) -> list[keras.callbacks.Callback]:
    """A backup after every epoch, with a second complete copy, kept after `fit` until the run
    store has saved the phase."""
    if keras_keeps_a_second_copy():
        return [keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True,
                                                 delete_checkpoint=False)]
    return [keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False),
            _SecondCopy(backup_dir)]


class _SecondCopy(keras.callbacks.Callback):
    """After BackupAndRestore has written an epoch's backup, copy it whole (temporary name, then
    rename): while one copy is being written the other is always complete."""

    def __init__(self, backup_dir: Path):
        super().__init__()
        self.backup_dir = Path(backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        for name in (WEIGHTS, METADATA):
            with atomic_path(self.backup_dir / (name + SECOND)) as temporary:
                shutil.copyfile(self.backup_dir / name, temporary)


def _datasets(weights: Path) -> set[str] | None:
    """The datasets of a backup's weights file, each read to the end; None if it cannot be read."""
    import h5py

    names = set()
    try:
        with h5py.File(weights, "r") as handle:
            handle.visititems(lambda name, item: names.add(name) if isinstance(item, h5py.Dataset)
                              and item[()] is not None else None)
    except Exception:  # h5py raises many types for a cut-off file
        return None
    return names


def _epoch(metadata: Path) -> int | None:
    """The epoch a backup's metadata names; None if it cannot be read."""
    try:
        epoch = json.loads(metadata.read_text())["epoch"]
    except Exception:  # missing, cut off, not JSON, no epoch
        return None
    return epoch if isinstance(epoch, int) else None


def recover_backup(backup_dir: Path, say: Callable[[str], None]) -> None:
    """Before a phase resumes: replace a cut-off backup by its complete copy, or drop it.

    Ctrl-C in the middle of saving leaves a weights file that h5py closed cleanly but that holds
    only some layers: complete means every dataset of the second copy (written before) is there.
    """
    backup_dir = Path(backup_dir)
    latest, metadata = backup_dir / WEIGHTS, backup_dir / METADATA
    previous, previous_metadata = (backup_dir / (WEIGHTS + SECOND),
                                   backup_dir / (METADATA + SECOND))
    if not (latest.exists() or metadata.exists()):
        return
    found, copied = _datasets(latest), _datasets(previous) if previous.exists() else set()
    if found is not None and found >= (copied or set()) and _epoch(metadata) is not None:
        return
    if copied and _epoch(previous_metadata) is not None:
        shutil.copyfile(previous, latest)
        shutil.copyfile(previous_metadata, metadata)
        say(f"The last backup in {backup_dir} was cut off while being written; resuming from "
            f"the complete copy made after epoch {_epoch(metadata)}.")
    else:
        shutil.rmtree(backup_dir)
        say(f"The backup in {backup_dir} is unreadable and has no complete copy; this phase "
            "starts again from its first epoch.")


class _KillAfterEpoch(keras.callbacks.Callback):
    """Test-only: SIGKILL this process after a given epoch, as a crash or Colab disconnect would."""

    def __init__(self, absolute_epoch: int):
        super().__init__()
        self.absolute_epoch = absolute_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.absolute_epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_switch(phase: str, first_epoch: int) -> list[keras.callbacks.Callback]:
    """The test-only kill callback for `phase` when CIFAR_TEST_KILL_AFTER asks for it, else []."""
    wanted = os.environ.get(KILL_SWITCH_ENV, "")
    if not wanted.startswith(phase + ":"):
        return []
    return [_KillAfterEpoch(first_epoch + int(wanted.split(":")[1]) - 1)]
