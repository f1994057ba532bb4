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
# # 03 · Head training: a new classifier on a frozen ResNet50
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/03_head_training.ipynb)
# [![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/03_head_training.ipynb)
#
# **What you will learn**
#
# - why transfer learning starts by *freezing* the pretrained ResNet50 and training only a
#   small new head;
# - how freezing works in Keras (`layer.trainable = False`), and why the model is compiled after it;
# - how to check what will actually train: parameter counts and per-layer `trainable` flags;
# - how to read the phase-1 training curves, and how to save the result for notebook 04.
#
# **Time**
#
# - Quick profile (CI, workshops): 15–25 s on a 2-core CPU (measured under nbval; the range is
#   run-to-run noise).
# - Full seed profile (all 45,000 training images, 10 epochs): phase 1 took 16–17 minutes on
#   2-core CPU test VMs (956–1,026 s, measured: README *Speed*), plus the one-off downloads of
#   CIFAR-10 and of the ImageNet weights.
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
import keras
import matplotlib.pyplot as plt
import numpy as np

from cifar_helpers import load_config
from cifar_helpers.config import describe
from cifar_helpers.lessons.course import (environment_report, show_expectations, show_source,
                                          timed)
from cifar_helpers.evaluation import evaluate
from cifar_helpers.model import (base_layers, build_model, freeze_base, head_layers,
                                 trainable_count)
from cifar_helpers.pipeline import Pipeline
from cifar_helpers.plots import plot_history
from cifar_helpers.training import compile_model, train_head

environment_report()
config = load_config()
SETTINGS_USED = ("profile", "data", "weights", "train_limit", "test_limit", "val_fraction",
                 "seed", "batch_size", "epochs_head", "lr_head", "out")
print(describe(config, SETTINGS_USED))  # print(describe(config)) lists all settings

# %% [markdown]
# These are the run settings. `load_config()` starts from a profile (`seed`, faithful to the
# original study, unless the environment variable `CIFAR_PROFILE` says otherwise; CI sets
# `CIFAR_PROFILE=quick`) and lets you override any setting, either in code —
# `config = load_config(epochs_head=3)` — or with an environment variable such as
# `CIFAR_EPOCHS_HEAD=3` (then run the cells from here on again). The phase-1 settings are
# `epochs_head`, `lr_head` and `batch_size`. The cell prints only the settings this notebook uses;
# `print(describe(config))` lists all of them.

# %% [markdown]
# ## 1. The data
#
# Everything this notebook trains goes through one `Pipeline`: the same code the command line
# (`python -m cifar_helpers train`) and the later notebooks use, so a setting means the same
# thing everywhere. Creating it loads CIFAR-10 as the configuration says (notebook 01), keeps
# `train_limit` training and `test_limit` test images (0 keeps all; the kept subsets have the
# class balance of the whole set), splits off a stratified validation set of `val_fraction`, and
# opens the run folder `config.out`: the folder where a run's models, training log, backups and
# results live. The validation set is what we watch during training; the test set is touched only
# once training is finished.

# %%
pipeline = Pipeline(config)
(x_train, y_train), (x_val, y_val) = pipeline.inputs.train, pipeline.inputs.val
x_test, y_test = pipeline.inputs.test
print(f"data: {pipeline.inputs.source}")
print(f"train {x_train.shape}, validation {x_val.shape}, test {x_test.shape}")

# %%
# extra code – check that the cells above did what the text says
assert x_train.dtype == np.uint8 and x_train.shape[1:] == (32, 32, 3)
assert len(x_train) == len(y_train) and len(x_val) == len(y_val) and len(x_test) == len(y_test)
assert set(np.unique(y_train)) == set(range(10))  # every class is present for training

# %% [markdown]
# The arrays become `tf.data` pipelines (`make_dataset`, notebook 02): batches of `batch_size`
# images converted to float32, with one-hot labels (the loss is categorical cross-entropy, as in
# the original study). The training set is reshuffled every epoch, seeded with `config.seed` so a
# run can be repeated. There is no preprocessing here: it is a layer inside the model
# (notebook 02), so the saved model takes raw images.

# %%
train_ds, val_ds = pipeline.datasets()
images, labels = next(iter(train_ds))
print(f"one batch: images {images.shape} {images.dtype}, labels {labels.shape} {labels.dtype}")

