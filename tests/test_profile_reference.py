"""The faster strip profile and image statistics against the code they replaced.

The reference below is the earlier code of both modules. It took the profile
from a whole 64×96 BOX resample, one edge at a time and with np.median. It
took the statistics from a 96×96 RGBA grid, one corner at a time and with
float64 means and deviations. Cached profiles and stored statistics came from that
code, so the new code must give the same float32 values bit for bit, on real
covers, on hostile images and on synthetic edge cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from coverpick.covers.decode import decode_image, decode_rgba, to_rgb_on_white
from coverpick.vision import profile, stats
from tests.test_phase1 import artwork, on_canvas, wii_u_cover
from tests.test_phase1_reference import catalogue_files, decoded, hostile_files

# The earlier strip profile.

_REFERENCE_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def reference_rows_profile(block: np.ndarray) -> np.ndarray:
    luma = block @ _REFERENCE_LUMA
    median = np.median(block, axis=1, keepdims=True)
    flat_share = (np.abs(block - median).max(axis=2) < 0.08).mean(axis=1)
    brightness_std = luma.std(axis=1)
    detail = np.abs(np.diff(luma, axis=1)).mean(axis=1)
    means = block.mean(axis=1)
    colour_step = np.append(np.linalg.norm(np.diff(means, axis=0), axis=1), 0.0)
    return np.stack([flat_share, brightness_std, detail, colour_step], axis=1).ravel()


def reference_strip_profile(img_rgb: Image.Image) -> np.ndarray:
    rgb = img_rgb.convert("RGB") if img_rgb.mode != "RGB" else img_rgb
    grid = np.asarray(rgb.resize((64, 96), Image.Resampling.BOX), dtype=np.float32) / 255.0
    top = reference_rows_profile(grid[:16])
    bottom = reference_rows_profile(grid[::-1][:16])
    return np.concatenate([top, bottom]).astype(np.float32)


# The earlier image statistics.

_REFERENCE_GREY = np.array([0.299, 0.587, 0.114])


def reference_image_statistics(img_rgba: Image.Image, natural_size: tuple[int, int]) -> np.ndarray:
    grid = reference_resample_grid(img_rgba)
    width, height = natural_size
    values = [
        *reference_border_whiteness(grid),
        *reference_corner_background(grid),
        float(np.log10(max(1, int(width) * int(height)))),
        reference_log10_laplacian_variance(grid),
    ]
    return np.asarray(values, dtype=np.float32)


def reference_resample_grid(img_rgba: Image.Image) -> np.ndarray:
    small = img_rgba.resize((96, 96), Image.Resampling.NEAREST)
    return np.asarray(small if small.mode == "RGBA" else small.convert("RGBA"), dtype=np.uint8)


def reference_border_whiteness(grid: np.ndarray) -> tuple[float, float, float, float]:
    mask = (grid[..., :3] >= 235).all(axis=-1) | (grid[..., 3] <= 31)
    return (
        float(mask[:6].mean()),
        float(mask[-6:].mean()),
        float(mask[:, :6].mean()),
        float(mask[:, -6:].mean()),
    )


def reference_corner_background(grid: np.ndarray) -> tuple[float, ...]:
    views = [grid, grid[:, ::-1], grid[::-1, :], grid[::-1, ::-1]]
    colours = [reference_flat_patch_colour(view) for view in views]
    scores = []
    for index, view in enumerate(views):
        transparent = float((view[:8, :8, 3] <= 31).mean())
        band = reference_band_flag(view, colours[index], colours[index ^ 1], colours[index ^ 2])
        scores.append(max(transparent, band, reference_cut_corner_flag(view)))
    return tuple(scores)


def reference_flat_patch_colour(view: np.ndarray) -> np.ndarray | None:
    colours = view[:8, :8, :3].reshape(-1, 3).astype(np.float64)
    if colours.std(axis=0).max() >= 12.0:
        return None
    return colours.mean(axis=0)


def reference_band_flag(view, colour, same_row_colour, same_column_colour) -> float:
    if colour is None:
        return 0.0
    along_top = reference_continues(view[0, :24], colour)
    along_side = reference_continues(view[:24, 0], colour)
    if along_top and along_side:
        return 1.0
    if along_top and reference_same_colour(colour, same_column_colour):
        return 1.0
    if along_side and reference_same_colour(colour, same_row_colour):
        return 1.0
    return 0.0


def reference_continues(edge: np.ndarray, colour: np.ndarray) -> bool:
    pixels = edge.astype(np.float64)
    matches = np.abs(pixels[:, :3] - colour).max(axis=1) <= 24
    matches |= pixels[:, 3] <= 31
    return bool(matches.mean() >= 0.9)


def reference_same_colour(colour: np.ndarray, other: np.ndarray | None) -> bool:
    return other is not None and bool(np.abs(colour - other).max() <= 24)


def reference_cut_corner_flag(grid: np.ndarray) -> float:
    block = grid[:2, :2].reshape(-1, 4).astype(np.float64)
    if block[:, :3].std(axis=0).max() >= 12.0:
        return 0.0
    colour = block[:, :3].mean(axis=0)
    along_top = grid[0, 5:7, :3].astype(np.float64).mean(axis=0)
    along_side = grid[5:7, 0, :3].astype(np.float64).mean(axis=0)
    differs_from_top = np.abs(colour - along_top).max() > 60
    differs_from_side = np.abs(colour - along_side).max() > 60
    return float(differs_from_top and differs_from_side)


def reference_log10_laplacian_variance(grid: np.ndarray) -> float:
    rgb = grid[..., :3].astype(np.float64)
    alpha = grid[..., 3:4].astype(np.float64) / 255.0
    grey = (rgb * alpha + 255.0 * (1.0 - alpha)) @ _REFERENCE_GREY
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    return float(np.log10(1.0 + laplacian.var()))


# Inputs and comparison.


def synthetic_images() -> list[tuple[str, Image.Image, tuple[int, int]]]:
    """Edge cases: transparency, tiny and extreme sizes, grey and palette modes, covers on canvases."""
    rng = np.random.default_rng(7)

    def noise(width: int, height: int, channels: int = 3) -> np.ndarray:
        return rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)

    half_transparent = noise(120, 170, 4)
    half_transparent[..., 3] = np.where(np.arange(120) < 60, 0, 255)[None, :]
    palette = Image.fromarray(noise(90, 130)).quantize(16)
    palette_keyed = palette.copy()
    palette_keyed.info["transparency"] = 3
    rgb_keyed = Image.fromarray(np.repeat(np.repeat(noise(4, 6), 30, axis=0), 30, axis=1))
    rgb_keyed.info["transparency"] = tuple(int(value) for value in np.asarray(rgb_keyed)[0, 0])
    framed = wii_u_cover()
    images = {
        "fully transparent": Image.new("RGBA", (200, 280), (12, 200, 40, 0)),
        "half transparent": Image.fromarray(half_transparent, "RGBA"),
        "opaque RGBA": Image.fromarray(noise(150, 210)).convert("RGBA"),
        "1x1 RGB": Image.new("RGB", (1, 1), (250, 250, 250)),
        "1x1 RGBA": Image.new("RGBA", (1, 1), (0, 0, 0, 0)),
        "very wide": Image.fromarray(noise(3000, 3)),
        "very tall": Image.fromarray(noise(3, 3000)),
        "tall strip": Image.fromarray(noise(40, 1500)),
        "greyscale": Image.fromarray(noise(140, 200, 1)[..., 0], "L"),
        "greyscale with alpha": Image.fromarray(noise(140, 200, 2), "LA"),
        "palette": palette,
        "palette with transparent index": palette_keyed,
        "RGB with colour key": rgb_keyed,
        "flat white": Image.new("RGB", (300, 420), (255, 255, 255)),
        "flat black": Image.new("RGB", (300, 420), (0, 0, 0)),
        "art": artwork(310, 440).convert("RGB"),
        "cover": framed,
    }
    for name, colour in {"white": (255, 255, 255, 255), "black": (0, 0, 0, 255), "magenta": (255, 0, 255, 255)}.items():
        images[f"cover on {name}"] = on_canvas(framed, (600, 600), colour).convert("RGB")
        images[f"cover on {name}, tall canvas"] = on_canvas(framed, (420, 900), colour).convert("RGB")
    images["cover on transparent"] = on_canvas(framed, (600, 600), (0, 0, 0, 0))
    return [(name, image, image.size) for name, image in images.items()]


def profile_input(image: Image.Image) -> Image.Image:
    """The image that the sweep passes to strip_profile: RGB, with transparency composited on white."""
    return image if image.mode == "RGB" else to_rgb_on_white(image)


def assert_same_as_reference(images, *, sweep_profile_input: bool = True) -> None:
    assert images, "no image decoded"
    for name, image, natural in images:
        expected = reference_image_statistics(image, natural)
        actual = stats.image_statistics(image, natural)
        assert actual.dtype == expected.dtype, name
        assert actual.tobytes() == expected.tobytes(), f"{name}: statistics {actual} != {expected}"

        inputs = [profile_input(image)] if sweep_profile_input else []
        inputs.append(image)
        for rgb in inputs:
            expected = reference_strip_profile(rgb)
            actual = profile.strip_profile(rgb)
            assert actual.dtype == expected.dtype, name
            assert actual.tobytes() == expected.tobytes(), f"{name} ({rgb.mode}): profile"


def test_catalogue_covers_match_reference():
    """About 300 covers through the sweep's decode: RGB at a 224 px draft."""
    assert_same_as_reference(decoded(catalogue_files(300), decode_image, (224, 224)))


