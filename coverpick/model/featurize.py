"""Compute and cache what each stored cover image yields: backbone features, its text, image statistics, phase 1.

Images are decoded once per pass (JPEG in draft mode near the backbone's input
size; opaque images straight to RGB), and backbone calls are batched per view.
A cover whose text is not cached yet is decoded a second time, at the larger
READ_SIZE, for the text reader.
An image that fails to decode gets its worded reason stored on the CoverImage,
and the pass goes on. The new columns of a batch of covers are stored in one
transaction, with one executemany UPDATE per set of changed fields, after the
batch's feature vectors.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from coverpick import conf
from coverpick.catalogue.models import CoverImage
from coverpick.covers.decode import ImageDecodeError, ImageInfo, decode_image, to_rgb_on_white
from coverpick.covers.store import read_bytes
from coverpick.vision.extract import FeatureCache, FeatureExtractor
from coverpick.vision.phase1 import detect_platform
from coverpick.vision.presets import INPUT_SIZE, VIEWS, content_crop, normalise, view_id, view_image
from coverpick.vision.profile import PROFILE_DIM, PROFILE_VERSION, cover_profile
from coverpick.vision.stats import image_statistics
from coverpick.vision.text import (
    CORNER_VERSION,
    READ_SIZE,
    SPINE_VERSION,
    TEXT_DIM,
    TEXT_VERSION,
    TextReader,
    TextReaderUnavailable,
    text_vector,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 32


def cache_for(backbone_id: str, view: str) -> FeatureCache:
    return FeatureCache(backbone_id if view == "full" else f"{backbone_id}.{view_id(view)}")


def profile_cache() -> FeatureCache:
    """Return the cache of cover profiles, which are pixel measurements and so shared by every backbone and precision."""
    return FeatureCache(PROFILE_VERSION, precision="fp32")


def text_cache() -> FeatureCache:
    """Return the cache of cover text vectors, which depend on the OCR models and not on the backbone (see conf.text_cache_dir)."""
    return FeatureCache(TEXT_VERSION, root=conf.text_cache_dir(), precision="fp32")


def spine_cache() -> FeatureCache:
    """Return the cache of the words read up each cover's left spine, hashed like the cover text and kept beside it."""
    return FeatureCache(SPINE_VERSION, root=conf.text_cache_dir(), precision="fp32")


def corner_cache() -> FeatureCache:
    """Return the cache of the words read across each cover's top corners, hashed like the cover text and kept beside it."""
    return FeatureCache(CORNER_VERSION, root=conf.text_cache_dir(), precision="fp32")


# Each reading of a cover's words: its name in warnings, the TextReader
# method and the cache. load_texts adds the readings up.
# Their caches are named by coverpick.vision.text.TEXT_READINGS, in the same order.
WORD_READINGS = (("text", "read", text_cache), ("spine", "read_spine", spine_cache), ("corners", "read_corners", corner_cache))


def word_caches() -> list[FeatureCache]:
    """Return the cache of every reading in WORD_READINGS, in that order."""
    return [make_cache() for _name, _method, make_cache in WORD_READINGS]


@dataclass
class FeaturizeSummary:
    covers: int = 0
    computed: int = 0
    cached: int = 0
    failed: int = 0


def covers_needing_work(covers, caches: list[FeatureCache]) -> list[CoverImage]:
    """Covers that decode (or have not been tried) and lack cached features, statistics or a phase-1 result.

    ``caches`` lists every cache a cover needs an entry in: the backbone views', the cover text's and the cover profile's.
    """
    pending = []
    for cover in covers:
        if cover.decode_error:
            continue
        if cover.stats is None or cover.phase1 is None or any(cover.sha256 not in cache for cache in caches):
            pending.append(cover)
    return pending


def featurize(
    covers,
    backbone_id: str,
    *,
    extractor: FeatureExtractor | None = None,
    reader: TextReader | None = None,
    progress: bool = False,
) -> FeaturizeSummary:
    """Make sure every given cover has cached features, text, a cover profile, statistics and a phase-1 result."""
    caches = [cache_for(backbone_id, view) for view in VIEWS]
    covers = list(covers)
    summary = FeaturizeSummary(covers=len(covers))
    pending = covers_needing_work(covers, [*caches, *word_caches(), profile_cache()])
    summary.cached = len(covers) - len(pending)
    if not pending:
        return summary
    extractor = extractor or FeatureExtractor(backbone_id)
    reader = reader or TextReader()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(pending), desc="features", unit="cover")
    for start in range(0, len(pending), BATCH_SIZE):
        chunk = pending[start : start + BATCH_SIZE]
        _featurize_chunk(chunk, caches, extractor, reader, summary)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return summary


