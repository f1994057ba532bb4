# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,accelerator,colab
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Fine-tuning: unfreeze ResNet50, carefully
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/04_fine_tuning.ipynb)
# [![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/04_fine_tuning.ipynb)
#
# **What you will learn**
#
# - why fine-tuning comes *after* head training, and why it uses a learning rate 100 times lower;
# - why the model must be compiled again after unfreezing;
# - why BatchNormalization stays in inference mode, and why calling the base with
#   `training=False` does **not** achieve that during `fit` on Keras 3 (we show it);
# - how to check that phase 2 trained the right weights, and compare it with phase 1.
#
# **Time**
#
# - Quick profile (CI, workshops): 25–40 s on a 2-core CPU (measured under nbval, with notebook 03's
#   result saved; the range is run-to-run noise).
# - Full seed profile (all 45,000 training images, 10 more epochs): phase 2 took 51–55 minutes on
#   2-core CPU test VMs (3,087–3,315 s, 136–146 images/s, measured: README *Speed*); add 16–17
#   minutes if notebook 03's result is not saved here and phase 1 must be recreated.
# - Colab T4 GPU: not measured by us yet — the timing cells print it on your runtime.

# %% [markdown]
# **In Colab or Kaggle.** Each notebook opened from a badge runs in a fresh session with its own
# disk, so a later notebook does not see what an earlier one trained: it trains the phases it needs
# itself (04 trains phase 1 first, 05 and 07 both phases). The pipeline always loads a finished
# phase from the run folder if it is there, and trains it otherwise. To carry results over:
#
# - **Colab:** set `USE_DRIVE = True` in the next cell of every notebook: the run folders then
#   live in Google Drive (`MyDrive/cifar10-course/runs`).
# - **Kaggle:** turn *Internet* on in the *Settings* panel (a phone-verified account is needed; the
#   next cell installs the course package from GitHub; the seed profile downloads CIFAR-10 and the
#   ImageNet weights). Each Kaggle notebook keeps only its own `/kaggle/working`. To reuse 03's
#   phase 1 in 04, save 03 (*Save Version*), add its output to 04 (*Add Input*), and copy it into
#   04's `runs` folder in a new cell before the pipeline runs (inputs are read-only; the *Input*
#   panel shows the path): `import shutil; shutil.copytree("/kaggle/input/NAME/runs",
#   "/kaggle/working/runs", dirs_exist_ok=True)`. Likewise 04's output for 05 and 07.

# %%
# extra code – set-up: in Colab or Kaggle, install the course package (their TensorFlow is kept)
import os
import socket
import subprocess
import sys

IS_KAGGLE = "KAGGLE_KERNEL_RUN_TYPE" in os.environ
IS_COLAB = "google.colab" in sys.modules and not IS_KAGGLE  # Kaggle's image is built on Colab's
USE_DRIVE = False  # Colab only: True keeps the run folders in Google Drive, across notebooks
if IS_COLAB or IS_KAGGLE:
    try:  # Kaggle notebooks start with Internet off
        socket.create_connection(("github.com", 443), timeout=10).close()
    except OSError:
        raise SystemExit("Kaggle: turn Internet on (Settings panel › Internet, phone-verified "
                         "account needed) and run this cell again" if IS_KAGGLE else
                         "No internet connection: reconnect the runtime and run this cell again")
    for only_the_package in (["--no-deps"], []):  # check the runtime before pip may upgrade it
        install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *only_the_package,
                                  "cifar-helpers @ git+https://github.com/cifar10-transfer-course/resnet50-cifar10@main"],
                                 capture_output=True, text=True)
        if install.returncode != 0:
            raise SystemExit("Installing cifar-helpers failed; pip said:\n" + install.stderr[-999:])
        from cifar_helpers.versions import require_supported

        require_supported()  # an older TensorFlow: one sentence, before pip would replace it
    if IS_COLAB and USE_DRIVE:
        from google.colab import drive
        try:
            drive.mount("/content/drive")
        except Exception as exc:  # Colab's error types vary, e.g. MessageError when refused
            raise SystemExit(f"Google Drive could not be mounted ({exc}): allow access and run "
                             "this cell again, or set USE_DRIVE = False (runs then live in "
                             "/content/runs and are lost with the VM)") from None
    colab_runs = {False: "/content/runs", True: "/content/drive/MyDrive/cifar10-course/runs"}
    if IS_COLAB and (os.environ.get("CIFAR_RUNS_DIR") or colab_runs[False]) in colab_runs.values():
        os.environ["CIFAR_RUNS_DIR"] = colab_runs[USE_DRIVE]  # also for `!python -m cifar_helpers`
