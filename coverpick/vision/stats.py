"""The 10 image statistics that the quality head reads beside the backbone features.

Training and inference both call image_statistics, so the two cannot drift.
Every statistic is computed on a 96x96 NEAREST resample of the RGBA image,
except log10_pixels, which uses the natural size from the image header. The
cost is one resample and a few numpy reductions, with no full-size pass.

This module imports only numpy and Pillow because it is on the inference path.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

STAT_NAMES = (
    "border_white_top",
    "border_white_bottom",
    "border_white_left",
    "border_white_right",
    "corner_bg_top_left",
    "corner_bg_top_right",
    "corner_bg_bottom_left",
    "corner_bg_bottom_right",
    "log10_pixels",
    "log10_laplacian_var",
)

GRID_SIZE = 96

# The band is 6 px of 96 (6.25 % of a side). On the sample catalogue every
# cover labelled "margins" has padding of at least 8 px of 96 on all four
# sides, so a 6 px band lies wholly inside the padding. A wider band starts to
# reach the cover itself on thinly padded images and blurs the signal.
BORDER_BAND = 6

# A channel value of at least 235 counts as near-white, which admits JPEG noise
# and off-white paper. Alpha below 32 counts as transparent.
NEAR_WHITE_MIN = 235
TRANSPARENT_ALPHA_MAX = 31

# Corner patch and the rules that decide whether it shows background.
CORNER_PATCH = 8
# A patch is flat when every channel's standard deviation is below this.
FLAT_STD_MAX = 12.0
# A background band continues along an edge for this many pixels (a quarter of
# the side), within this per-channel tolerance, for this fraction of the pixels.
FRAME_RUN = 24
FRAME_TOLERANCE = 24
FRAME_MATCH_FRACTION = 0.9
# A cut corner is a 2x2 block whose colour differs by more than this from the
# edge pixels CUT_CORNER_DISTANCE px away along both edges.
CUT_CORNER_BLOCK = 2
CUT_CORNER_DISTANCE = 5
CUT_CORNER_CONTRAST = 60

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def image_statistics(img_rgba: Image.Image, natural_size: tuple[int, int]) -> np.ndarray:
    """Compute the statistics named in STAT_NAMES, in that order, as float32.

    ``natural_size`` is the (width, height) from the header, which can be larger
    than ``img_rgba`` when the image was decoded in draft mode.

    NOTE: log10_laplacian_var depends on the decode. A JPEG draft decode
    averages away fine detail and lowers the value, on average by 0.03 at a
    224 px draft and 0.29 at 96 px over 300 sample covers. Training and
    inference must therefore decode with the same draft_size.
    """
    grid = resample_grid(img_rgba)
    values = [
        *border_whiteness(grid),
        *corner_background(grid),
        log10_pixels(natural_size),
        log10_laplacian_variance(grid),
    ]
    return np.asarray(values, dtype=np.float32)


def resample_grid(img_rgba: Image.Image) -> np.ndarray:
    """Return the 96x96 NEAREST resample as a uint8 array of shape (96, 96, 4).

    A NEAREST resample only picks pixels, so converting another mode to RGBA
    after it gives the same grid as converting the whole image first.
    """
    small = img_rgba.resize((GRID_SIZE, GRID_SIZE), Image.Resampling.NEAREST)
    return np.asarray(small if small.mode == "RGBA" else small.convert("RGBA"), dtype=np.uint8)


def _whitish_mask(grid: np.ndarray) -> np.ndarray:
    near_white = (grid[..., :3] >= NEAR_WHITE_MIN).all(axis=-1)
    return near_white | (grid[..., 3] <= TRANSPARENT_ALPHA_MAX)


def border_whiteness(grid: np.ndarray) -> tuple[float, float, float, float]:
    """Return the near-white or transparent fraction of the top, bottom, left and right bands."""
    mask = _whitish_mask(grid)
    band = BORDER_BAND
    return (
        float(mask[:band].mean()),
        float(mask[-band:].mean()),
        float(mask[:, :band].mean()),
        float(mask[:, -band:].mean()),
    )


def corner_background(grid: np.ndarray) -> tuple[float, float, float, float]:
    """Score how clearly each corner shows background rather than cover art.

    Returns scores in [0, 1] for the top-left, top-right, bottom-left and
    bottom-right corners. A score is the largest of three signals:

    - the transparent fraction of the 8x8 corner patch;
    - 1 when the patch is flat and its colour forms a background band. Either
      the colour runs along both adjoining edges for a quarter of the side (a
      frame or canvas around the cover), or it runs along one edge and the
      opposite corner on that side shows the same flat colour. The second case
      is a cover fitted into a canvas of another aspect ratio, with bars above
      and below or left and right;
    - 1 when the outermost 2x2 block is flat and differs sharply from both
      edges 5 px further on: the background showing through a rounded or
      cut-off corner of a case. Corners rounded by more than about 5 % of the
      side leave the 2x2 block and the pixels 5 px on in the same colour, so
      only the band and transparency signals can catch them.

    Near-white, near-black and coloured backgrounds all count. A printed
    banner runs along the top edge only, so it is not a band. A full-bleed
    cover whose art is flat black or white along two edges still scores 1, so
    this is a feature for a learned head, not a verdict on its own.
    """
    views = _corners_as_top_left(grid)
    colours = [_flat_patch_colour(view) for view in views]
    scores = []
    for index, view in enumerate(views):
        transparent = float((view[:CORNER_PATCH, :CORNER_PATCH, 3] <= TRANSPARENT_ALPHA_MAX).mean())
        # Index 0 to 3 is top-left, top-right, bottom-left, bottom-right, so
        # flipping bit 0 gives the corner in the same row, bit 1 the same column.
        band = _band_flag(view, colours[index], colours[index ^ 1], colours[index ^ 2])
        scores.append(max(transparent, band, _cut_corner_flag(view)))
    return tuple(scores)


def _corners_as_top_left(grid: np.ndarray) -> list[np.ndarray]:
    """Flip the grid so that each corner in turn sits at index [0, 0]."""
    return [grid, grid[:, ::-1], grid[::-1, :], grid[::-1, ::-1]]


def _flat_patch_colour(view: np.ndarray) -> np.ndarray | None:
    """Return the mean colour of the corner patch, or None when the patch is not flat."""
    colours = view[:CORNER_PATCH, :CORNER_PATCH, :3].reshape(-1, 3).astype(np.float64)
    if colours.std(axis=0).max() >= FLAT_STD_MAX:
        return None
    return colours.mean(axis=0)


def _band_flag(
    view: np.ndarray,
    colour: np.ndarray | None,
    same_row_colour: np.ndarray | None,
    same_column_colour: np.ndarray | None,
) -> float:
    if colour is None:
        return 0.0
    along_top = _continues(view[0, :FRAME_RUN], colour)
    along_side = _continues(view[:FRAME_RUN, 0], colour)
    if along_top and along_side:
        return 1.0
    if along_top and _same_colour(colour, same_column_colour):
        return 1.0
    if along_side and _same_colour(colour, same_row_colour):
        return 1.0
    return 0.0


def _continues(edge: np.ndarray, colour: np.ndarray) -> bool:
    pixels = edge.astype(np.float64)
    matches = np.abs(pixels[:, :3] - colour).max(axis=1) <= FRAME_TOLERANCE
    matches |= pixels[:, 3] <= TRANSPARENT_ALPHA_MAX
    return bool(matches.mean() >= FRAME_MATCH_FRACTION)


def _same_colour(colour: np.ndarray, other: np.ndarray | None) -> bool:
    return other is not None and bool(np.abs(colour - other).max() <= FRAME_TOLERANCE)


def _cut_corner_flag(grid: np.ndarray) -> float:
    block = grid[:CUT_CORNER_BLOCK, :CUT_CORNER_BLOCK].reshape(-1, 4).astype(np.float64)
    if block[:, :3].std(axis=0).max() >= FLAT_STD_MAX:
        return 0.0
    colour = block[:, :3].mean(axis=0)
    step = CUT_CORNER_DISTANCE
    along_top = grid[0, step : step + 2, :3].astype(np.float64).mean(axis=0)
    along_side = grid[step : step + 2, 0, :3].astype(np.float64).mean(axis=0)
    differs_from_top = np.abs(colour - along_top).max() > CUT_CORNER_CONTRAST
    differs_from_side = np.abs(colour - along_side).max() > CUT_CORNER_CONTRAST
    return float(differs_from_top and differs_from_side)


def log10_pixels(natural_size: tuple[int, int]) -> float:
    """Return log10 of width * height, counting at least one pixel."""
    width, height = natural_size
    return float(np.log10(max(1, int(width) * int(height))))


def log10_laplacian_variance(grid: np.ndarray) -> float:
    """Return log10(1 + variance of the 4-neighbour Laplacian) of the grey grid.

    Transparent areas are composited on white first, so the colour stored
    under alpha 0 cannot add fake edges. Grey levels are on the 0-255 scale.
    """
    grey = _grey_on_white(grid)
    laplacian = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    )
    return float(np.log10(1.0 + laplacian.var()))


def _grey_on_white(grid: np.ndarray) -> np.ndarray:
    rgb = grid[..., :3].astype(np.float64)
    alpha = grid[..., 3:4].astype(np.float64) / 255.0
    on_white = rgb * alpha + 255.0 * (1.0 - alpha)
    return on_white @ _LUMA_WEIGHTS
