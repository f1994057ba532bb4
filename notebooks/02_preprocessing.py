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
# # 02 · Preprocessing and the input pipeline
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/02_preprocessing.ipynb)
# [![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src=https://github.com/cifar10-transfer-course/resnet50-cifar10/blob/main/notebooks/02_preprocessing.ipynb)
#
# A pretrained network only works on inputs prepared exactly the way its training data was. This
# notebook follows real pixels from the dataset to the first ResNet50 layer: how they are scaled,
# where that happens, how labels and the validation split are made, and how `tf.data` delivers
# batches fast enough to keep the model busy.
#
# **What you will learn**
#
# - what ResNet50 expects (`preprocess_input`: RGB→BGR, ImageNet mean subtracted, no scaling) and
#   how that differs from scaling to [0, 1] or [-1, 1]
# - why the course model contains its preprocessing as a layer, and how to check it
# - one-hot labels: `keras.utils.to_categorical` versus `tf.one_hot` in the pipeline
# - why the validation split is stratified, and what an unstratified one looks like
# - the `tf.data` pipeline step by step: shuffle, batch, map, prefetch
# - optional aside, at the end: the in-place trap of `preprocess_input`
#
# **Time**: quick profile: about 10 s on a 2-core CPU (7 s and 9.5 s in two runs under nbval: see the
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
import math

import keras
import numpy as np
from keras.applications.resnet50 import preprocess_input

from cifar_helpers import load_config
from cifar_helpers.config import describe
from cifar_helpers.lessons.course import environment_report, show_source, timed
from cifar_helpers.data import make_dataset, train_val_split
from cifar_helpers.lessons.exploration import (class_counts, consume_seconds, count_table, reddest_image,
                                       reddest_pixel, slow_pipeline)
from cifar_helpers.model import ResNet50Preprocess, build_model
from cifar_helpers.plots import plot_image_grid
from cifar_helpers.data import prepare_data

versions = environment_report()
config = load_config()
SETTINGS_USED = ("data", "download_timeout", "train_limit", "test_limit", "val_fraction",
                 "batch_size", "seed")
print(describe(config, SETTINGS_USED))  # print(describe(config)) lists all settings

# %% [markdown]
# The run settings this notebook uses (`print(describe(config))` lists all of them): `data` and
# `download_timeout` (notebook 01), `train_limit`, `test_limit`, `val_fraction`, `batch_size` and
# `seed`. Change them with `load_config(batch_size=64)`, say, or with environment variables such as
# `CIFAR_BATCH_SIZE=64` set before `load_config()` runs.
#
# `prepare_data` loads the images (as in notebook 01), keeps `train_limit` training and `test_limit`
# test images if the profile says so (stratified, so the classes stay balanced), and splits a
# validation set off the training images. The test images are never used for any decision.

# %%
with timed("loading and splitting the data"):
    data, (x_train, y_train), (x_val, y_val), (x_test, y_test) = prepare_data(config)
print("source:", data.source)
print(f"train {x_train.shape} {x_train.dtype}, validation {x_val.shape}, test {x_test.shape}")

# %% [markdown]
# ## 1. What ResNet50 expects
#
# Why it matters: the pretrained filters of ResNet50's first layer were learned on ImageNet photos
# prepared in one specific way. Feed pixels prepared differently and the first layer sees numbers
# of a kind it never saw in training, so every later layer works on the wrong features.
#
# Keras documents the rule in `keras.applications.resnet50.preprocess_input`. Keras calls it the
# "caffe" convention, after the framework the original ResNet models were released in: **reverse the
# channels (RGB → BGR), subtract the ImageNet mean of each channel, and do not scale**. Let's follow
# one real pixel. We pick the automobile with the most red compared with blue among the training
# images, and its pixel with the most red compared with blue: with red and blue far apart, the
# channel swap is easy to see.

# %%
cars = np.flatnonzero(y_train == data.class_names.index("automobile"))
image = x_train[cars[reddest_image(x_train[cars])]]
row, col = reddest_pixel(image)
pixel = image[row, col]
print(f"pixel at row {row}, column {col}, as stored: R={pixel[0]}, G={pixel[1]}, B={pixel[2]} "
      f"({image.dtype})")

