"""The strip profile: row measurements of a cover's top and bottom edges."""

import numpy as np
from PIL import Image, ImageDraw

from coverpick.vision.profile import MEASURES, PROFILE_ROWS, STRIP_DIM, strip_profile


def noisy_cover(seed: int = 0) -> Image.Image:
    """A busy picture: blocks of random colour, about 35 px across, so no row is flat."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(16, 12, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB").resize((420, 600), Image.Resampling.NEAREST)


def with_notice(cover: Image.Image, colour: tuple[int, int, int], where: str = "top") -> Image.Image:
    """Lay a flat strip with a row of dark 'letters' across one edge, as a key-card notice would be."""
    image = cover.copy()
    draw = ImageDraw.Draw(image)
    top = 0 if where == "top" else image.height - 36
    draw.rectangle((0, top, image.width, top + 36), fill=colour)
    for x in range(40, 380, 14):
        draw.rectangle((x, top + 12, x + 7, top + 24), fill=(20, 20, 20))
    return image


def measure(profile: np.ndarray, edge: str, name: str) -> np.ndarray:
    """The rows of one measure at one edge, edge row first."""
    block = profile[: STRIP_DIM // 2] if edge == "top" else profile[STRIP_DIM // 2 :]
    return block.reshape(PROFILE_ROWS, len(MEASURES))[:, MEASURES.index(name)]


def test_profile_length_and_determinism():
    cover = noisy_cover()
    first, second = strip_profile(cover), strip_profile(cover)
    assert first.shape == (STRIP_DIM,)
    assert first.dtype == np.float32
    assert np.array_equal(first, second)


def test_notice_strip_shows_at_its_edge():
    cover = noisy_cover()
    plain = strip_profile(cover)
    marked = strip_profile(with_notice(cover, (240, 120, 20), "top"))
    # The strip covers 36 of 600 px, about 5 of the profile's 96 rows: rows 0-1 sit above its letters.
    assert measure(marked, "top", "flat_share")[:2].min() > 0.9
    assert measure(plain, "top", "flat_share")[:2].max() < 0.2
    assert np.allclose(measure(marked, "bottom", "flat_share"), measure(plain, "bottom", "flat_share"))
    bottom = strip_profile(with_notice(cover, (240, 120, 20), "bottom"))
    assert measure(bottom, "bottom", "flat_share")[:2].min() > 0.9


def test_profile_ignores_strip_hue():
    cover = noisy_cover(1)
    orange = strip_profile(with_notice(cover, (230, 120, 30)))
    teal = strip_profile(with_notice(cover, (45, 188, 165)))  # the same brightness as the orange
    for name in ("flat_share", "detail"):
        assert np.allclose(measure(orange, "top", name)[:4], measure(teal, "top", name)[:4], atol=0.05), name


def test_profile_accepts_rgba_and_grey():
    cover = noisy_cover()
    assert strip_profile(cover.convert("RGBA")).shape == (STRIP_DIM,)
    assert strip_profile(cover.convert("L")).shape == (STRIP_DIM,)