if USE_DRIVE and not IS_COLAB:
    print("USE_DRIVE applies only in Colab: ignored here")

from cifar_helpers.devices import split_cpu
from cifar_helpers.versions import require_supported

split_cpu()  # CIFAR_LOGICAL_CPUS=N: N CPU devices to try multi-device training (before TF starts)
require_supported()  # a runtime older than the course supports: one sentence on what to do

# %%
import math
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cifar_helpers import load_config
from cifar_helpers.lessons.batchnorm import (batchnorm_layers, moving_statistics,
                                     nested_training_false_model, statistics_drift)
from cifar_helpers.config import describe
from cifar_helpers.lessons.course import (environment_report, show_expectations, show_source,
                                          timed)
from cifar_helpers.data import make_dataset
from cifar_helpers.evaluation import evaluate
from cifar_helpers.model import (base_layers, head_layers, stage_of, trainable_count,
                                 unfreeze_base)
from cifar_helpers.pipeline import Pipeline
from cifar_helpers.plots import plot_history
from cifar_helpers.training import fine_tune

environment_report()
config = load_config()
SETTINGS_USED = ("data", "weights", "train_limit", "test_limit", "val_fraction", "seed",
                 "batch_size", "epochs_head", "lr_head", "epochs_finetune", "lr_finetune",
                 "fine_tune_at", "early_stopping_patience", "out")
print(describe(config, SETTINGS_USED))  # print(describe(config)) lists all settings

# %% [markdown]
# The run settings this notebook uses (`print(describe(config))` lists all of them). Phase 2's own
# settings are `epochs_finetune`, `lr_finetune` and `fine_tune_at`; change them with
# `config = load_config(epochs_finetune=3)` (then run the cells from here on again) or environment
# variables such as `CIFAR_LR_FINETUNE=1e-4`, and notebook 03's phase-1 model is still reused. It
# is reused only if every setting that shapes phase 1 matches (data, weights, phase-1 epochs and
# learning rate, batch size, seed, image size, ...); otherwise phase 1 is simply trained again
# below. Note that `early_stopping_patience` is one of those: it turns on early stopping in *both*
# phases, so setting it here trains phase 1 again, with early stopping, instead of reusing 03's.

# %% [markdown]
# ## 1. Data and the phase-1 model
#
# The same data, split and training pipeline as in notebook 03 (same settings, same seed).
# `pipeline.run("head")` brings the model to the end of phase 1: it loads the phase-1 model that
# notebook 03 (or `python -m cifar_helpers train` with the same settings) left in the run folder
# `config.out`; if there is none (a fresh Colab VM, other settings), it trains phase 1 now, and an
# interrupted phase 1 resumes from its last finished epoch. It says which of these happened.

# %%
pipeline = Pipeline(config)
(x_train, y_train), (x_test, y_test) = pipeline.inputs.train, pipeline.inputs.test
class_names = pipeline.inputs.class_names
model = pipeline.run("head")
phase1_history = pipeline.history("head")
phase1_evaluation = evaluate(model, x_test, y_test, class_names)
print(f"phase-1 test accuracy: {phase1_evaluation.accuracy:.3f}")

