"""The sibling contrast: how a cover differs from the most similar other cover of its game."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from coverpick.model.inputs import (
    N_COMPARISONS,
    N_PROFILE_SUMMARY,
    N_SIMILARITIES,
    comparison_features,
    fit_similarity_space,
)
from coverpick.vision.presets import VIEWS
from coverpick.vision.profile import MEASURES, PROFILE_DIM, cover_profile
from coverpick.vision.text import TEXT_DIM
from coverpick.vision.stats import STAT_NAMES, image_statistics

FULL_DIM = 8
# The profile summary contains the edge rows' means (top measures, then bottom),
# then the inner rows' means in the same order.
SUMMARY = N_SIMILARITIES + 1
TOP_COLUMNS = [SUMMARY + i for i in (*range(len(MEASURES)), *range(2 * len(MEASURES), 3 * len(MEASURES)))]
BOTTOM_COLUMNS = [SUMMARY + i for i in (*range(len(MEASURES), 2 * len(MEASURES)), *range(3 * len(MEASURES), 4 * len(MEASURES)))]
PIXELS = N_SIMILARITIES + 1 + N_PROFILE_SUMMARY + STAT_NAMES.index("log10_pixels")


def with_notice_band(cover: Image.Image) -> Image.Image:
    """The cover with a flat band of colour and a line of text across its top eighth."""
    marked = cover.copy()
    draw = ImageDraw.Draw(marked)
    band = cover.height // 8
    draw.rectangle((0, 0, cover.width, band), fill=(40, 90, 200))
    draw.text((cover.width // 10, band // 3), "Download code only", fill=(255, 255, 255))
    return marked


def image_features(images: list[Image.Image], full: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Image features in the heads' layout: the given full and bands blocks, random blocks for any later view, no text, then the profile."""
    profiles = np.stack([cover_profile(img, img) for img in images])
    later = np.random.default_rng(7).normal(size=(len(images), (len(VIEWS) - 2) * FULL_DIM))
    text = np.zeros((len(images), TEXT_DIM), dtype=np.float32)
    return np.concatenate([full, bands, later, text, profiles], axis=1).astype(np.float32)


@pytest.fixture
def sample_covers(sample_catalogue):
    """Return a function that opens the first ``count`` covers of one shop in the sample catalogue."""

    def first(count: int) -> list[Image.Image]:
        paths = sorted((sample_catalogue / "images" / "pixelcrate").glob("*.jpg"))[:count]
        return [Image.open(path).convert("RGB") for path in paths]

    return first


def test_contrast_notice_band_signed_by_carrier(sample_covers):
    clean, other_game = sample_covers(2)
    noticed = with_notice_band(clean)
    rng = np.random.default_rng(0)
    identity = rng.normal(size=(2, FULL_DIM))
    # Rows: the clean cover and its noticed copy (game A), a cover of game B alone.
    full = np.stack([identity[0], identity[0] + 0.01 * rng.normal(size=FULL_DIM), identity[1]])
    bands = rng.normal(size=(3, FULL_DIM))
    features = image_features([clean, noticed, other_game], full, bands)
    stats = np.stack([image_statistics(img.convert("RGBA"), img.size) for img in (clean, noticed, other_game)])
    space = fit_similarity_space(np.concatenate([features, rng.normal(size=(40, features.shape[1]))]), full_dim=FULL_DIM)

    result = comparison_features(features, ["A", "A", "B"], ["A-ps4", "A-xone", "B-ps4"], space, stats)

    assert result.shape == (3, N_COMPARISONS)
    # The band changes the top rows' profile of the cover that carries it, not
    # the bottom's; its clean sibling shows the same difference negated.
    assert np.abs(result[1, TOP_COLUMNS]).sum() > 0.1
    assert np.all(result[1, BOTTOM_COLUMNS] == 0.0)
    assert np.array_equal(result[0, SUMMARY : SUMMARY + N_PROFILE_SUMMARY], -result[1, SUMMARY : SUMMARY + N_PROFILE_SUMMARY])
    # A game with one cover has no sibling to contrast with.
    assert np.all(result[2, N_SIMILARITIES:] == 0.0)


def test_contrast_nearest_sibling_resolution(sample_covers):
    cover, unrelated_cover = sample_covers(2)
    small = cover.resize((cover.width // 4, cover.height // 4))
    rng = np.random.default_rng(1)
    base = rng.normal(size=FULL_DIM)
    unrelated = rng.normal(size=FULL_DIM)
    full = np.stack([base, base + 0.01 * rng.normal(size=FULL_DIM), unrelated])
    images = [cover, small, unrelated_cover]
    features = image_features(images, full, rng.normal(size=(3, FULL_DIM)))
    stats = np.stack([image_statistics(img.convert("RGBA"), img.size) for img in images])

    space = fit_similarity_space(np.concatenate([features, rng.normal(size=(40, features.shape[1]))]), full_dim=FULL_DIM)

    result = comparison_features(features, ["A"] * 3, ["A-ps4"] * 3, space, stats)

    # The small copy and the cover it resembles are each other's nearest sibling.
    # The contrast is scaled by the two covers' similarity (column 2).
    expected = np.log10(small.width * small.height) - np.log10(cover.width * cover.height)
    assert 0.9 < result[1, 2] <= 1.0
    assert result[1, PIXELS] == pytest.approx(expected * result[1, 2], abs=1e-5)
    assert result[0, PIXELS] == -result[1, PIXELS] > 1.0
    assert features.shape[1] == len(VIEWS) * FULL_DIM + TEXT_DIM + PROFILE_DIM


def test_contrast_fades_for_dissimilar_sibling(sample_covers):
    cover, other_cover = sample_covers(2)
    small = other_cover.resize((other_cover.width // 4, other_cover.height // 4))
    rng = np.random.default_rng(2)
    picture = 5.0 * rng.normal(size=FULL_DIM)
    # Two covers of one game that show opposite pictures in the full view.
    full = np.stack([picture, -picture])
    images = [cover, small]
    features = image_features(images, full, rng.normal(size=(2, FULL_DIM)))
    stats = np.stack([image_statistics(img.convert("RGBA"), img.size) for img in images])
    space = fit_similarity_space(rng.normal(size=(400, features.shape[1])).astype(np.float32), full_dim=FULL_DIM)

    result = comparison_features(features, ["A", "A"], ["A-ps4", "A-ps4"], space, stats)

    assert result[0, 2] < 0.0
    assert abs(stats[1][STAT_NAMES.index("log10_pixels")] - stats[0][STAT_NAMES.index("log10_pixels")]) > 1.0
    assert np.all(result[:, N_SIMILARITIES:] == 0.0)
