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
# # 01 · Exploring CIFAR-10
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/01_data_exploration.ipynb)
# [![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/01_data_exploration.ipynb)
#
# Before fine-tuning a network on a dataset, look at the dataset. How many images, how balanced
# the classes are, what the pixels look like and what makes the task hard: each observation here
# explains a decision taken in a later notebook.
#
# **What you will learn**
#
# - how CIFAR-10 is organised (32×32 colour images, 10 classes) and how to check that it is balanced
# - what the images and their pixel statistics look like, channel by channel
# - what the labels *automobile* and *truck* really mean, and why models confuse them
# - why 32×32 is a tight fit for ResNet50: its last stage sees a single 1×1 position
#
# **Time**: quick profile: about 10 s on a 2-core CPU (8 s and 9.7 s in two runs under nbval: see the
# instructor guide). Nothing is trained here. The seed profile does the same on all 60,000 images, and its
# first run downloads CIFAR-10 (170 MB): not measured by us. Colab T4: not measured by us yet —
# the timing cells print it on your runtime.

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
import numpy as np
from keras.applications.resnet50 import preprocess_input

from cifar_helpers import load_config
from cifar_helpers.config import describe
from cifar_helpers.lessons.course import (environment_report, show_expectations, show_source,
                                          timed)
from cifar_helpers.data import load_cifar10
from cifar_helpers.lessons.exploration import (CHANNELS, STAGE_OUTPUTS, channel_histograms, class_counts,
                                       count_table, examples_per_class, feature_map_sizes,
                                       histogram_mean_std, plot_channel_histograms,
                                       plot_class_counts, resnet50_stages, stage_model,
                                       stage_table)
from cifar_helpers.model import build_model
from cifar_helpers.plots import plot_image_grid

versions = environment_report()
config = load_config()
SETTINGS_USED = ("data", "download_timeout")
print(describe(config, SETTINGS_USED))  # print(describe(config)) lists all settings

# %% [markdown]
# These are the settings this notebook uses (`print(describe(config))` lists all of them): `data`,
# where the images come from — the `quick` profile reads the small sample shipped with the
# package, the `seed` profile the full CIFAR-10 from Keras — and `download_timeout`, the seconds
# after which a dead network counts as offline. To change a setting, pass it to `load_config`,
# e.g. `config = load_config(data="sample")`, or set an environment variable before the cell runs,
# e.g. `os.environ["CIFAR_DATA"] = "sample"` (every setting has one: `CIFAR_PROFILE`,
# `CIFAR_EPOCHS_HEAD`, ...).
#
# ## 1. Load the data
#
# `load_cifar10` returns the images as `uint8` arrays (values 0–255) in the layout Keras expects,
# *(images, height, width, channels)* with the channels in RGB order, plus integer labels 0–9.
# `data.source` says where they came from: `keras` (downloaded, all 60,000 images),
# `keras-cache:...` (an earlier download), `sample` (the 1,000 + 200 real CIFAR-10 images shipped
# with the package), or `sample (fallback: ...)` when a download was asked for but impossible —
# then a warning says so, because nothing measured on the sample compares with full CIFAR-10.

# %%
with timed("loading CIFAR-10"):
    data = load_cifar10(config.data, timeout=config.download_timeout)
print("source:", data.source)
print("train images:", data.x_train.shape, data.x_train.dtype, "| labels:", data.y_train.shape)
print("test images: ", data.x_test.shape, data.x_test.dtype, "| labels:", data.y_test.shape)
print("classes:", ", ".join(f"{i} {name}" for i, name in enumerate(data.class_names)))

# %%
# extra code – check that the cells above did what the text says
assert data.x_train.dtype == np.uint8 and data.x_train.shape[1:] == (32, 32, 3)
assert data.x_test.dtype == np.uint8 and data.x_test.shape[1:] == (32, 32, 3)
assert len(data.x_train) == len(data.y_train) and len(data.x_test) == len(data.y_test)
assert len(data.class_names) == 10 and set(np.unique(data.y_train)) == set(range(10))

# %% [markdown]
# ## 2. Class balance
#
# Why check: accuracy is a fair one-number summary only when the classes are about equally
# frequent. If 60% of the images were ships, a model answering "ship" every time would score 60%.
# CIFAR-10 was built balanced — 6,000 images per class, 5,000 for training and 1,000 for testing —
# and the shipped sample keeps that balance (100 + 20 per class). Let's verify rather than trust.