fig = plot_image_grid(np.stack([image, image[..., ::-1]]),
                      ["as stored (RGB)", "channels reversed (BGR),\nshown as if RGB"],
                      columns=2, size=2.6)
for ax in fig.axes[:2]:
    ax.plot(col, row, "o", markersize=12, markerfacecolor="none", markeredgecolor="magenta",
            markeredgewidth=2)

# %% [markdown]
# Shown with its channels reversed, the car's warm colours (much red, little blue) turn blue: that
# is what the network would "see" if we handed it BGR data while it expected RGB, or the reverse.
# Now the real thing:

# %%
imagenet_mean_bgr = -preprocess_input(np.zeros(3, dtype="float32"))  # a black pixel, preprocessed
caffe = preprocess_input(image.astype("float32"))  # astype makes a new array: `image` is untouched
print("ImageNet mean subtracted (B, G, R):", imagenet_mean_bgr)
print("pixel before (R, G, B):            ", pixel)
print("pixel after  (B, G, R):            ", caffe[row, col])
print("check: B - 103.939, G - 116.779, R - 123.68 =", pixel[::-1] - imagenet_mean_bgr)

# %%
# extra code – check that the cells above did what the text says
assert np.allclose(caffe[row, col], pixel[::-1].astype("float32") - imagenet_mean_bgr)
assert np.allclose(imagenet_mean_bgr, [103.939, 116.779, 123.68])
assert caffe.dtype == np.float32 and caffe.shape == image.shape

# %% [markdown]
# Other pretrained models use other conventions. The two you will meet most often are scaling to
# [0, 1] (divide by 255; the usual choice when training a CNN from scratch) and scaling to [-1, 1]
# (Keras calls it `mode="tf"`; MobileNetV2 and InceptionV3 use it). Same images, three very
# different sets of numbers: our pixel, and the range and channel means over a batch of 256 real
# training images.

# %%
batch = x_train[:256].astype("float32")
# .copy(): preprocess_input can overwrite a float array (the optional aside at the end shows it)
conventions = {  # name: (channel order, conversion)
    "caffe: BGR, minus ImageNet mean": ("BGR", lambda x: preprocess_input(x.copy())),
    "x / 255 -> [0, 1]": ("RGB", lambda x: x / 255),
    "x / 127.5 - 1 -> [-1, 1]": ("RGB", lambda x: x / 127.5 - 1),
}
converted = {name: convert(batch) for name, (_, convert) in conventions.items()}
print(f"{'convention':<34}{'order':<7}{'our pixel':<28}{'min':>9}{'max':>9}   channel means")
for name, (order, convert) in conventions.items():
    our_pixel = convert(image.astype("float32"))[row, col]
    values = converted[name]
    print(f"{name:<34}{order:<7}{np.array2string(our_pixel, precision=3):<28}"
          f"{values.min():9.3f}{values.max():9.3f}   "
          f"{np.array2string(values.mean(axis=(0, 1, 2)), precision=3)}")

# %%
tf_mode = keras.applications.imagenet_utils.preprocess_input(batch.copy(), mode="tf")
assert np.allclose(tf_mode, converted["x / 127.5 - 1 -> [-1, 1]"])  # "tf" mode is x / 127.5 - 1
caffe_values = converted["caffe: BGR, minus ImageNet mean"]
assert caffe_values.min() >= -123.68 - 1e-3 and caffe_values.max() <= 255 - 103.939 + 1e-3
assert 0 <= converted["x / 255 -> [0, 1]"].min() and converted["x / 255 -> [0, 1]"].max() <= 1

# %% [markdown]
# Only the caffe convention keeps the 0–255 range — shifted to be roughly centred on zero, not
# scaled — and only it reverses the channels. A ResNet50 that expects caffe inputs but gets [0, 1]
# would see tiny numbers, spread about 255 times less than in training, in the wrong colour order;
# exercise 1 shows what happens with the course model.

