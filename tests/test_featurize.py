"""The featurize pass: opaque covers decoded to RGB, one normalisation for every view, batched column writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from coverpick.catalogue.models import CoverImage
from coverpick.covers.decode import decode_image, decode_rgba, to_rgb_on_white
from coverpick.covers.store import store_image
from coverpick.model import featurize as featurize_module
from coverpick.model.featurize import cache_for, featurize
from coverpick.vision.phase1 import detect_platform
from coverpick.vision.presets import MEAN, STD, VIEWS, content_box, content_crop, normalise, to_input_array, view_image
from coverpick.vision.stats import image_statistics
from tests.conftest import SHARED

CATALOGUE = SHARED / "catalogue"
BACKBONE = "featurize-test-backbone"
FEATURE_WIDTH = 6


def drawn_cover(seed: int, *, transparent_corner: bool = False, fmt: str = "JPEG") -> bytes:
    """Draw a 300×420 cover with a banner, encoded in ``fmt``, with a transparent corner if asked (needs PNG)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(30, 220, size=(420, 300, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    ImageDraw.Draw(image).rectangle((0, 0, 300, 40), fill=(0, 155, 199))
    if transparent_corner:
        image = image.convert("RGBA")
        ImageDraw.Draw(image).rectangle((0, 380, 40, 420), fill=(0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


class RecordingExtractor:
    """Stand-in backbone: returns each input's mean per channel, repeated, and records the batch shapes."""

    def __init__(self):
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        means = batch.mean(axis=(2, 3))
        return np.tile(means, (1, FEATURE_WIDTH // 3)).astype(np.float32)


def test_normalise_matches_mean_and_std():
    pixels = np.random.default_rng(0).integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)

    result = normalise(pixels)

    expected = ((pixels.astype(np.float64) / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2)
    assert result.dtype == np.float32
    assert result.shape == (2, 3, 5, 7)
    assert result.flags["C_CONTIGUOUS"]
    assert np.abs(result - expected).max() < 1e-6


def test_normalise_rejects_channels_first():
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        normalise(np.zeros((1, 3, 8, 8), dtype=np.uint8))


def test_to_input_array_is_normalised_letterbox():
    image = Image.open(io.BytesIO(drawn_cover(1))).convert("RGB")

    array = to_input_array(image)

    assert array.shape == (3, 224, 224)
    assert np.array_equal(array, normalise(np.asarray(view_image(image, "full"))[None])[0])


def striped_cover(width: int, height: int, top_rows: int, bottom_rows: int) -> Image.Image:
    """A grey cover with a red band of ``top_rows`` at the top and a blue band of ``bottom_rows`` at the bottom."""
    cover = Image.new("RGB", (width, height), (128, 128, 128))
    cover.paste((220, 20, 20), (0, 0, width, top_rows))
    cover.paste((20, 20, 220), (0, height - bottom_rows, width, height))
    return cover


def test_bands_view_stacks_both_bands():
    view = np.asarray(view_image(striped_cover(300, 500, 110, 110), "bands")).astype(int)

    assert view.shape == (224, 224, 3)
    # Each band is 22 % of 500 rows, so 110 rows of red, then 110 of blue, fill the view.
    assert (np.abs(view[:112] - (220, 20, 20)).max(axis=2) <= 2).mean() > 0.97
    assert (np.abs(view[112:] - (20, 20, 220)).max(axis=2) <= 2).mean() > 0.97


def test_top_view_shows_top_strip():
    # A 30-row banner on a 500-row cover fills half of the top view (12 % of 500 is 60 rows).
    view = np.asarray(view_image(striped_cover(300, 500, 30, 100), "top")).astype(int)

    assert view.shape == (224, 224, 3)
    red = np.abs(view - (220, 20, 20)).max(axis=2) <= 2
    grey = np.abs(view - (128, 128, 128)).max(axis=2) <= 2
    assert red[:108].mean() > 0.98
    assert grey[116:].mean() > 0.98
    # The bottom band is not in the top view.
    assert not (np.abs(view - (20, 20, 220)).max(axis=2) <= 40).any()


def real_clean_cover() -> Image.Image:
    path = CATALOGUE / "images" / "boxhaus" / "0002.jpg"  # a clean, full-bleed Wii U scan
    if not path.is_file():
        pytest.skip(f"sample catalogue image {path} is not available")
    return Image.open(path).convert("RGB")


@pytest.mark.parametrize("canvas", [(255, 255, 255), (0, 0, 0), (40, 160, 90)])
def test_content_box_on_flat_canvas(canvas):
    cover = real_clean_cover()
    padded = Image.new("RGB", (cover.width + 200, cover.height + 120), canvas)
    padded.paste(cover, (150, 40))

    box = content_box(padded)

    # The box is found on a 96-pixel grid, so each side may be off by a grid step.
    step_x, step_y = padded.width / 96 + 1, padded.height / 96 + 1
    expected = (150, 40, 150 + cover.width, 40 + cover.height)
    assert box is not None
    assert all(abs(got - want) <= step for got, want, step in zip(box, expected, (step_x, step_y, step_x, step_y)))
    assert content_box(cover) is None


def test_top_view_ignores_padding():
    cover = real_clean_cover()
    padded = Image.new("RGB", (cover.width * 2, cover.height + 300), (255, 255, 255))
    padded.paste(cover, (cover.width // 2, 150))

    plain = np.asarray(view_image(cover, "top")).astype(np.float32)
    cut = np.asarray(view_image(padded, "top")).astype(np.float32)
    uncut = np.asarray(view_image(padded, "top", content=padded)).astype(np.float32)

    assert np.abs(cut - plain).mean() < 12
    assert np.abs(uncut - plain).mean() > 3 * np.abs(cut - plain).mean()
    assert np.array_equal(np.asarray(view_image(padded, "full")), np.asarray(view_image(padded, "full", content=cover)))


def test_content_box_keeps_wordmark_banner():
    cover = real_clean_cover()
    # A white banner across the top and white down both sides, as on some handheld cases.
    framed = Image.new("RGB", (cover.width + 40, cover.height + 90), (255, 255, 255))
    framed.paste(cover, (20, 90))
    ImageDraw.Draw(framed).rectangle((30, 30, framed.width - 30, 60), fill=(20, 20, 20))

    box = content_box(framed)

    assert box is not None and box[1] <= 30
    assert content_crop(framed).height >= framed.height - 32


def test_view_image_unknown_view():
    with pytest.raises(ValueError, match="Unknown view 'middle'"):
        view_image(Image.new("RGB", (10, 10)), "middle")


def sample_files(count: int) -> list[Path]:
    files = sorted((CATALOGUE / "images").glob("*/*"))
    if not files:
        pytest.skip(f"sample catalogue images are not available under {CATALOGUE}")
    return files[:: max(1, len(files) // count)][:count]


def test_rgb_decode_gives_rgba_path_results():
    """Statistics and phase 1 of an opaque cover decoded to RGB equal those of the RGBA decode, bit for bit."""
    for path in sample_files(60):
        data = path.read_bytes()
        rgba, info = decode_rgba(data, draft_size=(224, 224))
        image, _ = decode_image(data, draft_size=(224, 224))
        natural = (info.width, info.height)
        assert np.array_equal(image_statistics(image, natural), image_statistics(rgba, natural)), path.name
        assert detect_platform(image, natural) == detect_platform(rgba, natural), path.name
        rgb = image if image.mode == "RGB" else to_rgb_on_white(image)
        for view in VIEWS:
            assert np.array_equal(np.asarray(view_image(rgb, view)), np.asarray(view_image(to_rgb_on_white(rgba), view))), path.name


@pytest.mark.django_db
def test_featurize_stores_columns_and_features():
    opaque = store_image(drawn_cover(1))
    transparent = store_image(drawn_cover(2, transparent_corner=True, fmt="PNG"))
    broken = store_image(b"\xff\xd8\xff" + b"\x00" * 64)
    broken.decode_error = None
    broken.save()
    CoverImage.objects.update(stats=None, phase1=None, width=None, height=None)
    extractor = RecordingExtractor()

    summary = featurize(CoverImage.objects.all(), BACKBONE, extractor=extractor)

    assert (summary.computed, summary.failed) == (2, 1)
    assert sorted(shape[0] for shape in extractor.shapes) == [2] * len(VIEWS)
    for cover in (opaque, transparent):
        cover.refresh_from_db()
        assert len(cover.stats) == 10
        assert set(cover.phase1) == {"family", "confidence", "reason"}
        assert (cover.width, cover.height) == (300, 420)
        for view in VIEWS:
            assert cache_for(BACKBONE, view).get(cover.sha256).shape == (FEATURE_WIDTH,)
    broken.refresh_from_db()
    assert "corrupt" in broken.decode_error or "truncated" in broken.decode_error


@pytest.mark.django_db
def test_featurize_second_pass_uses_cache():
    store_image(drawn_cover(3))
    featurize(CoverImage.objects.all(), BACKBONE, extractor=RecordingExtractor())
    extractor = RecordingExtractor()

    summary = featurize(CoverImage.objects.all(), BACKBONE, extractor=extractor)

    assert summary.cached == 1
    assert summary.computed == 0
    assert extractor.shapes == []


@pytest.mark.django_db
def test_featurize_killed_before_columns_resumes(monkeypatch):
    """A pass that dies after caching features but before its UPDATE repeats only the measurements."""
    cover = store_image(drawn_cover(4))

    def fail(covers, field_names):
        raise KeyboardInterrupt

    monkeypatch.setattr(featurize_module, "_store_columns", fail)
    with pytest.raises(KeyboardInterrupt):
        featurize([cover], BACKBONE, extractor=RecordingExtractor())
    monkeypatch.undo()
    cover.refresh_from_db()
    assert cover.stats is None
    assert cover.sha256 in cache_for(BACKBONE, "full")
    extractor = RecordingExtractor()

    summary = featurize(CoverImage.objects.all(), BACKBONE, extractor=extractor)

    cover.refresh_from_db()
    assert len(cover.stats) == 10
    assert cover.phase1 is not None
    assert summary.cached == 1
    assert extractor.shapes == []