# %%
train_counts, test_counts = class_counts(data.y_train), class_counts(data.y_test)
print(count_table({"train": data.y_train, "test": data.y_test}, data.class_names))
fig = plot_class_counts(train_counts, data.class_names,
                        title=f"Training images per class (source: {data.source})")

# %%
# extra code – check that the cells above did what the text says
per_class = (len(data.y_train) // 10, len(data.y_test) // 10)
assert (train_counts == per_class[0]).all() and (test_counts == per_class[1]).all(), "unbalanced"
if data.source.startswith("sample"):
    assert per_class == (100, 20)  # the shipped sample
if data.source.startswith("keras"):
    assert per_class == (5000, 1000)  # all of CIFAR-10

# %% [markdown]
# Every class has exactly the same number of images, in both splits. So plain accuracy is a fair
# summary here, and a model that guesses at random scores about 10%. Keep that 10% in mind: it is
# what a model that has learned nothing scores.
#
# ## 3. What the images look like
#
# One row per class, the first eight training images of each. Notice how little there is: a
# 32×32 image has 1,024 pixels, and a cat's face may be a dozen of them.

# %%
images, titles = examples_per_class(data.x_train, data.y_train, 8, data.class_names)
fig = plot_image_grid(images, titles, columns=8)

# %% [markdown]
# Things to look for: objects are roughly centred and fill most of the frame; poses, colours and
# backgrounds vary a lot; and backgrounds are informative on their own (sky behind airplanes,
# water under ships). A model can lean on the background instead of the object — exercise 2
# measures how much colour alone differs between classes.
#
# ## 4. Pixel statistics per channel
#
# Why: a network trains best when its inputs are centred around zero with a moderate spread, so
# every pretrained model comes with a rule for turning pixels 0–255 into numbers (notebook 02).
# Here we measure the raw statistics. `channel_histograms` counts how often each value 0–255
# occurs in each channel. Those 3 × 256 counts give two things at once: the exact mean and standard
# deviation of each channel (`histogram_mean_std` computes them from the counts), and the whole
# distribution, plotted below, which shows what a mean and a spread hide. For the full training
# set the counts summarise 153.6 million pixel values (50,000 images × 32 × 32 × 3).

# %%
with timed("pixel histograms"):
    histograms = channel_histograms(data.x_train)
mean, std = histogram_mean_std(histograms)
for name, channel_mean, channel_std in zip(CHANNELS, mean, std):
    print(f"{name:>5}: mean {channel_mean:6.2f} (= {channel_mean / 255:.4f} x 255), "
          f"std {channel_std:5.2f} (= {channel_std / 255:.4f} x 255)")
print("most common value per channel:", histograms.argmax(axis=1))
print("share of pixels at 255 per channel:",
      np.round(histograms[:, 255] / histograms.sum(axis=1), 4))

# %%
# extra code – check that the cells above did what the text says
assert histograms.shape == (3, 256) and histograms.sum() == data.x_train.size
assert np.allclose(mean, data.x_train.reshape(-1, 3).mean(axis=0))  # same as the direct way
assert ((0 < mean) & (mean < 255)).all() and (std > 0).all()

# %%
fig = plot_channel_histograms(histograms, title=f"Pixel values per channel ({data.source})")

# %% [markdown]
# How to read it: the three channels have broad, overlapping distributions; blue has the lowest
# mean. The spikes at the edges are clipped pixels: pure black at 0, and at 255 saturated ones —
# white backgrounds and overexposed skies. In the data we tried (the shipped sample and a
# 5,000-image subset of CIFAR-10), 255 was the most common single value in every channel; the
# printed lines above show it for your data.
#
# ResNet50 does *not* normalise with these CIFAR-10 statistics. Its pretrained weights were learned
# on ImageNet photos prepared in one fixed way: subtract ImageNet's mean pixel. Those means are
# close to CIFAR-10's, so after ResNet50's preprocessing CIFAR-10 pixels are still roughly centred
# on zero.
# Notebook 02 shows the preprocessing in detail; here just the comparison. A black pixel after
# ResNet50's preprocessing is minus the ImageNet mean (in BGR order — more in notebook 02):

# %%
imagenet_mean_rgb = -preprocess_input(np.zeros(3, dtype="float32"))[::-1]  # BGR -> RGB
print("ImageNet mean (RGB):", np.round(imagenet_mean_rgb, 2))
print("CIFAR-10 mean (RGB):", np.round(mean, 2))
print("difference:         ", np.round(mean - imagenet_mean_rgb, 2))

# %% [markdown]
# ## 5. Automobile or truck?
#
# Two CIFAR-10 labels are defined by a rule more than by looks. The dataset's page
# (Krizhevsky, [cs.toronto.edu/~kriz/cifar.html](https://www.cs.toronto.edu/~kriz/cifar.html)) says:
# the classes are mutually exclusive; **"automobile" includes sedans, SUVs, things of that sort;
# "truck" includes only big trucks; neither includes pickup trucks.** Here are both classes side
# by side: automobiles in the first row, trucks in the second.

# %%
automobile, truck = data.class_names.index("automobile"), data.class_names.index("truck")
images, titles = examples_per_class(data.x_train, data.y_train, 8, data.class_names,
                                    classes=(automobile, truck))
fig = plot_image_grid(images, titles, columns=8, size=1.7)

# %% [markdown]
# Why models mix them up:
#
# - **Same parts, same places.** Both have wheels, windows, headlights, a grille, and both stand on
#   roads and in car parks. Many of the features a network detects are shared.
# - **The difference is size and purpose, and size is cropped away.** Every image is cut around the
#   object, so a large SUV and a small truck fill the frame the same way. What is left — a separate
#   cab and cargo box, the number of axles — is a few pixels at 32×32.
# - **The boundary is a labelling rule.** Pickups, which would sit right on it, were left out of
#   both classes, but vans, big SUVs and small delivery trucks remain close to it, on either side.
#
# In trained CIFAR-10 models, automobile↔truck is commonly reported among the most-confused pairs,
# together with cat↔dog. Notebook 05 checks this on *your* model with its confusion matrix.
#
# ## 6. Why 32×32 is hard for ResNet50
#
# ResNet50 was designed for 224×224 inputs. It shrinks the image in five stages, halving height and
# width each time: `conv1` (a 7×7 convolution with stride 2), `conv2` (after a stride-2 max-pool),
# then `conv3`, `conv4` and `conv5` (each starting with a stride-2 convolution). In total the image
# shrinks 32-fold: 224 / 32 = 7, but 32 / 32 = 1. Let's measure it on a real ResNet50 instead of
# trusting the arithmetic. The helper builds Keras' ResNet50 without its classifier, accepting any
# input size, and returns the output of the last layer of each stage:

# %%
show_source(resnet50_stages)

# %%
show_source(stage_model)

# %% [markdown]
# Random weights (`weights=None`) are enough: the sizes of the feature maps do not depend on the
# weights, and nothing needs to be downloaded. We push one black image of each size through it.

# %%
with timed("building ResNet50 and measuring its stages"):
    stages = resnet50_stages(weights=None)
    sizes = {size: feature_map_sizes(stages, size) for size in (32, 224)}
print(stage_table(sizes))

# %%
# extra code – check that the cells above did what the text says
assert sizes[32]["conv5"] == (1, 1, 2048), sizes[32]["conv5"]
assert sizes[224]["conv5"] == (7, 7, 2048), sizes[224]["conv5"]
assert all(sizes[224][stage][0] == 7 * sizes[32][stage][0] for stage in STAGE_OUTPUTS)

# %% [markdown]
# The same holds for the course's own model, which feeds 32×32 CIFAR-10 images into ResNet50
# (`build_model` from `cifar_helpers.model`; again with random weights):

# %%
course_model = build_model(weights=None)
conv5_output = course_model.get_layer("conv5_block3_out").output
inner_conv = course_model.get_layer("conv5_block2_2_conv")
print("course model, conv5 output:", conv5_output.shape)
print(f"{inner_conv.name}: input {inner_conv.input.shape}, kernel {inner_conv.kernel.shape}")

# %%
# extra code – check that the cells above did what the text says
assert tuple(conv5_output.shape) == (None, 1, 1, 2048)
assert tuple(inner_conv.input.shape[1:3]) == (1, 1) and tuple(inner_conv.kernel.shape[:2]) == (3, 3)

# %% [markdown]
# What a 1×1 final stage means:
#
# - **Most of conv5's 3×3 weights see only padding.** `conv5_block2_2_conv` slides a 3×3 kernel
#   over a 1×1 map padded with zeros: only the centre weight ever meets real data; the other 8 of 9
#   multiply zeros. The pretrained weights of conv5 were learned on 7×7 maps, where all of them
#   mattered.
# - **There is no "where" left.** At 224×224 the last stage still has a 7×7 grid, and global average
#   pooling averages 49 positions; here it averages a single one.
# - **Scale mismatch.** The pretrained early filters learned patterns at ImageNet's scale, where an
#   object spans a hundred pixels or more. In CIFAR-10 the whole object is about the size of such a
#   detail.
#
# The usual remedy is to upsample the images (e.g. a `keras.layers.Resizing(224, 224)` layer in the
# model): 7×7 again, but 49 times as many pixels, so roughly 49 times the computation per image.
# This course keeps the original study's 32×32 setup — cheap enough for a laptop — and you should
# expect it to cost accuracy. How much, you will measure yourself (notebooks 03 and 04; notebook 06
# measures upsampling too if you opt in: add `size_64` or `size_128` to its `CHOSEN`). What
# published work measured, and why it is not a target for this setup, is in
# the course's one "What to expect" block, shown again in notebooks 03–07:

# %%
show_expectations()

# %% [markdown]
# ## Exercises
#
# **1. Bigger inputs.** With the `stages` model from section 6, find the smallest square input size
# for which `conv5` is at least 2×2, and the range of sizes for which it is 7×7 as on ImageNet.
# What rule links the input size and the `conv5` size? Hint: trying every size is cheap if no
# image is run: `stages.compute_output_shape((1, size, size, 3))` lets Keras work out the shapes.
#
# <details><summary>Solution</summary>
#
# ```python
# # Keras' shape arithmetic for every size from 1 to 256: no image is run, so this is cheap
# conv5 = {size: stages.compute_output_shape((1, size, size, 3))["conv5"][1]
#          for size in range(1, 257)}
# print("smallest size with conv5 at least 2x2:", min(s for s, side in conv5.items() if side >= 2))
# seven = [s for s, side in conv5.items() if side == 7]
# print(f"conv5 is 7x7 for sizes {seven[0]} to {seven[-1]} ({len(seven)} sizes)")
# print("conv5 side = ceil(size / 32) for every size:",
#       all(side == -(-s // 32) for s, side in conv5.items()))
# for size in (32, 33, 192, 193, 224, 225):  # the edges again, now on real (black) images
#     print(size, feature_map_sizes(stages, size)["conv5"])
# ```
#
# The `conv5` size is ⌈size / 32⌉: one pixel more than 32 is already enough for 2×2, and every
# size from 193 to 224 gives 7×7. Each of the five stride-2 steps turns a side of n into ⌈n / 2⌉,
# for two reasons.
# `conv1` and the max-pool pad their input with zeros (3 pixels and 1 pixel on each side) before a
# 'valid' 7×7 convolution and 3×3 pool. The stride-2 1×1 convolutions that start `conv3`, `conv4`
# and `conv5` use no padding at all: they sample positions 0, 2, 4, …, so an odd side keeps its
# last row and column (5 positions give 3).
#
# </details>
#
# **2. Colour as a shortcut.** Compute the mean colour (R, G, B) of the training images of each
# class. Which classes are the bluest (blue minus red)? What does that tell you about what a model
# could learn without looking at the object?
#
# <details><summary>Solution</summary>
#
# ```python
# class_means = np.stack([data.x_train[data.y_train == c].reshape(-1, 3).mean(axis=0)
#                         for c in range(10)])
# blueness = class_means[:, 2] - class_means[:, 0]
# for c in np.argsort(-blueness):
#     print(f"{data.class_names[c]:>10}: RGB {np.round(class_means[c]).astype(int)}, "
#           f"blue - red {blueness[c]:+.1f}")
# ```
#
# On the shipped sample and on our 5,000-image subset, ship and airplane came out bluest (sea and
# sky) and frog the least blue (grass and foliage). A model can score above chance from the
# background colour alone; this is one reason a "ship" on grass or a "frog" on a blue towel gets
# misclassified.
#
# </details>
#
# **3. Borderline vehicles.** Show the next 24 automobiles and the next 24 trucks (images 8–31 of
# each class). Find two images you would have labelled differently, and write down which visual cue
# decided it for you. Is that cue still visible at 32×32?
#
# <details><summary>Solution</summary>
#
# ```python
# for cls in (automobile, truck):
#     picked = np.flatnonzero(data.y_train == cls)[8:32]
#     plot_image_grid(data.x_train[picked], [f"{data.class_names[cls]} #{i}" for i in picked],
#                     columns=8, size=1.7)
# ```
#
# There is no single right answer. Typical cues are the cab/cargo separation, the height of the
# body above the wheels, and the size of the vehicle compared with people or buildings nearby —
# cues that often survive as only a handful of pixels, which is exactly why this pair stays hard.
#
# </details>