# %%
# extra code – check that the cells above did what the text says
assert model.count_params() == 23_858_890
assert trainable_count(model) == 271_178  # still as phase 1 left it: only the head trains
trained = len(phase1_history["epoch"])  # fewer than epochs_head only if early stopping ended it
assert phase1_history["phase"] == ["head"] * trained
assert phase1_history["epoch"] == list(range(1, trained + 1))
assert trained == config.epochs_head or (config.early_stopping_patience > 0 and trained > 0)

# %% [markdown]
# ## 2. Unfreeze — but why so carefully?
#
# After phase 1 the head does a decent job with fixed ImageNet features. Those features were
# learned for 224×224 photos of 1,000 ImageNet classes, not for 32×32 CIFAR-10 images, so letting
# the whole network adapt usually gains a lot of accuracy. It is also risky: with 23.8 million
# trainable weights and comparatively little data, large updates can quickly destroy the
# pretrained features or overfit. Hence the recipe:
#
# 1. fine-tune only **after** the head is trained (a random head would send large, noisy gradients
#    into the base);
# 2. unfreeze every ResNet50 layer **except BatchNormalization** (section 3) — or, with
#    `fine_tune_at="conv5"`, only the last stage (section 6 below and notebook 06);
# 3. **compile again**;
# 4. train with a **low learning rate**: Adam at 1e-5, 100 times lower than phase 1, so the
#    pretrained weights are nudged rather than overwritten.

# %%
show_source(unfreeze_base)

# %% [markdown]
# ### Why compile again?
#
# Keras builds its training step, and the optimizer its state, for the weights that were
# trainable when training started after `compile`. Changing `trainable` afterwards is not
# picked up: on Keras 3.4, 3.10 and 3.15 we checked that after a first `fit`, unfreezing a
# layer without compiling again leaves it untouched by the next `fit` (exercise 2 lets you see
# it). Compiling again is also where the new, low learning rate comes in, with a fresh Adam whose
# running averages start from zero instead of carrying over phase 1's head-only state.
#
# `fine_tune` is phase 2 in one call: unfreeze, compile at `lr_finetune`, and fit. Its epochs are
# numbered after phase 1's (`initial_epoch=epochs_head`), so the curves of both phases line up.
# This is the code the pipeline runs for phase 2 below (the CLI runs it too).

# %%
show_source(fine_tune)

# %% [markdown]
# ## 3. BatchNormalization stays in inference mode
#
# A BatchNormalization layer normalises its inputs. In *training mode* it uses the mean and
# variance of the current batch and nudges its stored *moving* mean and variance towards them; in
# *inference mode* it uses the stored statistics, here those learned on ImageNet. The ResNet50
# weights after each BatchNorm layer are tuned to exactly that normalisation. If fine-tuning lets
# batches of 32 small CIFAR-10 images overwrite the statistics, the following layers suddenly see
# differently scaled inputs, and much of what was learned can be lost in the first epoch. So during
# fine-tuning BatchNorm must stay in inference mode.
#
# ### The keras-io recipe, and the Keras 3 trap
#
# The keras-io transfer-learning guide builds the model around a *nested* base called with
# `base(x, training=False)`. `nested_training_false_model` builds exactly that:

# %%
show_source(nested_training_false_model)

# %% [markdown]
# Train it briefly — one epoch on 32 images at the fine-tuning learning rate — and compare every
# BatchNorm moving mean and variance before and after. (`run_eagerly=True` only skips building a
# graph of the training step, which for ResNet50 costs far more than one tiny step.
# `tests/test_course.py` checks that the result is the same in the normal graph mode.)

# %%
nested = nested_training_false_model()
nested.compile(optimizer=keras.optimizers.Adam(1e-5), loss="categorical_crossentropy",
               run_eagerly=True)
before = moving_statistics(nested)
with timed("one epoch on 32 images"):
    nested.fit(make_dataset(x_train[:32], y_train[:32], 32), epochs=1, verbose=0, shuffle=False)
nested_drift = statistics_drift(before, moving_statistics(nested))
print(nested_drift)

