"""Interrupted phases: resume by making the same call again, losing at most the current epoch.

Keras' `BackupAndRestore` saves weights, optimizer state and epoch after every epoch into the
run store's `backup_<phase>/` (run_store.py says what else the store keeps). Traps handled,
checked in the Keras 3.15 source: it sets the model's private `_initial_epoch` on restore and
nothing resets it before the next `fit` (training.restartable does); it deletes its folder when
a `fit` ends (we keep it with `delete_checkpoint=False` until the phase's model is saved).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import keras

KILL_SWITCH_ENV = "CIFAR_TEST_KILL_AFTER"  # test-only: "PHASE:K" SIGKILLs after epoch K of PHASE


def backup_callback(backup_dir: Path) -> keras.callbacks.BackupAndRestore:
    """A backup after every epoch, kept after `fit` until the run store has saved the phase."""
    return keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True,
                                            delete_checkpoint=False)


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
