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
# # 05 · Error analysis: what does the fine-tuned model get wrong?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/05_error_analysis.ipynb)
# [![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/05_error_analysis.ipynb)
#
# **What you will learn**
#
# - to read a classification report and a row-normalised confusion matrix;
# - to find the most-confused class pairs, and to look at the images behind them;
# - to study the model's most *confident* mistakes, and how confident it is when right or wrong;
# - why a single accuracy number hides most of what you want to know.
#
# **Time**
#
# - Quick profile (CI, workshops): 9–10 s on a 2-core CPU with notebook 04's result saved,
#   37–39 s when it has to recreate both phases first (measured under nbval, two runs each).
# - Full seed profile, 2-core CPU: if notebook 04 saved its model here, only the predictions on
#   the 10,000 test images run: well under half a minute (in the README's full-size seed runs on
#   2-core test VMs, everything outside the two training phases, these predictions included, took
#   18.5 s and 23.4 s). Otherwise the notebook first recreates both training phases: 67–73 minutes
#   there (measured, README *Speed*).
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
from cifar_helpers.lessons.analysis import (confused_examples, most_confident_mistakes, pair_confusion,
                                    plot_confidence_histogram, plot_confused_pair,
                                    prediction_titles, split_confidence)
from cifar_helpers.config import describe
from cifar_helpers.lessons.course import (environment_report, show_expectations, show_source,
                                          timed)
from cifar_helpers.evaluation import evaluate
from cifar_helpers.plots import plot_confusion, plot_image_grid
from cifar_helpers.pipeline import Pipeline

environment_report()
config = load_config()
SETTINGS_USED = ("data", "weights", "train_limit", "test_limit", "val_fraction", "seed",
                 "batch_size", "epochs_head", "lr_head", "epochs_finetune", "lr_finetune", "out")
print(describe(config, SETTINGS_USED))  # print(describe(config)) lists all settings

# %% [markdown]
# The run settings this notebook uses (`print(describe(config))` lists all of them). Keep them as in
# notebooks 03 and 04 so that the fine-tuned model they left in the run folder `config.out` is
# reused (change settings with `load_config(...)` or `CIFAR_*` environment variables, as before).
# `python -m cifar_helpers train` with the same settings leaves its model in the same folder, so
# this notebook can also start from a CLI run.

# %% [markdown]
# ## 1. The fine-tuned model and its test predictions
#
# `Pipeline(config).run()` goes through the same training pipeline as notebooks 03 and 04: it
# loads the fine-tuned model from the run folder if it was trained with these settings; otherwise
# it trains what is missing now (phase 1 and/or 2, resuming an interrupted phase) and says so.
# `evaluate` runs the model once over the test set and keeps everything this notebook looks at:
# the probabilities of each class for each image, the predictions, the confusion matrix and the
# classification report.

# %%
pipeline = Pipeline(config)
model = pipeline.run()  # loads the finished model, or trains what is missing (resuming)
(x_val, y_val), (x_test, y_test) = pipeline.inputs.val, pipeline.inputs.test
class_names = pipeline.inputs.class_names
with timed("predictions on the test set"):
    evaluation = evaluate(model, x_test, y_test, class_names)
print(f"test accuracy: {evaluation.accuracy:.3f} on {len(y_test)} images "
      f"(data: {pipeline.inputs.source}, weights: {pipeline.inputs.weights_used})")

# %% [markdown]
# Before interpreting anything, check that the numbers are consistent: each image's ten
# probabilities sum to 1, the confusion matrix counts every test image exactly once, and accuracy
# is its diagonal (the correct predictions) divided by the total.

# %%
probabilities, confusion = evaluation.probabilities, evaluation.confusion
assert probabilities.shape == (len(y_test), len(class_names))
assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
assert confusion.sum() == len(y_test)
assert np.isclose(evaluation.accuracy, np.trace(confusion) / confusion.sum())
assert np.array_equal(evaluation.predictions, probabilities.argmax(axis=1))

# %%
show_expectations()

# %% [markdown]
# In the quick profile (random weights, 270 training images, 1 + 1 epochs, 100 test images) the
# accuracy is **not** meaningful, and neither is anything below: which classes look "hard", which
# pairs are "confused" and which mistakes are "confident" is noise. The cells only prove that the
# analysis runs. Run the seed profile to see real patterns.

# %% [markdown]
# ## 2. Per-class precision and recall
#
# For each class: **precision** — of the images predicted as this class, the share that really
# are; **recall** — of the images of this class, the share found; **f1** — their harmonic mean;
# **support** — how many test images the class has. A class with high recall but low precision is
# one the model predicts too often (a "dumping ground" for uncertain images). The last rows:
# **accuracy** over all images; **macro avg**, the plain mean over classes; **weighted avg**,
# the mean weighted by support. Our test sets have the same number of images in every class, so
# the two averages are equal here, and macro-average recall equals accuracy.

# %%
print(evaluation.report)

# %% [markdown]
# ## 3. The confusion matrix
#
# Rows are the true classes, columns the predictions. Each row is divided by its total, so the
# diagonal shows each class's recall and every off-diagonal cell the share of that class that was
# mistaken for the column's class.

# %%
plot_confusion(confusion, class_names)
plt.show()

# %% [markdown]
# ## 4. The most-confused pairs
#
# The largest off-diagonal counts, as (true class → predicted class). With real training, the
# classic CIFAR-10 confusions are **cat ↔ dog** and **automobile ↔ truck**: at 32×32 pixels, pets
# of similar size, pose and colour, or vehicles with similar shape and background, differ in few
# details. On the quick profile this list is noise.