# %% [markdown]
# ## 2. The preprocessing lives inside the model
#
# In this course you never call `preprocess_input` yourself. The model does it, as its first layer
# after the input.
#
# Why inside the model? The saved model takes raw pixels 0–255 and returns class probabilities.
# Whoever loads it later — notebook 05, the command line, you in a month — cannot forget the step,
# apply a different one, or forget to turn RGB into BGR: training and prediction cannot drift
# apart, as long as they pass RGB pixels 0–255 (Pillow and Keras load RGB; OpenCV loads BGR). It
# also runs on the GPU with the rest of the network. The price: never preprocess images yourself
# before giving them to this model, or it happens twice.
#
# How: a small registered layer (not a `Lambda`, because Keras' safe mode refuses to load
# `Lambda` layers from a file).

# %%
show_source(ResNet50Preprocess)

# %% [markdown]
# Here are the first layers of the course model (random weights: we only need its structure, and
# nothing is downloaded), and a check that its preprocessing layer computes exactly
# `preprocess_input` — on a copy, of course.

# %%
with timed("building the course model"):
    model = build_model(weights=None)
for layer in model.layers[:4]:
    print(f"{layer.name:<12}{type(layer).__name__:<20}{layer.output.shape}")

# %%
to_preprocessed = keras.Model(model.input, model.get_layer("preprocess").output)
float_batch = x_train[:8].astype("float32")
inside_model = keras.ops.convert_to_numpy(to_preprocessed(float_batch))
by_hand = preprocess_input(float_batch.copy())
print("largest difference:", np.abs(inside_model - by_hand).max())

# %%
# extra code – check that the cells above did what the text says
assert isinstance(model.get_layer("preprocess"), ResNet50Preprocess)
assert model.layers[1].name == "preprocess"  # right after the input
assert np.allclose(inside_model, by_hand, atol=1e-4)
assert np.array_equal(float_batch, x_train[:8])  # the layer did not touch our array

# %% [markdown]
# ## 3. One-hot labels
#
# The labels are integers 0–9. The loss the course compiles with, categorical cross-entropy,
# compares the predicted probabilities with a *target distribution*: for a cat (label 3) that is
# `[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]`, a "one-hot" vector. Keras offers
# `keras.utils.to_categorical` to convert a whole NumPy array up front; `make_dataset` instead
# calls `tf.one_hot` on each batch inside the pipeline. Same numbers:

# %%
print("integer labels:", y_train[:4])
print(keras.utils.to_categorical(y_train[:4], num_classes=10))

ordered_ds = make_dataset(x_train, y_train, config.batch_size)  # not shuffled: order of y_train
_, pipeline_labels = next(iter(ordered_ds))
pipeline_labels = pipeline_labels.numpy()
up_front = keras.utils.to_categorical(y_train[:len(pipeline_labels)], num_classes=10)
print("to_categorical:", up_front.shape, up_front.dtype, "| tf.one_hot in make_dataset:",
      pipeline_labels.shape, pipeline_labels.dtype)

# %%
# extra code – check that the cells above did what the text says
assert np.array_equal(pipeline_labels, up_front)
assert pipeline_labels.dtype == np.float32 and (pipeline_labels.sum(axis=1) == 1).all()
assert (pipeline_labels.argmax(axis=1) == y_train[:len(pipeline_labels)]).all()

# %% [markdown]
# Why one-hot in the pipeline rather than up front: the stored labels stay integers, which is what
# the stratified split, the per-class counts and the confusion matrix need; the one-hot vectors are
# made only for the batch being trained on. (The alternative is to skip one-hot altogether and use
# `sparse_categorical_crossentropy` with integer labels — exercise 2.)
#
# ## 4. A stratified validation split
#
# A validation set tells us how the model does on images it does not train on, without touching
# the test set. It is small — 10% of the training images, only 3 per class in the quick profile —
# so a purely random split could easily leave a class over- or under-represented, and validation
# accuracy would then weigh the classes unequally. A *stratified* split keeps every class's share
# exactly (to within one image). `prepare_data` did it with this helper, using scikit-learn:

# %%
show_source(train_val_split)

