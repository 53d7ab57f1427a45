"""Catalogue models: shops, games, editions, listings, stored cover images and verdicts.

A *cover* is a listing's image in its role as a candidate for its game's page.
The image content is stored once per SHA-256 (``CoverImage``), but verdicts
belong to the listing (``Verdict.listing``): the same picture can be the clean
cover of one game and the wrong game for another listing, and the quality head
reads the listing's declared platform and its game's other editions.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from coverpick.labels import ALL_FAMILIES


class Shop(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # Lower is preferred; used as the ranking's tie-break after the tier.
    preference = models.IntegerField(default=100)

    class Meta:
        ordering = ["preference", "code"]

    def __str__(self) -> str:
        return self.code


def save_shop_order(codes: list[str]) -> bool:
    """Rank the shops ``codes`` names first, in that order, and every other shop after them, level.

    Returns True when any shop's preference changed.
    """
    before = dict(Shop.objects.values_list("code", "preference"))
    target = {code: len(codes) for code in before}
    target.update({code: rank for rank, code in enumerate(codes)})
    changed = [code for code, preference in before.items() if preference != target[code]]
    for code in changed:
        Shop.objects.filter(code=code).update(preference=target[code])
    return bool(changed)


class Game(models.Model):
    key = models.CharField(max_length=300, unique=True, help_text="Normalised title used to match shops' listings")
    title = models.CharField(max_length=300)
    primary_listing = models.ForeignKey(
        "Listing", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    primary_tier = models.IntegerField(null=True, blank=True)
    primary_computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


FAMILY_CHOICES = [(family, family) for family in ALL_FAMILIES]


class Edition(models.Model):
    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="editions")
    platform = models.CharField(max_length=40, help_text="Platform code, e.g. ps3 or wiiu")
    family = models.CharField(max_length=16, choices=FAMILY_CHOICES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["game", "platform"], name="edition_unique_game_platform")]

    def __str__(self) -> str:
        return f"{self.game.title} ({self.platform})"


class CoverImage(models.Model):
    """Image content stored once per SHA-256, with what decoding it found."""

    sha256 = models.CharField(max_length=64, unique=True)
    path = models.CharField(max_length=300, blank=True, help_text="Path inside the image store")
    size_bytes = models.BigIntegerField(default=0)
    format = models.CharField(max_length=16, blank=True)
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
    decode_error = models.TextField(null=True, blank=True)
    # The 10 image statistics (coverpick.vision.stats.STAT_NAMES); derived from content only.
    stats = models.JSONField(null=True, blank=True)
    # The phase-1 heuristic's result for this content: {"family", "confidence", "reason"}.
    phase1 = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)

    def __str__(self) -> str:
        return self.sha256[:12]


class Listing(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="listings")
    product_id = models.CharField(max_length=500)
    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="listings")
    title = models.CharField(max_length=500, help_text="Title as the shop sent it")
    edition_text = models.CharField(max_length=200, blank=True)
    platform_raw = models.CharField(max_length=200, help_text="Platform as the shop sent it")
    platform_family = models.CharField(max_length=16, choices=FAMILY_CHOICES)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    in_stock = models.BooleanField(null=True)
    gtin = models.CharField(max_length=32, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    image_ref = models.CharField(max_length=1000, blank=True, help_text="Image path or URL as sent")
    cover = models.ForeignKey(CoverImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="listings")
    # HTTP validators of the last fetch of an http(s) image_ref, sent on re-import
    # so an unchanged image is not downloaded again.
    image_etag = models.CharField(max_length=300, blank=True)
    image_last_modified = models.CharField(max_length=100, blank=True)
    # Why the image could not be stored (missing file, fetch failure); decode
    # problems of stored content live on CoverImage.decode_error.
    cover_error = models.TextField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "product_id"], name="listing_unique_shop_product")]
        indexes = [models.Index(fields=["edition"])]

    @property
    def game(self) -> Game:
        return self.edition.game

    def __str__(self) -> str:
        return f"{self.shop.code}:{self.product_id}"


class ClassifierVersion(models.Model):
    KIND_HEADS = "heads"
    KIND_PHASE1 = "phase1"
    KIND_CHOICES = [(KIND_HEADS, "trained heads"), (KIND_PHASE1, "phase-1 heuristic")]

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    is_active = models.BooleanField(default=False)
    backbone = models.CharField(max_length=64, blank=True)
    checkpoint = models.CharField(max_length=300, blank=True, help_text="Folder inside the model store")
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind"], condition=Q(is_active=True), name="one_active_version_per_kind")
        ]

    def __str__(self) -> str:
        return self.name


class Verdict(models.Model):
    """One judgement of a cover: a classifier's prediction or a person's label, review or pin."""

    SOURCE_CLASSIFIER = "classifier"
    SOURCE_MANUAL_TRAIN = "manual-train"
    SOURCE_REVIEW = "review"
    SOURCE_MANUAL_PIN = "manual-pin"
    MANUAL_SOURCES = (SOURCE_MANUAL_TRAIN, SOURCE_REVIEW, SOURCE_MANUAL_PIN)
    # Staff rows that judge the cover itself, which an image or edition change outdates.
    JUDGEMENT_SOURCES = (SOURCE_MANUAL_TRAIN, SOURCE_REVIEW)
    SOURCE_CHOICES = [(s, s) for s in (SOURCE_CLASSIFIER, *MANUAL_SOURCES)]

    REVIEW_CONFIRMED = "confirmed"
    REVIEW_REJECTED = "rejected"

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="verdicts")
    source = models.CharField(max_length=16, choices=SOURCE_CHOICES)
    classifier_version = models.ForeignKey(
        ClassifierVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="verdicts"
    )
    # The verdict the ranking reads: a class name, "unknown", or null (a rejected
    # review, a phase-1 row that only speaks about the platform, or a decode error).
    quality = models.CharField(max_length=32, null=True, blank=True)
    quality_confidence = models.FloatField(null=True, blank=True)
    quality_probs = models.JSONField(null=True, blank=True)
    # Classifier rows only: log(1 + weight) of the printed text that the cover
    # carries and even its closest sibling cover lacks (the first column of
    # coverpick.model.inputs.text_novelty). Null when no sibling has text.
    text_novelty = models.FloatField(null=True, blank=True)
    # Full multi-label set of a manual-train row.
    labels = models.JSONField(default=list, blank=True)
    platform = models.CharField(max_length=16, null=True, blank=True)
    platform_confidence = models.FloatField(null=True, blank=True)
    platform_probs = models.JSONField(null=True, blank=True)
    review_predicted = models.CharField(max_length=32, blank=True)
    review_verdict = models.CharField(max_length=16, blank=True)
    error = models.TextField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # Staff rows only: the cover the listing showed, and the edition it was
    # filed under, when the row was written. When either has changed since,
    # the row is outdated (see ``is_outdated``). It then describes an earlier
    # image, or a cover judged against another declared platform or game.
    cover = models.ForeignKey(CoverImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    edition = models.ForeignKey(Edition, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["listing", "classifier_version"],
                condition=Q(classifier_version__isnull=False),
                name="verdict_unique_per_version",
            ),
            models.UniqueConstraint(
                fields=["listing", "source"],
                condition=Q(source__in=["manual-train", "manual-pin"]),
                name="verdict_unique_manual_per_source",
            ),
            models.UniqueConstraint(
                fields=["listing", "review_predicted"],
                condition=Q(source="review"),
                name="verdict_unique_review_per_prediction",
            ),
            models.CheckConstraint(
                condition=Q(source="classifier", classifier_version__isnull=False)
                | Q(~Q(source="classifier"), classifier_version__isnull=True),
                name="verdict_version_iff_classifier",
            ),
        ]
        indexes = [models.Index(fields=["listing", "source"]), models.Index(fields=["classifier_version", "quality"])]

    @property
    def is_demotion_marker(self) -> bool:
        return self.source == self.SOURCE_MANUAL_PIN and self.quality == "unknown"

    def describes_earlier_image(self, listing: Listing) -> bool:
        """Return whether this staff row was written for a cover the listing no longer shows."""
        return self.cover_id is not None and self.cover_id != listing.cover_id

    def describes_earlier_edition(self, listing: Listing) -> bool:
        """Return whether this staff row was written while the listing was filed under another edition."""
        return self.edition_id is not None and self.edition_id != listing.edition_id

    def is_outdated(self, listing: Listing) -> bool:
        """Return whether this staff row describes an earlier image or edition of the listing.

        A label such as wrong_console or clean holds for one image claimed as
        one platform of one game, so either change makes it outdated.
        """
        return self.describes_earlier_image(listing) or self.describes_earlier_edition(listing)

    def __str__(self) -> str:
        origin = self.classifier_version.name if self.classifier_version_id else self.source
        return f"{self.listing}: {self.quality} ({origin})"


def for_earlier_image() -> Q:
    """Filter for Verdict rows written for a cover that their listing no longer shows."""
    return Q(cover__isnull=False) & (Q(listing__cover__isnull=True) | ~Q(cover=F("listing__cover")))


def for_earlier_edition() -> Q:
    """Filter for Verdict rows written while their listing was filed under another edition."""
    return Q(edition__isnull=False) & ~Q(edition=F("listing__edition"))


def for_other_game() -> Q:
    """Filter for Verdict rows written under an edition of another game than their listing's now."""
    return Q(edition__isnull=False) & ~Q(edition__game=F("listing__edition__game"))