# %%
# extra code – check that the cells above did what the text says
assert nested_drift["arrays"] == 106  # 53 BatchNorm layers: a moving mean and variance each
assert nested_drift["changed"] == 106, "with training=False alone, the statistics still move"

# %% [markdown]
# Every one of the 106 statistics arrays moved, although the base was called with
# `training=False`. The reason: in Keras 3, calling a functional model passes the outer
# `training` value to every layer inside it, and `fit` calls the model with `training=True`, which
# replaces the `training=False` recorded when the model was built (see `operation_fn` in
# `keras/src/models/functional.py`).
#
# What does work on Keras 3: a BatchNormalization layer with `trainable = False` always runs in
# inference mode. That is why `unfreeze_base` keeps every BatchNorm layer frozen instead of
# relying on `training=False`. We verify it on the real phase 2 below.

# %%
# extra code – free the memory of the demonstration model
nested = None  # free the memory of the demonstration model (also when run again)

# %% [markdown]
# ## 4. Phase 2: fine-tune
#
# Before training, we keep a copy of every BatchNorm statistic and of two convolution kernels:
# the first one phase 2 trains, and that of the stem's `conv1_conv` (the same layer when
# `fine_tune_at="all"`), so that afterwards we can check what moved and what did not.
#
# As `restart_from="head"` in notebook 03, `restart_from="finetune"` trains phase 2 again even
# when the run folder already holds a finished one (an interrupted one resumes from its last
# finished epoch): if the runtime disconnects *after* phase 2 finished, running this notebook
# from the top trains it again, whereas notebooks 05 and 07 load the finished model.

# %%
model = pipeline.run("head")  # the phase-1 weights, also when this cell runs a second time
statistics_before = moving_statistics(model)
first_tuned = ("conv1_conv" if config.fine_tune_at == "all"
               else f"{config.fine_tune_at}_block1_1_conv")  # first convolution of that stage
kernels_before = {name: model.get_layer(name).kernel.numpy().copy()
                  for name in ("conv1_conv", first_tuned)}

with timed("phase 2"):
    model = pipeline.run("finetune", restart_from="finetune")  # fine_tune + log + backups
full_history = pipeline.history()

# %%
drift = statistics_drift(statistics_before, moving_statistics(model))
learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
print(f"trainable parameters: {trainable_count(model):,}; learning rate: {learning_rate:g}")
print(f"BatchNorm statistics: {drift}")

# %% [markdown]
# The checks: exactly the weights of the head and of the fine-tuned stages train, BatchNorm
# excepted — with the default `fine_tune_at="all"` that is 23,752,650 (everything but BatchNorm's
# 106,240: the 53 layers' scales and offsets, plus their moving statistics, which never train); no
# BatchNorm layer trainable; not a single moving statistic changed; the first fine-tuned
# convolution did change, and the stem only if it was fine-tuned; with the constant learning rate
# Adam ran at `lr_finetune` (the `cosine` and `plateau` schedules lower it); phase 2's epochs are
# numbered after phase 1's, all of them unless early stopping ended a phase; the loss stayed finite.

# %%
# extra code – check that the cells above did what the text says
assert pipeline.config == config, (
    "config changed after pipeline = Pipeline(config): run the cells again from there")
first_stage = 1 if config.fine_tune_at == "all" else stage_of(model.get_layer(first_tuned))
should_train = head_layers(model) + [
    layer for layer in base_layers(model) if stage_of(layer) >= first_stage
    and not isinstance(layer, keras.layers.BatchNormalization)]
assert trainable_count(model) == sum(layer.count_params() for layer in should_train)
assert config.fine_tune_at != "all" or trainable_count(model) == 23_752_650
assert not any(layer.trainable for layer in batchnorm_layers(model))
assert drift["arrays"] == 106 and drift["changed"] == 0
changed = {name: not np.array_equal(kernel, model.get_layer(name).kernel.numpy())
           for name, kernel in kernels_before.items()}