# %%
print(count_table({"train": y_train, "validation": y_val, "test": y_test}, data.class_names))

# %%
# extra code – check that the cells above did what the text says
before_split = np.concatenate([y_train, y_val])
expected_val = class_counts(before_split) * len(y_val) / len(before_split)
assert np.abs(class_counts(y_val) - expected_val).max() <= 1, "validation split not stratified"
assert abs(len(y_val) - config.val_fraction * len(before_split)) <= 1
assert (class_counts(y_train) > 0).all() and (class_counts(y_val) > 0).all()

# %% [markdown]
# For comparison, a plain random split of the same size (a random permutation of the same labels,
# as a non-stratified `train_test_split` would make):

# %%
random_val = np.random.default_rng(config.seed).permutation(before_split)[:len(y_val)]
print(count_table({"stratified": y_val, "random": random_val}, data.class_names))
print("images per class, stratified:", class_counts(y_val).min(), "to", class_counts(y_val).max(),
      "| random:", class_counts(random_val).min(), "to", class_counts(random_val).max())

# %% [markdown]
# ## 5. The `tf.data` input pipeline
#
# Training reads the data as a stream of batches. `make_dataset` builds that stream:

# %%
show_source(make_dataset)

# %% [markdown]
# Step by step:
#
# - **`from_tensor_slices`** turns the arrays into a dataset of single (image, label) pairs. The
#   images stay `uint8` in memory: the 45,000 CIFAR-10 training images left after the validation
#   split take 138 MB that way (45,000 × 32 × 32 × 3 bytes), as float32 they would take four times
#   as much. `from_tensor_slices` copies the arrays into TensorFlow, so while the NumPy arrays are
#   kept, as here, the training images are held twice: about 276 MB.
# - **`shuffle(len(x))`** draws images in random order from a buffer as large as the dataset, so the
#   shuffle is complete; the seed makes it repeatable, and `reshuffle_each_iteration=True` gives
#   every epoch a new order. Only the training set is shuffled; validation and test keep their
#   order, so predictions line up with `y_val` and `y_test`.
# - **`batch(batch_size)`** groups consecutive images; the last batch may be smaller.
# - **`map`** then converts each whole batch: images to `float32` (still 0–255, the model's first
#   layer preprocesses them) and labels to one-hot. Mapping after batching means one vectorised call
#   per batch instead of one per image.
# - **`prefetch(PREFETCH_BATCHES)`** prepares the next two batches in the background while the
#   model trains on the current one (more on this below).
# - **`without_autotune`** switches off tf.data's autotuning. It is meant to tune expensive
#   pipelines, but here it only cost time: each time `fit` started a new epoch, it waited for
#   autotune's sleeping background thread: 1.5–1.9 s lost at the start of about half the
#   epochs when they lasted 5 s (2-core CPU), more in longer epochs, with the CPU idle
#   (`benchmarks/epoch_start_stall.py` measures it on your machine).
#
# Take one batch and check what the model will receive:

# %%
train_ds = make_dataset(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed)
images, labels = (tensor.numpy() for tensor in next(iter(train_ds)))
print("element spec:", train_ds.element_spec)
print(f"images {images.shape} {images.dtype}, values {images.min():.0f} to {images.max():.0f}")
print(f"labels {labels.shape} {labels.dtype}; batches per epoch: {int(train_ds.cardinality())}")

# %%
# extra code – check that the cells above did what the text says
batch_size = min(config.batch_size, len(x_train))
assert images.shape == (batch_size, 32, 32, 3) and images.dtype == np.float32
assert labels.shape == (batch_size, 10) and labels.dtype == np.float32
assert (labels.sum(axis=1) == 1).all()
assert 0 <= images.min() and images.max() <= 255  # raw pixels: the model preprocesses them
assert int(train_ds.cardinality()) == math.ceil(len(x_train) / config.batch_size)

# %% [markdown]
# Each pass over the dataset (each epoch) starts a new iterator and gets a new order:

# %%
epoch_1, epoch_2 = (next(iter(train_ds))[0].numpy() for _ in range(2))
print("first batch identical in two epochs:", np.array_equal(epoch_1, epoch_2))

