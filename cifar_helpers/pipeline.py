"""The one training pipeline: the CLI, every notebook and the tests train through `Pipeline`.

A `Pipeline` holds one configuration's data, its model (built exactly as the configuration
says: image size, augmentation, precision policy, fast operations) and its run store. `run`
brings the model to the end of a phase: a phase already finished with these settings is loaded,
an interrupted one resumes from its last finished epoch, a missing one is trained.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import keras
import numpy as np

from .config import Config, validate
from .errors import LossNotFiniteError, TrainingError
from .run_lock import run_lock
from .run_store import PHASES, RunStore, later_phases, write_failures_as_output_errors

if TYPE_CHECKING:
    import tensorflow as tf

PHASE_TITLES = {"head": "Phase 1: training the head on the frozen base",
                "finetune": "Phase 2: fine-tuning everything but BatchNorm at a low learning rate"}
SCRATCH_TITLES = {"head": "Scratch control, first epochs: every layer trains from random weights",
                  "finetune": "Scratch control, remaining epochs: the same training, Adam "
                              "recompiled as at phase 2"}


@dataclass
class Inputs:
    """The data of a run (split as the configuration says) and the weights it starts from."""

    source: str
    data_identity: str  # what the images are (CifarData.identity), for the run store
    class_names: tuple[str, ...]
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    weights: str | None  # the argument for ResNet50
    weights_used: str  # what that means, for people
    notices: list[str]  # fallback warnings, kept for metrics.json
    fell_back: tuple[str, ...] = ()  # 'data', 'weights': what 'auto' could not get

    @property
    def sizes(self) -> dict:
        """Images per split, for metrics.json and the notebooks' summaries."""
        return {"train_images": len(self.train[1]), "val_images": len(self.val[1]),
                "test_images": len(self.test[1])}


def load_inputs(config: Config) -> Inputs:
    """Data and weights, with fallback warnings shown loudly and kept for metrics.json."""
    from .data import FallbackWarning, prepare_data
    from .model import WeightsFallbackWarning, resolve_weights

    ours = {FallbackWarning: "data", WeightsFallbackWarning: "weights"}
    with warnings.catch_warnings(record=True) as caught:
        for category in ours:
            warnings.simplefilter("always", category)
        data, train, val, test = prepare_data(config)
        weights, weights_used = resolve_weights(
            "none" if config.recipe == "scratch" else config.weights, config.download_timeout)
    fallbacks = [w for w in caught if w.category in ours]
    notices = [str(w.message) for w in fallbacks]
    for other in (w for w in caught if w.category not in ours):
        warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    for text in notices:
        print(f"\nWARNING: {text}\n", file=sys.stderr, flush=True)
    return Inputs(data.source, data.identity, data.class_names, train, val, test, weights,
                  weights_used, notices, tuple(ours[w.category] for w in fallbacks))


