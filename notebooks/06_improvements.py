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
# # 06 · Beyond the seed: what the seed's future work buys
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/06_improvements.ipynb)
# [![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/06_improvements.ipynb)
#
# The original study ended with a list of future work: data augmentation, learning-rate schedules,
# longer training. This notebook turns each item into one setting of the course package, explains
# why it might help, and lets you *measure* it against the seed recipe, one change at a time. The
# default plan measures augmentation, the cosine schedule, label smoothing and two controls; input
# upsampling (`size_64`, `size_128`), the plateau schedule (`plateau`) and longer training with
# early stopping (`longer_early_stop`) are opt-in, to keep the default plan within one free Colab
# session: add their names to `CHOSEN` (section 7) to measure them too.
#
# **What you will learn**
#
# - why augmentation, learning-rate schedules, label smoothing, longer training with early stopping
#   and input upsampling can each help a fine-tuned ResNet50, and what each one costs;
# - how the package implements them: Keras preprocessing layers *inside* the model, a cosine
#   schedule with warm-up or `ReduceLROnPlateau`, a smoothed cross-entropy, per-batch resizing;
# - why ResNet50's last stage sees a 1×1 map at 32×32, and what upsampling changes;
# - two controls: fine-tuning only the last stage(s), and training the same network from scratch;
# - how to run a fair comparison (same data, same seed, one change per run) that fits your
#   session, and read it honestly.
#
# **Time**
#
# - Quick profile (CI, workshops): 2–2.5 minutes on a 2-core CPU (two runs under nbval): three tiny
#   training runs, most of their time spent building the training graphs.
# - Default plan in the seed profile (`PLAN_SIZE = "session"`: six variants, a subset of 10,000
#   images split into 9,000 for training and 1,000 for validation, 5 + 5 epochs each): about 6.5
#   baseline runs of compute. On a 2-core CPU a baseline run takes roughly 7 minutes (scaled from
#   the README's full-size seed runs on 2-core test VMs: 439–471 images/s in phase 1, 136–146 in
#   phase 2), so the plan takes roughly 45–50 minutes there. The notebook prints its own estimate
#   after the first variant's first epochs.
# - `PLAN_SIZE = "full"`: every variant is a complete seed study, 67–73 minutes each on those
#   2-core VMs (measured for the baseline), more for the upsampled ones (4× the convolution work at 64×64,
#   16× at 128×128): a job for a GPU runtime.
# - Colab or Kaggle GPU: not measured by us yet — the estimate and the results table print it on
#   your runtime.

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
import dataclasses
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cifar_helpers import load_config
from cifar_helpers.config import describe
from cifar_helpers.lessons.course import (environment_report, show_expectations, show_source,
                                          timed)
from cifar_helpers.compare import comparison_rows
from cifar_helpers.data import prepare_data
from cifar_helpers.lessons.plan import (DEFAULT_PLAN, PlanProgress, describe_plan,
                                        finished_metrics, plan_base, variant_config)
from cifar_helpers.model import augmentation, build_model, set_trainable_for, unfreeze_base
from cifar_helpers.study import run_study
from cifar_helpers.training import compile_model, learning_rate_for, standard_callbacks

environment_report()
config = load_config()
SETTINGS_USED = ("profile", "data", "weights", "train_limit", "test_limit", "val_fraction",
                 "seed", "batch_size", "epochs_head", "lr_head", "epochs_finetune", "lr_finetune",
                 "augment", "lr_schedule", "label_smoothing", "early_stopping_patience",
                 "image_size", "fine_tune_at", "recipe", "out")
print(describe(config, SETTINGS_USED))  # print(describe(config)) lists all settings

# %% [markdown]
# These are the run settings. `load_config()` starts from a profile (`seed`, faithful to the
# original study, unless the environment variable `CIFAR_PROFILE` says otherwise; CI sets
# `CIFAR_PROFILE=quick`) and lets you override any setting, in code —
# `config = load_config(epochs_finetune=5)` — or with an environment variable such as
# `CIFAR_EPOCHS_FINETUNE=5`. The settings this notebook is about are `augment`, `lr_schedule`,
# `label_smoothing`, `early_stopping_patience` and `image_size`, plus the two controls
# `fine_tune_at` and `recipe`; all of them are off (or 32, `all`, `transfer`) in the seed recipe.
# The cell prints only the settings this notebook uses; `print(describe(config))`
# lists all of them.