# %%
# extra code – check that the cells above did what the text says
assert not np.array_equal(epoch_1, epoch_2)

# %% [markdown]
# ### Why prefetch keeps the model fed
#
# Without prefetching, the two jobs take turns: the pipeline prepares a batch while the model
# waits, then the model trains while the pipeline waits. With `prefetch`, the pipeline prepares
# batch *k + 1* in a background thread while the model trains on batch *k*, so each step costs the
# slower of the two instead of their sum. On a GPU the training step is fast, and a GPU idling
# while it waits for data is a common reason for slow training.
#
# To see it without a GPU, `slow_pipeline` makes each element take 30 ms to prepare, and
# `consume_seconds` spends 30 ms "training" on each. Recent TensorFlow versions insert a prefetch
# on their own when a pipeline ends without one (the `inject_prefetch` optimisation), so
# `slow_pipeline` switches that off for the no-prefetch case; `make_dataset` prefetches explicitly
# rather than relying on it.

# %%
show_source(slow_pipeline)

# %%
steps, prepare_s, train_s = 10, 0.03, 0.03
serial, _ = consume_seconds(slow_pipeline(steps, prepare_s, prefetch=False), train_s)
overlapped, _ = consume_seconds(slow_pipeline(steps, prepare_s, prefetch=True), train_s)
print(f"without prefetch: {serial:.2f} s (taking turns: about {steps * (prepare_s + train_s):.2f})")
print(f"with prefetch:    {overlapped:.2f} s (overlapping: about "
      f"{steps * max(prepare_s, train_s) + min(prepare_s, train_s):.2f})")

# %% [markdown]
# (Measured on your machine just now; the two times can vary a little from run to run.) With real
# data, "preparing" is reading, decoding and augmenting images; for such pipelines
# `tf.data.AUTOTUNE` (as a prefetch buffer or `num_parallel_calls`) lets `tf.data` choose how much
# to prepare ahead and in parallel. Ours converts a batch in well under a millisecond, so two
# batches ahead is plenty.

# %% [markdown]
# ## Optional aside: the in-place trap of `preprocess_input`
#
# *You can skip this section.* In this course the model preprocesses its inputs itself
# (section 2), so you never call `preprocess_input` on your own arrays. The trap matters when
# you write your own input code for a Keras application model.
#
# `preprocess_input` has a side effect worth knowing: given a **float NumPy array**, it writes the
# result into that array and returns a channel-reversed view of it. Your original pixels are gone.
# (Given `uint8` input it must convert to float first, so the original survives; given a tensor,
# nothing is modified.)

# %%
pixels = image.astype("float32")  # our float copy of the image
before = pixels[row, col].copy()
result = preprocess_input(pixels)
print("our array, before the call:", before)
print("our array, after the call: ", pixels[row, col], " <- changed")
print("the result shares memory with our array:", np.shares_memory(result, pixels))

# %%
# extra code – check that the cells above did what the text says
assert not np.array_equal(pixels[row, col], before)  # preprocess_input modified our array
assert np.shares_memory(result, pixels)

# %% [markdown]
# What happened: our array now holds the preprocessed values with the channels still in RGB order,
# and the returned BGR result is the same memory viewed with the channels reversed. Call
# `preprocess_input` on it again and the means are subtracted a second time.
#
# The cure is one word: pass a copy, `preprocess_input(pixels.copy())`. Check it:

# %%
pixels = image.astype("float32")
result = preprocess_input(pixels.copy())
unchanged_uint8 = image.copy()
preprocess_input(unchanged_uint8)  # uint8 input: converted to a new float array first
print("float array untouched:", np.array_equal(pixels, image))
print("uint8 array untouched:", np.array_equal(unchanged_uint8, image))

# %%
# extra code – check that the cells above did what the text says
assert np.array_equal(pixels, image) and np.array_equal(unchanged_uint8, image)
assert np.allclose(result, caffe)

