"""Grow the imported sample catalogue to a given number of editions, for the benchmark.

    COVERPICK_HOME=... python bench/scale.py --editions 2000

Run after the sample catalogue is imported into COVERPICK_HOME. Each copy of
an edition gets its own game, edition, listings and cover images. Every copied
image has one pixel changed and is re-encoded in its original format, JPEG
with the source's quantization tables so the file stays close to the
original. That gives each copy its own SHA-256, so the image store, feature
cache and phase-1 results treat it as a new cover. Rows are inserted
directly, because the importer's per-row checks are not what the benchmark
measures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

MAX_ATTEMPTS = 32


def altered_image(data: bytes, position: int, size: int = 1) -> tuple[bytes, str]:
    """Return the image re-encoded with a size×size patch at ``position`` (row-major) pushed to the far end of its range.

    Bright pixels become black and dark ones white, the largest change a pixel
    can take, so JPEG quantization is less likely to absorb it.
    """
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image_format = image.format
    options = {key: image.info[key] for key in ("icc_profile", "exif", "transparency", "dpi") if key in image.info}
    if image_format == "JPEG":
        options["quality"] = "keep"
        options["progressive"] = bool(image.info.get("progressive"))
    elif image_format != "PNG":
        raise ValueError(f"the benchmark copies JPEG and PNG covers only, not {image_format}")
    image.load()
    maximum = 65535 if image.mode.startswith("I") else 255
    left = position % image.width
    top = (position // image.width) % image.height
    for x in range(left, min(left + size, image.width)):
        for y in range(top, min(top + size, image.height)):
            pixel = image.getpixel((x, y))
            channels = pixel if isinstance(pixel, tuple) else (pixel,)
            value = 0 if sum(channels) > maximum * len(channels) / 2 else maximum
            image.putpixel((x, y), tuple(value for _ in channels) if isinstance(pixel, tuple) else value)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue(), image_format


def store_copies(task: tuple[str, list[int]]) -> list[tuple[int, str, str, int, str]]:
    """Write the altered copies of one stored cover; return (copy, sha256, relative path, size, format) per copy.

    JPEG re-encoding can absorb a one-pixel change, so two copies could come
    out byte-identical. A copy whose hash was already produced is altered
    elsewhere, with a patch that grows every 4 attempts, until its hash is new.
    """
    from coverpick.covers.store import absolute_path, relative_path_for, sha256_bytes, write_once

    relative, copies = task
    data = absolute_path(relative).read_bytes()
    seen = {sha256_bytes(data)}
    written = []
    position = 0
    for copy in copies:
        for attempt in range(MAX_ATTEMPTS):
            altered, image_format = altered_image(data, position, size=1 + attempt // 4)
            position += 9
            digest = sha256_bytes(altered)
            if digest not in seen:
                break
        else:
            raise RuntimeError(f"no pixel change of {relative} gave a new SHA-256 after {MAX_ATTEMPTS} attempts")
        seen.add(digest)
        target = relative_path_for(digest, image_format)
        write_once(target, altered)
        written.append((copy, digest, target, len(altered), image_format))
    return written


def plan_copies(edition_count: int, target: int) -> list[int]:
    """Return how many editions copy 1, 2, ... takes so the catalogue reaches ``target`` editions."""
    plan = []
    remaining = target - edition_count
    while remaining > 0:
        plan.append(min(edition_count, remaining))
        remaining -= edition_count
    return plan


def scale_catalogue(target_editions: int, workers: int) -> dict:
    from django.db import transaction

    from coverpick.catalogue.models import CoverImage, Edition, Game, Listing

    started = time.monotonic()
    editions = list(Edition.objects.select_related("game").order_by("pk"))
    plan = plan_copies(len(editions), target_editions)
    listings_by_edition: dict[int, list[Listing]] = {}
    for listing in Listing.objects.select_related("cover").order_by("pk"):
        listings_by_edition.setdefault(listing.edition_id, []).append(listing)

    copies_by_cover: dict[str, list[int]] = {}
    for copy, count in enumerate(plan, start=1):
        for edition in editions[:count]:
            for listing in listings_by_edition.get(edition.pk, []):
                if listing.cover is not None and not listing.cover.decode_error:
                    copies_by_cover.setdefault(listing.cover.path, []).append(copy)
    new_cover: dict[tuple[str, int], tuple[str, str, int, str]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        tasks = sorted((path, sorted(set(copies))) for path, copies in copies_by_cover.items())
        for (path, _copies), written in zip(tasks, pool.map(store_copies, tasks, chunksize=8)):
            for copy, digest, relative, size, image_format in written:
                new_cover[(path, copy)] = (digest, relative, size, image_format)
    images_seconds = time.monotonic() - started

    created = {"games": 0, "editions": 0, "listings": 0, "covers": 0}
    for copy, count in enumerate(plan, start=1):
        with transaction.atomic():
            _insert_copy(copy, editions[:count], listings_by_edition, new_cover, created)
    return {
        "copies": len(plan),
        "editions": Edition.objects.count(),
        "listings": Listing.objects.count(),
        "covers": CoverImage.objects.count(),
        "created": created,
        "image_seconds": round(images_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
    }


def _insert_copy(copy, editions, listings_by_edition, new_cover, created) -> None:
    from coverpick.catalogue.models import CoverImage, Edition, Game, Listing

    games = {}
    for edition in editions:
        if edition.game_id not in games:
            games[edition.game_id] = Game(key=f"{edition.game.key}bench{copy}", title=f"{edition.game.title} [bench copy {copy}]")
    Game.objects.bulk_create(games.values())
    game_ids = dict(Game.objects.filter(key__in=[g.key for g in games.values()]).values_list("key", "pk"))
    new_editions = [
        Edition(game_id=game_ids[games[edition.game_id].key], platform=edition.platform, family=edition.family)
        for edition in editions
    ]
    Edition.objects.bulk_create(new_editions)
    edition_ids = {
        (game_id, platform): pk
        for pk, game_id, platform in Edition.objects.filter(game_id__in=game_ids.values()).values_list("pk", "game_id", "platform")
    }

    covers = {}
    for edition in editions:
        for listing in listings_by_edition.get(edition.pk, []):
            key = (listing.cover.path, copy) if listing.cover is not None else None
            if key in new_cover and new_cover[key][0] not in covers:
                digest, relative, size, image_format = new_cover[key]
                covers[digest] = CoverImage(
                    sha256=digest, path=relative, size_bytes=size, format=image_format,
                    width=listing.cover.width, height=listing.cover.height,
                )
    CoverImage.objects.bulk_create(covers.values())
    cover_ids = dict(CoverImage.objects.filter(sha256__in=list(covers)).values_list("sha256", "pk"))

    listings = []
    for edition in editions:
        new_edition = edition_ids[(game_ids[games[edition.game_id].key], edition.platform)]
        for listing in listings_by_edition.get(edition.pk, []):
            key = (listing.cover.path, copy) if listing.cover is not None else None
            listings.append(
                Listing(
                    shop_id=listing.shop_id,
                    product_id=f"{listing.product_id}#bench{copy}",
                    edition_id=new_edition,
                    title=listing.title,
                    edition_text=listing.edition_text,
                    platform_raw=listing.platform_raw,
                    platform_family=listing.platform_family,
                    price=listing.price,
                    currency=listing.currency,
                    in_stock=listing.in_stock,
                    gtin=listing.gtin,
                    url=listing.url,
                    image_ref=listing.image_ref,
                    cover_id=cover_ids[new_cover[key][0]] if key in new_cover else None,
                    cover_error=listing.cover_error if key not in new_cover else None,
                )
            )
    Listing.objects.bulk_create(listings, batch_size=500)
    created["games"] += len(games)
    created["editions"] += len(new_editions)
    created["covers"] += len(covers)
    created["listings"] += len(listings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Copy the imported catalogue's editions until it has N editions.")
    parser.add_argument("--editions", type=int, required=True, help="Editions the catalogue should have in total")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Processes that re-encode images (default: all CPUs)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
    import django

    django.setup()
    print(json.dumps(scale_catalogue(args.editions, args.workers)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