# %% [markdown]
# ## 1. Data augmentation
#
# **Why.** In phase 2 about 23.8 million weights learn from 45,000 images: enough capacity to
# memorise the training set, which shows up as a training accuracy that keeps rising while the
# validation accuracy stalls. Augmentation shows the network a slightly different version of each
# image in every epoch — mirrored, shifted by a few pixels. A cat moved three pixels to the left is
# still a cat, so the label stays right, but memorising exact pixels no longer works. The recipe
# (random crops after padding by 4 pixels, plus horizontal flips) is the standard one for CIFAR-10
# since the ResNet paper (He et al., 2016).
#
# **How.** Two Keras preprocessing layers, grouped in a small model named `augment`:

# %%
show_source(augmentation)

# %% [markdown]
# `RandomTranslation` by up to 12.5% (4 of 32 pixels) with `fill_mode="constant"` is close to
# padding plus a random crop (the extreme ±4-pixel shifts are rarer): the uncovered border becomes
# black. `interpolation="nearest"` makes every shift a whole number of pixels: the default
# (bilinear) would shift by fractions of a pixel and average neighbouring pixels, blurring images
# that have only 32×32 pixels to begin with. No rotation either, for the same reason. Only
# horizontal flips: an upside-down ship is not a CIFAR-10 image. The layers sit *inside* the model,
# right after the input, so they run on every batch during `fit` — and do nothing in `evaluate` and
# `predict`, which call them with `training=False`. Here is one training image and what the
# `augment` layer makes of it in four training steps:

# %%
data, (x_train, y_train), (x_val, y_val), (x_test, y_test) = prepare_data(config)
augmented_model = build_model(None, augment=True)  # the architecture only: random weights suffice
augment_layer = augmented_model.get_layer("augment")

image = x_train[:1].astype("float32")
keras.utils.set_random_seed(config.seed)
versions = [image] + [np.asarray(augment_layer(image, training=True)) for _ in range(4)]
fig, axes = plt.subplots(1, len(versions), figsize=(2 * len(versions), 2.3))
for ax, version, title in zip(axes, versions, ["original"] + [f"training step {i}" for i in range(1, 5)]):
    ax.imshow(version[0].astype("uint8"))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# The check that matters: with `training=False` (evaluation, prediction) the layer returns the
# images unchanged, so test accuracy is measured on the real test images.

# %%
evaluation_batch = x_test[:8].astype("float32")
assert np.array_equal(np.asarray(augment_layer(evaluation_batch, training=False)), evaluation_batch)
assert not np.array_equal(np.asarray(augment_layer(evaluation_batch, training=True)), evaluation_batch)

# %% [markdown]
# **Cost.** Augmentation itself is cheap, but it usually needs more epochs to pay off (the task got
# harder), and it rules out the `fast` profile's trick of computing the frozen base's features once
# for phase 1 (`feature_cache`): the images change every epoch, so the features do too.

# %% [markdown]
# ## 2. Learning-rate schedules
#
# **Why.** The seed trains each phase at one constant rate (1e-3 for the head, 1e-5 for
# fine-tuning). Two common refinements:
#
# - **Cosine decay with warm-up.** In the first steps Adam's running averages of the gradients are
#   still poor estimates, and phase 2 starts by pushing gradients into pretrained weights; a short
#   *warm-up* from 0 to the phase's rate avoids large early steps. Afterwards the rate falls along a
#   half cosine to zero: larger steps while far from a good solution, small ones at the end to settle.
# - **Reduce on plateau.** Instead of a fixed plan, watch the validation loss and divide the rate
#   by 5 when it has not improved for 2 epochs — the rate drops when progress stops.
#
# **How.** `learning_rate_for` returns, for one phase, either a number or a Keras schedule, plus any
# callbacks the rule needs; both phases use the same rule, each with its own peak rate:

# %%
show_source(learning_rate_for)

# %% [markdown]
# To see the cosine schedule's shape, here it is for the seed's phase 2: 10 epochs over 45,000
# training images in batches of 32, i.e. 1,407 steps per epoch, peak 1e-5 (`lr_finetune`).