def test_catalogue_covers_rgba_match_reference():
    assert_same_as_reference(decoded(catalogue_files(60), decode_rgba, (192, 192)))


@pytest.mark.parametrize("draft_size", [(224, 224), None], ids=["draft", "full"])
def test_hostile_images_match_reference(draft_size):
    images = decoded(hostile_files(), decode_image, draft_size)
    images += decoded(hostile_files(), decode_rgba, draft_size)
    assert_same_as_reference(images)


def test_synthetic_images_match_reference():
    assert_same_as_reference(synthetic_images())


def test_edge_rows_match_full_resample():
    """The partial resample keeps the rows of Pillow's whole 64×96 BOX resample, whichever pass Pillow runs first."""
    rng = np.random.default_rng(11)
    heights = [*range(1, 200), *range(200, 2400, 53)]
    for height in heights:
        widths = {1, 40, 63, 64, 65, height // 2, height * 2 // 3, height * 2 // 3 + 1, height, 2 * height + 3}
        for width in sorted(w for w in widths if w > 0):
            image = Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
            full = np.asarray(image.resize((64, 96), Image.Resampling.BOX))

            rows = profile._edge_rows(image)

            assert np.array_equal(rows[0], full[:16]), f"{width}x{height}: top rows"
            assert np.array_equal(rows[1], full[::-1][:16]), f"{width}x{height}: bottom rows"


def test_reference_sees_padding_and_flat_rows():
    """The references still see a white margin and a flat strip, so a broken copy cannot pass by returning constants."""
    padded = on_canvas(artwork(200, 280), (300, 380), (255, 255, 255, 255)).convert("RGB")

    statistics = reference_image_statistics(padded, padded.size)
    strip = reference_strip_profile(Image.new("RGB", (300, 420), (40, 90, 200)))

    assert statistics[:4].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert statistics[4:8].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert strip.reshape(-1, 4)[:, 0].tolist() == [1.0] * 32
