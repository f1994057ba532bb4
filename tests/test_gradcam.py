"""Grad-CAM: the layer it picks, the shape of its maps, and that it points at the evidence."""

import tensorflow as tf

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cifar_helpers.lessons.gradcam import (gradcam, gradcam_layer, live_cells, plot_gradcam,
                                          spatial_size)
from cifar_helpers.fast_ops import with_fast_layers
from cifar_helpers.model import build_model
from cifar_helpers.speed import dtype_policy


@pytest.fixture(scope="module")
def resnet():
    return build_model(weights=None)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def patch_detector() -> keras.Model:
    """Class 0 scores bright pixels, class 1 the opposite; a 16x16 feature map keeps where."""
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(1, 1, activation="relu", name="features",
                                   kernel_initializer="ones")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("predictions").set_weights([np.array([[1.0, -1.0]]), np.zeros(2)])
    return model


def bright_patch_image() -> np.ndarray:
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    image[2:6, 9:13] = 255
    return image


def cell_gradients(model: keras.Model, layer_names: list[str], class_index: int = 3) -> list:
    """Per layer: sum over images and channels of |d p(class) / d output|, (H, W); 0 = unread."""
    layers = [model.get_layer(name).output for name in layer_names]
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3)).astype("float32")
    with tf.GradientTape() as tape:
        *features, probabilities = keras.Model(model.inputs, [*layers, model.output])(
            tf.constant(images), training=False)
        score = tf.reduce_sum(probabilities[:, class_index])
    return [np.abs(g.numpy()).sum(axis=(0, 3)) for g in tape.gradient(score, features)]


def test_resnet_at_32_pixels_uses_a_2x2_layer_every_cell_of_which_counts(resnet):
    chosen = gradcam_layer(resnet)
    assert spatial_size(resnet.get_layer(chosen)) == (2, 2)
    assert spatial_size(resnet.get_layer("conv5_block1_out")) == (1, 1)
    assert spatial_size(resnet.get_layer("predictions")) is None
    # conv5's stride-2 1x1 convolutions read only the top-left cell of the last 2x2 block output
    chosen_cells, last_2x2_output = cell_gradients(resnet, [chosen, "conv4_block6_out"])
    assert np.all(chosen_cells > 0), chosen_cells
    assert np.count_nonzero(last_2x2_output) == 1 and last_2x2_output[0, 0] > 0
    assert chosen == "conv4_block6_1_relu"  # block 6's 3x3 conv gathers its 4 cells into that one


def test_live_cells_are_the_cells_with_a_gradient(resnet):
    names = ["conv4_block6_out", "conv4_block6_add", "conv4_block6_2_relu", "conv4_block6_1_relu",
             "conv4_block5_out", "conv3_block4_out", "conv3_block3_out"]
    for name, gradients in zip(names, cell_gradients(resnet, names)):
        np.testing.assert_array_equal(live_cells(resnet, name), gradients > 0, err_msg=name)
    with pytest.raises(ValueError, match="image-like"):
        live_cells(resnet, "predictions")


def grid_then_1x1(kernel: int) -> keras.Model:
    """8x8 'early' map pooled to a 2x2 'grid', then a stride-2 conv to 1x1; early also pooled."""
    inputs = keras.Input((8, 8, 3))
    early = keras.layers.Conv2D(4, 3, padding="same", name="early")(inputs)
    grid = keras.layers.MaxPooling2D(4, name="grid")(early)
    to_1x1 = keras.layers.Conv2D(4, kernel, strides=2, name="to_1x1")(grid)
    both = keras.layers.Concatenate()([keras.layers.Flatten()(to_1x1),
                                       keras.layers.GlobalAveragePooling2D()(early)])
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(both))


def test_a_layer_whose_consumer_strides_past_its_kernel_is_skipped():
    skipping = grid_then_1x1(kernel=1)  # stride 2 > kernel 1: reads only the grid's cell (0, 0)
    np.testing.assert_array_equal(live_cells(skipping, "grid"), [[True, False], [False, False]])
    assert gradcam_layer(skipping) == "early"
    assert gradcam_layer(grid_then_1x1(kernel=2)) == "grid"  # stride 2 = kernel 2: all 4 read


@pytest.mark.parametrize("padding, expected", [
    ("valid", [[1, 1, 0], [1, 1, 0], [0, 0, 0]]),  # the last row and column fall off
    ("same", [[1, 1, 1], [1, 1, 1], [1, 1, 1]]),
])
def test_live_cells_follow_the_padding(padding, expected):
    inputs = keras.Input((3, 3, 1))
    grid = keras.layers.Conv2D(1, 1, name="grid")(inputs)
    pooled = keras.layers.MaxPooling2D(2, padding=padding)(grid)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(pooled))
    np.testing.assert_array_equal(live_cells(model, "grid"), np.array(expected, dtype=bool))


def test_upsampled_inputs_make_deeper_layers_qualify():
    model = build_model(weights=None, image_size=64)  # 32x32 images, upsampled inside the model
    assert gradcam_layer(model) == "conv5_block3_out"
    assert spatial_size(model.get_layer("conv5_block3_out")) == (2, 2)
    image = np.random.default_rng(1).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    assert gradcam(model, image).shape == (32, 32)  # the map comes back at the image's size