# %%
# extra code – check that the cells above did what the text says
assert images.shape[1:] == (32, 32, 3) and images.dtype == "float32"
assert labels.shape[1] == 10 and np.allclose(labels.numpy().sum(axis=1), 1.0)  # one-hot

# %% [markdown]
# ## 2. Pretrained weights: the "transfer" in transfer learning
#
# The point of the course is to *reuse* what ResNet50 learned on ImageNet (1.2 million photos,
# 1,000 classes): its convolution filters already detect edges, textures and object parts, so a
# small head on top of them can learn CIFAR-10 from far fewer examples and epochs than a network
# trained from scratch.
#
# The pipeline has already turned the `weights` setting into what Keras gets (`resolve_weights`):
# `imagenet` (downloaded once, then cached), `none` (random initialisation), a path to a weights
# file, or `auto` (ImageNet if obtainable, otherwise random, with a loud warning).
#
# **Without ImageNet weights this is not transfer learning**: the head then learns on top of
# random features and accuracy is far lower. The quick profile does exactly that on purpose,
# because CI runs offline; it only checks that the code runs.

# %%
weights_used = pipeline.inputs.weights_used
print(f"weights requested: {config.weights!r} -> used: {weights_used}")
if pipeline.inputs.weights is None:
    print("The ResNet50 base starts from RANDOM weights: this run is not transfer learning,\n"
          "and its accuracy says nothing about the method (it only shows the pipeline runs).")

# %% [markdown]
# ## 3. The model
#
# `build_model` makes the architecture of the original study: raw 32×32 images → the ResNet50
# preprocessing layer → ResNet50 without its ImageNet classifier (`include_top=False`) → a new head
# GlobalAveragePooling2D → Dense 128 → Dense 64 → Dense 10 softmax. ResNet50 shrinks its input
# 32-fold, so a 32×32 image leaves the base as a 1×1×2048 feature vector (at ImageNet's 224×224 it
# would be 7×7×2048). Here is the package's code:

# %%
show_source(build_model)

# %% [markdown]
# `pipeline.build_model()` calls it with this configuration's weights and settings (`image_size`,
# `augment`; under the `precision` policy; with the `fast_ops` layers), after fixing the seed so
# that the head's random start is repeatable. `precision` and `fast_ops` are speed options, used
# by the `fast` profile (mixed precision; faster operations that compute the same thing, fused
# Adam among them) and off in the seed profile: they do not change the recipe (README, *Speed*).

# %%
model = pipeline.build_model()
print(f"{len(model.layers)} layers: {len(base_layers(model))} from ResNet50, "
      f"{len(head_layers(model))} in the new head")

# %% [markdown]
# ## 4. Phase 1: freeze the base
#
# Why not train everything at once? The new head starts from random weights, so its first
# gradients are large and essentially noise. If they flowed into the pretrained base, they would
# damage the very features we want to reuse before the head had learned anything. So phase 1
# treats ResNet50 as a fixed feature extractor and trains only the head. It is also much cheaper:
# no gradients are computed for the 23.6 million base weights.
#
# Freezing is one flag per layer. Here is the package's code:

# %%
show_source(freeze_base)

# %%
freeze_base(model)
print(f"total parameters:     {model.count_params():,}")
print(f"trainable parameters: {trainable_count(model):,}")

# %% [markdown]
# `model.summary()` would list all 180 layers; here is a trimmed view of its end: the last
# ResNet50 layers, now frozen, and the head, trainable.

# %%
for layer in model.layers[-8:]:
    print(f"{layer.name:<20} {type(layer).__name__:<24} {layer.count_params():>9,} weights   "
          f"trainable: {layer.trainable}")

# %% [markdown]
# Check what will train before spending time on training: 271,178 trainable weights, all of them
# in the head (Dense 128: 2048×128 + 128; Dense 64: 128×64 + 64; Dense 10: 64×10 + 10), and not a
# single ResNet50 layer. (`trainable_count` counts the variables the optimizer would update.)

# %%
# extra code – check that the cells above did what the text says
assert model.count_params() == 23_858_890
assert trainable_count(model) == 271_178
assert not any(layer.trainable for layer in base_layers(model))
assert all(layer.trainable for layer in head_layers(model))

