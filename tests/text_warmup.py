"""Read the sample catalogue's cover text on every core before a fixture featurizes the whole sample.

Reading a cover's words is the slowest step of featurizing it (an estimated
0.4 s per cover on one core), and coverpick reads covers one at a time so as
to leave the web server its core. The test session has the machine to
itself: this splits the sample's unread images between one process per core,
each writing the same content-keyed caches that featurize reads. Featurize
then finds the words cached and only runs the backbone.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp"}


def _unread(paths: list[Path]) -> list[tuple[str, str, list[int]]]:
    """Return (path, sha256, indexes of the readings it lacks) for every image some reading has no cache entry for."""
    from coverpick.model.featurize import word_caches

    caches = word_caches()
    work = []
    for path in paths:
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        missing = [index for index, cache in enumerate(caches) if sha256 not in cache]
        if missing:
            work.append((str(path), sha256, missing))
    return work


def _start_worker() -> None:
    """Set up Django in a worker process, because featurize imports the catalogue models."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
    import django

    django.setup()


def _read_share(share: list[tuple[str, str, list[int]]]) -> int:
    """Read one process's share of the images into the word caches and return how many it read."""
    from coverpick.covers.decode import ImageDecodeError
    from coverpick.model.featurize import read_word_vectors, word_caches
    from coverpick.vision.text import TextReader

    caches = word_caches()
    reader = TextReader(threads=1)
    done = 0
    for path, sha256, missing in share:
        try:
            vectors = read_word_vectors(Path(path).read_bytes(), reader, missing, sha256[:12])
        except ImageDecodeError:
            continue  # featurize records the decode error itself
        for index, vector in zip(missing, vectors):
            caches[index].put(sha256, vector)
        done += 1
    return done


def _usable_cores() -> int:
    """Return the cores this process may run on (its CPU affinity where the system reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def read_text_on_all_cores(folder: Path, processes: int | None = None) -> int:
    """Fill the word caches for every image under ``folder`` and return how many images were read.

    Does nothing with one core, where featurize reads the images at the same speed.
    """
    processes = processes or _usable_cores()
    if processes < 2:
        return 0
    paths = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    work = _unread(paths)
    if not work:
        return 0
    shares = [work[start::processes] for start in range(processes)]
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"), initializer=_start_worker) as pool:
        return sum(pool.map(_read_share, shares))
