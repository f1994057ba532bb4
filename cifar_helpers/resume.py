"""Interrupted runs: resume by running the same command again, losing at most the current epoch.

The staging folder `OUT/.partial/` holds the run's state while it trains:
- `run.json`: the settings of the run and the phases already finished;
- `backup_head/`, `backup_finetune/`: Keras `BackupAndRestore` state (weights, optimizer, epoch),
  saved after every epoch;
- `after_head.keras`: the model when phase 1 finished;
- `training_log.csv`: every finished epoch of both phases (the merged history is rebuilt from it,
  because a `History` only holds the epochs of its own process).
Traps handled here, checked in the Keras 3.15 source: `BackupAndRestore` sets the model's private
`_initial_epoch` on restore and nothing resets it before the next `fit` (training.py resets it);
it deletes its folder when a `fit` ends (we keep it with `delete_checkpoint=False`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

import keras

from .config import Config, fingerprint

STATE_FILE = "run.json"
LOG_FILE = "training_log.csv"
KILL_SWITCH_ENV = "CIFAR_TEST_KILL_AFTER"  # test-only: "PHASE:K" SIGKILLs after epoch K of PHASE


@dataclass
class RunState:
    """What a run in a staging folder has finished so far."""

    staging: Path
    settings: dict
    phases: dict = field(default_factory=dict)  # phase -> {"trainable_params", "seconds", ...}
    resumed: bool = False

    @classmethod
    def open(cls, staging: Path, config: Config) -> "RunState":
        """Continue the interrupted run with the same settings, or start afresh in an empty folder."""
        state_file = staging / STATE_FILE
        if state_file.exists():
            saved = json.loads(state_file.read_text())
            if saved.get("settings") == fingerprint(config):
                return cls(staging, saved["settings"], saved.get("phases", {}), resumed=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        state = cls(staging, fingerprint(config))
        state.save()
        return state

    def save(self) -> None:
        """Write run.json atomically (temporary name, then rename)."""
        temporary = self.staging / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps({"settings": self.settings, "phases": self.phases}))
        temporary.replace(self.staging / STATE_FILE)

    def finish_phase(self, phase: str, model: keras.Model, record: dict) -> None:
        """Remember a finished phase and the model it produced."""
        from .model import save_for_inference

        temporary = self.staging / f"after_{phase}.tmp.keras"
        save_for_inference(model, temporary)
        temporary.replace(self.staging / f"after_{phase}.keras")
        self.phases[phase] = record
        self.save()

    def restore_finished(self, model: keras.Model) -> str | None:
        """Load the weights of the last finished phase into `model`; returns that phase or None."""
        from .model import load_trained_model

        if not self.phases:
            return None
        last = list(self.phases)[-1]
        model.set_weights(load_trained_model(self.staging / f"after_{last}.keras").get_weights())
        return last


def backup_callback(staging: Path, phase: str) -> keras.callbacks.BackupAndRestore:
    """Per-phase backup after every epoch; kept after `fit` so a crash between phases loses nothing."""
    return keras.callbacks.BackupAndRestore(str(staging / f"backup_{phase}"),
                                            double_checkpoint=True, delete_checkpoint=False)


def log_rows(log_file: Path) -> list[dict]:
    """Rows of the CSV log, one per epoch (0-based 'epoch'); a re-run epoch keeps its last row."""
    if not log_file.exists():
        return []
    with open(log_file, newline="") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in rows[e].items()}
            for e in sorted(rows)]


def history_from_log(log_file: Path, epochs_head: int) -> dict:
    """The merged history of both phases (1-based epochs, phase names, boundaries) from the log."""
    merged: dict = {"epoch": [], "phase": [], "boundaries": []}
    for row in log_rows(log_file):
        phase = "head" if row["epoch"] < epochs_head else "finetune"
        if merged["phase"] and merged["phase"][-1] != phase:
            merged["boundaries"].append(merged["epoch"][-1])
        merged["epoch"].append(row["epoch"] + 1)
        merged["phase"].append(phase)
        for metric, value in row.items():
            if metric != "epoch":
                merged.setdefault(metric, []).append(value)
    return merged


def best_logged(log_file: Path, monitor: str = "val_accuracy") -> float | None:
    """The best value of `monitor` before an interruption, so the best checkpoint stays the best."""
    values = [row[monitor] for row in log_rows(log_file) if monitor in row]
    return max(values) if values else None


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
