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
# # 07 · Deeper error analysis: where the model looks, how far to trust it, your own images
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/07_deeper_error_analysis.ipynb)
# [![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/07_deeper_error_analysis.ipynb)
#
# **What you will learn**
#
# - to see *where* in an image the model found its evidence, with Grad-CAM, and why at 32×32 that
#   picture is only 2×2 cells coarse;
# - to check whether the model's confidence means what it says (calibration, expected calibration
#   error, reliability diagrams), and to repair it with temperature scaling;
# - to examine the automobile/truck and cat/dog confusions with images, heatmaps and probabilities;
# - to run the model on a picture of your own, and what to expect when you do.
#
# **Time**
#
# - Quick profile (CI, workshops): 9–13 s on a 2-core CPU with notebook 04's result saved,
#   25–43 s when it has to recreate both phases first (measured under nbval, two runs each).
# - Full seed profile, 2-core CPU: if notebook 04 saved its model here, only the predictions on
#   the 5,000 validation and 10,000 test images and a few Grad-CAM maps run: about half a minute
#   (scaled from the README's full-size seed runs on 2-core test VMs, where everything outside the
#   two training phases, the 10,000 test predictions included, took 18.5 s and 23.4 s). Otherwise
#   the notebook first recreates both training phases: 67–73 minutes there (measured).
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
import tempfile
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from cifar_helpers import load_config
from cifar_helpers.lessons.analysis import confused_examples, pair_confusion, prediction_titles
from cifar_helpers.lessons.calibration import (apply_temperature, expected_calibration_error,
                                       fit_temperature, negative_log_likelihood,
                                       plot_reliability_diagram)
from cifar_helpers.config import describe
from cifar_helpers.lessons.course import (environment_report, show_expectations, show_source,
                                          timed)
from cifar_helpers.evaluation import evaluate, predict_proba
from cifar_helpers.lessons.gradcam import (gradcam, gradcam_layer, live_cells, plot_gradcam,
                                          spatial_size)
from cifar_helpers.model import build_model
from cifar_helpers.lessons.predict_image import (classify_image, image_probabilities,
                                         plot_image_prediction)
from cifar_helpers.pipeline import Pipeline

environment_report()
config = load_config()
SETTINGS_USED = ("data", "weights", "train_limit", "test_limit", "val_fraction", "seed",
                 "batch_size", "epochs_head", "lr_head", "epochs_finetune", "lr_finetune",
                 "image_size", "out")
print(describe(config, SETTINGS_USED))  # print(describe(config)) lists all settings

# %% [markdown]
# The run settings this notebook uses (`print(describe(config))` lists all of them). Keep them as in
# notebooks 03 and 04 so that the fine-tuned model they left in the run folder `config.out` is
# reused (change settings with `load_config(...)` or `CIFAR_*` environment variables, as before; a
# CLI run with the same settings serves too).

# %% [markdown]
# ## 1. The fine-tuned model, and its predictions on validation and test images
#
# As in notebook 05, `Pipeline(config).run()` loads the fine-tuned model from the run folder if
# it was trained with these settings, and otherwise trains what is missing now.
# This time we need predictions on two sets: the **validation** set, on which we will *fit* the
# calibration, and the **test** set, on which we *judge* everything.

# %%
pipeline = Pipeline(config)
model = pipeline.run()  # loads the finished model, or trains what is missing (resuming)
(x_val, y_val), (x_test, y_test) = pipeline.inputs.val, pipeline.inputs.test
class_names = pipeline.inputs.class_names
with timed("predictions on the validation and test sets"):
    val_probabilities = predict_proba(model, x_val)
    evaluation = evaluate(model, x_test, y_test, class_names)
probabilities, predictions = evaluation.probabilities, evaluation.predictions
print(f"test accuracy: {evaluation.accuracy:.3f} on {len(y_test)} images, "
      f"{len(y_val)} validation images (data: {pipeline.inputs.source}, weights: {pipeline.inputs.weights_used})")

# %%
# extra code – check that the cells above did what the text says
assert val_probabilities.shape == (len(y_val), len(class_names))
assert probabilities.shape == (len(y_test), len(class_names))
assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
assert np.allclose(val_probabilities.sum(axis=1), 1.0, atol=1e-5)

# %%
show_expectations()