# %% [markdown]
# ## 5. Compile, then train the head
#
# Compiling chooses what training optimises: Adam at phase 1's learning rate on categorical
# cross-entropy (the labels are one-hot), reporting accuracy. The order matters: compile *after*
# setting `trainable`. Compiling discards any training step built before; the first `fit` after it
# builds a new one for the weights that are trainable then, and later `fit` calls reuse it. So a
# `trainable` change after training has run is ignored until you compile again: notebook 04
# unfreezes the base and therefore compiles again.
#
# Here is phase 1's compile step in plain Keras, with the study's hyperparameters as named values
# (from the configuration, so they follow the profile you chose):

# %%
LEARNING_RATE_HEAD = config.lr_head  # 1e-3: Adam's default, as in the seed study
EPOCHS_HEAD = config.epochs_head  # 10 in the seed profile (1 in the quick profile)

freeze_base(model)
model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE_HEAD),
              loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
print(f"compiled: {type(model.optimizer).__name__} at {LEARNING_RATE_HEAD:g}, "
      f"{trainable_count(model):,} trainable weights; training will run {EPOCHS_HEAD} epoch(s)")

# %% [markdown]
# Training is then one call, `model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS_HEAD)`.
# The package's `train_head` makes exactly these calls — freeze, compile (through `compile_model`,
# which adds the options of notebook 06: label smoothing, a learning-rate schedule, the `fast`
# profile's fused Adam), `fit` — and stops with a clear error if the loss becomes NaN. A test
# (`tests/test_training.py`) checks that the cell above compiles the model exactly as
# `train_head` does, so the two cannot drift apart:

# %%
show_source(train_head)

# %% [markdown]
# `pipeline.run("head")` calls `train_head` on our model with the settings printed above, and
# adds what a long run needs: every epoch is logged to the run folder and backed up; when the
# phase ends the model is saved there for notebook 04. If training is interrupted (the kernel
# restarts, the runtime disconnects), run the notebook again **from the top**: this cell alone
# would fail, because the variables of the cells above are gone. Phase 1 then resumes from its
# last finished epoch, as long as the run folder survived: in Colab a recycled VM loses
# `/content/runs`, so resuming there needs `USE_DRIVE = True` (first code cell). While it trains,
# the run folder is locked: this notebook or 04 run in a second tab on the same folder stops with
# a message naming this run, instead of training the same phase twice.
#
# `restart_from="head"` trains phase 1 again even if the run folder already holds one (this is
# the lesson, after all), and it **throws away every later phase** in that folder: if you ran
# notebook 04 with these settings, running this cell deletes 04's fine-tuned model (`model.keras`)
# and phase 2's rows of the training log, so notebooks 04, 05 and 07 train phase 2 again.

# %%
with timed("phase 1"):
    model = pipeline.run("head", restart_from="head")
history = pipeline.history()

# %%
# extra code – check that the cells above did what the text says
assert pipeline.config == config, (
    "config changed after pipeline = Pipeline(config): run the cells again from there")
trained = len(history["epoch"])  # fewer than epochs_head only if early stopping ended phase 1
assert history["phase"] == ["head"] * trained and history["epoch"] == list(range(1, trained + 1))
assert trained == config.epochs_head or (config.early_stopping_patience > 0 and trained > 0)
assert all(np.isfinite(history["loss"])), "phase 1 produced a NaN or infinite loss"
assert trainable_count(model) == 271_178  # training changed weights, not what is trainable

# %% [markdown]
# ## 6. The training curves
#
# Loss and accuracy per epoch, on the training set (solid) and on the validation set (dashed).
# With ImageNet weights, the validation accuracy climbs quickly and then flattens: the frozen
# features limit how good the head can get, which is why notebook 04 fine-tunes. A validation
# loss that rises while the training loss falls would mean the head starts to overfit. In the
# quick profile there is a single epoch, so each curve is a single point.

# %%
plot_history(history, title="Phase 1: head training")
plt.show()

# %% [markdown]
# ## 7. Test accuracy after phase 1

# %%
phase1_evaluation = evaluate(model, x_test, y_test, pipeline.inputs.class_names)
print(f"phase-1 test accuracy: {phase1_evaluation.accuracy:.3f} on {len(y_test)} test images "
      f"(guessing: 0.100); weights: {weights_used}")

# %%
# extra code – check that the cells above did what the text says
assert 0.0 <= phase1_evaluation.accuracy <= 1.0
assert phase1_evaluation.probabilities.shape == (len(y_test), 10)

