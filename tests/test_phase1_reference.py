"""The vectorised phase-1 detector against the straightforward implementation it replaced.

The reference below is the earlier code of the helpers that changed. It
finds the cover box from the whole 128×128 canvas grid, converts to HSV in
float64 with np.select, and runs banner rules that loop over band tops with
one numpy reduction per measurement. The new code must give the same boxes, the same
HSV arrays, the same rule strengths bit for bit and so the same results, on
real covers, on hostile images and on drawn covers on canvases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coverpick.covers.decode import ImageDecodeError, decode_image, decode_rgba
from coverpick.vision import phase1
from tests.conftest import HOSTILE_IMAGES, SHARED
from tests.test_phase1 import artwork, on_canvas, ps3_cover, ps4_cover, wii_u_cover, xbox_360_cover

CATALOGUE_IMAGES = SHARED / "catalogue" / "images"
GRID_WIDTH, GRID_HEIGHT = 64, 96
CANVAS_GRID = 128


def reference_find_cover_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    resampled = image.resize((CANVAS_GRID, CANVAS_GRID), Image.Resampling.BOX, reducing_gap=3.0)
    small = np.asarray(resampled if resampled.mode == "RGBA" else resampled.convert("RGBA"))
    alpha = small[..., 3]
    colours = small[..., :3].astype(np.int16)
    canvas = reference_canvas_colour(small)
    if canvas is None or canvas == "transparent":
        mask = alpha >= 128
    else:
        differs = np.abs(colours - np.asarray(canvas, dtype=np.int16)).max(axis=-1) > 40
        mask = differs & (alpha >= 128)
    rows = np.flatnonzero(mask.mean(axis=1) >= 0.02)
    columns = np.flatnonzero(mask.mean(axis=0) >= 0.02)
    if rows.size == 0 or columns.size == 0:
        return None
    scale_x = image.width / CANVAS_GRID
    scale_y = image.height / CANVAS_GRID
    return (
        int(columns[0] * scale_x),
        int(rows[0] * scale_y),
        max(int(np.ceil((columns[-1] + 1) * scale_x)), int(columns[0] * scale_x) + 1),
        max(int(np.ceil((rows[-1] + 1) * scale_y)), int(rows[0] * scale_y) + 1),
    )


def reference_canvas_colour(small: np.ndarray) -> tuple[int, int, int] | str | None:
    size = 4
    patches = [small[:size, :size], small[:size, -size:], small[-size:, :size], small[-size:, -size:]]
    if sum(1 for patch in patches if patch[..., 3].mean() < 32) >= 3:
        return "transparent"
    flat_colours = []
    for patch in patches:
        colours = patch[..., :3].reshape(-1, 3).astype(np.float64)
        if patch[..., 3].min() >= 128 and colours.std(axis=0).max() < 12:
            flat_colours.append(colours.mean(axis=0))
    for candidate in flat_colours:
        if sum(1 for other in flat_colours if np.abs(other - candidate).max() <= 20) >= 3:
            return tuple(int(round(channel)) for channel in candidate)
    return None


def reference_cover_hsv(image: Image.Image, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cover = image.resize((GRID_WIDTH, GRID_HEIGHT), Image.Resampling.BOX, box=box, reducing_gap=3.0)
    if cover.mode == "RGBA":
        on_white = Image.new("RGBA", cover.size, (255, 255, 255, 255))
        on_white.alpha_composite(cover)
        cover = on_white.convert("RGB")
    rgb = np.asarray(cover, dtype=np.float64) / 255.0
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    chroma = value - rgb.min(axis=-1)
    safe_chroma = np.where(chroma > 0, chroma, 1.0)
    hue = np.select(
        [value == red, value == green],
        [((green - blue) / safe_chroma) % 6.0, (blue - red) / safe_chroma + 2.0],
        (red - green) / safe_chroma + 4.0,
    )
    hue = np.where(chroma > 0, hue * 60.0, 0.0)
    saturation = np.where(value > 0, chroma / np.where(value > 0, value, 1.0), 0.0)
    return hue, saturation, value


def ramp(measured: float, absent: float, clear: float) -> float:
    return float(np.clip((measured - absent) / (clear - absent), 0.0, 1.0))


def best_offset(score_at: Callable[[int], float]) -> float:
    return max(score_at(top) for top in range(4))


def reference_xbox_360(hue, saturation, value) -> float:
    light = (saturation < 0.15) & (value > 0.7)
    green = (hue >= 70) & (hue <= 160) & (saturation > 0.35) & (value > 0.3)

    def score_at(top: int) -> float:
        light_band = ramp(light[top : top + 8, : int(GRID_WIDTH * 0.6)].mean(), 0.35, 0.65)
        swoosh = ramp(green[top : top + 12, GRID_WIDTH // 2 :].mean(), 0.03, 0.10)
        stripe = ramp(green[top + 6 : top + 14].mean(axis=1).max(), 0.3, 0.5)
        return min(light_band, max(swoosh, stripe))

    return best_offset(score_at)


def reference_wii_u(hue, saturation, value) -> float:
    cyan = (hue >= 183) & (hue <= 203) & (saturation > 0.5) & (value > 0.2)
    deep_blue = (hue > 204) & (hue <= 235) & (saturation > 0.5)
    quarter = GRID_WIDTH // 4

    def score_at(top: int) -> float:
        band = slice(top, top + 6)
        even = min(cyan[band, :quarter].mean(), cyan[band, -quarter:].mean())
        not_deep = 1.0 - ramp(deep_blue[band, :quarter].mean(), 0.2, 0.5)
        return min(ramp(even, 0.3, 0.7), not_deep)

    return best_offset(score_at)


def reference_playstation_blue(hue, saturation, value) -> float:
    blue = (hue >= 195) & (hue <= 235) & (saturation > 0.6) & (value > 0.35)
    quarter = GRID_WIDTH // 4

    def score_at(top: int) -> float:
        band = slice(top, top + 8)
        left_blue = blue[band][:, :quarter]
        if left_blue.sum() == 0:
            return 0.0
        left_hue = hue[band, :quarter][left_blue].mean()
        return min(ramp(blue[band].mean(), 0.4, 0.7), ramp(left_hue, 202.0, 207.0))

    return best_offset(score_at)


def reference_ps3(hue, saturation, value) -> float:
    logo = slice(int(GRID_WIDTH * 0.03), int(GRID_WIDTH * 0.25))
    middle = slice(int(GRID_WIDTH * 0.25), int(GRID_WIDTH * 0.55))
    right_end = slice(int(GRID_WIDTH * 0.85), GRID_WIDTH)
    grey = (saturation < 0.3) | (value < 0.25)

    def score_at(top: int) -> float:
        band = slice(top, top + 6)
        middle_value = value[band, middle].mean()
        return min(
            ramp(grey[band].mean(), 0.6, 0.85),
            ramp(grey[band, right_end].mean(), 0.6, 0.9),
            ramp((value[band, middle] < 0.3).mean(), 0.5, 0.8),
            ramp(value[band, right_end].mean() - middle_value, 0.08, 0.2),
            ramp(np.quantile(value[band, logo], 0.9) - middle_value, 0.1, 0.2),
        )

    return best_offset(score_at)


REFERENCE_MEASURES = {
    "Xbox 360 banner": reference_xbox_360,
    "Wii U banner": reference_wii_u,
    "PS4/PS Vita banner": reference_playstation_blue,
    "PS3 banner": reference_ps3,
}


def reference_detect_platform(image: Image.Image, natural_size) -> phase1.Phase1Result:
    """Run the reference helpers, with the unchanged parts of phase1 (aspect, DS spine, decision)."""
    image = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")
    box = reference_find_cover_box(image)
    if box is None:
        return phase1.Phase1Result(None, 0.0, "no cover found: the image is empty or transparent")
    aspect = phase1._box_aspect(box, image.size, natural_size)
    hsv = reference_cover_hsv(image, box)
    strengths = {}
    for rule in phase1._RULES:
        if rule.needs_aspect and not rule.fits(aspect):
            strengths[rule] = 0.0
        else:
            strengths[rule] = REFERENCE_MEASURES.get(rule.description, rule.measure)(*hsv)
    return phase1._decide(strengths, aspect)


def catalogue_files(count: int) -> list[Path]:
    files = sorted(CATALOGUE_IMAGES.glob("*/*"))
    if not files:
        pytest.skip(f"sample catalogue images are not available under {CATALOGUE_IMAGES}")
    return files[:: max(1, len(files) // count)][:count]


def hostile_files() -> list[Path]:
    files = sorted(path for path in HOSTILE_IMAGES.glob("*") if path.suffix != ".tsv")
    if not files:
        pytest.skip(f"hostile images are not available under {HOSTILE_IMAGES}")
    return files


def decoded(paths: list[Path], decode, draft_size) -> list[tuple[str, Image.Image, tuple[int, int]]]:
    images = []
    for path in paths:
        try:
            image, info = decode(path.read_bytes(), draft_size=draft_size)
        except ImageDecodeError:
            continue
        images.append((path.name, image, (info.width, info.height)))
    return images


def drawn_images() -> list[tuple[str, Image.Image, tuple[int, int]]]:
    """Drawn covers alone and on white, black, coloured and transparent canvases, in RGBA and RGB."""
    covers = {
        "xbox360": xbox_360_cover(),
        "wiiu": wii_u_cover(),
        "ps4": ps4_cover(),
        "ps3": ps3_cover(),
        "art": artwork(300, 420),
    }
    canvases = {"white": (255, 255, 255, 255), "black": (0, 0, 0, 255), "magenta": (255, 0, 255, 255), "transparent": (0, 0, 0, 0)}
    images = []
    for name, cover in covers.items():
        images.append((name, cover, cover.size))
        for canvas_name, colour in canvases.items():
            image = on_canvas(cover, (600, 600), colour)
            images.append((f"{name} on {canvas_name}", image, image.size))
            if colour[3] == 255:
                images.append((f"{name} on {canvas_name}, RGB", image.convert("RGB"), image.size))
    # Large enough that Pillow shrinks by an integer factor before the canvas grid.
    large = on_canvas(wii_u_cover(700, 980), (1000, 1000), (255, 255, 255, 255)).convert("RGB")
    images.append(("large wiiu on white, RGB", large, large.size))
    return images


def assert_same_as_reference(images) -> None:
    assert images, "no image decoded"
    for name, image, natural in images:
        expected = reference_detect_platform(image, natural)
        result = phase1.detect_platform(image, natural)
        assert dataclasses.astuple(result) == dataclasses.astuple(expected), name

        opaque_or_rgba = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")
        box = phase1._find_cover_box(opaque_or_rgba)
        assert box == reference_find_cover_box(opaque_or_rgba), name
        if box is None:
            continue
        expected_hsv = reference_cover_hsv(opaque_or_rgba, box)
        hsv = phase1._cover_hsv(opaque_or_rgba, box)
        for channel, (actual, wanted) in zip(("hue", "saturation", "value"), zip(hsv, expected_hsv)):
            assert np.array_equal(actual, wanted), f"{name}: {channel}"
        for rule in phase1._RULES:
            reference = REFERENCE_MEASURES.get(rule.description, rule.measure)
            assert rule.measure(*expected_hsv) == reference(*expected_hsv), f"{name}: {rule.description}"


def test_catalogue_covers_match_reference():
    """About 300 covers through the sweep's decode: RGB at a 224 px draft."""
    assert_same_as_reference(decoded(catalogue_files(300), decode_image, (224, 224)))


def test_catalogue_covers_rgba_match_reference():
    """Covers decoded to RGBA at the 192 px draft that the catalogue tests use."""
    assert_same_as_reference(decoded(catalogue_files(60), decode_rgba, (192, 192)))


@pytest.mark.parametrize("draft_size", [(224, 224), None], ids=["draft", "full"])
def test_hostile_images_match_reference(draft_size):
    images = decoded(hostile_files(), decode_image, draft_size)
    images += decoded(hostile_files(), decode_rgba, draft_size)
    assert_same_as_reference(images)


def test_drawn_covers_match_reference():
    assert_same_as_reference(drawn_images())


def test_reference_detects_drawn_banner():
    """The reference itself still finds a banner, so a broken copy cannot pass by calling nothing."""
    cover = wii_u_cover()

    result = reference_detect_platform(cover, cover.size)

    assert result.family == "nintendo"
    assert result.confidence >= 0.8