# %% [markdown]
# ## Exercises
#
# **1. Preprocessing twice.** Suppose someone scales the images to [0, 1] before giving them to
# the course model (whose first layer applies the caffe preprocessing). Pass `float_batch / 255`
# through `to_preprocessed` and compare the range and the per-channel standard deviation of the
# result with the correct input. What is left of the image?
#
# <details><summary>Solution</summary>
#
# ```python
# for name, inputs in (("0-255 (correct)", float_batch), ("[0, 1] (wrong)", float_batch / 255)):
#     out = keras.ops.convert_to_numpy(to_preprocessed(inputs))
#     print(f"{name:<16} min {out.min():8.2f}  max {out.max():8.2f}  "
#           f"std per channel {np.round(out.std(axis=(0, 1, 2)), 2)}")
# ```
#
# With [0, 1] inputs every value ends up within one unit of minus the ImageNet mean
# (between about -103 and -124, depending on the channel): within each channel the spread that
# carries the picture shrinks by a factor of 255, and the network sees an almost uniform image.
# Training would still run — nothing crashes — which is what makes this mistake dangerous.
#
# </details>
#
# **2. Sparse labels.** Show that `sparse_categorical_crossentropy` on the integer labels gives the
# same loss as `categorical_crossentropy` on the one-hot labels, for some predicted probabilities.
#
# <details><summary>Solution</summary>
#
# ```python
# logits = np.random.default_rng(0).normal(size=(5, 10)).astype("float32")
# probabilities = keras.ops.softmax(logits)
# dense = keras.losses.categorical_crossentropy(
#     keras.utils.to_categorical(y_train[:5], num_classes=10), probabilities)
# sparse = keras.losses.sparse_categorical_crossentropy(y_train[:5], probabilities)
# print(np.asarray(dense), np.asarray(sparse))
# assert np.allclose(dense, sparse, atol=1e-6)
# ```
#
# They are the same number: cross-entropy with a one-hot target is minus the log-probability of
# the true class. With `loss="sparse_categorical_crossentropy"` the pipeline could keep integer
# labels; the course keeps the original study's one-hot labels.
#
# </details>
#
# **3. How unlucky can a random split be?** Repeat the random split of section 4 with 1,000
# different seeds. How often does some class get no validation image at all? How often is a class
# off by two or more from the stratified count?
#
# <details><summary>Solution</summary>
#
# ```python
# target = class_counts(y_val)
# empty, far_off = 0, 0
# for seed in range(1000):
#     counts = class_counts(np.random.default_rng(seed).permutation(before_split)[:len(y_val)])
#     empty += (counts == 0).any()
#     far_off += (np.abs(counts - target) >= 2).any()
# print(f"some class empty: {empty / 10:.1f}% of splits; "
#       f"some class off by >= 2: {far_off / 10:.1f}%")
# ```
#
# The smaller the validation set, the worse it gets: with the quick profile's 30 validation
# images, about a third of random splits leave some class out entirely (35.1% when we ran it),
# and nearly all are off by two or more somewhere. With the full dataset's 5,000 validation images
# an empty class is practically impossible, but the shares still wobble. Stratifying costs
# nothing, so do it.
#
# </details>
#
# **4. When the pipeline is the bottleneck.** Predict, then measure, both times for
# `prepare_s = 0.05` and `train_s = 0.02`. Which of the two does prefetching hide?
#
# <details><summary>Solution</summary>
#
# ```python
# steps, prepare_s, train_s = 10, 0.05, 0.02
# for prefetch in (False, True):
#     seconds, _ = consume_seconds(slow_pipeline(steps, prepare_s, prefetch=prefetch), train_s)
#     print(f"prefetch={prefetch}: {seconds:.2f} s")
# ```
#
# Without prefetch: about 10 × (0.05 + 0.02) = 0.7 s. With prefetch: about 10 × 0.05 + 0.02 =
# 0.52 s. Prefetching hides the *faster* of the two jobs behind the slower one; when preparing the
# data is the slow part, the model still waits, and the fix is to make the pipeline itself faster
# (e.g. `num_parallel_calls=tf.data.AUTOTUNE` in `map`, or caching).
#
# </details>