# %%
seed_steps_per_epoch = int(np.ceil(45_000 / 32))
cosine_config = dataclasses.replace(config, lr_schedule="cosine")
schedule, cosine_callbacks = learning_rate_for(cosine_config, config.lr_finetune, epochs=10,
                                               steps_per_epoch=seed_steps_per_epoch)
steps = np.linspace(0, 10 * seed_steps_per_epoch, 201).astype(int)
rates = np.array([float(schedule(int(step))) for step in steps])

plt.figure(figsize=(6, 3))
plt.plot(steps / seed_steps_per_epoch, rates)
plt.axhline(config.lr_finetune, color="gray", linestyle=":", label="constant (seed)")
plt.xlabel("epoch of phase 2")
plt.ylabel("learning rate")
plt.title("Cosine decay after a one-epoch warm-up")
plt.legend()
plt.show()
print(f"step 0: {rates[0]:.1e}   peak: {rates.max():.1e} at epoch "
      f"{steps[rates.argmax()] / seed_steps_per_epoch:.1f}   last step: {rates[-1]:.1e}")

# %%
# extra code – check that the cells above did what the text says
assert cosine_callbacks == []  # the schedule lives in the optimizer, no callback needed
assert float(schedule(0)) == 0.0  # warm-up starts at zero ...
assert np.isclose(float(schedule(seed_steps_per_epoch)), config.lr_finetune)  # ... peaks after one epoch
assert np.isclose(rates.max(), config.lr_finetune) and rates[-1] < 1e-3 * config.lr_finetune

# %% [markdown]
# The plateau rule keeps the constant rate and adds a `ReduceLROnPlateau` callback:

# %%
plateau_rate, plateau_callbacks = learning_rate_for(
    dataclasses.replace(config, lr_schedule="plateau"), config.lr_finetune, 10, seed_steps_per_epoch)
for callback in plateau_callbacks:
    print(f"{type(callback).__name__}: monitor={callback.monitor}, factor={callback.factor}, "
          f"patience={callback.patience}, min_lr={callback.min_lr:.0e}; starting rate {plateau_rate:.0e}")

# %% [markdown]
# ## 3. Label smoothing
#
# **Why.** A one-hot label asks the network for probability exactly 1 on the right class. Softmax
# can only approach that by making its logits ever larger, which rewards over-confidence.
# Label smoothing (introduced for Inception-v3 by Szegedy et al., 2016) replaces the target with a
# softened one: with smoothing ε = 0.1 and 10 classes the right class gets 1 − ε + ε/10 = 0.91 and
# every other class 0.01. The network is no longer pushed towards infinite confidence.
#
# **How.** One argument of the loss in `compile_model`:

# %%
show_source(compile_model)

# %% [markdown]
# This needs the one-hot labels and `CategoricalCrossentropy` that the seed uses: Keras'
# `SparseCategoricalCrossentropy` (integer labels) has no `label_smoothing` option. The effect on a
# prediction that is 99.9% sure of the right class:

# %%
one_hot = np.eye(10, dtype="float32")[[3]]
confident = np.full((1, 10), 1e-4, dtype="float32")
confident[0, 3] = 1 - 9e-4
plain_loss = float(keras.losses.CategoricalCrossentropy()(one_hot, confident))
smoothed_loss = float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, confident))
print(f"loss without smoothing: {plain_loss:.4f}   with smoothing 0.1: {smoothed_loss:.4f}")

# %%
# extra code – check that the cells above did what the text says
assert plain_loss < 0.01  # plain cross-entropy: near-certainty is (almost) free ...
assert smoothed_loss > 0.5  # ... with smoothing it is penalised

# %% [markdown]
# ## 4. Longer training, with early stopping
#
# **Why.** Ten epochs of fine-tuning at 1e-5 may stop before the validation accuracy has levelled
# off. But training longer also gives the network more time to overfit. Early stopping makes
# "longer" safe: it watches the validation loss, stops after `early_stopping_patience` epochs without
# improvement, and restores the weights of the best epoch (`restore_best_weights=True`).
#
# **How.** `standard_callbacks` builds the callbacks of every study run; early stopping is added when
# `early_stopping_patience` is above 0. The pipeline builds a new list for each phase, so early
# stopping starts counting afresh in each (reused for a second `fit`, Keras 3.4's `EarlyStopping`
# would keep the best loss of the first).

