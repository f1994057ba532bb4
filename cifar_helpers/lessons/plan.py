"""Notebook 06's study plan: which variants run, on how much data, and how long the rest will take.

Every variant is one change from the baseline. The default plan is sized for one free Colab
session (a training subset and fewer epochs); the costly variants are listed but opt-in.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import keras

from ..compare import load_finished_run
from ..config import Config
from ..errors import FallbackRefusedError
from ..pipeline import Pipeline
from ..report import RESULT_MARKER
from ..run_store import PHASES
from ..study import finished_with

# name -> the one change it makes to the baseline (a function of the baseline). One exception:
# longer_early_stop also sets early_stopping_patience, a setting of the whole training, so phase 1
# gets early stopping too (and is trained again rather than shared with a run without it).
# scratch says weights none, which it means anyway: a baseline on ImageNet or a weights file
# would otherwise be refused (recipe scratch with pretrained weights is a contradiction).
VARIANTS: dict[str, Callable[[Config], dict]] = {
    "baseline": lambda base: {},
    "augment": lambda base: {"augment": True},
    "cosine": lambda base: {"lr_schedule": "cosine"},
    "plateau": lambda base: {"lr_schedule": "plateau"},
    "label_smoothing": lambda base: {"label_smoothing": 0.1},
    "fine_tune_conv5": lambda base: {"fine_tune_at": "conv5"},
    "fine_tune_conv4": lambda base: {"fine_tune_at": "conv4"},
    "scratch": lambda base: {"recipe": "scratch", "weights": "none"},
    "size_64": lambda base: {"image_size": 64},
    "size_128": lambda base: {"image_size": 128},
    "longer_early_stop": lambda base: {"epochs_finetune": 2 * base.epochs_finetune,
                                       "early_stopping_patience": 3},
}
DEFAULT_PLAN = ("baseline", "augment", "cosine", "label_smoothing", "fine_tune_conv5", "scratch")
# One free Colab session: a fifth of the training images, 5 + 5 epochs per variant. train_limit
# counts before the validation split: 9,000 images train and 1,000 validate.
SESSION = {"train_limit": 10_000, "epochs_head": 5, "epochs_finetune": 5}
# The quick profile (CI): tiny runs that only show the mechanics.
SHRUNK = {"train_limit": 100, "test_limit": 50, "epochs_head": 1, "epochs_finetune": 1}


def plan_base(config: Config, size: str) -> Config:
    """The baseline every variant changes: 'session' (default), 'full' (the whole seed study),
    or 'shrunk' (CI)."""
    sizes = {"session": SESSION, "full": {}, "shrunk": SHRUNK}
    if size not in sizes:
        raise ValueError(f"size must be one of {', '.join(sizes)}; Received: size={size!r}")
    changes = dict(sizes[size])
    if config.train_limit and changes.get("train_limit", 0) > config.train_limit:
        changes["train_limit"] = config.train_limit  # never more data than the profile has
    return dataclasses.replace(config, **changes)


def variant_config(base: Config, name: str, out_root: str | Path) -> Config:
    """The baseline with one variant's change, written to its own folder out_root/name."""
    return dataclasses.replace(base, **VARIANTS[name](base), out=str(Path(out_root) / name))


def relative_cost(config: Config, base: Config) -> float:
    """Compute of a variant in baseline runs, counting a phase-2 epoch as 3 phase-1 epochs.

    Upper bound: a frozen-base epoch costs about a third of a fully trained one (the README's
    full-size seed runs on 2-core CPU VMs: 439-471 vs 136-146 images/s); fine-tuning fewer stages
    costs less than counted; upsampling multiplies the pixels.
    """
    def units(c: Config) -> float:
        head = 3 if c.recipe == "scratch" else 1
        return (c.image_size / 32) ** 2 * (c.epochs_head * head + 3 * c.epochs_finetune)

    return units(config) / units(base)


def describe_plan(base: Config, chosen: tuple[str, ...]) -> str:
    """One line per variant: its change, whether it runs, and its cost in baseline runs."""
    n_val = math.ceil(base.val_fraction * base.train_limit)  # as data.train_val_split counts
    images = (f"{base.train_limit - n_val} training + {n_val} validation images" if base.train_limit
              else f"all training images ({base.val_fraction:.0%} for validation)")
    lines = [f"baseline: {images}, {base.epochs_head} + {base.epochs_finetune} epochs, "
             f"weights {base.weights}"]
    cost = {name: relative_cost(variant_config(base, name, ""), base) for name in VARIANTS}
    for name in VARIANTS:
        change = ", ".join(f"{k}={v}" for k, v in VARIANTS[name](base).items()) or "seed recipe"
        runs = "runs   " if name in chosen else "opt-in "
        lines.append(f"  {runs}{name:<18} {change:<46} ×{cost[name]:.1f}")
    total = sum(cost[name] for name in chosen)
    lines.append(f"{len(chosen)} variants, about {total:.1f} baseline runs of compute")
    return "\n".join(lines)


def finished_metrics(config: Config, log: Callable[[str], None] = print) -> dict | None:
    """The metrics of a finished run in config.out, if its settings are these and the run store
    keeps both its phases here (what data, weights and devices resolve to now, as `run_study`)."""
    if not finished_with(Path(config.out) / RESULT_MARKER, config):
        return None
    try:
        kept = Pipeline(config, log).store.finished  # a run made on a fallback is not kept
    except FallbackRefusedError:  # made with the real inputs, which 'auto' fell back from here
        log(f"{config.out}: made with the real data or weights (see the warnings above), which "
            "are missing here: showing its recorded results")
        return load_finished_run(config.out)
    return load_finished_run(config.out) if set(kept) == set(PHASES) else None


class PlanProgress(keras.callbacks.Callback):
    """Pass to the first variant's run: after the first epoch of each phase, print the time per
    epoch; after phase 2's, the estimated time of the whole plan.

    A first epoch includes building the training graph, so the epochs' estimate errs high; each
    run's data loading, building, evaluation and saving are not counted. A phase 1
    loaded rather than trained counts as a third of a phase-2 epoch, as `relative_cost` does.
    """

    def __init__(self, plan: dict[str, Config], log: Callable[[str], None] = print):
        super().__init__()
        self.plan, self.log, self.per_epoch = plan, log, {}
        self.first = next(iter(plan.values()))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        phase = "head" if epoch < self.first.epochs_head else "finetune"
        if phase in self.per_epoch:
            return
        self.per_epoch[phase] = time.perf_counter() - self.started
        self.log(f"[plan] {phase} epoch: {self.per_epoch[phase]:.1f} s (first epoch)")
        if phase == "finetune":
            self.log(f"[plan] estimated time of all {len(self.plan)} variants: "
                     f"{self.estimate() / 60:.1f} min of epochs (building, evaluating and "
                     "saving each run come on top)")

    def estimate(self) -> float:
        """Seconds for the whole plan: the first variant's measured epochs, scaled by each
        variant's relative cost."""
        finetune = self.per_epoch["finetune"]
        head = self.per_epoch.get("head", finetune / 3)  # not timed when phase 1 was loaded
        first_run = self.first.epochs_head * head + self.first.epochs_finetune * finetune
        return first_run * sum(relative_cost(config, self.first) for config in self.plan.values())