def for_outdated() -> Q:
    """Filter for staff rows that describe an earlier image or edition of their listing (``Verdict.is_outdated``).

    Training and the ranking leave such rows out, and the labelling queue
    serves their listings first.
    """
    return for_earlier_image() | for_earlier_edition()


def listings_to_relabel(listing_ids=None):
    """Return the ids of listings whose staff labels or reviews are outdated, as a query.

    Only listings with a usable cover count, and a listing drops out once it
    has a manual-train label for the image and edition it has now. The labelling queue
    serves these first. ``listing_ids`` narrows the query to those listings.
    """
    current_label = Verdict.objects.filter(
        listing=models.OuterRef("listing_id"),
        source=Verdict.SOURCE_MANUAL_TRAIN,
        cover=models.OuterRef("listing__cover"),
    ).exclude(for_earlier_edition())
    rows = Verdict.objects.filter(
        for_outdated(),
        source__in=Verdict.JUDGEMENT_SOURCES,
        listing__cover__isnull=False,
        listing__cover__decode_error__isnull=True,
    ).exclude(models.Exists(current_label))
    if listing_ids is not None:
        rows = rows.filter(listing_id__in=list(listing_ids))
    return rows.values_list("listing_id", flat=True).distinct()


class AuditEvent(models.Model):
    """A staff action worth keeping: pins, unpins, labels and model activations."""

    action = models.CharField(max_length=32)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    game = models.ForeignKey(Game, null=True, blank=True, on_delete=models.SET_NULL)
    listing = models.ForeignKey(Listing, null=True, blank=True, on_delete=models.SET_NULL)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