# %%
show_source(standard_callbacks)

# %% [markdown]
# ## 5. Input upsampling
#
# **Why.** ResNet50 was trained on 224×224 images and halves the resolution five times (the stride-2
# first convolution, the max-pooling, and the first block of stages 3, 4 and 5): 224×224 becomes a
# 7×7 map of 2,048 features. A 32×32 CIFAR image becomes **1×1**: the last stage's 3×3 convolutions
# see a single position surrounded by zero padding, and CIFAR objects span far fewer pixels than
# the ImageNet objects the filters learned from. Enlarging the input brings the
# image closer to the scale the pretrained filters know.
#
# Here are the conv5 maps of real models (random weights: only the shapes matter):

# %%
conv5_sizes = {}
for size in (32, 64, 128):
    probe = build_model(None, image_size=size)
    conv5_sizes[size] = tuple(probe.get_layer("conv5_block3_out").output.shape[1:])
    print(f"input {size:>3}×{size:<3} -> conv5 output {conv5_sizes[size][0]}×{conv5_sizes[size][1]}"
          f"×{conv5_sizes[size][2]}   (model input stays {probe.input.shape[1:3]})")
del probe

# %%
# extra code – check that the cells above did what the text says
assert conv5_sizes[32][:2] == (1, 1)  # at CIFAR's own size the last stage sees one position
assert conv5_sizes[64][:2] == (2, 2)
assert conv5_sizes[128][:2] == (4, 4)

# %% [markdown]
# **How.** Not by resizing the dataset. Held as float32, the 45,000 training images would need:

# %%
for size in (32, 64, 128, 224):
    print(f"{size:>3}×{size:<3}: {45_000 * size * size * 3 * 4 / 2**30:5.1f} GiB")

# %% [markdown]
# At 224×224 that is far more than a standard Colab VM's RAM: resizing everything up front crashes it.
# Instead `build_model(..., image_size=64)` puts a `Resizing` layer into the model: the data stays
# 32×32 in memory and in the `tf.data` pipeline, each batch is enlarged on its way into ResNet50,
# and the saved model still takes raw 32×32 images. (Augmentation, if on, comes first, on the
# small images.)

# %%
show_source(build_model)

# %% [markdown]
# **Cost.** Convolution work grows with the number of pixels: about 4× at 64×64 and 16× at
# 128×128 per image, and activation memory grows the same way (a smaller `batch_size` may be needed
# on a small GPU).

# %% [markdown]
# ## 6. Two controls: fine-tune less, or do not transfer at all
#
# Two questions every transfer-learning study should answer, each a setting of the package:
#
# - **How much of the base needs fine-tuning?** `fine_tune_at="conv5"` unfreezes only
#   ResNet50's last stage in phase 2 (TensorFlow's transfer-learning tutorial names this setting
#   `fine_tune_at` and keeps the first two thirds of its network frozen; handson-ml3 the first
#   40 %). The early stages
#   detect edges and textures that suit any image; the last stage holds the most
#   ImageNet-specific features. If the `fine_tune_conv5` row comes close to the baseline, most of
#   the gain of phase 2 comes from adapting the last stage.
# - **What does pretraining buy?** `recipe="scratch"` is the control d2l calls `scratch_net`:
#   random weights, and every layer — BatchNorm included, normalising with batch statistics —
#   trains from the first epoch at phase 1's learning rate, for the same total epochs. (Not the
#   same as `weights="none"`, which runs the transfer recipe on random weights: a frozen random
#   base, then 1e-5.) The gap between `baseline` and `scratch` is what ImageNet contributes.
#
# Both are one line of the freezing rules:

# %%
show_source(unfreeze_base)

# %%
show_source(set_trainable_for)

