"""Small builders for catalogue rows that tests create themselves."""

from __future__ import annotations

import itertools

from coverpick.catalogue.models import ClassifierVersion, CoverImage, Edition, Game, Listing, Shop, Verdict

_counter = itertools.count(1)


def make_game(title: str = "Test Game", platforms=(("ps4", "sony"),)) -> tuple[Game, list[Edition]]:
    n = next(_counter)
    game = Game.objects.create(key=f"test-game-{n}", title=f"{title} {n}")
    editions = [Edition.objects.create(game=game, platform=code, family=family) for code, family in platforms]
    return game, editions


def make_listing(edition: Edition, shop_code: str = "shop-a", *, preference: int = 100, width: int = 600, height: int = 850, decode_error=None) -> Listing:
    n = next(_counter)
    shop, _ = Shop.objects.get_or_create(code=shop_code, defaults={"name": shop_code, "preference": preference})
    cover = CoverImage.objects.create(
        sha256=f"{n:064x}", path=f"test/{n}.jpg", format="JPEG", width=width, height=height, decode_error=decode_error
    )
    return Listing.objects.create(
        shop=shop,
        product_id=f"P{n}",
        edition=edition,
        title=edition.game.title,
        platform_raw=edition.platform,
        platform_family=edition.family,
        cover=cover,
    )


def _version(name: str, kind: str, active: bool) -> ClassifierVersion:
    """Get or create a classifier version; an active one replaces any other active version of its kind.

    Session fixtures may have committed an active version already, and only
    one version per kind may be active.
    """
    if active:
        ClassifierVersion.objects.filter(kind=kind, is_active=True).exclude(name=name).update(is_active=False)
    version, _ = ClassifierVersion.objects.get_or_create(name=name, defaults={"kind": kind, "is_active": active})
    return version


def heads_version(name: str = "heads-test", active: bool = True) -> ClassifierVersion:
    return _version(name, ClassifierVersion.KIND_HEADS, active)


def phase1_version(name: str = "phase1-test") -> ClassifierVersion:
    return _version(name, ClassifierVersion.KIND_PHASE1, True)


def predict(
    listing: Listing,
    version: ClassifierVersion,
    quality=None,
    platform=None,
    confidence=0.9,
    platform_confidence=0.9,
    clean_probability=None,
) -> Verdict:
    """A classifier verdict; with ``clean_probability``, quality_probs carries it under ``clean``."""
    probs = None
    if clean_probability is not None:
        probs = {"clean": clean_probability}
        if quality not in (None, "clean", "unknown"):
            probs[quality] = confidence
    return Verdict.objects.create(
        listing=listing,
        source=Verdict.SOURCE_CLASSIFIER,
        classifier_version=version,
        quality=quality,
        quality_confidence=confidence,
        quality_probs=probs,
        platform=platform,
        platform_confidence=platform_confidence,
    )
