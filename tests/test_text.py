"""Reading the words on a cover: the OCR reader on real covers, the n-gram hashing, and the text cache of the featurize pass."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from coverpick.catalogue.models import CoverImage
from coverpick.covers.store import store_image
from coverpick.model.featurize import corner_cache, featurize, load_texts, spine_cache, text_cache, word_caches
from coverpick.vision.text import (
    CORNER_DETECT_SIDE,
    TEXT_DIM,
    TEXT_READINGS,
    TextLine,
    TextReader,
    TextReaderUnavailable,
    bounded_aspect,
    gram_bucket,
    text_grams,
    text_vector,
)
from tests.conftest import SHARED

CATALOGUE = SHARED / "catalogue"
# A clean Wii U cover from the sample catalogue (see truth.jsonl).
CLEAN_COVER = CATALOGUE / "images" / "boxhaus" / "0002.jpg"
# Clean PlayStation and Nintendo DS covers of the sample, with the console's name up the left spine.
PLAYSTATION_COVER = CATALOGUE / "images" / "quickkeys" / "0023.jpg"
NINTENDO_DS_COVER = CATALOGUE / "images" / "boxhaus" / "0025.jpg"


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader()


def clean_cover(path: Path = CLEAN_COVER) -> Image.Image:
    if not path.is_file():
        pytest.fail(f"Sample cover not found at {path}; set COVERPICK_SHARED to the folder that holds catalogue/.")
    return Image.open(path).convert("RGB")


def with_notice(cover: Image.Image, words: str) -> Image.Image:
    """Lay a white band with ``words`` in black across the bottom of the cover, the way a shop adds a notice."""
    noticed = cover.copy()
    width, height = noticed.size
    band = height // 9
    draw = ImageDraw.Draw(noticed)
    draw.rectangle((0, height - band, width, height), fill=(255, 255, 255))
    font = ImageFont.load_default(size=int(band * 0.55))
    draw.text((width // 20, height - band + band // 5), words, fill=(0, 0, 0), font=font)
    return noticed


def with_sash(cover: Image.Image, words: str, corner: str, colour=(20, 110, 60)) -> Image.Image:
    """Lay a coloured sash with ``words`` in white across the ``corner`` ("right" or "left") at the top, at 45 degrees."""
    sashed = cover.copy()
    side = min(sashed.size) // 2
    band = side // 7
    level = Image.new("RGBA", (side * 2, band), colour + (255,))
    font = ImageFont.load_default(size=int(band * 0.6))
    draw = ImageDraw.Draw(level)
    text_width = draw.textlength(words, font=font)
    draw.text(((side * 2 - text_width) / 2, band // 6), words, fill=(255, 255, 255), font=font)
    # Clockwise for the top right, so the sash runs down to the right edge.
    turned = level.rotate(-45 if corner == "right" else 45, expand=True, resample=Image.Resampling.BICUBIC)
    # Centre the sash on the point a third of the square in from the corner.
    centre_x = sashed.width - side // 3 if corner == "right" else side // 3
    sashed.paste(turned, (centre_x - turned.width // 2, side // 3 - turned.height // 2), turned)
    return sashed


def test_reader_corner_sash_on_real_cover(reader):
    cover = clean_cover()
    for corner in ("right", "left"):
        corner_grams = grams_of(reader.read_corners(with_sash(cover, "PRE-ORDER BONUS", corner)))
        assert {"preo", "rder", "bonu", "onus"} <= corner_grams, f"{corner}: {sorted(corner_grams)}"
    # Without a sash, the corners of this cover hold no such words.
    assert not {"rder", "onus"} & grams_of(reader.read_corners(cover))


def test_reader_corner_sash_of_sample(reader):
    # A cover of the sample with an orange key-card sash across its top right corner (truth.jsonl: gkc).
    lines = reader.read_corners(clean_cover(CATALOGUE / "images" / "quickkeys" / "0131.jpg"))
    assert {"game", "ekey", "card"} <= grams_of(lines)


class SideRecordingEngine:
    """Stand-in OCR engine that records the detector side of each call and finds one line."""

    class Detector:
        limit_side_len = 999

    def __init__(self, fail: bool = False):
        self.text_det = self.Detector()
        self.sides = []
        self.fail = fail

    def __call__(self, image, use_cls=False):
        self.sides.append(self.text_det.limit_side_len)
        if self.fail:
            raise RuntimeError("engine failed on this image")
        return [[[(0, 0), (10, 0), (10, 5), (0, 5)], "NEW", 0.9]], None


def test_reader_corners_set_and_restore_detector_side():
    engine = SideRecordingEngine()
    corner_reader = TextReader()
    corner_reader._engine = engine

    lines = corner_reader.read_corners(Image.new("RGB", (300, 420), (40, 90, 160)))

    assert [line.text for line in lines] == ["NEW", "NEW"]
    assert engine.sides == [CORNER_DETECT_SIDE, CORNER_DETECT_SIDE]
    assert engine.text_det.limit_side_len == 999

    failing = SideRecordingEngine(fail=True)
    corner_reader._engine = failing
    with pytest.raises(RuntimeError, match="engine failed"):
        corner_reader.read_corners(Image.new("RGB", (300, 420), (40, 90, 160)))
    assert failing.text_det.limit_side_len == 999


def test_reader_corners_need_detector_side():
    corner_reader = TextReader()
    corner_reader._engine = lambda *args, **kwargs: ([], None)
    with pytest.raises(TextReaderUnavailable, match=r"rapidocr-onnxruntime>=1.4,<2"):
        corner_reader.read_corners(Image.new("RGB", (300, 420), (40, 90, 160)))


def test_word_readings_match_checkpoint_record():
    # Checkpoints record TEXT_READINGS; load_texts adds up the caches of WORD_READINGS.
    assert [cache.backbone_id for cache in word_caches()] == list(TEXT_READINGS)


def test_reader_corners_of_small_image(reader):
    assert reader.read_corners(Image.new("RGB", (30, 30), (200, 40, 40))) == []
    with pytest.raises(ValueError, match="read_corners"):
        reader.read_corners(Image.new("L", (300, 420)))


def grams_of(lines: list[TextLine]) -> set[str]:
    return {gram for line in lines for gram in text_grams(line.text)}


def test_reader_notice_on_real_cover(reader):
    cover = clean_cover()

    plain = grams_of(reader.read(cover))
    noticed = grams_of(reader.read(with_notice(cover, "Download code only")))

    added = noticed - plain
    assert {"dow", "load", "cod", "only"} <= added, sorted(added)


def test_text_vector_notice_buckets(reader):
    cover = clean_cover()

    plain = text_vector(reader.read(cover))
    noticed = text_vector(reader.read(with_notice(cover, "KEY CARD INSIDE")))

    buckets = [zlib.crc32(gram.encode("ascii")) % TEXT_DIM for gram in ("key", "card", "insi")]
    assert (noticed[buckets] > plain[buckets]).all()


def test_text_grams_letters_only():
    assert text_grams("Art not-final!") == [
        "art", "rtn", "tno", "not", "otf", "tfi", "fin", "ina", "nal",
        "artn", "rtno", "tnot", "notf", "otfi", "tfin", "fina", "inal",
    ]  # fmt: skip
    assert text_grams("PS") == []


def test_text_vector_score_sums():
    box = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))
    lines = [TextLine("abc", 0.5, box), TextLine("ABC", 0.25, box)]

    vector = text_vector(lines)

    bucket = zlib.crc32(b"abc") % TEXT_DIM
    assert vector.shape == (TEXT_DIM,)
    assert vector.dtype == np.float32
    assert vector[bucket] == pytest.approx(np.log1p(0.75))
    assert np.count_nonzero(vector) == 1
    assert not text_vector([]).any()


def test_reader_tiny_thumbnail(reader):
    assert reader.read(Image.new("RGB", (12, 40), (200, 30, 30))) == []


def test_bounded_aspect_pads_a_long_strip_with_white():
    strip = Image.new("RGB", (2000, 20), (10, 10, 10))

    padded = bounded_aspect(strip)

    assert padded.size == (2000, 500)
    assert padded.getpixel((5, 5)) == (10, 10, 10)
    assert padded.getpixel((5, 400)) == (255, 255, 255)
    assert bounded_aspect(clean_cover()).size == clean_cover().size


def test_reader_long_banner_strip(reader):
    strip = Image.new("RGB", (1600, 60), (255, 255, 255))
    ImageDraw.Draw(strip).text((20, 8), "Available on every console", fill=(0, 0, 0), font=ImageFont.load_default(size=40))

    assert "avai" in grams_of(reader.read(strip))


def test_reader_wrong_mode(reader):
    with pytest.raises(ValueError, match="'RGBA'"):
        reader.read(Image.new("RGBA", (64, 64)))


def stored_cover(image: Image.Image) -> CoverImage:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return store_image(buffer.getvalue())


class MeanExtractor:
    """Stand-in backbone of width 6 (channel means twice), so the test runs no backbone."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.tile(batch.mean(axis=(2, 3)), (1, 2)).astype(np.float32)