# %% [markdown]
# ## 7. The plan: which variants, on how much data
#
# Each variant is a complete study (`run_study`, the function behind
# `python -m cifar_helpers train`): same data split, same seed, same epochs, with exactly one
# setting changed from the baseline (two exceptions: `longer_early_stop`, see below, and
# `scratch`, which also sets `weights="none"`, since training from scratch means no pretrained
# weights). Every full seed-profile study is 10 + 10 epochs on 45,000 images: 67–73 minutes of
# training each on a 2-core CPU (the README's baseline runs; GPUs not measured yet). So the
# default plan is sized for **one free Colab session**:
#
# - `PLAN_SIZE = "session"`: `train_limit=10000` and 5 + 5 epochs per variant, and the six
#   variants of `DEFAULT_PLAN`. `train_limit` counts the images *before* the validation split, so
#   each run trains on 9,000 images and validates on 1,000. The other variants (64×64 and
#   128×128 input, twice the fine-tuning epochs, the plateau schedule, fine-tuning from conv4) are
#   listed but opt-in: add their names to `CHOSEN`.
# - `PLAN_SIZE = "full"`: every variant as the complete seed study (a long GPU job).
# - The quick profile (CI) shrinks the runs to 100 images (90 for training, 10 for validation)
#   and 1 + 1 epochs, and runs three of the variants (the baseline and the two controls): only
#   the mechanics.
#
# `longer_early_stop` changes two settings: it doubles `epochs_finetune` and sets
# `early_stopping_patience`. Early stopping is a setting of the whole training, not of phase 2
# alone: it also watches phase 1, which may then stop early and always ends with the weights of
# its best epoch. So this variant's phase 1 can differ from the baseline's (the run folder never
# reuses a phase 1 trained without early stopping for it), and part of any difference from the
# baseline can come from phase 1.
#
# The plan prints first, each variant's cost in baseline runs (from its pixels and epochs). After
# the first epoch of each phase of the first variant, the notebook prints the measured time per
# epoch and the estimated time of the whole plan, so you can stop early and shorten `CHOSEN`.

# %%
PLAN_SIZE = "shrunk" if config.profile == "quick" else "session"  # or "full"
CHOSEN = DEFAULT_PLAN  # e.g. DEFAULT_PLAN + ("size_64",) to add an opt-in variant
if PLAN_SIZE == "shrunk":  # CI: three tiny runs show the mechanics of the loop and the table
    CHOSEN = ("baseline", "fine_tune_conv5", "scratch")

base_config = plan_base(config, PLAN_SIZE)
improvements = Path(config.out) / "improvements"
plan = {name: variant_config(base_config, name, improvements) for name in CHOSEN}
print(describe_plan(base_config, CHOSEN))

# %% [markdown]
# Each run writes its own folder under `config.out`/`improvements` (model, training log, curves,
# `metrics.json`). A variant whose folder already holds a finished run with the same settings
# (those that shape what it computes; not where its files lie) is loaded instead of trained again
# (handy after a disconnect; `run_study` itself resumes an interrupted run from its last finished
# epoch), unless its inputs differ from what they are now: a run made while `auto` fell back to
# the sample or to random weights is trained again once the real data and weights are there (and
# a run made with them is shown, not replaced, where they are missing).

# %%
QUIET = PLAN_SIZE == "shrunk"
log = (lambda message: None) if QUIET else print
progress = PlanProgress(plan)
results = {}
for name, run_config in plan.items():
    results[name] = finished_metrics(run_config, log)
    if results[name] is not None:
        print(f"{name}: loaded the finished run in {run_config.out}")
        continue
    keras.backend.clear_session()  # drop the previous variant's model and graphs
    with timed(name):
        results[name] = run_study(run_config, log=log, verbose=0 if QUIET else 2,
                                  callbacks=[progress] if name == CHOSEN[0] else [])

# %% [markdown]
# Every variant must have finished with finite losses in every epoch of both phases:

# %%
# extra code – check that the cells above did what the text says
assert set(results) == set(CHOSEN)
for name, metrics in results.items():
    assert (improvements / name / "metrics.json").exists(), name
    assert 0.0 <= metrics["test_accuracy"] <= 1.0, name
    assert all(np.isfinite(metrics["history"]["loss"] + metrics["history"]["val_loss"])), name
    assert set(metrics["phases"]) == {"head", "finetune"}, name
assert set(progress.per_epoch) <= {"head", "finetune"}

