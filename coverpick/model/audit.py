"""Label audit: rank human labels by how likely they are to be wrong.

Every labelled cover is predicted out-of-fold (by heads that never saw its
game), then cleanlab's multi-label label-quality score compares the given
label set with those probabilities. Low quality means suspect. Manual labels
that contradict a confident verdict of the active classifier are flagged too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from coverpick.catalogue.models import Listing, Verdict
from coverpick.labels import LABEL_CLASSES, LabelError, validate_label_set

logger = logging.getLogger(__name__)

CONTRADICTION_CONFIDENCE = 0.9


@dataclass
class Suspect:
    listing_id: int
    shop: str
    product_id: str
    labels: list[str]
    suggested: list[str]
    score: float
    contradicts_classifier: bool

    def record(self) -> dict:
        return {
            "shop": self.shop,
            "product_id": self.product_id,
            "labels": self.labels,
            "suggested": self.suggested,
            "score": round(self.score, 4),
            "contradicts_classifier": self.contradicts_classifier,
        }


def suspicion_scores(label_sets: list[list[str]], probs: np.ndarray) -> np.ndarray:
    """Suspicion in [0, 1] per row: 1 minus cleanlab's multi-label label quality.

    cleanlab needs every class to appear among the labels with at least one
    example; classes absent from the labels are dropped from its view. When
    cleanlab cannot score the data (too few rows, one class), the score falls
    back to 1 minus the mean probability the model gives the row's labels.
    """
    present = sorted({LABEL_CLASSES.index(label) for labels in label_sets for label in labels})
    remap = {old: new for new, old in enumerate(present)}
    given = [[remap[LABEL_CLASSES.index(label)] for label in labels] for labels in label_sets]
    fallback = np.array([1.0 - float(np.mean([probs[i, LABEL_CLASSES.index(l)] for l in labels])) for i, labels in enumerate(label_sets)])
    if len(present) < 2:
        return fallback
    try:
        from cleanlab.multilabel_classification.rank import get_label_quality_scores

        sub = np.clip(probs[:, present], 1e-6, 1.0)
        quality = get_label_quality_scores(given, sub)
    except (ValueError, IndexError, ZeroDivisionError) as exc:
        logger.warning("cleanlab could not score the labels (%s); using the model's own probabilities", exc)
        return fallback
    return 1.0 - np.asarray(quality, dtype=np.float64)


def suggested_labels(probs_row: np.ndarray) -> list[str]:
    """Return the argmax class, plus a second class when it is nearly as likely and the labelling rules allow the pair.

    A pair the rules forbid (``placeholder`` with ``clean``, say) would be a
    suggestion staff could not save, so the argmax class is then suggested alone.
    """
    order = np.argsort(-probs_row)
    picked = [LABEL_CLASSES[order[0]]]
    if probs_row[order[1]] >= 0.5 * probs_row[order[0]]:
        pair = [*picked, LABEL_CLASSES[order[1]]]
        try:
            validate_label_set(pair)
        except LabelError:
            return picked
        return pair
    return picked


def audit_labels(data, oof_quality: np.ndarray) -> list[Suspect]:
    """Rank the training rows from most to least suspect."""
    scores = suspicion_scores(data.label_sets, oof_quality)
    listing_ids = [data.catalogue.listing_ids[i] for i in data.rows]
    keys = dict(Listing.objects.filter(pk__in=listing_ids).values_list("pk", "shop__code"))
    products = dict(Listing.objects.filter(pk__in=listing_ids).values_list("pk", "product_id"))
    active = {
        listing_id: (quality, confidence)
        for listing_id, quality, confidence in Verdict.objects.filter(
            listing_id__in=listing_ids, classifier_version__kind="heads", classifier_version__is_active=True
        ).values_list("listing_id", "quality", "quality_confidence")
    }
    suspects = []
    for row, listing_id in enumerate(listing_ids):
        labels = data.label_sets[row]
        verdict, confidence = active.get(listing_id, (None, None))
        contradicts = bool(
            verdict in LABEL_CLASSES and confidence is not None and confidence >= CONTRADICTION_CONFIDENCE and verdict not in labels
        )
        suspects.append(
            Suspect(
                listing_id=listing_id,
                shop=keys[listing_id],
                product_id=products[listing_id],
                labels=list(labels),
                suggested=suggested_labels(oof_quality[row]),
                score=float(scores[row]),
                contradicts_classifier=contradicts,
            )
        )
    suspects.sort(key=lambda s: (-s.score, s.listing_id))
    return suspects