# %%
for true_name, predicted_name, count in evaluation.most_confused:
    print(f"{true_name:>10} → {predicted_name:<10} {count:4d} images")

# %% [markdown]
# ## 5. The most confident mistakes
#
# Mistakes the model made while being *sure* are the most instructive: they point at mislabelled
# test images, genuinely ambiguous ones, or shortcuts the model has learned (a ship-like
# background, a typical colour). Each title reads `true→predicted p=confidence`.
#
# The cell after the code below calls `most_confident_mistakes`, which is exactly
# `confused_examples` without a class filter (`true_class` and `predicted_class` left at `None`):
# the k most confident mistakes of any class.

# %%
show_source(confused_examples)

# %%
mistakes = most_confident_mistakes(probabilities, y_test, k=16)
if len(mistakes):
    plot_image_grid(x_test[mistakes],
                    prediction_titles(mistakes, probabilities, y_test, class_names))
    plt.show()
else:
    print("No mistakes on this test set.")

# %%
# extra code – check that the cells above did what the text says
assert all(evaluation.predictions[i] != y_test[i] for i in mistakes)
assert np.all(np.diff(probabilities[mistakes].max(axis=1)) <= 0)  # most confident first

# %% [markdown]
# ## 6. How sure is the model when it is right, and when it is wrong?
#
# The confidence of a prediction is the probability the model gives to the class it predicts.
# A useful model is mostly confident when right and less so when wrong; then its confidence can be
# used, for example, to send unsure images to a human. The histogram shows each group as shares
# of itself, because there are usually far more correct predictions than wrong ones. (A model
# trained from random weights for 1 + 1 epochs, as in the quick profile, is unsure about
# everything: its confidences stay low, mostly between 0.1 and 0.5.)

# %%
plot_confidence_histogram(probabilities, y_test)
plt.show()
right, wrong = split_confidence(probabilities, y_test)
print(f"median confidence: {np.median(right) if len(right) else float('nan'):.2f} when right "
      f"({len(right)} images), {np.median(wrong) if len(wrong) else float('nan'):.2f} when wrong "
      f"({len(wrong)} images)")

# %%
# extra code – check that the cells above did what the text says
assert len(right) + len(wrong) == len(y_test)
assert len(right) == np.trace(confusion)

# %% [markdown]
# ## 7. A closer look at two pairs: automobile/truck and cat/dog
#
# First the counts in both directions (from the confusion matrix), then the images: the top row
# shows the first class mistaken for the second, the bottom row the reverse, most confident first.

# %%
for first, second in (("automobile", "truck"), ("cat", "dog")):
    print(pair_confusion(confusion, class_names, first, second))

# %%
plot_confused_pair(x_test, probabilities, y_test, class_names, "automobile", "truck")
plt.show()

# %% [markdown]
# Automobiles and trucks share wheels, windows and road backgrounds; vans, big SUVs and small
# delivery trucks sit close to the boundary between the two classes (notebook 01), and at 32×32
# the size cue is often gone.

# %%
plot_confused_pair(x_test, probabilities, y_test, class_names, "cat", "dog")
plt.show()

# %% [markdown]
# Cats and dogs come in similar poses, sizes and colours, often indoors; at 32×32 the features
# that tell them apart (snout, ears) cover only a few pixels. Look for images where *you* hesitate:
# some of the model's mistakes are honest ambiguities, not failures.

# %% [markdown]
# ## Exercises
#
# **1. The weakest classes.** Which three classes have the lowest recall (per-class accuracy)?
# Are they the classes that appear in the most-confused pairs?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# worst = sorted(evaluation.per_class_accuracy.items(), key=lambda item: item[1])[:3]
# print(worst)
# print(evaluation.most_confused)
# ```
#
# With real training the weakest classes are usually those in the confused pairs (such as cat
# and dog); a class can also be weak because it is confused with *many* classes a little, which
# the pair list does not show but the confusion matrix row does.
# </details>

# %% [markdown]
# **2. Top-2 accuracy.** How often is the true class among the model's *two* most probable
# classes? What does the gap to the ordinary (top-1) accuracy tell you?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# top2 = np.argsort(probabilities, axis=1)[:, -2:]
# top2_accuracy = np.mean([label in row for label, row in zip(y_test, top2)])
# print(f"top-1 {evaluation.accuracy:.3f}, top-2 {top2_accuracy:.3f}")
# ```
#
# A large gap means many mistakes are "near misses" where the right class came second — typical
# of similar pairs like cat/dog. A small gap means the wrong predictions are not close calls.
# </details>

# %% [markdown]
# **3. Another pair, and the unsure correct ones.** Look at deer/horse with `plot_confused_pair`.
# Then show the 16 *least* confident correct predictions: what do they have in common?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# plot_confused_pair(x_test, probabilities, y_test, class_names, "deer", "horse")
# plt.show()
#
# correct = np.flatnonzero(evaluation.predictions == y_test)
# unsure = correct[np.argsort(probabilities[correct].max(axis=1))][:16]
# plot_image_grid(x_test[unsure], prediction_titles(unsure, probabilities, y_test, class_names))
# plt.show()
# ```
#
# Unsure correct predictions are often small or partly visible objects, unusual viewpoints, or
# cluttered backgrounds — the same kinds of images that, a little further, become mistakes.
# </details>
