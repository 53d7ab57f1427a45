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

# Corner fill (see corner_fill): a fill runs at most CORNER_EDGE_RUN_MAX of the
# shorter side along each edge and CORNER_DIAGONAL_RUN_MAX along the diagonal,
# within CORNER_FILL_TOLERANCE per channel. A longer run is a canvas or a band.
CORNER_FILL_DIM = 3
CORNER_EDGE_RUN_MAX = 0.10
CORNER_DIAGONAL_RUN_MAX = 0.05
CORNER_FILL_TOLERANCE = 40
CORNER_FILL_MIN_SIDE = 20

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

# The make-up of each side's border band (see border_composition).
BORDER_SIDES = ("top", "bottom", "left", "right")
BORDER_MEASURES = ("transparent", "dark", "white", "flat", "chroma")
BORDER_DIM = len(BORDER_SIDES) * len(BORDER_MEASURES)
# An opaque pixel whose brightest channel is below 48 counts as near-black.
NEAR_BLACK_MAX = 47
# A pixel is part of a band's flat background when every channel is within
# this distance of the median colour of the band's opaque pixels.
BAND_FLAT_TOLERANCE = 20


def image_statistics(img_rgba: Image.Image, natural_size: tuple[int, int]) -> np.ndarray:
    """Compute the statistics named in STAT_NAMES, in that order, as float32.

    ``natural_size`` is the (width, height) from the header, which can be larger
    than ``img_rgba`` when the image was decoded in draft mode.

    NOTE: log10_laplacian_var depends on the decode. A JPEG draft decode
    averages away fine detail and lowers the value, on average by 0.03 at a
    224 px draft and 0.29 at 96 px over 300 sample covers. Training and
    inference must therefore decode with the same draft_size.
    """
    rgb, alpha = resample_grid(img_rgba)
    values = [
        *border_whiteness(rgb, alpha),
        *corner_background(rgb, alpha),
        log10_pixels(natural_size),
        log10_laplacian_variance(rgb, alpha),
    ]
    return np.asarray(values, dtype=np.float32)