class BrokenReader:
    """A text reader whose engine fails on every image, as OpenCV does on an image it cannot process."""

    def read(self, rgb):
        raise RuntimeError("engine failed on this image")

    def read_spine(self, rgb):
        raise RuntimeError("engine failed on this image")

    def read_corners(self, rgb):
        raise RuntimeError("engine failed on this image")


@pytest.fixture
def own_text_cache(monkeypatch, tmp_path):
    """Give the test a text cache of its own: the shared one may already hold its image's vector, and then nothing is read."""
    monkeypatch.setenv("COVERPICK_TEXT_CACHE", str(tmp_path / "text"))


@pytest.mark.django_db
def test_featurize_text_cache(reader, own_text_cache):
    cover = stored_cover(with_notice(clean_cover(), "Code in a box"))

    summary = featurize([cover], "text-test-backbone", extractor=MeanExtractor(), reader=reader)

    vector = load_texts([cover.sha256])[0]
    assert summary.computed == 1
    assert text_cache().get(cover.sha256) is not None
    bucket = zlib.crc32(b"code") % TEXT_DIM
    assert vector[bucket] > 0


@pytest.mark.django_db
def test_featurize_unreadable_text(caplog, own_text_cache):
    cover = stored_cover(Image.new("RGB", (300, 420), (40, 90, 160)))

    with caplog.at_level(logging.WARNING, logger="coverpick.model.featurize"):
        summary = featurize([cover], "text-test-backbone", extractor=MeanExtractor(), reader=BrokenReader())

    assert summary.computed == 1
    assert summary.failed == 0
    assert not load_texts([cover.sha256])[0].any()
    assert cover.sha256[:12] in caplog.text
    assert "engine failed on this image" in caplog.text