# %% [markdown]
# In the quick profile (random weights, 270 training images, 1 + 1 epochs, 30 validation and 100
# test images) every number and picture in this notebook is **noise**: the heatmaps, the fitted
# temperature, the calibration errors, the confusions and the class of your own image mean
# nothing. The cells only prove that the analysis runs. Run the seed profile to see real patterns.

# %% [markdown]
# ## 2. Grad-CAM: where did the model look?
#
# The head sees only the *average* of ResNet50's last feature maps (`head_pool`), so it cannot
# tell us where in the image its evidence was. **Grad-CAM** (Selvaraju et al., 2017) looks one
# step earlier, at a layer that still has a spatial grid of feature maps. For each feature map it
# asks "how much would the class score rise if this map were stronger?" (the gradient, averaged
# over the grid), weighs the maps by that, adds them up and keeps the positive part: a heatmap of
# the regions that speak *for* the class.
#
# **Why the layer must still have spatial extent.** A layer whose output is 1×1 has one value per
# feature map for the whole image: its heatmap would be a single cell, saying nothing about where.
# ResNet50 halves the resolution five times (a factor of 32), so at CIFAR-10's 32×32 input all of
# the last stage, `conv5`, is 1×1. The stage before, `conv4`, has a grid of **2×2**: the heatmap
# can only say "top-left quarter" or "bottom half", no finer.

# %% [markdown]
# **Why every cell must count.** Grad-CAM also needs a layer *each cell of which can change the
# score*: a cell that no later layer reads gets a gradient of exactly zero, and any heat there
# would mean nothing. `conv5` begins with stride-2 1×1 convolutions, which read every second row
# and column — of a 2×2 map, only the top-left cell. So three quarters of `conv4_block6_out`, the
# last 2×2 block output, never reach the prediction. The map is taken one step earlier, inside
# that last block, just before its 3×3 convolution, which gathers all four cells into the one that
# is read. `gradcam_layer` finds that layer by itself, from the layers' sizes, kernels and strides
# (`live_cells` shows which cells of any layer count):

# %%
show_source(gradcam_layer)

# %%
layer_name = gradcam_layer(model)
layer_grid = spatial_size(model.get_layer(layer_name))
print(f"Grad-CAM layer: {layer_name}, grid {layer_grid[0]}×{layer_grid[1]}")
print("cells of conv4_block6_out that can change the prediction:\n",
      live_cells(model, "conv4_block6_out").astype(int))
upsampled_model = build_model(weights=None, image_size=64)  # only to read its layer shapes
upsampled_grid = spatial_size(upsampled_model.get_layer(gradcam_layer(upsampled_model)))
print(f"with the images upsampled to 64×64 inside the model: {gradcam_layer(upsampled_model)}, "
      f"grid {upsampled_grid[0]}×{upsampled_grid[1]}")

