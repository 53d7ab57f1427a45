"""Phase 1: a cheap heuristic that guesses the platform family from printed case markings.

Console game covers carry a printed platform banner in fixed colours, and each
case type has its own aspect ratio. This module finds the
cover inside the image, measures its aspect ratio and looks for those banners:

- Xbox 360: a white-to-grey band with a green swoosh or stripe on the right;
- Wii U: a cyan band of one even hue across the width;
- PS4 and PS Vita: a blue band that is deep blue at its left end;
- PS3: a black band fading to silver on the right, with the white PS3 logo;
- Nintendo DS: a white spine down the left edge of a near-square case.

A banner alone gives a confidence of 0.55 to 0.6. Only a banner on a cover whose
aspect ratio fits that case type reaches 0.85 to 0.9. Every other image returns
family None, PC boxes included, and the learned platform head decides those.

This module imports only numpy and Pillow because it is on the inference path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

PHASE1_VERSION = "phase1-heuristic-1"


@dataclass(frozen=True)
class Phase1Result:
    """The heuristic's guess: a platform family or None, its confidence and why.

    ``confidence`` is in [0, 1] and is 0 whenever ``family`` is None.
    """

    family: str | None
    confidence: float
    reason: str


@dataclass(frozen=True)
class _CaseRule:
    """A printed marking, the family it belongs to and the aspect ratio of its case."""

    family: str
    description: str
    # Returns how clearly the marking shows on the cover grid, from 0 to 1.
    measure: Callable[[np.ndarray, np.ndarray, np.ndarray], float]
    min_aspect: float
    max_aspect: float
    # True when the marking means nothing on a case of another shape.
    needs_aspect: bool = False

    def fits(self, aspect: float) -> bool:
        return self.min_aspect <= aspect <= self.max_aspect


# A marking counts as present from this strength on. When markings of two
# families are present, the result is None.
_PRESENT_STRENGTH = 0.5
# Confidence for a full-strength marking alone, and on a case of the right
# shape. A marking at the present threshold gets 0.05 less.
_BANNER_ONLY_CONFIDENCE = 0.6
_BANNER_AND_ASPECT_CONFIDENCE = 0.9

# The cover is resampled to this grid (width, height) before measuring banners.
_GRID_WIDTH = 64
_GRID_HEIGHT = 96
# Scans often start a row or two above or below the banner's edge, so each
# banner test is tried with its top at every grid row up to this one (about 3 %
# of the height). Retailer strips such as "Available on ..." are taller and
# usually hide the banner, so a larger search mostly adds false matches.
_MAX_BANNER_OFFSET = 3

# Pillow first shrinks by an integer factor with Image.reduce while the result
# stays at least this many times the target size. That is much faster on large
# scans and changes the resampled colours only slightly.
_REDUCING_GAP = 3.0

# Canvas detection runs on a square grid of this size.
_CANVAS_GRID = 128
_CANVAS_CORNER = 4
_CANVAS_TOLERANCE = 40
_CANVAS_MIN_ROW_FRACTION = 0.02


def detect_platform(img_rgba: Image.Image, natural_size: tuple[int, int]) -> Phase1Result:
    """Guess the platform family of a cover image from its case markings and shape.

    ``natural_size`` is the (width, height) from the header. It sets the aspect
    ratio when ``img_rgba`` was decoded at reduced size. An RGB image counts as
    opaque RGBA: it is measured on the small grids without converting the
    whole image, and the result is the same.
    """
    image = img_rgba if img_rgba.mode in ("RGB", "RGBA") else img_rgba.convert("RGBA")
    box = _find_cover_box(image)
    if box is None:
        return Phase1Result(None, 0.0, "no cover found: the image is empty or transparent")
    aspect = _box_aspect(box, image.size, natural_size)

    hue, saturation, value = _cover_hsv(image, box)

    strengths = {}
    for rule in _RULES:
        if rule.needs_aspect and not rule.fits(aspect):
            strengths[rule] = 0.0
        else:
            strengths[rule] = rule.measure(hue, saturation, value)
    return _decide(strengths, aspect)


def _decide(strengths: dict[_CaseRule, float], aspect: float) -> Phase1Result:
    best = max(strengths, key=strengths.get)
    best_strength = strengths[best]
    if best_strength < _PRESENT_STRENGTH:
        return Phase1Result(None, 0.0, f"no platform marking found, aspect {aspect:.2f}")

    rivals = [
        rule.description
        for rule, strength in strengths.items()
        if rule.family != best.family and strength >= _PRESENT_STRENGTH
    ]
    if rivals:
        return Phase1Result(
            None,
            0.0,
            f"conflicting markings: {best.description} and {', '.join(rivals)}, aspect {aspect:.2f}",
        )

    fits_case = best.fits(aspect)
    base = _BANNER_AND_ASPECT_CONFIDENCE if fits_case else _BANNER_ONLY_CONFIDENCE
    confidence = round(base - 0.1 * (1.0 - best_strength), 3)
    shape = "fits the case" if fits_case else "does not fit the case"
    reason = f"{best.description} (match {best_strength:.2f}), aspect {aspect:.2f} {shape}"
    return Phase1Result(best.family, confidence, reason)


def _find_cover_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """Return the cover's (left, top, right, bottom) in pixels of the RGB or RGBA ``image``, or None.

    When at least three corners show the same flat colour or transparency,
    that is taken as a canvas and the box is the area that differs from it.
    Otherwise the whole image is the cover.
    """
    # Pillow resamples RGBA premultiplied by alpha, which leaves opaque pixels
    # unchanged, so an RGB grid equals the RGBA grid with alpha 255 everywhere.
    small = np.asarray(
        image.resize((_CANVAS_GRID, _CANVAS_GRID), Image.Resampling.BOX, reducing_gap=_REDUCING_GAP)
    )
    opaque = small[..., 3] >= 128 if small.shape[-1] == 4 else None
    canvas = _canvas_colour(small)
    if canvas is None or canvas == "transparent":
        if opaque is None:
            # Every row and column of an opaque grid counts, so the box is the whole image.
            return (0, 0, image.width, image.height)
        mask = opaque
    else:
        mask = _differs_from(small, canvas)
        if opaque is not None:
            mask &= opaque

    rows = np.flatnonzero(mask.mean(axis=1) >= _CANVAS_MIN_ROW_FRACTION)
    columns = np.flatnonzero(mask.mean(axis=0) >= _CANVAS_MIN_ROW_FRACTION)
    if rows.size == 0 or columns.size == 0:
        return None
    scale_x = image.width / _CANVAS_GRID
    scale_y = image.height / _CANVAS_GRID
    return (
        int(columns[0] * scale_x),
        int(rows[0] * scale_y),
        max(int(np.ceil((columns[-1] + 1) * scale_x)), int(columns[0] * scale_x) + 1),
        max(int(np.ceil((rows[-1] + 1) * scale_y)), int(rows[0] * scale_y) + 1),
    )


def _canvas_colour(small: np.ndarray) -> tuple[int, int, int] | str | None:
    """Return the canvas colour shared by at least three corners, "transparent", or None.

    ``small`` is an RGB or RGBA uint8 grid, and an RGB grid counts as opaque.
    """
    size = _CANVAS_CORNER
    corners = [small[:size, :size], small[:size, -size:], small[-size:, :size], small[-size:, -size:]]
    # One row of size * size pixels per corner.
    patches = np.stack(corners).reshape(len(corners), size * size, small.shape[-1])
    if patches.shape[-1] == 4:
        alpha = patches[..., 3]
        if np.count_nonzero(alpha.mean(axis=1) < 32) >= 3:
            return "transparent"
        opaque = alpha.min(axis=1) >= 128
    else:
        opaque = np.ones(len(corners), dtype=bool)

    # Channel values are integers, so these means and deviations are exact.
    colours = patches[..., :3].astype(np.float64)
    flat = opaque & (colours.std(axis=1).max(axis=1) < 12)
    flat_colours = list(colours.mean(axis=1)[flat])
    for candidate in flat_colours:
        agreeing = sum(
            1 for other in flat_colours if np.abs(other - candidate).max() <= _CANVAS_TOLERANCE / 2
        )
        if agreeing >= 3:
            return tuple(int(round(channel)) for channel in candidate)
    return None


def _differs_from(small: np.ndarray, canvas: tuple[int, int, int]) -> np.ndarray:
    """Mark the grid pixels with any channel more than _CANVAS_TOLERANCE from the canvas colour."""
    levels = np.arange(256)
    differs = np.zeros(small.shape[:2], dtype=bool)
    for channel, canvas_level in enumerate(canvas):
        # A lookup table per channel costs one indexing pass over the grid.
        far = np.abs(levels - canvas_level) > _CANVAS_TOLERANCE
        differs |= far[small[..., channel]]
    return differs


def _box_aspect(
    box: tuple[int, int, int, int], decoded_size: tuple[int, int], natural_size: tuple[int, int]
) -> float:
    left, top, right, bottom = box
    natural_width, natural_height = natural_size
    decoded_width, decoded_height = decoded_size
    width = (right - left) * natural_width / decoded_width
    height = (bottom - top) * natural_height / decoded_height
    return width / height


def _cover_hsv(
    image: Image.Image, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return hue (degrees), saturation and value (0 to 1) of the cover on the grid, for an RGB or RGBA ``image``."""
    # Resampling before compositing keeps the work on the small grid. Pillow
    # premultiplies alpha while resampling, so the result is within 2 levels of
    # compositing first.
    cover = image.resize(
        (_GRID_WIDTH, _GRID_HEIGHT), Image.Resampling.BOX, box=box, reducing_gap=_REDUCING_GAP
    )
    if cover.mode == "RGBA":
        on_white = Image.new("RGBA", cover.size, (255, 255, 255, 255))
        on_white.alpha_composite(cover)
        cover = on_white.convert("RGB")
    return _rgb_to_hsv(np.asarray(cover))