assert changed[first_tuned] and changed["conv1_conv"] == (config.fine_tune_at == "all")
assert learning_rate <= config.lr_finetune * (1 + 1e-6)
assert config.lr_schedule != "constant" or math.isclose(learning_rate, config.lr_finetune,
                                                        rel_tol=1e-6)
head_epochs, tuned_epochs = (full_history["phase"].count(p) for p in ("head", "finetune"))
phase2_starts = config.epochs_head + 1  # phase 2's epochs are numbered after phase 1's
assert full_history["epoch"] == [*range(1, head_epochs + 1),
                                 *range(phase2_starts, phase2_starts + tuned_epochs)]
assert (head_epochs, tuned_epochs) == (config.epochs_head, config.epochs_finetune) or (
    config.early_stopping_patience > 0 and head_epochs > 0 and tuned_epochs > 0)
assert all(np.isfinite(full_history["loss"]))

# %% [markdown]
# ## 5. Curves across both phases
#
# One record for all epochs; the dotted line marks where fine-tuning starts. With ImageNet weights
# you would typically see the validation accuracy step up after the boundary, then flatten; if the
# validation loss climbs while the training loss keeps falling, fine-tuning is overfitting (fewer
# epochs help, or early stopping: `early_stopping_patience`, which applies to phase 1 as well, so
# setting it trains phase 1 again instead of reusing notebook 03's). The quick profile has one
# epoch per phase: two points, no trend.

# %%
plot_history(full_history)
plt.show()

# %% [markdown]
# ## 6. Phase 1 against phase 2 on the test set

# %%
phase2_evaluation = evaluate(model, x_test, y_test, class_names)
comparison = pd.DataFrame({"after phase 1 (head)": phase1_evaluation.per_class_accuracy,
                           "after phase 2 (fine-tuned)": phase2_evaluation.per_class_accuracy})
comparison.loc["ALL (test accuracy)"] = [phase1_evaluation.accuracy, phase2_evaluation.accuracy]
comparison.round(3)

# %%
# extra code – check that the cells above did what the text says
assert 0.0 <= phase2_evaluation.accuracy <= 1.0
assert comparison.shape == (11, 2)

# %%
show_expectations()

# %% [markdown]
# The quick-profile numbers above (random weights, 270 training images, 1 + 1 epochs) are **not**
# meaningful accuracies; any difference between the columns is noise. They only prove that the
# pipeline runs.

# %% [markdown]
# ### Two controls for this comparison (run in notebook 06)
#
# The table says how much phase 2 added to phase 1. Two more runs say *why*, and notebook 06 runs
# both next to the seed recipe:
#
# - **Fine-tune less** (`fine_tune_at="conv5"`, CLI `--fine-tune-at conv5`): phase 2 unfreezes
#   only ResNet50's last stage (TensorFlow's tutorial, `fine_tune_at`, and handson-ml3 freeze the
#   first two thirds and the first 40 % of their networks' layers). If it comes close to the
#   full fine-tuning, the gain comes mostly from adapting the most ImageNet-specific features;
#   the early, generic filters could stay as they are (and phase 2 gets cheaper).
# - **No transfer at all** (`recipe="scratch"`, CLI `--recipe scratch`): the same network from
#   random weights, every layer (BatchNorm included) trained from the first epoch at phase 1's
#   learning rate for the same total epochs — d2l's `scratch_net`. The gap to the fine-tuned model is
#   what ImageNet pretraining buys on CIFAR-10 at 32×32. (It runs as two fits, like the recipe, so
#   Adam's running averages start afresh after `epochs_head` epochs, as they do at phase 2.)

# %% [markdown]
# ## 7. The result, kept for notebook 05
#
# The pipeline saved the fine-tuned model in the run folder as soon as phase 2 finished (without
# optimizer state), next to the phase-1 model and the training log; notebooks 05 and 07 load it.

# %%
print(f"{pipeline.store.model_file('finetune')}: "
      f"{pipeline.store.model_file('finetune').stat().st_size / 2**20:.0f} MiB")