# %%
# extra code – check that the cells above did what the text says
assert layer_grid[0] > 1 and layer_grid[1] > 1 and live_cells(model, layer_name).all()
if config.image_size % 32 == 0:  # ResNet50 divides the size by 32 by the end of conv5
    assert spatial_size(model.get_layer("conv5_block3_out")) == (config.image_size // 32,) * 2
if config.image_size == 32:
    assert (layer_name, layer_grid) == ("conv4_block6_1_relu", (2, 2))
    assert live_cells(model, "conv4_block6_out").tolist() == [[True, False], [False, False]]
assert gradcam_layer(upsampled_model) == "conv5_block3_out"

# %% [markdown]
# Feeding the network larger images is the way to finer maps: upsampled to 64×64, even `conv5` has
# a 2×2 grid (and `conv4` a 4×4 one), and every cell of `conv5_block3_out` counts, as only the
# global average pooling reads it; at 224×224, ImageNet's size, `conv5` is 7×7. Upsampling also
# tends to raise accuracy, because ImageNet features were learned at that scale — at a price in
# compute. Notebook 06 has a section on input upsampling (the `image_size` setting); the
# Grad-CAM code here adapts to it on its own.
#
# Here is the code. The one detail beyond the recipe: the model ends in a softmax, whose gradient
# vanishes when the model is very sure, so the score is the class *logit* (the last layer without
# its softmax), as in the paper.

# %%
show_source(gradcam)

# %% [markdown]
# One test image of each class, with the heatmap of the class the model predicted (red: the
# region that raised that class's score most). Titles read `true→predicted p=confidence`.

# %%
one_per_class = np.array([np.flatnonzero(y_test == c)[0] for c in range(len(class_names))
                          if np.any(y_test == c)])
with timed("Grad-CAM on one test image per class"):
    heatmaps = gradcam(model, x_test[one_per_class])
plot_gradcam(x_test[one_per_class], heatmaps,
             prediction_titles(one_per_class, probabilities, y_test, class_names))
plt.show()

# %%
# extra code – check that the cells above did what the text says
assert heatmaps.shape == (len(one_per_class),) + x_test.shape[1:3]
assert np.all(np.isfinite(heatmaps)) and heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
assert np.all((heatmaps.max(axis=(1, 2)) == 0) | np.isclose(heatmaps.max(axis=(1, 2)), 1.0))

# %% [markdown]
# How to read them: with a trained model, a good sign is heat on the object (the head of a horse,
# the hull of a ship); a warning sign is heat on the background (water for ships, sky for
# airplanes), which hints at a shortcut the model learned from the data. With 2×2 cells, treat
# the maps as "which quarter", not as outlines. An all-blue map means nothing in that layer spoke
# for the class (Grad-CAM keeps only positive evidence).

# %% [markdown]
# ## 3. Calibration: does 90% sure mean 90% right?
#
# A model is **calibrated** when its confidence matches its accuracy: of all the images it
# predicts with confidence about 0.9, about 90% should be right. That matters whenever the
# probabilities are *used* — to pass unsure images to a human, or to combine the model with other
# evidence. Deep networks trained with cross-entropy are often **over-confident**.
#
# Two tools measure it. A **reliability diagram** sorts the predictions into 15 equal-width
# confidence bins and plots each bin's accuracy against its confidence: a calibrated model stays
# on the diagonal; bars below it mean over-confidence. The **expected calibration error (ECE)**
# sums up the gaps: the mean |accuracy − confidence| over the bins, weighted by how many images
# each bin holds (0 is perfect).

# %%
ece_before = expected_calibration_error(probabilities, y_test)
plot_reliability_diagram(probabilities, y_test, titles=("test set, as trained", ""))
plt.show()
print(f"ECE on the test set: {ece_before:.3f}")

# %% [markdown]
# **Temperature scaling** (Guo et al., 2017) is the simplest repair. The model's softmax turns
# scores (logits) into probabilities; dividing all logits by one number T before the softmax
# softens the probabilities when T > 1 (less sure) and sharpens them when T < 1. Our model
# outputs probabilities, and log-probabilities serve as its logits (softmax(log p) = p), so the
# scaled probabilities are softmax(log p / T). Dividing every score by the same positive number
# never changes which class is largest: **accuracy stays exactly the same**; only confidence moves.
#
# T is chosen to minimise the negative log-likelihood (the cross-entropy loss) on the
# **validation** set. Never fit it on the test set: the test set must stay untouched, or the
# improvement we report on it would be partly fitted to it.

# %%
show_source(fit_temperature)

# %%
temperature = fit_temperature(val_probabilities, y_val)
val_scaled = apply_temperature(val_probabilities, temperature)
test_scaled = apply_temperature(probabilities, temperature)
kind = ("over-confident: T > 1" if temperature > 1 else "under-confident: T < 1"
        if temperature < 1 else "scaling helps nothing: T = 1")
print(f"fitted temperature T = {temperature:.3f} on {len(y_val)} validation images ({kind})")
print(f"{'test set':>22}  {'NLL':>6}  {'ECE':>6}  {'accuracy':>8}")
for name, values in (("as trained", probabilities), ("temperature-scaled", test_scaled)):
    print(f"{name:>22}  {negative_log_likelihood(values, y_test):6.3f}  "
          f"{expected_calibration_error(values, y_test):6.3f}  "
          f"{np.mean(values.argmax(axis=1) == y_test):8.3f}")

# %% [markdown]
# Checks: the scaled probabilities are still probabilities, no prediction changed, and on the
# validation set (where T was fitted) the loss is no higher than before — T = 1, "no change",
# was one of the candidates.

# %%
# extra code – check that the cells above did what the text says
assert np.isfinite(temperature) and temperature > 0
assert np.allclose(test_scaled.sum(axis=1), 1.0, atol=1e-9)
assert np.array_equal(test_scaled.argmax(axis=1), predictions)
assert (negative_log_likelihood(val_scaled, y_val)
        <= negative_log_likelihood(val_probabilities, y_val) + 1e-6)

# %%
plot_reliability_diagram(
    probabilities, y_test, test_scaled,
    titles=("test set, as trained", f"after temperature scaling, T={temperature:.2f}"))
plt.show()

# %% [markdown]
# > **Published findings, not ours** (we have not reproduced them here): Guo, Pleiss, Sun &
# > Weinberger, *On Calibration of Modern Neural Networks* (ICML 2017) found ResNets trained on
# > CIFAR-10 and CIFAR-100 over-confident, with ECEs of several percent, and temperature scaling
# > brought them down to about 1% or below, as well as or better than more complex methods.
# > Their networks were trained from scratch, not fine-tuned as ours: expect the direction, not
# > the numbers.
#
# Read the test-set numbers with their uncertainty in mind: ECE with 15 bins needs many images
# per bin, so on a few hundred test images it varies by several points from one sample to the
# next. In the quick profile (30 validation, 100 test images, a barely trained model whose
# confidences are low, mostly between 0.1 and 0.5), the fitted T and both ECEs are noise.

# %% [markdown]
# ## 4. The two classic confusions: automobile/truck and cat/dog
#
# Notebook 05 showed *which* images are confused. Here we ask two more questions about them:
#
# - **Near miss or wild guess?** How much probability did the true class still get, and was it
#   the model's second choice?
# - **Where was the evidence?** Grad-CAM for the class the model *chose*, and for the class it
#   *should* have chosen, on the same images.
#
# First the counts in both directions (rows true, columns predicted):

# %%
for first, second in (("automobile", "truck"), ("cat", "dog")):
    print(pair_confusion(evaluation.confusion, class_names, first, second))

# %%
def pair_mistakes(first: str, second: str, k: int = 4) -> np.ndarray:
    """Up to k confident mistakes in each direction between two classes."""
    a, b = class_names.index(first), class_names.index(second)
    return np.concatenate([confused_examples(probabilities, y_test, a, b, k),
                           confused_examples(probabilities, y_test, b, a, k)])


second_choice = np.argsort(probabilities, axis=1)[:, -2]
for first, second in (("automobile", "truck"), ("cat", "dog")):
    picked = pair_mistakes(first, second)
    if len(picked) == 0:
        print(f"{first}/{second}: no confusions between them in this test set")
        continue
    true_probability = probabilities[picked, y_test[picked]]
    print(f"{first}/{second}: {len(picked)} mistakes; the true class got p = "
          f"{', '.join(f'{p:.2f}' for p in true_probability)}; it was the second choice in "
          f"{np.sum(second_choice[picked] == y_test[picked])} of them")

# %% [markdown]
# Many mistakes between similar classes are **near misses**: the true class came second with a
# fair share of the probability. Those are the cases where a slightly better model, or a human
# looking at the top two, gets it right. A mistake where the true class got almost nothing is
# stranger: look at the image — it may be mislabelled, or show something the model has never
# learned to see.
#
# Now the evidence, most confident mistakes first. Top row: each image; middle: Grad-CAM for the
# class the model predicted; bottom: Grad-CAM for the true class.

# %%
def show_pair_evidence(first: str, second: str) -> np.ndarray:
    """Images confused between two classes, with heatmaps for the predicted and the true class."""
    picked = pair_mistakes(first, second)
    if len(picked) == 0:
        print(f"no {first}/{second} confusions to show")
        return picked
    for_predicted = gradcam(model, x_test[picked], class_index=predictions[picked])
    for_true = gradcam(model, x_test[picked], class_index=y_test[picked])
    plot_gradcam(x_test[picked], [for_predicted, for_true],
                 prediction_titles(picked, probabilities, y_test, class_names),
                 row_labels=["predicted class", "true class"])
    plt.show()
    return picked


with timed("Grad-CAM on the confused pairs"):
    vehicles = show_pair_evidence("automobile", "truck")
    pets = show_pair_evidence("cat", "dog")

# %%
# extra code – check that the cells above did what the text says
for first, second, picked in (("automobile", "truck", vehicles), ("cat", "dog", pets)):
    assert np.all(predictions[picked] != y_test[picked])
    assert set(y_test[picked]) <= {class_names.index(first), class_names.index(second)}
    assert set(predictions[picked]) <= {class_names.index(first), class_names.index(second)}

# %% [markdown]
# What to look for, with a trained model. **Automobile/truck**: heat on the cargo box of a van or
# a small delivery truck, or on the bulk of a big SUV (vehicles close to the boundary between the
# two classes, notebook 01), or on the road rather than the vehicle.
# **Cat/dog**: heat on the body and fur rather than the face — at 32×32 the snout and ears that
# separate the two cover a few pixels, often less than one of the 2×2 cells. When the maps for the
# predicted and the true class highlight the *same* region, the model saw the right object and
# simply could not decide; when they differ, the two classes were read from different parts.

# %% [markdown]
# ## 5. Try your own image
#
# The model has learned ten classes from 32×32 pictures. You can give it any photo: it is
# centre-cropped to a square, shrunk to the model's input size (`model.input.shape`, 32×32 here —
# if `image_size` is larger, the model upsamples inside, as in training) and classified.
#
# - **Locally:** set `IMAGE_PATH` to an image file (JPEG, PNG, ...). A phone photo stored
#   sideways is turned upright first, as a photo viewer shows it; convert HEIC photos to JPEG.
# - **In Colab:** set `UPLOAD_IN_COLAB = True` and run the cell: a "Choose files" button appears.
#   It is off by default, so that *Run all* never stops here waiting for a file.
# - **Otherwise** (and in CI, which is offline), the cell writes one of the test images, enlarged
#   to 128×128, to a temporary PNG file and classifies that, so it always runs.

# %%
IMAGE_PATH = ""  # e.g. "my_cat.jpg"
UPLOAD_IN_COLAB = False  # True: a "Choose files" button (Colab only)

if not IMAGE_PATH and IS_COLAB and UPLOAD_IN_COLAB:
    from google.colab import files
    uploaded = files.upload()  # saves the chosen file next to the notebook
    IMAGE_PATH = next(iter(uploaded), "")
if not IMAGE_PATH:
    demo_index = int(one_per_class[0])
    IMAGE_PATH = str(Path(tempfile.mkdtemp()) / f"test_image_{demo_index}.png")
    Image.fromarray(x_test[demo_index]).resize((128, 128), Image.BICUBIC).save(IMAGE_PATH)
    print(f"No image given: using test image {demo_index} "
          f"(class: {class_names[y_test[demo_index]]}), saved as {IMAGE_PATH}")

ranking = classify_image(model, IMAGE_PATH, class_names, top=3)
for name, probability in ranking:
    print(f"{name:>12}: {probability:.3f}")

# %%
your_image, your_probabilities = image_probabilities(model, IMAGE_PATH)
plot_image_prediction(your_image, your_probabilities, class_names)
plt.show()
plot_gradcam(your_image[None], gradcam(model, your_image)[None], [f"evidence for {ranking[0][0]}"],
             row_labels=["Grad-CAM"])
plt.show()

# %%
# extra code – check that the cells above did what the text says
assert your_image.shape == tuple(model.input.shape[1:])
assert np.isclose(your_probabilities.sum(), 1.0, atol=1e-5)
assert len(ranking) == 3 and ranking[0][0] == class_names[your_probabilities.argmax()]
assert [p for _, p in ranking] == sorted((p for _, p in ranking), reverse=True)

# %% [markdown]
# Things to know before you trust the answer:
#
# - **The model only knows ten classes.** Show it a banana and it still answers with one of the
#   ten, possibly with high confidence: calibration (section 3) is about images *like the
#   training data*, not about noticing that an image is of something else.
# - **32×32 is tiny.** Look at "what the model sees": much of what makes your photo recognisable
#   to you may be gone. Photos that resemble CIFAR-10 — one object, centred, filling the frame —
#   work best.
# - **Temperature scaling applies here too**:
#   `apply_temperature(your_probabilities[None], temperature)` gives the calibrated probabilities
#   (the ranking stays the same).

# %% [markdown]
# ## Exercises
#
# **1. Bins and ECE.** Compute the test-set ECE with 5, 10, 15 and 30 bins, before and after
# temperature scaling. Does the ranking "after is better" survive every choice? Why does the
# number itself change?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# for bins in (5, 10, 15, 30):
#     before = expected_calibration_error(probabilities, y_test, bins)
#     after = expected_calibration_error(test_scaled, y_test, bins)
#     print(f"{bins:>3} bins: ECE {before:.3f} -> {after:.3f}")
# ```
#
# ECE depends on the binning: with few bins, over- and under-confident predictions in the same
# bin cancel out; with many bins, each bin holds few images and its accuracy is noisy, which adds
# to the error even for a calibrated model. Compare models only with the same bins and the same
# test set. With a trained model and the full test set, temperature scaling usually wins for every
# bin count; on the quick profile, anything can happen.
# </details>

# %% [markdown]
# **2. The cheat.** Fit the temperature on the *test* set instead and compare the test loss
# (negative log-likelihood, which the temperature is fitted to minimise) and the test ECE with the
# honest ones. Why are these numbers not a fair report of how well the model is calibrated?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# cheat = fit_temperature(probabilities, y_test)
# print(f"T fitted on validation {temperature:.3f}, on test {cheat:.3f}")
# cheat_scaled = apply_temperature(probabilities, cheat)
# for name, scaled in (("honest", test_scaled), ("cheat", cheat_scaled)):
#     print(f"{name:>6}: test NLL {negative_log_likelihood(scaled, y_test):.4f}, "
#           f"test ECE {expected_calibration_error(scaled, y_test):.4f}")
# ```
#
# T fitted on the test set is tuned to the very images it is judged on: no temperature gives
# those images a lower NLL, so that number is optimistic, and new images, which the fit never
# saw, will on average do worse. ECE is not what the fit minimises, so the cheat need not improve
# it: on a small test set it can even come out worse, which shows how noisy the ECE of a few
# hundred images is. One number is fitted, so the difference is small on 10,000 images, but on
# 100 it can be large, and the habit of touching the test set grows into bigger mistakes
# (choosing models, epochs, thresholds).
# </details>

# %% [markdown]
# **3. A finer but less semantic map.** Grad-CAM on an earlier layer, `conv3_block3_out`
# (4×4 at 32×32 input), for the same one-image-per-class set. What do you gain and what do you
# lose? Why not `conv3_block4_out`, the last 4×4 block output?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# earlier = gradcam(model, x_test[one_per_class], layer_name="conv3_block3_out")
# plot_gradcam(x_test[one_per_class], earlier,
#              prediction_titles(one_per_class, probabilities, y_test, class_names))
# plt.show()
# print(live_cells(model, "conv3_block4_out").astype(int))  # 1 = can change the prediction
# ```
#
# The grid is four times finer, but earlier layers respond to simpler patterns (edges, textures,
# colours) and the gradient has to travel through more layers to reach them, so the maps are
# noisier and less about "the class". The usual remedy is the one from section 2: larger inputs,
# so that a deep layer keeps a finer grid (see notebook 06).
#
# Not `conv3_block4_out`: `conv4` begins, like `conv5`, with stride-2 1×1 convolutions, which read
# only every second row and column of it, so 12 of its 16 cells never reach the prediction (the
# printed grid) and their heat would mean nothing. Every cell of `conv3_block3_out` counts: block
# 4's 3×3 convolution reads each one together with its neighbours.
# </details>

# %% [markdown]
# **4. Second-guessing a confusion.** For the cat/dog mistakes, draw the Grad-CAM map for the
# *second* most probable class next to the first. Are the two classes "seen" in the same place?

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# picked = pair_mistakes("cat", "dog")
# if len(picked):
#     runner_up = np.argsort(probabilities[picked], axis=1)[:, -2]
#     first_maps = gradcam(model, x_test[picked], class_index=predictions[picked])
#     second_maps = gradcam(model, x_test[picked], class_index=runner_up)
#     plot_gradcam(x_test[picked], [first_maps, second_maps],
#                  [f"{class_names[a]} / {class_names[b]}"
#                   for a, b in zip(predictions[picked], runner_up)],
#                  row_labels=["1st choice", "2nd choice"])
#     plt.show()
# ```
#
# If the first and second choice light up the same region, the model found the animal and could
# not tell which one it was — a fine-grained problem that more resolution or more data helps. If
# they light up different regions, the image may contain cues for both (a cat on a dog bed, two
# animals), and the label itself may be debatable.
# </details>
