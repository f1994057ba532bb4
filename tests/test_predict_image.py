"""'Try your own image': a local file of any size is resized to the model's input and classified."""

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from cifar_helpers.data import CLASS_NAMES
from cifar_helpers.lessons.predict_image import (classify_image, image_probabilities,
                                                 plot_image_prediction, prepare_image,
                                                 read_image_file, top_classes)


@pytest.fixture(scope="module")
def tiny_model():
    """A small CNN with the course model's input and output: 32x32 RGB 0-255 -> 10 classes."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def png_file(tmp_path):
    """A 90x60 (width x height) RGB picture: left half red, right half blue, outer columns green."""
    pixels = np.zeros((60, 90, 3), dtype=np.uint8)
    pixels[:, :45, 0] = 255
    pixels[:, 45:, 2] = 255
    pixels[:, list(range(10)) + list(range(80, 90))] = (0, 255, 0)
    path = tmp_path / "my photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_a_file_of_another_size_is_resized_and_classified(tiny_model, png_file):
    image, probabilities = image_probabilities(tiny_model, png_file)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 255
    assert probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    ranking = classify_image(tiny_model, str(png_file), CLASS_NAMES)
    assert len(ranking) == 3 and all(name in CLASS_NAMES for name, _ in ranking)
    assert [p for _, p in ranking] == sorted((p for _, p in ranking), reverse=True)
    assert ranking[0] == (CLASS_NAMES[probabilities.argmax()],
                          pytest.approx(probabilities.max(), abs=1e-6))


def test_the_centre_is_kept_rather_than_the_picture_squeezed(png_file):
    # 90x60 is cropped to its central 60x60 (columns 15..74): the green bands are cut away, leaving
    # half red, half blue; squeezing would keep green at both edges. A file and an array alike.
    for source in (png_file, np.asarray(Image.open(png_file))):
        image = prepare_image(source, (32, 32))
        assert image[..., 1].max() < 5
        assert image[:, :12, 0].mean() > 250 and image[:, :12, 2].mean() < 5
        assert image[:, -12:, 2].mean() > 250 and image[:, -12:, 0].mean() < 5


def test_a_sideways_phone_photo_is_turned_upright(tmp_path):
    # Stored as landscape (red left, green right) with EXIF Orientation 6 ("rotate 90° clockwise
    # to view"): a viewer shows red on top, green below, and so must the model's input.
    stored = np.zeros((40, 80, 3), dtype=np.uint8)
    stored[:, :40, 0] = 255
    stored[:, 40:, 1] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    image = prepare_image(path, (32, 32))
    top, bottom = image[:8].mean(axis=(0, 1)), image[-8:].mean(axis=(0, 1))
    assert top[0] > 200 > top[1] and bottom[1] > 200 > bottom[0]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_large_photo_is_shrunk_before_it_becomes_floats(tmp_path, suffix):
    # a phone photo as float32 at full size takes hundreds of MB; 4x the input is plenty
    path = tmp_path / f"large{suffix}"
    Image.fromarray(np.full((800, 1000, 3), 200, dtype=np.uint8)).save(path)
    pixels = read_image_file(path, (32, 32))
    assert 128 <= min(pixels.shape[:2]) < 256 and pixels.shape[2] == 3
    assert pixels.shape[1] / pixels.shape[0] == pytest.approx(1000 / 800, rel=0.02)
    np.testing.assert_allclose(pixels, 200, atol=2)


@pytest.mark.parametrize("side", [32, 600])
def test_a_16_bit_grey_file_keeps_its_brightness(tmp_path, side):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((side, side), 32768, dtype=np.uint16)).save(path)
    np.testing.assert_allclose(prepare_image(path, (32, 32)), 32768 / 257, atol=0.5)
    assert read_image_file(path, (32, 32)).shape[0] < 256  # shrunk like any other photo


def test_an_unreadable_file_names_itself(tmp_path):
    path = tmp_path / "photo.heic"
    path.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"photo\.heic.*JPEG or PNG"):
        prepare_image(path, (32, 32))


def test_the_size_comes_from_the_model():
    inputs = keras.Input((24, 20, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(flat))
    pixels = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    image, probabilities = image_probabilities(model, pixels)
    assert image.shape == (24, 20, 3)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_arrays_grey_rgba_and_ready_sized_are_accepted(tiny_model):
    grey = np.full((40, 40), 128, dtype=np.uint8)
    assert prepare_image(grey, (32, 32)).shape == (32, 32, 3)
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 1] = 200
    rgba[:, :16, 3] = 255  # left half opaque green, right half transparent
    ready = prepare_image(rgba, (32, 32))
    assert ready.shape == (32, 32, 3) and np.all(ready[:, :16] == (0, 200, 0))
    assert np.all(ready[:, 16:] == 255)  # white, as a viewer shows it
    assert len(classify_image(tiny_model, rgba, CLASS_NAMES, top=5)) == 5
    with pytest.raises(ValueError, match="expected an image"):
        prepare_image(np.zeros((4, 4, 2), dtype=np.uint8), (32, 32))
    assert prepare_image(np.zeros((8, 8, 3)), (32, 32)).max() == 0  # black in any scale


def test_a_transparent_png_is_seen_on_white_whatever_hides_under_it(tmp_path):
    pixels = np.zeros((40, 40, 4), dtype=np.uint8)  # transparent black around...
    pixels[10:30, 10:30] = (255, 0, 0, 255)  # ...an opaque red square
    Image.fromarray(pixels).save(tmp_path / "cut-out.png")
    Image.fromarray(pixels).convert("P").save(tmp_path / "palette.png", transparency=0)
    for name in ("cut-out.png", "palette.png"):  # alpha channel; a palette's transparent colour
        image = read_image_file(tmp_path / name, (32, 32))
        assert image[0, 0].tolist() == [255, 255, 255] and image[20, 20].tolist() == [255, 0, 0]


def test_pixels_in_0_to_1_are_refused_with_what_to_do(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="0-1 .*multiply by 255"):
        prepare_image(plt.imread(tmp_path / "x.png"), (32, 32))
    assert prepare_image(plt.imread(tmp_path / "x.png") * 255, (32, 32)).max() == 200


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_damaged_file_names_itself_and_the_likely_cause(tmp_path, damage):
    path = tmp_path / "upload.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3] if damage == "truncated"
                     else data[:600] + bytes(len(data) - 600))
    # Pillow 12 cannot even identify the corrupted one (13 can): either message names the file
    with pytest.raises(ValueError, match=r"upload\.jpg' (is damaged or incomplete|as an image)"):
        prepare_image(path, (32, 32))


def test_a_path_with_a_tilde_is_read_from_home(tmp_path, monkeypatch, png_file):
    monkeypatch.setenv("HOME", str(png_file.parent))
    assert prepare_image(f"~/{png_file.name}", (32, 32)).shape == (32, 32, 3)


def test_top_classes_are_sorted_and_named():
    probabilities = np.array([0.1, 0.5, 0.0, 0.4])
    assert top_classes(probabilities, "abcd", top=2) == [("b", 0.5), ("d", 0.4)]


def test_the_plot_shows_image_and_bars(tiny_model, png_file):
    image, probabilities = image_probabilities(tiny_model, png_file)
    fig = plot_image_prediction(image, probabilities, CLASS_NAMES)
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) == 3