def _featurize_chunk(
    chunk: list[CoverImage], caches: list[FeatureCache], extractor: FeatureExtractor, reader: TextReader, summary: FeaturizeSummary
) -> None:
    """Decode, measure, read and run the backbone on one batch of covers, then store the results.

    Feature vectors reach the cache before the covers' columns reach the
    database, so a run killed in between repeats only the measurements.
    """
    profiles = profile_cache()
    readings = word_caches()
    updates: dict[tuple[str, ...], list[CoverImage]] = defaultdict(list)
    pixels: dict[str, list[np.ndarray]] = {view: [] for view in VIEWS}
    decoded = []
    for cover in chunk:
        try:
            image, info = decode_image(read_bytes(cover.path), draft_size=(INPUT_SIZE, INPUT_SIZE))
        except (ImageDecodeError, OSError) as exc:
            cover.decode_error = str(exc) if isinstance(exc, ImageDecodeError) else f"stored image could not be read: {exc}"
            updates[("decode_error",)].append(cover)
            summary.failed += 1
            logger.warning("Cover %s could not be decoded: %s", cover.sha256[:12], cover.decode_error)
            continue
        changed = _measure(cover, image, info)
        if changed:
            updates[changed].append(cover)
        rgb = image if image.mode == "RGB" else to_rgb_on_white(image)
        if cover.sha256 not in profiles:
            profiles.put(cover.sha256, cover_profile(image, rgb))
        missing = [index for index, cache in enumerate(readings) if cover.sha256 not in cache]
        if missing:
            for index, vector in zip(missing, _read_words(cover, reader, missing)):
                readings[index].put(cover.sha256, vector)
        if any(cover.sha256 not in cache for cache in caches):
            content = content_crop(rgb)
            for view in VIEWS:
                pixels[view].append(np.asarray(view_image(rgb, view, content)))
            decoded.append(cover)
        else:
            summary.cached += 1
    if decoded:
        # One (covers, D) block per view, because the views' input shapes may differ.
        blocks = [extractor(normalise(np.stack(pixels[view]))) for view in VIEWS]
        for row, cover in enumerate(decoded):
            for cache, block in zip(caches, blocks):
                cache.put(cover.sha256, block[row])
        summary.computed += len(decoded)
    with transaction.atomic():
        for fields, covers in updates.items():
            _store_columns(covers, fields)


def _read_words(cover: CoverImage, reader: TextReader, readings: list[int]) -> list[np.ndarray]:
    """Return the vector of each of the stored cover's ``readings`` (indexes into WORD_READINGS), in that order."""
    return read_word_vectors(read_bytes(cover.path), reader, readings, cover.sha256[:12])


def read_word_vectors(data: bytes, reader: TextReader, readings: list[int], name: str) -> list[np.ndarray]:
    """Return the vector of each of ``readings`` (indexes into WORD_READINGS) for the image in ``data``, in that order.

    The image is decoded at READ_SIZE so that small print stays legible. An
    image the OCR engine cannot process gets the vector of a cover without
    text and a warning naming it (``name``), so one odd image never stops a pass.
    """
    image, _ = decode_image(data, draft_size=(READ_SIZE, READ_SIZE))
    rgb = image if image.mode == "RGB" else to_rgb_on_white(image)
    vectors = []
    for index in readings:
        reading, method, _cache = WORD_READINGS[index]
        vectors.append(text_vector(_lines(name, getattr(reader, method), rgb, reading)))
    return vectors


def _lines(name: str, read, rgb, reading: str) -> list:
    """Return ``read(rgb)``, or no lines and a warning naming the ``reading`` (a name in WORD_READINGS) when the engine fails on the image."""
    try:
        return read(rgb)
    except TextReaderUnavailable:
        raise
    except Exception as exc:  # the engine raises OpenCV, ONNX Runtime and its own errors alike
        logger.warning("Reading the %s of cover %s failed (%s: %s), so it counts as a cover without text.", reading, name, type(exc).__name__, exc)
        return []