class Pipeline:
    """Data, model and run store of one configuration; `run` trains what is missing."""

    def __init__(self, config: Config, log: Callable[[str], None] = print, verbose=None,
                 callbacks: Sequence[keras.callbacks.Callback] = ()):
        from .devices import describe_strategy, resolve_strategy, split_cpu
        from .fast_ops import resolve_fast_ops
        from .model import weights_identity
        from .run_store import check_writable
        from .speed import resolve_precision
        from .training import fit_verbosity

        validate(config)  # a Config made with dataclasses.replace was never checked
        self.config, self.log = config, log
        self.callbacks = list(callbacks)  # added to every fit, e.g. notebook 06's progress report
        self.training_seconds = 0.0  # spent in the phases this pipeline trained
        self.verbose = fit_verbosity() if verbose is None else verbose
        check_writable(Path(config.out))  # before any download
        split_cpu()  # CIFAR_LOGICAL_CPUS; says so clearly if TensorFlow started without it
        self.strategy = resolve_strategy(config.distribute, log)
        self.devices = describe_strategy(self.strategy)
        self.precision = resolve_precision(config.precision)
        self.fast_ops = resolve_fast_ops(config.fast_ops)
        if config.deterministic:
            import tensorflow as tf
            tf.config.experimental.enable_op_determinism()
        self.inputs = load_inputs(config)
        self.resolved = {  # what 'auto' settings became here, for the run store
            "data": self.inputs.data_identity, "weights": weights_identity(self.inputs.weights),
            "precision": self.precision, "keras": keras.__version__,  # saved models' format
            "distribute": self.devices["strategy"], "replicas": self.devices["replicas"],
            "fast_ops": self.fast_ops}
        self.store = self._open_store()
        self.model: keras.Model | None = None
        self.model_state: str | None = None  # the last phase whose weights the model holds
        self.resumed = False
        log(f"Data: {self.inputs.source} {self.inputs.sizes}; weights: {self.inputs.weights_used}; "
            f"precision: {self.precision}; fast ops: {'on' if self.fast_ops else 'off'}; "
            f"devices: {self.devices['replicas']} ({self.devices['strategy']}); "
            f"run folder: {self.store.folder}")

    def build_model(self, weights: str | None | bool = True) -> keras.Model:
        """A new model as the configuration says (seeded); it becomes the pipeline's model.

        `weights=True` starts from the run's weights (ImageNet, a file or none).
        """
        from .model import build_model_for
        from .speed import dtype_policy

        keras.utils.set_random_seed(self.config.seed)
        with self.strategy.scope(), dtype_policy(self.precision):
            self.model = build_model_for(self.config, self.inputs.weights if weights is True
                                         else weights)
        self.model_state = None
        return self.model

    def datasets(self) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        """The (training, validation) tf.data pipelines of this configuration."""
        from .data import training_datasets

        return training_datasets(self.config, self.inputs.train, self.inputs.val)

    def run(self, upto: str = "finetune", restart_from: str | None = None) -> keras.Model:
        """Bring the model to the end of phase `upto`, loading or resuming what the store has.

        `restart_from`: when `upto` is already finished, train again from this phase on
        (the CLI restarts a finished run; notebook 03 retrains phase 1, notebook 04 phase 2).
        """
        wanted = PHASES[:PHASES.index(upto) + 1]
        folder = self.store.folder
        with write_failures_as_output_errors(folder), run_lock(folder, self.log):
            self.store = self._open_store(said=self.store.notes)  # as the last run left it
            if restart_from and upto in self.store.finished:
                self._restart_from(restart_from)
            self.resumed = bool(self.store.finished or self.store.in_progress)
            # In the strategy's scope every variable (model, optimizer, restored state) is mirrored.
            with self.strategy.scope():
                self._restore_finished(wanted)
                for phase in wanted:
                    if phase in self.store.finished:
                        self.log(f"\n== {self.title(phase)}: finished before, loaded from "
                                 f"{self.store.model_file(phase)} ==")
                    else:
                        self._train(phase)
        return self.model

    def _open_store(self, said: Sequence[str] = ()) -> RunStore:
        """The run folder as it is now (another run may have trained there since this pipeline
        last looked), logging its notes that were not `said` before."""
        store = RunStore.open(self.config.out, self.config, self.resolved, self.inputs.fell_back)
        for note in store.notes:
            if note not in said:
                self.log(note)
        return store

    def _restart_from(self, phase: str) -> None:
        """Forget a finished `phase` and every later one, to train them again."""
        self.log(f"{self.store.folder} holds the finished '{phase}' phase with these settings: "
                 "training it again (restart_from), which replaces it and any later phase")
        self.store.restart_from(phase)
        if self.model_state in later_phases(phase):
            self.model = None  # it holds weights trained after the restart point

    def title(self, phase: str) -> str:
        """What a phase does in this configuration's recipe, for the log."""
        if self.config.recipe == "scratch":
            return SCRATCH_TITLES[phase]
        if phase == "finetune" and self.config.fine_tune_at != "all":
            return (f"Phase 2: fine-tuning from {self.config.fine_tune_at} on (BatchNorm stays "
                    "frozen) at a low learning rate")
        return PHASE_TITLES[phase]

    def history(self, upto: str = "finetune") -> dict:
        """The finished epochs of the run up to the end of phase `upto`, from the CSV log."""
        return self.store.history(upto)

    def _restore_finished(self, wanted: tuple[str, ...]) -> None:
        """Give the model the weights of the last finished phase it needs (built if needed)."""
        done = [phase for phase in wanted if phase in self.store.finished]
        if self.model is None:
            self.build_model(weights=None if done else True)
        if done and self.model_state != done[-1]:
            from .model import set_trainable_for

            self.model.set_weights(self.store.load_model(done[-1]).get_weights())
            set_trainable_for(self.model, done[-1], self.config)  # as it trained
            self.model_state = done[-1]

    def _train(self, phase: str) -> None:
        """Train one phase (resuming it if it was interrupted) and save it in the run store."""
        import tensorflow as tf

        from .model import trainable_count
        from .resume import recover_backup

        resumes = self.store.start(phase)
        if resumes and not self._on_cached_features(phase):  # checked before it is called resumable
            recover_backup(self.store.backup_dir(phase), self.log)
        self.log(f"\n== {self.title(phase)}{self._how_it_starts(phase, resumes)} ==")
        start = time.perf_counter()
        try:
            history = self._fit_phase(phase)
        except LossNotFiniteError:  # the backup holds NaN weights: do not resume from it
            self.store.restart_from(phase)
            self.model = None
            raise
        except tf.errors.ResourceExhaustedError:
            self.model = None
            raise TrainingError(self._out_of_memory(phase)) from None
        except BaseException:  # Ctrl-C, a crash: the weights hold part of an epoch's updates
            self.model = None  # so the next run() rebuilds or reloads, then resumes the backup
            raise
        seconds = time.perf_counter() - start
        self.training_seconds += seconds
        epochs = len(history.epoch)
        record = {"epochs_trained_here": epochs, "seconds": round(seconds, 2),
                  "images_per_second": round(len(self.inputs.train[1]) * epochs / seconds, 1)
                  if epochs else None,
                  "trainable_params": trainable_count(self.model), "precision": self.precision}
        self.store.finish(phase, self.model, record)
        self.model_state = phase

    def _out_of_memory(self, phase: str) -> str:
        """What to do when a phase ran out of memory (a big --image-size, a small GPU)."""
        c = self.config
        return (f"out of memory while training the '{phase}' phase (batch size {c.batch_size}, "
                f"image size {c.image_size}): lower --batch-size or --image-size (batch_size= "
                "or image_size= in load_config) and run again; both shape phase 1, so both "
                "phases train again with the new value")

    def _on_cached_features(self, phase: str) -> bool:
        """Whether this phase is phase 1 on cached base features (seconds: it has no backups)."""
        from .training import uses_feature_cache

        return phase == "head" and uses_feature_cache(self.config)

    def _how_it_starts(self, phase: str, resumes: bool) -> str:
        """For the phase's title line: nothing for a new phase, else what an interrupted one
        continues from."""
        if not resumes:
            return ""
        if self._on_cached_features(phase):
            return ": resuming (the cached features are kept, the head trains again)"
        return (": resuming" if self.store.has_backup(phase)
                else ": starting again, interrupted before its first backup")

    def _fit_phase(self, phase: str) -> keras.callbacks.History:
        """The phase's training call, with the study's callbacks and the caller's."""
        from .training import close_csv_logs, standard_callbacks

        callbacks = [*standard_callbacks(self.store.log_file, self.config.early_stopping_patience),
                     *self.callbacks]
        try:
            return self._fit(phase, callbacks)
        finally:  # an interrupted fit leaves the log open, and Windows cannot replace it then
            close_csv_logs(callbacks)

    def _fit(self, phase: str, callbacks: list[keras.callbacks.Callback]
             ) -> keras.callbacks.History:
        """Phase 1 on cached features when it applies, else a phase with its backups."""
        from .resume import backup_callbacks, kill_switch
        from .training import (feature_cache_obstacle, fine_tune, train_from_scratch, train_head,
                               train_head_on_cached_features)

        first_epoch = 0 if phase == "head" else self.config.epochs_head
        kill = kill_switch(phase, first_epoch)  # test-only; after the backups of each epoch
        obstacle = feature_cache_obstacle(self.config)
        if phase == "head" and self.config.feature_cache and obstacle:
            self.log(f"(feature cache not used: {obstacle})")
        if self._on_cached_features(phase):
            return train_head_on_cached_features(
                self.model, self.inputs.train, self.inputs.val, self.config, [*callbacks, *kill],
                self.verbose, cache_dir=self.store.features_dir)
        callbacks = [*callbacks, *backup_callbacks(self.store.backup_dir(phase)), *kill]
        train_ds, val_ds = self.datasets()
        if self.config.recipe == "scratch":
            return train_from_scratch(self.model, train_ds, val_ds, self.config, phase, callbacks,
                                      self.verbose)
        runner = train_head if phase == "head" else fine_tune
        return runner(self.model, train_ds, val_ds, self.config, callbacks, self.verbose)


__all__ = ["Pipeline", "Inputs", "load_inputs", "PHASES", "later_phases"]