def resample_grid(img_rgba: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the 96x96 NEAREST resample as uint8 RGB (96, 96, 3) and alpha (96, 96).

    The alpha is None when every pixel is opaque: an RGB image without a
    colour key, or an RGBA image whose alpha is 255 everywhere. Every
    statistic then skips its alpha terms, which could not change it.
    A NEAREST resample only picks pixels, so converting another mode to RGBA
    after it gives the same grid as converting the whole image first.
    """
    small = img_rgba.resize((GRID_SIZE, GRID_SIZE), Image.Resampling.NEAREST)
    if small.mode == "RGB" and "transparency" not in small.info:
        return np.asarray(small, dtype=np.uint8), None
    grid = np.asarray(small if small.mode == "RGBA" else small.convert("RGBA"), dtype=np.uint8)
    alpha = grid[..., 3]
    if alpha.min() == 255:
        return grid[..., :3], None
    return grid[..., :3], alpha


def border_whiteness(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[float, float, float, float]:
    """Return the near-white or transparent fraction of the top, bottom, left and right bands."""
    near_white = rgb >= NEAR_WHITE_MIN
    mask = near_white[..., 0] & near_white[..., 1] & near_white[..., 2]
    if alpha is not None:
        mask |= alpha <= TRANSPARENT_ALPHA_MAX
    band = BORDER_BAND
    bands = (mask[:band], mask[-band:], mask[:, :band], mask[:, -band:])
    return tuple(np.count_nonzero(part) / part.size for part in bands)


def border_composition(img_rgba: Image.Image) -> np.ndarray:
    """Return what the top, bottom, left and right border bands are made of, as BORDER_DIM float32 values.

    Each side's BORDER_BAND band of the 96x96 grid gets five values, sides in
    BORDER_SIDES order and values in BORDER_MEASURES order. They are the
    transparent share, the share of opaque near-black pixels and the share of
    opaque near-white pixels. Then come the share of pixels close to the
    median colour of the band's opaque pixels, and that colour's chroma (its
    largest channel minus its smallest, over 255). Because border_white
    counts transparent pixels as white, white padding and a transparent
    canvas give the same statistics. These measures tell the two apart, and
    tell a black or coloured canvas from both.
    """
    rgb, alpha = resample_grid(img_rgba)
    band = BORDER_BAND
    values = []
    for part in (np.s_[:band, :], np.s_[-band:, :], np.s_[:, :band], np.s_[:, -band:]):
        pixels = rgb[part].reshape(-1, 3).astype(np.int16)
        clear = (alpha[part].ravel() <= TRANSPARENT_ALPHA_MAX) if alpha is not None else np.zeros(len(pixels), dtype=bool)
        opaque = ~clear
        dark = opaque & (pixels.max(axis=1) <= NEAR_BLACK_MAX)
        white = opaque & (pixels.min(axis=1) >= NEAR_WHITE_MIN)
        if opaque.any():
            median = np.median(pixels[opaque], axis=0)
            flat = opaque & (np.abs(pixels - median).max(axis=1) <= BAND_FLAT_TOLERANCE)
            chroma = float(median.max() - median.min()) / 255.0
        else:
            flat, chroma = opaque, 0.0
        count = len(pixels)
        values += [clear.sum() / count, dark.sum() / count, white.sum() / count, flat.sum() / count, chroma]
    return np.asarray(values, dtype=np.float32)


def corner_background(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[float, float, float, float]:
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

    All four corners are measured at once, in integers: a mean of n pixels is
    kept as their sum, and a standard deviation as n² times the variance.
    The float64 means and deviations of the earlier code were exact for these
    small sums of uint8 values, so every comparison gives the same result.
    """
    corners = _corners_as_top_left(rgb).astype(np.int64)
    patch = corners[:, :CORNER_PATCH, :CORNER_PATCH].reshape(4, -1, 3)
    patch_size = patch.shape[1]
    patch_sums = patch.sum(axis=1)
    flat = _scaled_variance(patch).max(axis=1) < FLAT_STD_MAX**2 * patch_size**2
    # |pixel - mean| <= FRAME_TOLERANCE, with both sides times the patch size.
    tolerance = FRAME_TOLERANCE * patch_size
    along_top = corners[:, 0, :FRAME_RUN] * patch_size - patch_sums[:, None]
    along_side = corners[:, :FRAME_RUN, 0] * patch_size - patch_sums[:, None]
    top_matches = np.abs(along_top).max(axis=2) <= tolerance
    side_matches = np.abs(along_side).max(axis=2) <= tolerance
    if alpha is not None:
        corner_alpha = _corners_as_top_left(alpha)
        top_matches |= corner_alpha[:, 0, :FRAME_RUN] <= TRANSPARENT_ALPHA_MAX
        side_matches |= corner_alpha[:, :FRAME_RUN, 0] <= TRANSPARENT_ALPHA_MAX
        transparent = np.count_nonzero(corner_alpha[:, :CORNER_PATCH, :CORNER_PATCH] <= TRANSPARENT_ALPHA_MAX, axis=(1, 2))
    else:
        transparent = np.zeros(4, dtype=np.int64)
    continues_top = np.count_nonzero(top_matches, axis=1) / FRAME_RUN >= FRAME_MATCH_FRACTION
    continues_side = np.count_nonzero(side_matches, axis=1) / FRAME_RUN >= FRAME_MATCH_FRACTION
    cut = _cut_corner_flags(corners)
    scores = []
    for index in range(4):
        # Index 0 to 3 is top-left, top-right, bottom-left, bottom-right, so
        # flipping bit 0 gives the corner in the same row, bit 1 the same column.
        band = 0.0
        if flat[index]:
            same_row = _same_colour(patch_sums, flat, index, index ^ 1, tolerance)
            same_column = _same_colour(patch_sums, flat, index, index ^ 2, tolerance)
            if continues_top[index] and continues_side[index]:
                band = 1.0
            elif continues_top[index] and same_column:
                band = 1.0
            elif continues_side[index] and same_row:
                band = 1.0
        scores.append(max(int(transparent[index]) / patch_size, band, cut[index]))
    return tuple(scores)


def _corners_as_top_left(grid: np.ndarray) -> np.ndarray:
    """Stack the FRAME_RUN-square corners of the grid, flipped so that each corner sits at index [0, 0]."""
    run = FRAME_RUN
    return np.stack(
        [grid[:run, :run], grid[:run, : -run - 1 : -1], grid[: -run - 1 : -1, :run], grid[: -run - 1 : -1, : -run - 1 : -1]]
    )


def _scaled_variance(pixels: np.ndarray) -> np.ndarray:
    """Return n² times the variance of each channel of (corners, n, 3) int64 pixels: n·Σx² − (Σx)²."""
    count = pixels.shape[1]
    sums = pixels.sum(axis=1)
    return count * (pixels * pixels).sum(axis=1) - sums * sums


def _same_colour(patch_sums: np.ndarray, flat: np.ndarray, index: int, other: int, tolerance: int) -> bool:
    return bool(flat[other]) and int(np.abs(patch_sums[index] - patch_sums[other]).max()) <= tolerance


def _cut_corner_flags(corners: np.ndarray) -> list[float]:
    """Return the cut-corner signal of each stacked corner, 1.0 or 0.0."""
    block = corners[:, :CUT_CORNER_BLOCK, :CUT_CORNER_BLOCK].reshape(4, -1, 3)
    block_size = block.shape[1]
    flat = _scaled_variance(block).max(axis=1) < FLAT_STD_MAX**2 * block_size**2
    block_sums = block.sum(axis=1)
    step = CUT_CORNER_DISTANCE
    # Each edge value is the mean of 2 pixels, so both sides are compared at 2 * block_size times their means.
    along_top = corners[:, 0, step : step + 2].sum(axis=1) * block_size
    along_side = corners[:, step : step + 2, 0].sum(axis=1) * block_size
    scaled_block = block_sums * 2
    limit = CUT_CORNER_CONTRAST * block_size * 2
    differs_from_top = np.abs(scaled_block - along_top).max(axis=1) > limit
    differs_from_side = np.abs(scaled_block - along_side).max(axis=1) > limit
    flags = flat & differs_from_top & differs_from_side
    return [float(flag) for flag in flags]


def corner_fill(img_rgba: Image.Image) -> np.ndarray:
    """Measure how the cover's corners are cut out of a flat fill, as CORNER_FILL_DIM float32 values.

    Some shops cut a cover out with rounded corners and then flatten it onto
    black, grey or a colour key instead of keeping the corners transparent.
    Each corner then shows the fill: a colour that runs a short way along both
    edges and the diagonal before the cover starts. The 96x96 grid of
    corner_background is too coarse for corners rounded by more than about 5 %
    of the side, so this reads the decoded pixels. The values are the share of
    the four corners cut this way, 1.0 when all four are cut in one colour, and
    1.0 when that colour is also near-white. Transparent corners do not count
    here, because the border composition measures transparency.
    """
    width, height = img_rgba.size
    side = min(width, height)
    if side < CORNER_FILL_MIN_SIDE:
        return np.zeros(CORNER_FILL_DIM, dtype=np.float32)
    edge_max = int(CORNER_EDGE_RUN_MAX * side)
    diagonal_max = max(1, int(CORNER_DIAGONAL_RUN_MAX * side))
    size = edge_max + 1
    boxes = ((0, 0), (width - size, 0), (0, height - size), (width - size, height - size))
    fills = []
    for index, (left, top) in enumerate(boxes):
        patch = np.asarray(img_rgba.crop((left, top, left + size, top + size)).convert("RGBA"), dtype=np.int16)
        # Flip each corner to the top left, as _corners_as_top_left does.
        patch = patch[:, ::-1] if index & 1 else patch
        patch = patch[::-1] if index & 2 else patch
        if patch[0, 0, 3] <= TRANSPARENT_ALPHA_MAX:
            continue
        rgb = patch[..., :3]
        fill = rgb[0, 0]
        runs = [_fill_run(line, fill) for line in (rgb[0], rgb[:, 0], rgb[np.arange(size), np.arange(size)])]
        if 2 <= runs[0] <= edge_max and 2 <= runs[1] <= edge_max and 1 <= runs[2] <= diagonal_max:
            fills.append(fill)
    values = np.zeros(CORNER_FILL_DIM, dtype=np.float32)
    values[0] = len(fills) / 4
    if len(fills) == 4:
        colours = np.stack(fills)
        if int(np.ptp(colours, axis=0).max()) <= CORNER_FILL_TOLERANCE:
            values[1] = 1.0
            values[2] = float(colours.min() >= NEAR_WHITE_MIN)
    return values


def _fill_run(line: np.ndarray, fill: np.ndarray) -> int:
    """Return how many pixels of ``line`` (n, 3), from its start, stay within CORNER_FILL_TOLERANCE of ``fill``."""
    away = np.flatnonzero(np.abs(line - fill).max(axis=1) > CORNER_FILL_TOLERANCE)
    return int(away[0]) if len(away) else len(line)


def log10_pixels(natural_size: tuple[int, int]) -> float:
    """Return log10 of width * height, counting at least one pixel."""
    width, height = natural_size
    return float(np.log10(max(1, int(width) * int(height))))


def log10_laplacian_variance(rgb: np.ndarray, alpha: np.ndarray | None) -> float:
    """Return log10(1 + variance of the 4-neighbour Laplacian) of the grey grid.

    Transparent areas are composited on white first, so the colour stored
    under alpha 0 cannot add fake edges. Grey levels are on the 0-255 scale.
    """
    grey = _grey_on_white(rgb, alpha)
    laplacian = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    )
    return float(np.log10(1.0 + laplacian.var()))


def _grey_on_white(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    # With alpha 1 everywhere, rgb * 1.0 + 255.0 * 0.0 is rgb itself, so the
    # opaque case skips the compositing and gives the same float64 grey.
    if alpha is None:
        return rgb.astype(np.float64) @ _LUMA_WEIGHTS
    opacity = alpha[..., None].astype(np.float64) / 255.0
    on_white = rgb.astype(np.float64) * opacity + 255.0 * (1.0 - opacity)
    return on_white @ _LUMA_WEIGHTS