# %% [markdown]
# ## 8. The results table
#
# `comparison_rows` makes the table (the same function as `python -m cifar_helpers compare`): test
# and best validation accuracy, epochs, seconds per epoch of each phase, total seconds, and the
# settings in which the runs differ. Seconds per epoch are wall-clock time of each phase divided by
# its epochs, so they include building the training graph and saving checkpoints: with one short
# epoch (quick profile) that overhead is most of the number. In the `fast` profile phase 1 runs
# on cached features except with augmentation or the scratch control, so compare their phase-1
# times with care there.

# %%
table = pd.DataFrame(comparison_rows(results)).set_index("run")
if "baseline" in table.index:
    table["vs baseline"] = table["test accuracy"] - table.loc["baseline", "test accuracy"]
table.round(3)

# %%
# extra code – check that the cells above did what the text says
assert list(table.index) == list(CHOSEN)
assert table["test accuracy"].between(0, 1).all() and table["best val accuracy"].between(0, 1).all()
for column in ("phase 1 s/epoch", "phase 2 s/epoch"):  # NaN: resumed after its last epoch
    assert ((table[column] > 0) | table[column].isna()).all(), column

# %%
# extra code – the table as a bar chart
positions = np.arange(len(table))
plt.figure(figsize=(8, 3.5))
plt.bar(positions - 0.2, table["test accuracy"], width=0.4, label="test accuracy")
plt.bar(positions + 0.2, table["best val accuracy"], width=0.4, label="best validation accuracy")
if "baseline" in table.index:
    plt.axhline(table.loc["baseline", "test accuracy"], color="gray", linestyle=":",
                label="baseline test accuracy")
plt.xticks(positions, table.index, rotation=30, ha="right")
plt.ylabel("accuracy")
plt.ylim(0, 1)
plt.title(f"One change at a time ({config.profile} profile, plan {PLAN_SIZE}"
          + (": numbers are noise)" if QUIET else ")"))
plt.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# **Reading the table.** Each row is a single run. Small differences between rows can be
# run-to-run noise; before trusting a gain, repeat the variant and the baseline with another
# `seed`, each in a folder of its own:
#
# ```python
# for name in ("baseline", "augment"):  # both are in the session plan
#     rerun = dataclasses.replace(plan[name], seed=1, out=str(improvements / f"{name}-seed1"))
#     print(name, "seed 1:", run_study(rerun)["test_accuracy"])
# ```
#
# Not in the variant's own folder: a run folder keeps one run, so a run with other
# settings there deletes the seed-42 run's models and training-log rows. And a new seed changes
# more than the initial weights: it also draws another `train_limit` subset of the training
# images (and, with `test_limit`, of the test images), another validation split, another batch
# order and other augmentations, so the repeat measures the noise of the whole set-up. Weigh each
# gain against its cost in the seconds columns: upsampling, for example, multiplies the training
# time.

# %%
show_expectations()

# %% [markdown]
# The published networks ran at their ImageNet input size; the seed recipe runs ResNet50 at
# 32×32. The opt-in `size_64` and `size_128` variants measure on your runtime how much of that gap
# upsampling closes, and at what cost.
#
# The quick-profile numbers above (random weights, 90 training images, 1 + 1 epochs) are **not**
# meaningful accuracies: expect values near guessing (10%) that jump around from variant to
# variant. They only prove that every option trains, evaluates and reports.
#
# ### The same options on the command line
#
# Every setting used here is also a flag of the course CLI, for example:
#
# ```bash
# python -m cifar_helpers train --augment --image-size 64 --lr-schedule cosine --label-smoothing 0.1 --early-stopping-patience 3
# python -m cifar_helpers train --fine-tune-at conv5 --out runs/conv5-only
# python -m cifar_helpers train --recipe scratch --out runs/scratch
# ```
#
# and the same table for runs made on the command line (or for the folders of this notebook):
#
# ```bash
# python -m cifar_helpers compare runs/seed runs/conv5-only runs/scratch
# ```