@pytest.mark.parametrize(("path", "expected"), [(PLAYSTATION_COVER, "playstation"), (NINTENDO_DS_COVER, "nintend")])
def test_reader_spine_on_real_cover(reader, path, expected):
    lines = reader.read_spine(clean_cover(path))

    assert len(lines) == 1
    assert expected in lines[0].text.lower()
    assert lines[0].score >= 0.8


def test_reader_spine_without_words(reader):
    # A flat cover has no spine word, and the recogniser's guesses score too low to keep.
    assert reader.read_spine(Image.new("RGB", (300, 420), (40, 90, 160))) == []
    # A spine narrower than MIN_SIDE pixels is not read at all.
    assert reader.read_spine(Image.new("RGB", (60, 420), (40, 90, 160))) == []


def test_reader_spine_skips_tall_banner():
    def engine_not_expected(*args, **kwargs):
        raise AssertionError("the recogniser ran on a banner taller than MAX_ASPECT times its width")

    banner_reader = TextReader()
    banner_reader._engine = engine_not_expected
    cover = clean_cover(PLAYSTATION_COVER)
    banner = Image.new("RGB", (cover.width, 5 * cover.width), (255, 255, 255))
    banner.paste(cover, (0, 0))

    assert banner_reader.read_spine(banner) == []