# %%
show_expectations()

# %% [markdown]
# The quick-profile number above (random weights, 270 training images, 1 epoch) is **not** a
# meaningful accuracy: expect something near guessing (10%). It only proves the pipeline runs.

# %% [markdown]
# ## 8. The result, kept for notebook 04
#
# The pipeline saved the phase-1 model (without optimizer state) in the run folder `config.out`
# when the phase ended, and recorded the settings it was trained with. Notebook 04 loads it if
# the settings that shape phase 1 match, and otherwise trains phase 1 itself, so each notebook
# also works on its own.

# %%
checkpoint = pipeline.store.model_file("head")
print(f"saved {checkpoint} ({checkpoint.stat().st_size / 2**20:.0f} MiB)")
print(describe(config, tuple(pipeline.store.finished["head"]["settings"])))

# %%
# extra code – check that the cells above did what the text says
assert checkpoint.exists() and "head" in pipeline.store.finished

# %% [markdown]
# ## Exercises
#
# **1. Train the head longer.** Run phase 1 for twice as many epochs and compare the curves with
# the ones above. Where does the validation accuracy stop improving?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# from dataclasses import replace  # a copy of config with some settings changed
#
# longer = Pipeline(replace(config, epochs_head=2 * config.epochs_head,
#                           out=config.out + "-longer-head"))  # its own run folder
# longer.run("head")
# plot_history(longer.history(), title="Phase 1, twice as long")
# plt.show()
# ```
#
# With ImageNet weights the validation accuracy rises fast in the first epochs and then flattens;
# more head epochs then buy little, because the frozen features are the limit. (With the quick
# profile's random weights and 270 images, the curves are mostly noise.)
# </details>

# %% [markdown]
# **2. Count the head's weights by hand.** Where do the 271,178 trainable parameters come from?
# Why does GlobalAveragePooling2D add none?

# %% [markdown]
# <details><summary>Solution</summary>
#
# Each Dense layer has one weight per input–output pair plus one bias per output:
#
# ```python
# dense_128 = 2048 * 128 + 128  # 262,272
# dense_64 = 128 * 64 + 64      #   8,256
# dense_10 = 64 * 10 + 10       #     650
# print(dense_128 + dense_64 + dense_10)  # 271,178
# print([layer.count_params() for layer in head_layers(model)])
# ```
#
# Global average pooling only averages each of the 2,048 feature maps over its spatial positions;
# there is nothing to learn.
# </details>

# %% [markdown]
# **3. How much does freezing save?** Time an epoch of phase-1 training (base frozen), then an
# epoch with every layer trainable, each on a fresh model and the same few batches. Why is the
# second one slower?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# import time
#
# batches = train_ds.take(8)  # 8 batches per epoch: enough to compare, quick to run
# seconds = {}
# for frozen in (True, False):
#     fresh = pipeline.build_model()  # as the pipeline builds it: seeded, precision, fast ops
#     if frozen:
#         freeze_base(fresh)  # phase 1; otherwise every layer stays trainable
#     compile_model(fresh, config.lr_head, fused_adam=pipeline.fast_ops)
#     fresh.fit(batches, epochs=1, verbose=0)  # the first fit also builds the training step
#     start = time.perf_counter()
#     fresh.fit(batches, epochs=1, verbose=0)  # the same step again: training only
#     seconds["base frozen" if frozen else "everything trainable"] = time.perf_counter() - start
# print({name: f"{s:.2f} s" for name, s in seconds.items()},
#       f"ratio {seconds['everything trainable'] / seconds['base frozen']:.1f}")
# ```
#
# The first `fit` after `compile` also builds (traces) the training step, and for ResNet50 that
# takes longer than the 8 batches themselves, so only the second `fit` is timed, for both models
# alike. (`pipeline.build_model()` also makes the new model the pipeline's; `pipeline.run` would
# load the saved weights into it again.) With the base frozen, training needs the forward pass
# through ResNet50 but gradients only for the head. With everything trainable, the backward pass
# runs through the whole network and Adam updates 23.8 million weights. In the README's full-size
# seed runs on 2-core CPU VMs, phase 1 trained 439–471 images/s and phase 2 (nearly everything
# trainable) 136–146 images/s, validation included.
# (Compile the fresh model *after* any `trainable` change: that is what `train_head` does.)
# </details>
