"""The run store: one folder with everything a run has trained so far, each with its settings.

Layout of a run folder (`config.out`):
- `run.json`: for each finished phase the settings it was trained with and its timing, and the
  phase in progress (if any) with its settings;
- `phase1.keras`: the model after phase 1; `model.keras`: the model after phase 2 (both without
  optimizer state, loadable in Keras safe mode);
- `training_log.csv`: every finished epoch of both phases (the merged history is read from it);
- `backup_head/`, `backup_finetune/`: Keras `BackupAndRestore` state of the phase in progress,
  removed once that phase's model is saved;
- `features/`: cached ResNet50 features for phase 1 in the `fast` profile;
- `metrics.json` (written last), `report.md`, `history.png`, `confusion.png`: a finished study.

A phase is reused only when the settings that shape it are those of the run asking for it
(`config.fingerprint`: phase 1 depends on the 'training' settings, phase 2 also on 'finetune'),
and what 'auto' settings resolved to is the same too (data source, weights; and the Keras
version, which writes the saved models): a phase trained offline on random weights is not
reused once ImageNet weights are there. How this machine runs (`MACHINE_KEYS`: precision, fast
ops, devices) must match only to resume a phase in progress; a finished one is loaded anyway.
Opening deletes nothing: state not kept is removed when a phase starts training. A Keras update
within 3.x keeps the phases (Colab updates Keras during a course); an older Keras than the one
that saved them cannot load them, so there the phases are trained again. State made with real data or weights is never replaced by a run on what
'auto' fell back to here (the sample, no weights): that folder is refused with what to do.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .config import Config, fingerprint, with_new_defaults
from .errors import FallbackRefusedError, OutputError, WeightsError
from .files import atomic_path, write_text_atomic

if TYPE_CHECKING:
    import keras

PHASES = ("head", "finetune")
PHASE_SCOPE = {"head": "training", "finetune": "finetune"}
MODEL_FILES = {"head": "phase1.keras", "finetune": "model.keras"}
MANIFEST = "run.json"
LOG_FILE = "training_log.csv"
RESULT_FILES = ("metrics.json", "report.md", "history.png", "confusion.png")
FALLBACK_KEYWORDS = {"data": "sample", "weights": "none"}  # what 'auto' falls back to
# what a run folder's files are called: a folder holding any of them without run.json is not emptied
STORE_NAMES = {*MODEL_FILES.values(), LOG_FILE, *RESULT_FILES, "features",
               *(f"backup_{phase}" for phase in PHASES)}


# How this machine runs 'auto' settings: a finished phase made otherwise holds the same trained
# model, so it is loaded; a phase in progress there starts again (its backup's optimizer state
# depends on them: a loss-scale optimizer for float16, the fused Adam, mirrored variables).
MACHINE_KEYS = ("precision", "fast_ops", "distribute", "replicas")


def same_resolved(recorded: dict, current: dict, ignored: tuple[str, ...] = ()) -> bool:
    """Whether recorded resolved inputs are those of now (`resolved_matches`, key by key),
    apart from the `ignored` keys."""
    return recorded.keys() == current.keys() and all(
        key in ignored or resolved_matches(key, recorded[key], current[key]) for key in current)


def resolved_matches(key: str, recorded: object, current: object) -> bool:
    """One resolved input: equal, except that models saved by an older Keras 3.x count as the
    same (newer Keras loads them, older Keras cannot: Keras 3.4 fails on 3.15's)."""
    return keras_can_load(recorded, current) if key == "keras" else recorded == current


def keras_can_load(saved_by: str | None, loading: str | None) -> bool:
    """Whether Keras `loading` loads models that Keras `saved_by` wrote: same major, not older."""
    if saved_by == loading or not (saved_by and loading):
        return saved_by == loading

    def numbers(version: str) -> tuple[int, ...]:
        return tuple(int(re.match(r"\d*", part).group() or 0) for part in version.split(".")[:3])

    saved, now = numbers(saved_by), numbers(loading)
    return saved[0] == now[0] and saved <= now


def later_phases(phase: str) -> tuple[str, ...]:
    """`phase` and every phase after it."""
    return PHASES[PHASES.index(phase):]


@dataclass
class RunStore:
    """What a run folder holds for one configuration: finished phases and the phase in progress."""

    folder: Path
    config: Config
    resolved: dict = field(default_factory=dict)  # what 'auto' settings became: data, weights...
    finished: dict = field(default_factory=dict)  # phase -> {"settings", "resolved", "record"}
    in_progress: dict | None = None  # {"phase", "settings", "resolved"}
    notes: list = field(default_factory=list)  # why recorded state was not kept, for the log
    fell_back: tuple = ()  # resolved inputs 'auto' could not get here ('data', 'weights')

    @classmethod
    def open(cls, folder: str | Path, config: Config, resolved: dict | None = None,
             fell_back: tuple[str, ...] = ()) -> RunStore:
        """Open the run folder (writable: `check_writable`), keeping only the state made with
        these settings and resolved inputs; state that a fallback would replace is refused.

        Nothing is deleted here: state not kept stays on disk until a phase trains (`start`), so
        opening a run with other settings, e.g. to look at it, loses nothing.
        """
        store = cls(Path(folder), config, resolved or {}, fell_back=tuple(fell_back))
        saved = store._read_manifest()
        for phase in PHASES:
            entry = saved.get("finished", {}).get(phase)
            if not (entry and store._made_here(entry, phase, ignored=MACHINE_KEYS)):
                store._note_unkept(entry, phase)
                break
            if not store.model_file(phase).exists():
                store.notes.append(f"{store.model_file(phase)} is missing: the recorded '{phase}' "
                                   "phase (and any later one) is trained again")
                break
            store.finished[phase] = entry
            store._note_made_elsewhere(entry, phase)
        unkept = [phase for phase in PHASES if phase not in store.finished]
        current = saved.get("in_progress")
        if unkept and current and current.get("phase") == unkept[0]:
            if store._made_here(current, unkept[0]):
                store.in_progress = current
                unkept = unkept[1:]
            else:
                store._note_unkept(current, unkept[0])
        if not saved:
            store.save()  # a new run folder
        return store

    def _made_here(self, entry: dict, phase: str, ignored: tuple[str, ...] = ()) -> bool:
        """Whether a recorded phase was made with this run's settings and resolved inputs
        (apart from the `ignored` ones)."""
        return (self._recorded_settings(entry, phase) == self.settings(phase)
                and same_resolved(entry.get("resolved", {}), self.resolved, ignored))

    def _note_made_elsewhere(self, entry: dict, phase: str) -> None:
        """Say that a finished phase loaded here was trained on another kind of machine."""
        was = entry.get("resolved", {})
        changed = [f"{key} {was.get(key)!r} (here {self.resolved.get(key)!r})"
                   for key in MACHINE_KEYS if was.get(key) != self.resolved.get(key)]
        if changed:
            self.notes.append(f"{self.folder}: the finished '{phase}' phase was trained with "
                              f"{', '.join(changed)}: it is loaded as it is")

    def _recorded_settings(self, entry: dict, phase: str) -> dict:
        """A recorded phase's settings, each setting added to Config since at its default."""
        return with_new_defaults(entry.get("settings") or {}, self.settings(phase))

    def _note_unkept(self, entry: dict | None, phase: str) -> None:
        """Say which recorded settings or resolved inputs (devices, weights...) changed."""
        if not entry:
            return
        now = {**self.settings(phase), **self.resolved}
        was = {**self._recorded_settings(entry, phase), **entry.get("resolved", {})}
        keys = [k for k in {**was, **now} if not resolved_matches(k, was.get(k), now.get(k))]
        self._refuse_replacing_by_fallback(phase, [k for k in keys if k in self.fell_back], was)
        changed = [f"{k} {was.get(k)!r} -> {now.get(k)!r}" for k in keys]
        if changed:
            self.notes.append(f"{self.folder}: the recorded '{phase}' phase (and any later one) "
                              f"is trained again, because {'; '.join(changed)}. Training "
                              "replaces its files; to use them instead, run with the settings "
                              "(and on the kind of machine) they were made with, or train into "
                              "another folder (--out, or out= in load_config)")

    def _refuse_replacing_by_fallback(self, phase: str, fallen: list[str], was: dict) -> None:
        """A phase made with real data or weights is not replaced by one on what 'auto' fell
        back to: a participant's missing file must not delete the teacher's run."""
        if fallen:
            made = " and ".join(f"{key} {was.get(key)!r}" for key in fallen)
            here = " and ".join(f"{key} to {self.resolved[key]!r}" for key in fallen)
            explicit = " and ".join(f"{key} to {FALLBACK_KEYWORDS[key]}" for key in fallen)
            raise FallbackRefusedError(
                f"{self.folder} holds the '{phase}' phase made with {made}, but here 'auto' fell "
                f"back: {here} (the warnings above say why), so training would replace it. Do "
                f"what those warnings say and run again; or set {explicit} to replace the "
                "recorded phases on purpose; or choose another output folder (--out, or out= in "
                "load_config).")

    def _read_manifest(self) -> dict:
        """run.json; without a readable one, a folder holding run files is refused, not emptied."""
        try:
            saved = json.loads((self.folder / MANIFEST).read_text())
        except (OSError, ValueError):
            saved = None
        if isinstance(saved, dict):
            return saved
        found = sorted(path.name for path in self.folder.iterdir()
                       if path.name in STORE_NAMES) if self.folder.is_dir() else []
        if found:
            state = "a damaged" if (self.folder / MANIFEST).exists() else "no"
            raise OutputError(
                f"{self.folder} has {state} {MANIFEST} but holds {', '.join(found)}: training "
                "here would delete them. Choose another output folder (--out, or out= in "
                "load_config), or delete those files to train in this one.")
        return {}

    def settings(self, phase: str) -> dict:
        """The settings that shape the state after `phase` under this configuration."""
        return fingerprint(self.config, PHASE_SCOPE[phase])

    def save(self) -> None:
        """Write run.json atomically."""
        manifest = {"finished": self.finished, "in_progress": self.in_progress}
        write_text_atomic(self.folder / MANIFEST, json.dumps(manifest, indent=2))

    def backup_dir(self, phase: str) -> Path:
        """Where Keras' BackupAndRestore keeps the state of `phase` while it trains."""
        return self.folder / f"backup_{phase}"

    def has_backup(self, phase: str) -> bool:
        """Whether `phase` has backed up an epoch it can resume from."""
        folder = self.backup_dir(phase)
        return folder.is_dir() and any(folder.iterdir())

    @property
    def features_dir(self) -> Path:
        """Where phase 1's cached base features live (kept across interruptions)."""
        return self.folder / "features"

    @property
    def log_file(self) -> Path:
        """The CSV log every epoch of every phase is appended to (`history` reads it)."""
        return self.folder / LOG_FILE

    def model_file(self, phase: str) -> Path:
        """The saved model after `phase`."""
        return self.folder / MODEL_FILES[phase]

    def start(self, phase: str) -> bool:
        """Mark `phase` as in progress (dropping it and later phases); True when it resumes."""
        resumes = bool(self.in_progress and self.in_progress["phase"] == phase)
        if resumes:  # a line cut off by a kill would swallow the next one Keras appends
            keep_log_rows_before(self.log_file, sys.maxsize)
        else:
            self._discard(phase)
            self.in_progress = {"phase": phase, "settings": self.settings(phase),
                                "resolved": self.resolved}
        self._drop_results()
        self.save()
        return resumes

    def finish(self, phase: str, model: keras.Model, record: dict) -> None:
        """Save the model after `phase`, record the phase as finished, drop its backup."""
        from .model import save_for_inference

        with atomic_path(self.model_file(phase)) as temporary:
            save_for_inference(model, temporary)
        self.finished[phase] = {"settings": self.settings(phase), "resolved": self.resolved,
                                "record": record}
        self.in_progress = None
        self.save()
        shutil.rmtree(self.backup_dir(phase), ignore_errors=True)

    def restart_from(self, phase: str) -> None:
        """Forget `phase` and every later one: their models, backups and log rows."""
        self._discard(phase)
        self.save()

    def _drop_results(self) -> None:
        """Remove metrics.json and the other results: they describe phases about to change."""
        for name in RESULT_FILES:
            (self.folder / name).unlink(missing_ok=True)

    def _discard(self, phase: str) -> None:
        self._drop_results()
        for name in later_phases(phase):
            self.finished.pop(name, None)
            if self.in_progress and self.in_progress["phase"] == name:
                self.in_progress = None
            self.model_file(name).unlink(missing_ok=True)
            shutil.rmtree(self.backup_dir(name), ignore_errors=True)
        first_epoch = 0 if phase == "head" else self.config.epochs_head
        keep_log_rows_before(self.log_file, first_epoch)

    def load_model(self, phase: str) -> keras.Model:
        """The model saved after `phase` (safe mode); one that cannot be loaded says the remedy."""
        from .model import load_trained_model

        try:
            return load_trained_model(self.model_file(phase))
        except WeightsError as exc:
            raise WeightsError(f"{exc}. Delete that file to train the '{phase}' phase (and any "
                               "later one) again.") from None

    def history(self, upto: str = "finetune") -> dict:
        """The merged history (1-based epochs, phases, boundaries) of the logged epochs up to the
        end of phase `upto`."""
        last = self.config.epochs_head if upto == "head" else self.config.total_epochs
        return history_from_log(self.log_file, self.config.epochs_head, last)


@contextlib.contextmanager
def write_failures_as_output_errors(folder: Path) -> Iterator[None]:
    """A failed write while training or saving (a full disk, say) becomes one clear OutputError.

    Data and model files are read before and raise their own errors, so an OSError here is about
    writing checkpoints or results; the training state in the run folder is kept for a resume.
    """
    try:
        yield
    except OSError as exc:
        raise OutputError(f"could not write to {folder}: {exc.strerror or exc}; the training "
                          "state is kept there: free some space (in Google Drive, also empty its "
                          "trash) and run again (the same command, or the notebook from the "
                          "top) to resume from the last finished epoch") from None


def check_writable(folder: Path) -> None:
    """Create `folder` and write a file in it, or raise OutputError before any work is done."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / ".write-test", "ok")
        (folder / ".write-test").unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to the run folder {folder}: "
                          f"{exc.strerror or exc}") from None


def log_rows(log_file: Path) -> list[dict]:
    """Rows of the CSV log, one per epoch (0-based 'epoch'); a re-run epoch keeps its last row."""
    if not log_file.exists():
        return []
    with open(log_file, newline="") as handle:
        parsed = [parsed_row(row) for row in csv.DictReader(handle)]
    rows = {row["epoch"]: row for row in parsed if row is not None}
    return [rows[epoch] for epoch in sorted(rows)]


def parsed_row(row: dict) -> dict | None:
    """One epoch's numbers, or None for a line cut off (a process killed while writing it)."""
    try:
        return {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
    except (TypeError, ValueError):
        return None


def keep_log_rows_before(log_file: Path, first_dropped_epoch: int) -> None:
    """Rewrite the CSV log without the epochs from `first_dropped_epoch` on."""
    rows = [row for row in log_rows(log_file) if row["epoch"] < first_dropped_epoch]
    if not rows:
        log_file.unlink(missing_ok=True)
        return
    with atomic_path(log_file) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def history_from_log(log_file: Path, epochs_head: int, epochs: int | None = None) -> dict:
    """The merged history of both phases (1-based epochs, phase names, boundaries) from the log,
    of the first `epochs` epochs (all when None)."""
    merged: dict = {"epoch": [], "phase": [], "boundaries": []}
    rows = [row for row in log_rows(log_file) if epochs is None or row["epoch"] < epochs]
    for row in rows:
        phase = "head" if row["epoch"] < epochs_head else "finetune"
        if merged["phase"] and merged["phase"][-1] != phase:
            merged["boundaries"].append(merged["epoch"][-1])
        merged["epoch"].append(row["epoch"] + 1)
        merged["phase"].append(phase)
        for metric, value in row.items():
            if metric != "epoch":
                merged.setdefault(metric, []).append(value)
    return merged
