"""Grad-CAM: the layer it picks, the shape of its maps, and that it points at the evidence."""

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cifar_helpers.lessons.gradcam import gradcam, gradcam_layer, plot_gradcam, spatial_size
from cifar_helpers.model import build_model


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


def test_resnet_at_32_pixels_uses_the_last_2x2_layer(resnet):
    assert gradcam_layer(resnet) == "conv4_block6_out"
    assert spatial_size(resnet.get_layer("conv4_block6_out")) == (2, 2)
    assert spatial_size(resnet.get_layer("conv5_block1_out")) == (1, 1)
    assert spatial_size(resnet.get_layer("predictions")) is None


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