# Each uint8 level k as the float k / 255, so a lookup gives the same float as dividing.
_UNIT_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def _rgb_to_hsv(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert uint8 RGB pixels to hue (degrees), saturation and value (0 to 1).

    Every output is the float that the textbook formula gives on channels
    scaled to [0, 1]. The comparisons that pick the largest and smallest
    channel run on the uint8 levels, which order the same way.
    """
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    highest = np.maximum(np.maximum(red, green), blue)
    lowest = np.minimum(np.minimum(red, green), blue)
    value = _UNIT_LEVELS[highest]
    chroma = value - _UNIT_LEVELS[lowest]
    coloured = highest > lowest

    # The hue sector starts at red, green or blue, whichever channel is largest
    # (red first on a tie). Its position within the sector comes from the other two.
    red_largest = highest == red
    green_largest = ~red_largest & (highest == green)
    red_unit, green_unit, blue_unit = _UNIT_LEVELS[red], _UNIT_LEVELS[green], _UNIT_LEVELS[blue]
    difference = np.where(
        red_largest, green_unit - blue_unit, np.where(green_largest, blue_unit - red_unit, red_unit - green_unit)
    )
    position = difference / np.where(coloured, chroma, 1.0)
    # In the red sector, a negative position wraps round to 6, which is what
    # the float modulo by 6 gives for a value in [-1, 0).
    sector_start = np.where(
        red_largest, np.where(position < 0, 6.0, 0.0), np.where(green_largest, 2.0, 4.0)
    )
    hue = np.where(coloured, (position + sector_start) * 60.0, 0.0)

    lit = highest > 0
    saturation = np.where(lit, chroma / np.where(lit, value, 1.0), 0.0)
    return hue, saturation, value


def _ramp(measured: float, absent: float, clear: float) -> float:
    """Map a measurement to [0, 1]: 0 at or below ``absent``, 1 at or above ``clear``."""
    return float(np.clip((measured - absent) / (clear - absent), 0.0, 1.0))


def _ramps(measured: np.ndarray, absent: float, clear: float) -> np.ndarray:
    """Apply _ramp to every element of ``measured``."""
    return np.clip((measured - absent) / (clear - absent), 0.0, 1.0)


# The rows that each banner test may take as its top edge.
_BAND_TOPS = np.arange(_MAX_BANNER_OFFSET + 1)


def _band_shares(mask: np.ndarray, height: int, columns: slice = slice(None)) -> np.ndarray:
    """Return the True share of ``mask[top : top + height, columns]`` for each top in _BAND_TOPS.

    Each share is an exact count divided by the band's pixel count, the same
    float as ``mask[top : top + height, columns].mean()``.
    """
    block = mask[: _MAX_BANNER_OFFSET + height, columns]
    cumulative = np.concatenate(([0], np.cumsum(np.count_nonzero(block, axis=1))))
    counts = cumulative[_BAND_TOPS + height] - cumulative[_BAND_TOPS]
    return counts / (height * block.shape[1])


def _xbox_360_strength(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> float:
    light = (saturation < 0.15) & (value > 0.7)
    green = (hue >= 70) & (hue <= 160) & (saturation > 0.35) & (value > 0.3)
    left_part = int(_GRID_WIDTH * 0.6)
    right_half = _GRID_WIDTH // 2

    light_band = _ramps(_band_shares(light, 8, slice(0, left_part)), 0.35, 0.65)
    # Some covers end the band in a green swoosh on the right, and others
    # have a thin green stripe across the width under the band: the greenest
    # of the 8 rows that start 6 rows below the band's top.
    swoosh = _ramps(_band_shares(green, 12, slice(right_half, None)), 0.03, 0.10)
    row_shares = green[: _MAX_BANNER_OFFSET + 14].mean(axis=1)
    stripe_rows = np.lib.stride_tricks.sliding_window_view(row_shares[6:], 8)
    stripe = _ramps(stripe_rows.max(axis=1), 0.3, 0.5)
    return float(np.minimum(light_band, np.maximum(swoosh, stripe)).max())


def _wii_u_strength(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> float:
    # The value floor is low because some covers print the band in a dark teal.
    cyan = (hue >= 183) & (hue <= 203) & (saturation > 0.5) & (value > 0.2)
    deep_blue = (hue > 204) & (hue <= 235) & (saturation > 0.5)
    quarter = _GRID_WIDTH // 4

    even = np.minimum(_band_shares(cyan, 6, slice(0, quarter)), _band_shares(cyan, 6, slice(-quarter, None)))
    not_deep = 1.0 - _ramps(_band_shares(deep_blue, 6, slice(0, quarter)), 0.2, 0.5)
    return float(np.minimum(_ramps(even, 0.3, 0.7), not_deep).max())


def _playstation_blue_strength(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> float:
    blue = (hue >= 195) & (hue <= 235) & (saturation > 0.6) & (value > 0.35)
    quarter = _GRID_WIDTH // 4
    band_blue = _ramps(_band_shares(blue, 8), 0.4, 0.7)
    left_blue = _band_shares(blue, 8, slice(0, quarter))

    best = 0.0
    for top in _BAND_TOPS:
        # A band with no blue at its left end, or too little blue overall,
        # scores 0, so its hue is not needed.
        if left_blue[top] == 0 or band_blue[top] == 0:
            continue
        band = slice(top, top + 8)
        # The left end is a deeper blue than a Wii U band, whose hue stays below
        # 204 on the sample catalogue.
        left_hue = hue[band, :quarter][blue[band, :quarter]].mean()
        best = max(best, min(float(band_blue[top]), _ramp(left_hue, 202.0, 207.0)))
    return best


def _ps3_strength(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> float:
    logo = slice(int(_GRID_WIDTH * 0.03), int(_GRID_WIDTH * 0.25))
    middle = slice(int(_GRID_WIDTH * 0.25), int(_GRID_WIDTH * 0.55))
    right_end = slice(int(_GRID_WIDTH * 0.85), _GRID_WIDTH)
    # Saturation is unstable on near-black pixels, so those count as grey too.
    grey = (saturation < 0.3) | (value < 0.25)
    grey_band = _ramps(_band_shares(grey, 6), 0.6, 0.85)
    grey_right_end = _ramps(_band_shares(grey, 6, right_end), 0.6, 0.9)
    dark_middle = _ramps(_band_shares(value < 0.3, 6, middle), 0.5, 0.8)
    counted = np.minimum(np.minimum(grey_band, grey_right_end), dark_middle)

    best = 0.0
    for top in _BAND_TOPS:
        # The score is the smallest of five ramps, so a band whose pixel counts
        # already give 0 needs no brightness steps.
        if counted[top] == 0:
            continue
        band = slice(top, top + 6)
        middle_value = value[band, middle].mean()
        silver_step = value[band, right_end].mean() - middle_value
        # The logo's strokes are thin, so on the grid they show as its brightest pixels.
        logo_step = np.quantile(value[band, logo], 0.9) - middle_value
        best = max(best, min(float(counted[top]), _ramp(silver_step, 0.08, 0.2), _ramp(logo_step, 0.1, 0.2)))
    return best


def _ds_strength(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> float:
    spine = slice(0, int(_GRID_WIDTH * 0.1))
    light = (saturation[:, spine] < 0.15) & (value[:, spine] > 0.7)
    # The spine is white from top to bottom, with the black "NINTENDO DS" lettering in it.
    light_rows = (light.mean(axis=1) >= 0.5).mean()
    dark_text = (value[:, spine] < 0.4).mean()
    return min(_ramp(light_rows, 0.6, 0.85), _ramp(dark_text, 0.02, 0.06))


# Aspect ratio (width / height) of the front cover of each case type. Each
# range contains at least 90 % of the clean scans of its case type in the
# sample catalogue, and all of them for Xbox 360, Wii U and PS4/PS Vita. The
# margin allows for scans that include part of the spine or crop an edge.
_RULES = (
    _CaseRule("xbox", "Xbox 360 banner", _xbox_360_strength, 0.67, 0.77),
    _CaseRule("nintendo", "Wii U banner", _wii_u_strength, 0.67, 0.77),
    _CaseRule("sony", "PS4/PS Vita banner", _playstation_blue_strength, 0.74, 0.85),
    _CaseRule("sony", "PS3 banner", _ps3_strength, 0.83, 0.9),
    _CaseRule("nintendo", "Nintendo DS spine", _ds_strength, 1.0, 1.2, needs_aspect=True),
)
