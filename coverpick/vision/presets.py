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