@pytest.mark.django_db
def test_featurize_spine_joins_text(reader, own_text_cache):
    cover_image = clean_cover(PLAYSTATION_COVER)
    cover = stored_cover(cover_image)

    featurize([cover], "text-test-backbone", extractor=MeanExtractor(), reader=reader)

    spine = spine_cache().get(cover.sha256)
    text = text_cache().get(cover.sha256)
    joined = load_texts([cover.sha256])[0]
    bucket = gram_bucket("stat")
    assert spine[bucket] > 0
    assert text[bucket] == 0
    assert joined[bucket] == pytest.approx(spine[bucket])
    # Joining adds the sums of scores, as hashing every line at once would.
    corner = corner_cache().get(cover.sha256)
    np.testing.assert_allclose(np.expm1(joined), np.expm1(text) + np.expm1(spine) + np.expm1(corner), rtol=1e-5, atol=1e-5)


@pytest.mark.django_db
def test_featurize_corner_joins_text(reader, own_text_cache):
    cover = stored_cover(with_sash(clean_cover(), "PRE-ORDER BONUS", "right"))

    featurize([cover], "text-test-backbone", extractor=MeanExtractor(), reader=reader)

    corner = corner_cache().get(cover.sha256)
    parts = [text_cache().get(cover.sha256), spine_cache().get(cover.sha256), corner]
    joined = load_texts([cover.sha256])[0]
    assert corner[gram_bucket("onus")] > 0
    np.testing.assert_allclose(np.expm1(joined), sum(np.expm1(part) for part in parts), rtol=1e-5, atol=1e-5)


class CornersOnlyReader:
    """A reader that fails the test if asked for anything but the corner reading."""

    def __init__(self):
        self.corner_calls = 0

    def read(self, rgb):
        raise AssertionError("the cover text was cached and read again")

    def read_spine(self, rgb):
        raise AssertionError("the spine text was cached and read again")

    def read_corners(self, rgb):
        self.corner_calls += 1
        return [TextLine("Pre-order bonus", 0.9, ())]


@pytest.mark.django_db
def test_featurize_reads_only_missing_corners(reader, own_text_cache):
    # As after an upgrade, or a pass stopped between two caches: text and spine are cached, the corners are not.
    cover = stored_cover(clean_cover())
    featurize([cover], "text-test-backbone", extractor=MeanExtractor(), reader=reader)
    removed = [path for path in corner_cache().root.rglob(f"{cover.sha256}*")]
    assert removed
    for path in removed:
        path.unlink()
    with pytest.raises(KeyError, match="no cached cover corners text"):
        load_texts([cover.sha256])

    corners_only = CornersOnlyReader()
    featurize([cover], "text-test-backbone", extractor=MeanExtractor(), reader=corners_only)

    assert corners_only.corner_calls == 1
    assert load_texts([cover.sha256])[0][gram_bucket("onus")] > 0


def test_load_texts_missing_cover():
    with pytest.raises(KeyError, match="no cached cover text for image 0123456789ab"):
        load_texts(["0123456789ab" + "0" * 52])


def test_reader_never_imports_torch():
    """Reading text is on the inference path, which must run without torch."""
    script = (
        "import sys, json\n"
        "from PIL import Image\n"
        "from coverpick.vision.text import TextReader\n"
        f"lines = TextReader().read(Image.open({str(CLEAN_COVER)!r}).convert('RGB'))\n"
        "print(json.dumps({'lines': len(lines), 'torch': sorted(m for m in sys.modules if m.split('.')[0] == 'torch')}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["lines"] > 0
    assert report["torch"] == []


def test_text_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COVERPICK_TEXT_CACHE", str(tmp_path / "shared-text"))

    assert text_cache().root.parent == tmp_path / "shared-text"