def _store_columns(covers: list[CoverImage], field_names: tuple[str, ...]) -> None:
    """Write the named columns of the covers with one executemany UPDATE.

    QuerySet.bulk_update builds a CASE expression per column, and on SQLite it
    took about twice the CPU per cover of one save() each (batches of 32
    covers). This sends plain UPDATE statements instead, each value prepared
    by its model field for this database.
    """
    meta = CoverImage._meta
    fields = [meta.get_field(name) for name in field_names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    rows = [[field.get_db_prep_save(getattr(cover, field.attname), connection) for field in fields] + [cover.pk] for cover in covers]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _measure(cover: CoverImage, image, info: ImageInfo) -> tuple[str, ...]:
    """Fill in the cover's missing statistics, phase-1 result and natural size, and return the names of the changed fields."""
    natural = (info.width, info.height)
    changed = []
    if cover.stats is None:
        cover.stats = [round(float(v), 6) for v in image_statistics(image, natural)]
        changed.append("stats")
    if cover.phase1 is None:
        result = detect_platform(image, natural)
        cover.phase1 = {"family": result.family, "confidence": round(float(result.confidence), 4), "reason": result.reason}
        changed.append("phase1")
    if cover.width is None or cover.width != info.width or cover.height != info.height:
        cover.width, cover.height = info.width, info.height
        changed += ["width", "height"]
    return tuple(changed)


def load_image_features(sha256_list: list[str], backbone_id: str) -> np.ndarray:
    """The heads' image features: cached backbone features of every view in VIEWS order, the cover text, then the cover profile."""
    blocks = [load_features(sha256_list, backbone_id, view) for view in VIEWS]
    return np.concatenate([*blocks, load_texts(sha256_list), load_profiles(sha256_list)], axis=1)


def load_texts(sha256_list: list[str]) -> np.ndarray:
    """Stack the covers' text vectors in the given order; raises KeyError naming the first missing one.

    Each is the cached text, spine word and corner words hashed together. A
    bucket contains log(1 + summed scores), so adding the sums gives the
    vector of all the lines read in one pass.
    """
    sums = np.zeros((len(sha256_list), TEXT_DIM), dtype=np.float32)
    for name, _method, make_cache in WORD_READINGS:
        description = "cover text" if name == "text" else f"cover {name} text"
        sums += np.expm1(_stack_cached(make_cache(), sha256_list, description, TEXT_DIM))
    return np.log1p(sums, out=sums)


def load_profiles(sha256_list: list[str]) -> np.ndarray:
    """Stack cached cover profiles (strip profile and border composition) in the given order; raises KeyError naming the first missing one."""
    return _stack_cached(profile_cache(), sha256_list, "cover profile", PROFILE_DIM)


def load_stats(sha256_list: list[str]) -> np.ndarray:
    by_sha = dict(CoverImage.objects.filter(sha256__in=set(sha256_list)).values_list("sha256", "stats"))
    return np.array([by_sha[sha] for sha in sha256_list], dtype=np.float32).reshape(-1, 10)


def load_phase1(sha256_list: list[str]) -> np.ndarray:
    """Phase-1 platform calls of the covers as confidence-weighted one-hot rows."""
    from coverpick.model.inputs import phase1_onehot

    by_sha = dict(CoverImage.objects.filter(sha256__in=set(sha256_list)).values_list("sha256", "phase1"))
    return phase1_onehot([by_sha.get(sha) for sha in sha256_list])


def load_features(sha256_list: list[str], backbone_id: str, view: str = "full") -> np.ndarray:
    """Stack cached features of one view in the given order; raises KeyError naming the first missing one."""
    return _stack_cached(cache_for(backbone_id, view), sha256_list, f"{backbone_id} {view} features", 0)


def _stack_cached(cache: FeatureCache, sha256_list: list[str], what: str, width: int) -> np.ndarray:
    vectors = []
    for sha in sha256_list:
        vector = cache.get(sha)
        if vector is None:
            raise KeyError(f"no cached {what} for image {sha[:12]}; run the sweep or training first")
        vectors.append(vector)
    return np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, width), dtype=np.float32)
