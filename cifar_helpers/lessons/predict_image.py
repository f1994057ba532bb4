"""Try your own image: load a local picture, resize it to the model's input, show top classes."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageOps, UnidentifiedImageError


def model_image_size(model: keras.Model) -> tuple[int, int]:
    """(height, width) of the images the model takes."""
    height, width = model.input.shape[1:3]
    return int(height), int(width)


def read_image_file(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A picture file's pixels as float32 RGB 0-255, upright as a photo viewer shows it,
    transparent parts white (as a viewer shows them; not in 16-bit grey files), and shrunk (by
    whole factors, averaging) to no less than 4x `size` to spare memory."""
    least = 4 * max(size)
    picture = open_upright(os.path.expanduser(os.fspath(path)), least)
    wide = picture.mode.startswith("I")  # 16-bit greyscale: 0-65535
    if not wide and ("A" in picture.getbands() or "transparency" in picture.info):
        picture = Image.alpha_composite(Image.new("RGBA", picture.size, "white"),
                                        picture.convert("RGBA"))
    picture = picture.convert("I" if wide else "RGB")
    factor = min(picture.size) // least
    pixels = np.asarray(picture.reduce(factor) if factor > 1 else picture, dtype=np.float32)
    return np.repeat(pixels[..., None] / 257.0, 3, axis=-1) if wide else pixels


def open_upright(path: str, least: int) -> Image.Image:
    """The decoded picture, turned as its EXIF orientation says (phones store many photos
    sideways), or a ValueError saying why the file cannot be used."""
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (least, least))  # a JPEG is decoded at a fraction of its size
            picture = ImageOps.exif_transpose(opened)
            picture.load()
    except UnidentifiedImageError:
        raise ValueError(f"cannot read {path!r} as an image: use a JPEG or PNG file "
                         "(phone HEIC photos must be converted first)") from None
    except (FileNotFoundError, IsADirectoryError):
        raise
    except OSError as exc:  # decoding failed: a truncated or damaged file
        raise ValueError(f"{path!r} is damaged or incomplete (a cut-off upload?): {exc}") from None
    return picture


def prepare_image(path_or_array: str | os.PathLike | np.ndarray,
                  size: tuple[int, int]) -> np.ndarray:
    """An RGB image as float32 pixels 0-255 of shape (*size, 3), centre-cropped to keep its aspect.

    A file is read with `read_image_file`; an image (H, W), (H, W, 3) or (H, W, 4) is resized
    with antialiasing. Squeezing a photo into the model's square input would distort it, so the
    longer side is cropped first, as CIFAR-10's square, centred objects suggest.
    """
    if isinstance(path_or_array, (str, os.PathLike)):
        path_or_array = read_image_file(path_or_array, size)
    elif np.asarray(path_or_array).dtype.kind == "f" and 0 < np.max(path_or_array, initial=0) <= 1:
        raise ValueError("these pixels lie in 0-1 (plt.imread gives such floats for a PNG); the "
                         "model takes 0-255: multiply by 255, or pass the file's path")
    array = np.asarray(path_or_array, dtype=np.float32)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"expected an image (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[-1] == 4:  # transparent parts white, as a viewer shows them
        opacity = array[..., 3:] / 255.0
        array = array[..., :3] * opacity + 255.0 * (1.0 - opacity)
    if array.shape[:2] != tuple(size):
        array = keras.ops.convert_to_numpy(keras.ops.image.resize(
            array, size, interpolation="bilinear", antialias=True, crop_to_aspect_ratio=True))
    return np.clip(array, 0.0, 255.0).astype(np.float32)


def image_probabilities(model: keras.Model, path_or_array: str | os.PathLike | np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(the resized image the model sees, its class probabilities)."""
    image = prepare_image(path_or_array, model_image_size(model))
    probabilities = keras.ops.convert_to_numpy(model(image[None], training=False))[0]
    return image, probabilities.astype(np.float64)


def top_classes(probabilities: np.ndarray, class_names: Sequence[str], top: int = 3
                ) -> list[tuple[str, float]]:
    """The `top` most probable classes as (name, probability), most probable first."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:top]
    return [(class_names[i], float(probabilities[i])) for i in order]


def classify_image(model: keras.Model, path_or_array: str | os.PathLike | np.ndarray,
                   class_names: Sequence[str], top: int = 3) -> list[tuple[str, float]]:
    """Classify one local image file (or array): its `top` classes as (name, probability)."""
    _, probabilities = image_probabilities(model, path_or_array)
    return top_classes(probabilities, class_names, top)


def plot_image_prediction(image: np.ndarray, probabilities: np.ndarray,
                          class_names: Sequence[str], *, top: int = 3, title: str | None = None
                          ) -> Figure:
    """The image as the model sees it, beside bars of its `top` class probabilities."""
    ranking = top_classes(probabilities, class_names, top)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2),
                                      gridspec_kw={"width_ratios": [1, 1.6]})
    left.imshow(np.asarray(image).astype("uint8"))
    left.set_title(title or f"what the model sees ({image.shape[0]}×{image.shape[1]})", fontsize=9)
    left.axis("off")
    names = [name for name, _ in ranking][::-1]
    values = [value for _, value in ranking][::-1]
    right.barh(names, values, color="tab:blue")
    for y, value in enumerate(values):
        right.text(min(value + 0.02, 0.85), y, f"{value:.2f}", va="center", fontsize=9)
    right.set_xlim(0, 1)
    right.set_xlabel("probability")
    right.set_title(f"top {len(ranking)} of {len(class_names)} classes", fontsize=9)
    fig.tight_layout()
    return fig