# %% [markdown]
# ## Exercises
#
# **1. Combine what helped.** Take the variants that beat the baseline in your table and run
# them together in one study: the baseline with all their changes (`VARIANTS` in
# `cifar_helpers.lessons.plan` holds each variant's change). Is the gain of the combination the
# sum of the single gains?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# from cifar_helpers.lessons.plan import VARIANTS
#
# gains = table["vs baseline"].drop("baseline").sort_values()
# winners = [name for name, gain in gains.items() if gain > 0 and name != "scratch"]
# changes = {}
# for name in winners:  # smallest gain first: where two set the same option, the larger gain wins
#     changes.update(VARIANTS[name](base_config))
# print(f"combining {winners}: {changes}")
# combined_config = dataclasses.replace(base_config, **changes, out=str(improvements / "combined"))
# with timed("combined"):
#     combined = run_study(combined_config, log=print, verbose=2)
# print(f"combination: {combined['test_accuracy'] - table.loc['baseline', 'test accuracy']:+.3f}, "
#       f"sum of the single gains: {gains[winners].sum():+.3f}")
# ```
#
# `scratch` is left out even if it wins: it is a control that throws away the pretrained weights,
# not an option to add. Two variants that set the same option (`cosine` and `plateau` both set
# `lr_schedule`) cannot both be kept; the solution keeps the one with the larger gain. With no
# winner at all, `changes` is empty and the "combination" repeats the baseline (same seed, same
# data: expect nearly the same accuracy).
#
# The combination's gain is usually less than the sum: options that fight the same problem
# overlap (augmentation and label smoothing both fight overfitting, so whichever comes second has
# less left to fix), and augmentation often needs more epochs than the plan's 5 + 5 to pay off.
# Only runs with ImageNet weights and enough data answer this; in the quick profile every
# difference is noise.
# </details>

# %% [markdown]
# **2. How long is the warm-up in a short run?** The quick runs all use a constant rate (none of
# the baseline and the two controls uses a schedule), and the session plan's runs are far shorter
# than the seed's. Call `learning_rate_for` with `cosine_config` for a phase 2 the size of the
# quick runs' (1 epoch of 3 steps: 90 images in batches of 32) and of the session plan's (5 epochs
# of 282 steps: 9,000 images). Where does each schedule reach its peak, and which line of the
# function decides it?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# for epochs, steps in ((1, 3), (5, 282)):
#     short_schedule, _ = learning_rate_for(cosine_config, config.lr_finetune, epochs, steps)
#     short_rates = [float(short_schedule(step)) for step in range(epochs * steps + 1)]
#     print(f"{epochs} x {steps} steps: first rates {[f'{r:.1e}' for r in short_rates[:4]]}, "
#           f"peak at step {int(np.argmax(short_rates))}")
# ```
#
# `warmup = min(steps_per_epoch, total // 10)`: the warm-up lasts one epoch, but at most a tenth
# of the phase. With 3 steps in total a tenth is 0 steps: no warm-up at all, the schedule starts
# at the peak (1.0e-05) and decays to zero within the 3 steps. In the session plan's phase 2
# (1,410 steps) the cap gives 141 steps, half an epoch: the rate rises from 0 to the peak at step
# 141, then decays. The cap keeps short phases from being spent mostly warming up.
# </details>

# %% [markdown]
# **3. Measure the price of resolution.** Time one epoch of phase 2 (all but BatchNorm trainable)
# on the first 2,000 training images, at 32×32 and at 64×64, on your runtime. Is the ratio close
# to the 4× more pixels? (All 45,000 training images would take about 5 minutes per epoch at
# 32×32 on a 2-core CPU, at the 136–146 images/s of phase 2 in the README's measured seed runs,
# and roughly four times that at 64×64: nearly an hour for the four epochs the solution trains.
# With 2,000 images it is a few minutes there.)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# from cifar_helpers.data import make_dataset
# from cifar_helpers.model import unfreeze_base
#
# train_ds = make_dataset(x_train[:2000], y_train[:2000], config.batch_size, shuffle=True,
#                         seed=config.seed)
# for size in (32, 64):
#     model = build_model(None, image_size=size)
#     unfreeze_base(model)
#     compile_model(model, config.lr_finetune)
#     model.fit(train_ds, epochs=1, verbose=0)  # the first epoch also builds the graph
#     with timed(f"one epoch at {size}x{size}"):
#         model.fit(train_ds, epochs=1, verbose=0)
# ```
#
# Timing the *second* epoch leaves out the graph building. The ratio depends on the hardware: a
# GPU that small 32×32 batches do not keep busy can show less than the 4× of the pixel count.
# </details>