def test_resnet_heatmaps_have_the_image_size_and_lie_in_0_1(resnet):
    images = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    heatmaps = gradcam(resnet, images)
    assert heatmaps.shape == (3, 32, 32) and heatmaps.dtype == np.float32
    assert np.all(np.isfinite(heatmaps)) and heatmaps.min() >= 0 and heatmaps.max() <= 1
    assert gradcam(resnet, images[0], class_index=4).shape == (32, 32)


def test_the_map_points_at_the_evidence_for_the_class():
    model = patch_detector()
    image = bright_patch_image()
    assert gradcam_layer(model) == "features"
    assert model.predict(image[None], verbose=0)[0, 0] == 1.0  # so sure the softmax saturates
    heatmap = gradcam(model, image, class_index=0)  # logits, not probabilities: still a map
    assert heatmap.max() == pytest.approx(1.0)
    peak = np.unravel_index(heatmap.argmax(), heatmap.shape)
    assert 2 <= peak[0] < 6 and 9 <= peak[1] < 13
    assert heatmap[2:6, 9:13].mean() > 3 * heatmap.mean()
    # the patch is evidence *against* class 1: nothing positive is left after the ReLU
    assert np.all(gradcam(model, image, class_index=1) == 0)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_models_get_the_same_map(policy):
    """What the fast profile trains (bf16 on CPUs, float16 on GPUs): the layer computes in half
    precision, so its gradient must be taken of its own output, not of a float32 copy."""
    with dtype_policy(policy):
        model = patch_detector()
    assert model.get_layer("features").compute_dtype != "float32"
    heatmap = gradcam(model, bright_patch_image(), class_index=0)
    np.testing.assert_allclose(heatmap, gradcam(patch_detector(), bright_patch_image(), 0),
                               atol=0.02)


def test_a_bf16_resnet_with_fast_layers_gets_maps():
    """Random weights: a class's map may be all zero (no positive evidence), so all ten classes."""
    keras.utils.set_random_seed(0)
    with dtype_policy("mixed_bfloat16"):
        model = with_fast_layers(build_model(weights=None))
    images = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    heatmaps = np.stack([gradcam(model, images, class_index=c) for c in range(10)])
    assert heatmaps.shape == (10, 2, 32, 32) and np.all(np.isfinite(heatmaps))
    assert heatmaps.max(axis=(0, 2, 3)).tolist() == pytest.approx([1.0, 1.0], abs=0.01)


def test_a_model_with_a_separate_softmax_layer_uses_log_probabilities():
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(1, 1, activation="relu", name="features",
                                   kernel_initializer=keras.initializers.Constant(0.01))(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    model.get_layer("logits").set_weights([np.array([[1.0, -1.0]]), np.zeros(2)])
    heatmap = gradcam(model, bright_patch_image(), class_index=0)
    assert heatmap[2:6, 9:13].mean() > 3 * heatmap.mean()


def test_default_class_is_the_prediction_and_classes_can_differ_per_image():
    model = patch_detector()
    images = np.stack([bright_patch_image(), bright_patch_image()])
    assert model.predict(images, verbose=0).argmax(axis=1).tolist() == [0, 0]
    np.testing.assert_allclose(gradcam(model, images), gradcam(model, images, class_index=0))
    mixed = gradcam(model, images, class_index=[0, 1])
    assert mixed[0].max() == pytest.approx(1.0) and np.all(mixed[1] == 0)


def test_the_layer_can_be_chosen_and_a_model_without_one_is_refused():
    inputs = keras.Input((8, 8, 3))
    early = keras.layers.Conv2D(4, 3, padding="same", name="early")(inputs)
    late = keras.layers.MaxPooling2D(8, name="to_1x1")(early)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(late))
    model = keras.Model(inputs, outputs)
    assert gradcam_layer(model) == "early"
    image = np.full((8, 8, 3), 100, dtype=np.uint8)
    assert gradcam(model, image, layer_name="early").shape == (8, 8)
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="1x1"):
        gradcam_layer(dense_only)


def test_overlay_plot_has_two_rows():
    images = np.stack([bright_patch_image()] * 3)
    heatmaps = gradcam(patch_detector(), images)
    fig = plot_gradcam(images, heatmaps, titles=["a", "b", "c"])
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "a"
    fig = plot_gradcam(images, [heatmaps, heatmaps], row_labels=["class 0", "again"])
    assert len(fig.axes) == 9 and fig.axes[3].get_ylabel() == "class 0"


def test_a_model_with_a_nested_base_is_refused_with_the_remedy():
    """Notebook 04's keras-io style model: a wrong 'no layer qualifies' error before."""
    from cifar_helpers.lessons.batchnorm import nested_training_false_model

    with pytest.raises(ValueError, match="nested model.*put the base's layers in the model"):
        gradcam_layer(nested_training_false_model())


def test_the_augmentation_block_of_an_augmented_model_is_no_obstacle(resnet):
    """build_model(augment=True) nests a Sequential of random flips and shifts, no convolution."""
    augmented = build_model(weights=None, augment=True)
    assert gradcam_layer(augmented) == gradcam_layer(resnet)
    images = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    assert gradcam(augmented, images).shape == (2, 32, 32)
