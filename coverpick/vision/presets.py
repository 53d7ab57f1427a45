"""Image preprocessing for the backbone, shared by training, export and inference.

Covers are letterboxed onto a white square (aspect preserved, never squashed),
because a 3D box, a DS case and a DVD case differ mostly in proportions.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

INPUT_SIZE = 224
# EfficientNet-Lite was trained on inputs scaled to about [-1, 1]: (x - 127) / 128.
MEAN = np.array([0.5, 0.5, 0.5], dtype=np.float32)
STD = np.array([0.5, 0.5, 0.5], dtype=np.float32)
PAD_COLOUR = (255, 255, 255)
# Backbone views of each cover, in the order their features are concatenated.
VIEWS = ("full", "bands")


def letterbox(img: Image.Image, size: int = INPUT_SIZE) -> Image.Image:
    """Resize the RGB image to fit a size×size square and pad the rest with white."""
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    width, height = rgb.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = rgb.resize(new_size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = Image.new("RGB", (size, size), PAD_COLOUR)
    canvas.paste(resized, ((size - new_size[0]) // 2, (size - new_size[1]) // 2))
    return canvas


def to_input_array(img: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """Return the normalised CHW float32 array the backbone takes for one cover."""
    square = letterbox(img, size)
    array = np.asarray(square, dtype=np.float32) / 255.0
    array = (array - MEAN) / STD
    return np.ascontiguousarray(array.transpose(2, 0, 1))


# Share of the cover's height that each band of the bands view covers. Console
# banners, "available on" strips and key-card or code-in-a-box notices sit in
# the top or bottom fifth of a box front.
BAND_SHARE = 0.22


def bands_view(img: Image.Image, size: int = INPUT_SIZE) -> Image.Image:
    """Return the top and bottom bands of the cover stacked into one size×size image.

    The full view shrinks a banner to a few pixel rows; this view gives each
    band half the backbone's input, stretched to the full width.
    """
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    width, height = rgb.size
    band = max(1, round(height * BAND_SHARE))
    half = size // 2
    top = rgb.crop((0, 0, width, band)).resize((size, half), Image.Resampling.BILINEAR, reducing_gap=2.0)
    bottom = rgb.crop((0, height - band, width, height)).resize((size, size - half), Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = Image.new("RGB", (size, size), PAD_COLOUR)
    canvas.paste(top, (0, 0))
    canvas.paste(bottom, (0, half))
    return canvas


def to_view_arrays(img: Image.Image, views: tuple[str, ...]) -> list[np.ndarray]:
    """Normalised CHW arrays for each requested view of one cover ("full" or "bands")."""
    arrays = []
    for view in views:
        shaped = letterbox(img) if view == "full" else bands_view(img)
        array = (np.asarray(shaped, dtype=np.float32) / 255.0 - MEAN) / STD
        arrays.append(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return arrays