# %%
# extra code – check that the cells above did what the text says
assert pipeline.store.model_file("finetune").exists() and "finetune" in pipeline.store.finished

# %% [markdown]
# ## Exercises
#
# **1. A higher learning rate.** Fine-tune with `lr_finetune=1e-3` (phase 1's rate) instead of
# 1e-5. What happens to the curves and the validation accuracy? (Do this with ImageNet weights and
# several epochs; on the quick profile you will only see noise.)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# from dataclasses import replace  # a copy of config with one setting changed
#
# hot = replace(config, lr_finetune=1e-3)
# model_hot = Pipeline(config).run("head")  # a fresh copy of the phase-1 model
# train_ds, val_ds = pipeline.datasets()
# history_hot = fine_tune(model_hot, train_ds, val_ds, hot)
# print("validation accuracy per epoch at 1e-3:", history_hot.history["val_accuracy"])
# print(f"validation accuracy per epoch at {config.lr_finetune:g}:",
#       [accuracy for accuracy, phase in zip(full_history["val_accuracy"], full_history["phase"])
#        if phase == "finetune"])
# ```
#
# `replace` keeps every other setting of `config`, including any you changed in code
# (`load_config(...)` would start again from the profile and the environment).
# `Pipeline(config).run("head")` loads the phase-1 model from the run folder again (a fresh
# copy), and `fine_tune` trains it at the new rate outside the run folder, which keeps the 1e-5
# model for notebook 05. Compare the two rates on the validation set: choosing a setting by its
# test accuracy would tune it to the test set, which stays for the final check of the model you
# pick (section 6). With a large learning rate the first
# fine-tuning steps make big changes to the pretrained weights: watch for a validation accuracy
# that drops right after the boundary and recovers only partly — a sign that the pretrained
# features are being destroyed instead of refined.
# </details>

# %% [markdown]
# **2. Unfreeze without compiling again.** On a tiny model, train once with the first layer
# frozen, then unfreeze it *without* calling `compile` and train again. Does the first layer
# change?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
# x, y = np.random.rand(16, 4), np.random.rand(16, 2)
# tiny.layers[0].trainable = False
# tiny.compile(optimizer="adam", loss="mse")
# tiny.fit(x, y, epochs=1, verbose=0)
# tiny.layers[0].trainable = True  # unfrozen, but not compiled again
# kernel = tiny.layers[0].kernel.numpy().copy()
# tiny.fit(x, y, epochs=1, verbose=0)
# print("changed:", not np.array_equal(kernel, tiny.layers[0].kernel.numpy()))  # False
# tiny.compile(optimizer="adam", loss="mse")  # now compile again
# tiny.fit(x, y, epochs=1, verbose=0)
# print("changed:", not np.array_equal(kernel, tiny.layers[0].kernel.numpy()))  # True
# ```
#
# The training step was built for the weights that were trainable at the first `fit`; only
# compiling again makes Keras build a new one (checked on Keras 3.4, 3.10 and 3.15; the course's
# tests run this solution).
# </details>

# %% [markdown]
# **3. The control experiment.** Show that the statistics *do* move in our model when BatchNorm
# is left trainable. Why is this check worth having next to the assertion in section 4?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# control = Pipeline(config).run("head")  # a fresh copy of the phase-1 model
# for layer in control.layers:
#     layer.trainable = True  # BatchNorm included
# control.compile(optimizer=keras.optimizers.Adam(1e-5), loss="categorical_crossentropy",
#                 run_eagerly=True)
# before = moving_statistics(control)
# control.fit(make_dataset(x_train[:32], y_train[:32], 32), epochs=1, verbose=0, shuffle=False)
# print(statistics_drift(before, moving_statistics(control)))  # changed: 106
# ```
#
# An assertion that "nothing changed" also passes when the check itself is broken (for example if
# it looked at the wrong layers). The control shows the same check *can* detect movement, so the
# `changed == 0` in section 4 really means BatchNorm stayed in inference mode.
# </details>
