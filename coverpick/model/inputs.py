"""Head input layouts, shared by training and inference (numpy only).

Image features are the backbone's pooled features of each view of the cover
(the letterboxed full cover, the top and bottom bands, the top strip), concatenated,
followed by the cover's text vector (coverpick.vision.text) and its profile
(coverpick.vision.profile: the strip profile, then the corner fill and the
border composition).

The image heads read the image features without the text vector (D columns,
see ``image_columns``). The quality head reads, in this order: those (D), a
one-hot of the listing's declared platform family (4, all zeros for
"other"), the game prototype (D: mean of the same columns over the covers of
the game's other editions, zeros when there are none) and the 10 image
statistics. The platform head reads the D columns alone.

Two text heads read the text vector alone: one for the quality classes and
one for the platform family. The words meet the pixels only in the second
stages. On the sample catalogue, under cross-validation by game, reading
the text in the image quality head as well lowered 3d_render from 0.90 to
0.85, wrong_console from 0.98 to 0.94 and margins from 0.98 to 0.93.

A platform second stage reads the platform head's and the platform text
head's log-probabilities and the phase-1 heuristic's call.

The quality second stage reads a few strong inputs that would drown among
thousands of feature dimensions: the quality head's log-probabilities, the
platform head's probabilities and its probability of the declared family,
the declared one-hot, the comparison scalars (similarity to the game's other
covers), the 10 statistics, the corner fill and border composition, the phase-1
heuristic's platform call, the quality text head's log-probabilities, and
how much of the game's title the cover's text carries (see ``title_match``),
the similarity to the siblings that show a box front (see
``box_front_comparison``), and the printed text that the cover carries and
its siblings lack (see ``text_novelty``).
The comparison inputs include a contrast with the cover's nearest sibling (see ``comparison_features``). A checkpoint stores
the layouts it was trained with, and loading refuses layouts that differ
from this module's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.vision.presets import VIEWS
from coverpick.vision.profile import MEASURES, PROFILE_DIM, PROFILE_ROWS, STRIP_DIM
from coverpick.vision.text import TEXT_DIM, title_buckets
from coverpick.vision.stats import BORDER_DIM, CORNER_FILL_DIM

N_STATS = 10
# Rows at each edge of the strip profile that the sibling contrast averages
# apart from the inner rows, so a thin edge band is not diluted by them.
EDGE_ROWS = 4
N_PROFILE_SUMMARY = 2 * 2 * len(MEASURES)
N_SIMILARITIES = 5
N_CONTRAST = 1 + N_PROFILE_SUMMARY + N_STATS
N_COMPARISONS = N_SIMILARITIES + N_CONTRAST
N_TITLE_MATCH = 3
N_BOX_FRONT = 2
N_TEXT_NOVELTY = 3
# Classes whose covers show no box front to compare art with: a flat-lay of
# the box's contents or of a deluxe edition's items.
FLAT_LAY_CLASSES = ("contents", "deluxe_bundle")
# A sibling shows a box front when the first stage gives the flat-lay classes
# together less than this.
FLAT_LAY_CEILING = 0.5
# The corner fill and border composition, the last columns of image features.
BORDER_COLUMNS = CORNER_FILL_DIM + BORDER_DIM
LAYOUT_VERSION = 12
# Dimensions of the whitened space in which covers are compared with their siblings.
SIMILARITY_DIMS = 256
# Rows the space is fitted on at most. An SVD of 27,000 × 1,280 features took
# 6.2 s on the benchmark machine and one of 4,000 rows 1.2 s, and 4,000 rows
# are plenty to estimate 256 components.
SIMILARITY_FIT_ROWS = 4000


def quality_layout(feature_dim: int) -> list[list]:
    """Return the quality head's input layout as [name, width] pairs, for image features ``feature_dim`` wide."""
    return [
        ["features_without_text", feature_dim - TEXT_DIM],
        ["declared_family_onehot", len(PLATFORM_FAMILIES)],
        ["game_prototype", feature_dim - TEXT_DIM],
        ["image_statistics", N_STATS],
    ]


def platform_layout(feature_dim: int) -> list[list]:
    """Return the platform head's input layout, for image features ``feature_dim`` wide."""
    return [["features_without_text", feature_dim - TEXT_DIM]]


def platform_stage2_layout() -> list[list]:
    return [
        ["platform_log_probs", len(PLATFORM_FAMILIES)],
        ["phase1_evidence", len(PLATFORM_FAMILIES) + 1],
        ["text_platform_log_probs", len(PLATFORM_FAMILIES)],
        ["edition_platform_log_probs", len(PLATFORM_FAMILIES)],
        ["edition_text_platform_log_probs", len(PLATFORM_FAMILIES)],
        ["edition_other_listings", 1],
    ]


def text_layout() -> list[list]:
    """Return the input layout of both text heads."""
    return [["cover_text", TEXT_DIM]]


def _row_index(rows: np.ndarray | None) -> slice | np.ndarray:
    """Return an index that picks ``rows``, or every row when it is None."""
    return slice(None) if rows is None else np.asarray(rows, dtype=np.int64)


def image_columns(features: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Return image features without their text vector: what the quality and platform heads read.

    ``rows`` picks rows in the same pass, so the text columns are never copied.
    """
    features = np.asarray(features, dtype=np.float32)
    picked = _row_index(rows)
    return np.concatenate([features[picked, : -(TEXT_DIM + PROFILE_DIM)], features[picked, -PROFILE_DIM:]], axis=1)


def text_columns(features: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Return the text vector inside image features (see coverpick.vision.text.text_vector), of ``rows`` if given."""
    return np.asarray(features, dtype=np.float32)[_row_index(rows), -(TEXT_DIM + PROFILE_DIM) : -PROFILE_DIM]


def stage2_layout() -> list[list]:
    return [
        ["quality_log_probs", 14],
        ["platform_probs", len(PLATFORM_FAMILIES)],
        ["platform_prob_of_declared", 1],
        ["declared_family_onehot", len(PLATFORM_FAMILIES)],
        ["comparisons", N_COMPARISONS],
        ["image_statistics", N_STATS],
        ["corner_fill_and_border_composition", BORDER_COLUMNS],
        ["phase1_evidence", len(PLATFORM_FAMILIES) + 1],
        ["text_quality_log_probs", 14],
        ["title_match", N_TITLE_MATCH],
        ["box_front_comparison", N_BOX_FRONT],
        ["text_novelty", N_TEXT_NOVELTY],
    ]


def family_onehot(families: list[str]) -> np.ndarray:
    """One-hot rows for declared families; a family outside the four heads' families is all zeros."""
    onehot = np.zeros((len(families), len(PLATFORM_FAMILIES)), dtype=np.float32)
    for row, family in enumerate(families):
        if family in PLATFORM_FAMILIES:
            onehot[row, PLATFORM_FAMILIES.index(family)] = 1.0
    return onehot


def game_prototypes(features: np.ndarray, game_ids: list, edition_ids: list) -> np.ndarray:
    """Mean features of each row's game's covers on OTHER editions; zeros where the game has no other edition.

    Rows are covers; two rows of the same edition never feed each other's prototype.
    """
    features = np.asarray(features, dtype=np.float32)
    prototypes = np.zeros_like(features)
    game_sum: dict = {}
    game_count: dict = {}
    edition_sum: dict = {}
    edition_count: dict = {}
    for row, (game, edition) in enumerate(zip(game_ids, edition_ids)):
        game_sum[game] = game_sum.get(game, 0) + features[row]
        game_count[game] = game_count.get(game, 0) + 1
        edition_sum[edition] = edition_sum.get(edition, 0) + features[row]
        edition_count[edition] = edition_count.get(edition, 0) + 1
    for row, (game, edition) in enumerate(zip(game_ids, edition_ids)):
        others = game_count[game] - edition_count[edition]
        if others > 0:
            prototypes[row] = (game_sum[game] - edition_sum[edition]) / others
    return prototypes


def quality_inputs(features: np.ndarray, families: list[str], prototypes: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Concatenate the quality head's inputs in layout order."""
    return np.concatenate(
        [
            np.asarray(features, dtype=np.float32),
            family_onehot(families),
            np.asarray(prototypes, dtype=np.float32),
            np.asarray(stats, dtype=np.float32).reshape(len(families), N_STATS),
        ],
        axis=1,
    )


def _unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-6)


@dataclass
class SimilaritySpace:
    """A whitened principal-component space of the full-cover view, for comparing covers.

    Raw pooled features are dominated by a few directions that every box front
    shares (a white letterbox, a portrait shape), so two different games look
    alike under plain cosine similarity. Centring on the training covers' mean
    and dividing each principal component by its spread lets the directions
    that tell games apart count as much as those that all covers share. On the
    sample catalogue, with the space fitted on all its covers, the highest
    similarity to a sibling separates wrong_game covers from the rest with an
    area under the ROC curve of 0.95, against 0.83 in the raw features.
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    # Mean of the training covers' bands-view features (empty when the
    # features have no bands view), so bands are compared as offsets from it.
    bands_mean: np.ndarray

    def project(self, features: np.ndarray) -> np.ndarray:
        full = np.asarray(features, dtype=np.float32)[:, : self.mean.shape[0]]
        return ((full - self.mean) @ self.components.T) * self.scale


def full_view_dim(feature_dim: int) -> int:
    """Width of the full view's block at the start of image features of width ``feature_dim``."""
    return (feature_dim - TEXT_DIM - PROFILE_DIM) // len(VIEWS)


def fit_similarity_space(
    features: np.ndarray, full_dim: int, dims: int = SIMILARITY_DIMS, rows: np.ndarray | None = None
) -> SimilaritySpace:
    """Fit the comparison space on the image features of training covers ``rows`` (default: all).

    It reads the full view (the first ``full_dim`` columns) and the mean of
    the bands view after it. At most SIMILARITY_FIT_ROWS rows are drawn, and
    only they and those columns are copied.
    """
    features = np.asarray(features, dtype=np.float32)
    picked = np.arange(len(features)) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(picked) > SIMILARITY_FIT_ROWS:
        picked = picked[np.sort(np.random.default_rng(0).choice(len(picked), SIMILARITY_FIT_ROWS, replace=False))]
    features = features[picked, : 2 * full_dim]
    full = features[:, :full_dim]
    mean = full.mean(axis=0)
    _, singular, vt = np.linalg.svd(full - mean, full_matrices=False)
    keep = max(1, min(dims, int((singular > singular[0] * 1e-4).sum())))
    scale = np.sqrt(len(full)) / np.maximum(singular[:keep], 1e-6)
    bands = features[:, full_dim : 2 * full_dim]
    bands_mean = bands.mean(axis=0) if bands.shape[1] == full_dim else np.zeros(0, dtype=np.float32)
    return SimilaritySpace(
        mean=mean, components=vt[:keep].astype(np.float32), scale=scale.astype(np.float32), bands_mean=bands_mean.astype(np.float32)
    )


def _sibling_groups(game_ids: list) -> list[np.ndarray]:
    """Return the row indices of each game that has at least two rows, one array per game."""
    rows_by_game: dict = {}
    for row, game in enumerate(game_ids):
        rows_by_game.setdefault(game, []).append(row)
    return [np.array(rows, dtype=np.int64) for rows in rows_by_game.values() if len(rows) >= 2]


def comparison_features(
    features: np.ndarray,
    game_ids: list,
    edition_ids: list,
    space: SimilaritySpace | None = None,
    stats: np.ndarray | None = None,
) -> np.ndarray:
    """Compare each cover with the other covers of its game.

    The first N_SIMILARITIES columns are cosine similarities and a count:
    1. the similarity to the game prototype (other editions);
    2. the highest similarity to another listing of the same edition;
    3. and 4. the highest and the mean similarity to any other listing of the game;
    5. log(1 + number of other listings of the game). A cover of a different game
    stands out by low similarity to its siblings. With ``space``, covers are
    compared in that whitened space instead of raw features.

    The other N_CONTRAST columns contrast the cover with its nearest sibling
    (see ``sibling_contrast``), scaled by their similarity clipped to [0, 1].
    Without that scaling, a cover of another game, whose nearest sibling is
    still a different picture, showed large differences that the second stage
    read as a notice or padding: on the sample catalogue, under cross-validation
    by game over two seeds, scaling raised wrong_game recall from 0.83 to 0.88
    and gkc from 0.58 to 0.69, and lowered multi_platform from 0.69 to 0.56.
    Zeros wherever there is nothing to compare with.
    """
    features = np.asarray(features, dtype=np.float32)
    compared = space.project(features) if space is not None else features
    unit = _unit_rows(compared)
    prototypes = _unit_rows(game_prototypes(compared, game_ids, edition_ids))
    result = np.zeros((len(features), N_COMPARISONS), dtype=np.float32)
    result[:, 0] = (unit * prototypes).sum(axis=1)
    editions = np.asarray(edition_ids)
    nearest = np.full(len(features), -1, dtype=np.int64)
    for members in _sibling_groups(game_ids):
        similarity = unit[members] @ unit[members].T
        np.fill_diagonal(similarity, np.nan)
        same_edition = editions[members][:, None] == editions[members][None, :]
        np.fill_diagonal(same_edition, False)
        result[members, 2] = np.nanmax(similarity, axis=1)
        result[members, 3] = np.nanmean(similarity, axis=1)
        edition_similarity = np.where(same_edition, similarity, -np.inf)
        best_edition = edition_similarity.max(axis=1)
        result[members, 1] = np.where(np.isfinite(best_edition), best_edition, 0.0)
        result[members, 4] = np.log1p(len(members) - 1)
        nearest[members] = members[np.nanargmax(similarity, axis=1)]
    contrast = sibling_contrast(features, nearest, space, stats)
    # A difference means an addition only between two covers of the same
    # picture, so the contrast fades with the nearest sibling's similarity.
    result[:, N_SIMILARITIES:] = contrast * np.clip(result[:, 2:3], 0.0, 1.0)
    return result


def box_front_comparison(
    features: np.ndarray, game_ids: list, quality_probs: np.ndarray, space: SimilaritySpace | None = None
) -> np.ndarray:
    """Compare each cover with those of its siblings that show a box front.

    A flat-lay of a box's contents or of a deluxe edition's items shares
    little with the box art, so a clean cover whose game's other listings are
    all flat-lays looked like a cover of another game. ``quality_probs`` are
    the first stage's quality probabilities of every row; a sibling shows a
    box front when it gives FLAT_LAY_CLASSES less than FLAT_LAY_CEILING. The
    columns are
    1. the highest similarity to a sibling that shows a box front, or 1 when
       no sibling does, since there is then no art to contradict the cover;
    2. the mean over the siblings of one minus their flat-lay probability,
       zero for a cover without siblings.
    Covers are compared in ``space`` when given, as in ``comparison_features``.
    """
    features = np.asarray(features, dtype=np.float32)
    compared = space.project(features) if space is not None else features
    unit = _unit_rows(compared)
    flat_lay = [LABEL_CLASSES.index(name) for name in FLAT_LAY_CLASSES]
    box_front = 1.0 - np.asarray(quality_probs, dtype=np.float32)[:, flat_lay].sum(axis=1)
    result = np.zeros((len(features), N_BOX_FRONT), dtype=np.float32)
    result[:, 0] = 1.0
    for members in _sibling_groups(game_ids):
        similarity = unit[members] @ unit[members].T
        shows_front = np.broadcast_to(box_front[members] > 1.0 - FLAT_LAY_CEILING, similarity.shape).copy()
        np.fill_diagonal(shows_front, False)
        best = np.where(shows_front, similarity, -np.inf).max(axis=1)
        result[members, 0] = np.where(np.isfinite(best), best, 1.0)
        result[members, 1] = (box_front[members].sum() - box_front[members]) / (len(members) - 1)
    return result


def title_match(features: np.ndarray, titles: list[str], game_ids: list) -> np.ndarray:
    """Measure how much of its game's title each cover's printed text carries.

    A cover of another game rarely prints this game's title, while the real
    cover usually does, unless its logo is too stylised to read. The text
    vector keeps only hashed character n-grams, so the match is counted on
    buckets: the columns are
    1. the share of the title's n-gram buckets that the cover's text fills;
    2. the share of all buckets the text fills, which is the first column's
       level by chance alone, high for covers with much small print;
    3. the first column minus its highest value among the other covers of the
       game, since a game whose logo no cover's text reads is not evidence
       against any one of them.
    A title without letters or digits of a-z and 0-9 (one in Japanese script,
    say) gives no evidence either way: its first column is the second and
    its third is zero.
    """
    present = text_columns(features) > 0.0
    result = np.zeros((len(titles), N_TITLE_MATCH), dtype=np.float32)
    result[:, 1] = present.mean(axis=1)
    readable = np.zeros(len(titles), dtype=bool)
    buckets_of: dict[str, np.ndarray] = {}
    for row, title in enumerate(titles):
        buckets = buckets_of.get(title)
        if buckets is None:
            buckets = buckets_of[title] = title_buckets(title)
        readable[row] = len(buckets) > 0
        result[row, 0] = present[row, buckets].mean() if readable[row] else result[row, 1]
    for members in _sibling_groups(game_ids):
        if not readable[members].all():
            continue
        match = result[members, 0]
        first, second = np.argsort(-match, kind="stable")[:2]
        others_best = np.full(len(members), match[first], dtype=np.float32)
        others_best[first] = match[second]
        result[members, 2] = match - others_best
    return result


def text_novelty(features: np.ndarray, game_ids: list) -> np.ndarray:
    """Measure the printed text a cover carries that its game's other covers lack.

    A retailer's banner, sticker or stamp adds words to one copy of the art.
    Whatever those words are, in whatever language, the other shops' copies
    of the same picture do not print them. The text vector contains
    log(1 + weight) per n-gram bucket, and a bucket of a cover is new against
    a sibling when the sibling's is empty. The columns are
    1. log(1 + the weight of the cover's new buckets) against the sibling
       with the least of them (the sibling most likely to show the same
       picture without additions);
    2. that weight as a share of the cover's whole text weight;
    3. 1 when some sibling carries text to compare with, else 0 (the first
       two columns are then 0).
    """
    text = text_columns(features)
    result = np.zeros((len(text), N_TEXT_NOVELTY), dtype=np.float32)
    # Each game's rows are converted on their own, since a float64 copy of
    # every row's text would take 220 MB at 27,000 covers.
    for members in _sibling_groups(game_ids):
        weights = np.expm1(text[members].astype(np.float64))
        totals = weights.sum(axis=1)
        new_weight = weights @ (weights <= 0.0).T.astype(np.float64)
        comparable = np.broadcast_to(totals > 0.0, new_weight.shape).copy()
        np.fill_diagonal(comparable, False)
        least = np.where(comparable, new_weight, np.inf).min(axis=1)
        found = np.isfinite(least)
        least = np.where(found, least, 0.0)
        result[members, 0] = np.log1p(least)
        result[members, 1] = np.where(totals > 0.0, least / np.maximum(totals, 1e-9), 0.0)
        result[members, 2] = found
    return result


# The labelling queue (coverpick.web.queue) serves a clean verdict whose
# new text (the first column of text_novelty) is above this percentile of the
# covers staff labelled clean. On the sample catalogue (879 covers) the truly
# clean covers' 90th percentile was 3.4, and the median of the covers with a
# notice 3.8.
NEW_TEXT_PERCENTILE = 90
# With fewer values than this, the percentile is noise and no cover is queued
# for its text.
NEW_TEXT_MIN_VERDICTS = 20


def new_text(novelty: np.ndarray, row: int) -> float | None:
    """Return the new text of ``row`` in ``text_novelty`` output, or None when no sibling carries text to compare with."""
    return float(novelty[row, 0]) if novelty[row, 2] else None


def new_text_level(values: list[float], percentile: float = NEW_TEXT_PERCENTILE) -> float | None:
    """Return the nearest-rank ``percentile`` of new-text ``values``, or None with fewer than NEW_TEXT_MIN_VERDICTS of them.

    The nearest rank is the smallest value with at least ``percentile`` % of the values at or below it.
    """
    if len(values) < NEW_TEXT_MIN_VERDICTS:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


def border_columns(features: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Return the corner fill and border composition at the end of image features, of ``rows`` if given.

    See coverpick.vision.stats.corner_fill and border_composition.
    """
    return np.asarray(features, dtype=np.float32)[_row_index(rows), -BORDER_COLUMNS:]


def _profile_summary(profile: np.ndarray) -> np.ndarray:
    """Mean of each strip-profile measure over the EDGE_ROWS outermost rows and over the rest, at the top and at the bottom."""
    rows = profile.reshape(len(profile), 2, PROFILE_ROWS, len(MEASURES))
    edge = rows[:, :, :EDGE_ROWS, :].mean(axis=2).reshape(len(profile), -1)
    inner = rows[:, :, EDGE_ROWS:, :].mean(axis=2).reshape(len(profile), -1)
    return np.concatenate([edge, inner], axis=1)


def sibling_contrast(
    features: np.ndarray, nearest: np.ndarray, space: SimilaritySpace | None, stats: np.ndarray | None
) -> np.ndarray:
    """Return how each cover differs from ``nearest`` (its most similar sibling's row, -1 for none).

    Retailers often start from the same publisher scan, so a key-card notice,
    an "available on" strip or white padding shows as a difference between two
    covers that are otherwise alike. Columns: cosine similarity of the bands
    views (centred on the training mean), then the cover's profile summary
    minus the sibling's, then its statistics minus the sibling's. The two
    covers get the same differences with opposite signs, so the second stage
    can tell the cover that carries the addition from the one without it.
    """
    contrast = np.zeros((len(features), N_CONTRAST), dtype=np.float32)
    with_sibling = np.flatnonzero(nearest >= 0)
    if not len(with_sibling):
        return contrast
    other = nearest[with_sibling]
    full_dim = space.mean.shape[0] if space is not None else full_view_dim(features.shape[1])
    bands_end = 2 * full_dim
    if space is not None and space.bands_mean.shape[0] == full_dim and features.shape[1] >= bands_end:
        bands = _unit_rows(features[:, full_dim:bands_end] - space.bands_mean)
        contrast[with_sibling, 0] = (bands[with_sibling] * bands[other]).sum(axis=1)
    if full_dim > 0 and features.shape[1] == len(VIEWS) * full_dim + TEXT_DIM + PROFILE_DIM:
        summary = _profile_summary(features[:, -PROFILE_DIM : -PROFILE_DIM + STRIP_DIM])
        contrast[with_sibling, 1 : 1 + N_PROFILE_SUMMARY] = summary[with_sibling] - summary[other]
    if stats is not None:
        stats = np.asarray(stats, dtype=np.float32).reshape(len(features), N_STATS)
        contrast[with_sibling, 1 + N_PROFILE_SUMMARY :] = stats[with_sibling] - stats[other]
    return contrast


def phase1_onehot(results: list[dict | None]) -> np.ndarray:
    """Phase-1 platform calls as confidence-weighted one-hot rows (zeros where it made no call)."""
    onehot = np.zeros((len(results), len(PLATFORM_FAMILIES)), dtype=np.float32)
    for row, result in enumerate(results):
        if result and result.get("family") in PLATFORM_FAMILIES:
            onehot[row, PLATFORM_FAMILIES.index(result["family"])] = float(result.get("confidence") or 0.0)
    return onehot


# Added to a first-stage probability before its log, so that a zero stays
# finite and one head's 0.00 does not outweigh another's 0.7 once the second
# stage standardises its inputs. README, Results, compares it with 1e-4 and 0.05.
LOG_PROB_FLOOR = 0.01


def _log_probs(probs: np.ndarray) -> np.ndarray:
    """Return the natural log of the float32 probabilities plus LOG_PROB_FLOOR."""
    return np.log(np.asarray(probs, dtype=np.float32) + LOG_PROB_FLOOR)


def edition_neighbours(edition_ids: list, rows: np.ndarray) -> np.ndarray:
    """Return, in order, every row that shares an edition with one of ``rows`` (``rows`` included)."""
    editions = {edition_ids[row] for row in np.asarray(rows, dtype=np.int64).tolist()}
    return np.array([row for row, edition in enumerate(edition_ids) if edition in editions], dtype=np.int64)


def _edition_members(edition_ids: list, rows: np.ndarray) -> dict:
    """Return every row of each edition that one of ``rows`` belongs to, as lists keyed by edition, rows in order."""
    members: dict = {}
    for row in edition_neighbours(edition_ids, rows).tolist():
        members.setdefault(edition_ids[row], []).append(row)
    return members


def edition_evidence(probs: np.ndarray, edition_ids: list, rows: np.ndarray) -> np.ndarray:
    """Return, for each of ``rows``, the mean of ``probs`` over the other listings of its edition.

    ``probs`` has a row per listing of ``edition_ids``; only the rows that
    ``edition_neighbours`` names are read. A listing alone in its edition gets
    the uniform distribution.
    """
    rows = np.asarray(rows, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float32)
    members = _edition_members(edition_ids, rows)
    sums = {edition: probs[edition_rows].sum(axis=0) for edition, edition_rows in members.items()}
    result = np.full((len(rows), probs.shape[1]), 1.0 / probs.shape[1], dtype=np.float32)
    for position, row in enumerate(rows.tolist()):
        others = len(members[edition_ids[row]]) - 1
        if others:
            result[position] = (sums[edition_ids[row]] - probs[row]) / others
    return result


def edition_counts(edition_ids: list, rows: np.ndarray) -> np.ndarray:
    """Return log(1 + number of other listings of the same edition) for each of ``rows``, as a column."""
    members = _edition_members(edition_ids, rows)
    others = [len(members[edition_ids[row]]) - 1 for row in np.asarray(rows, dtype=np.int64).tolist()]
    return np.log1p(np.array(others, dtype=np.float32)).reshape(-1, 1)


def edition_platform_columns(platform_probs: np.ndarray, text_platform_probs: np.ndarray, edition_ids: list, rows: np.ndarray) -> tuple:
    """Return the three ``edition_*`` inputs of ``platform_stage2_inputs`` for ``rows``.

    ``platform_probs`` and ``text_platform_probs`` are first-stage outputs
    with a row per listing, filled at least on ``edition_neighbours(edition_ids, rows)``.
    """
    return (
        edition_evidence(platform_probs, edition_ids, rows),
        edition_evidence(text_platform_probs, edition_ids, rows),
        edition_counts(edition_ids, rows),
    )


def platform_stage2_inputs(
    platform_probs: np.ndarray,
    phase1: np.ndarray,
    text_platform_probs: np.ndarray,
    edition_platform_probs: np.ndarray,
    edition_text_platform_probs: np.ndarray,
    edition_others: np.ndarray,
) -> np.ndarray:
    """Concatenate the platform second stage's inputs in layout order.

    ``phase1`` is ``phase1_onehot`` of the covers; the column after it is its
    largest value, phase 1's confidence in whatever family it called. The
    ``edition_*`` inputs are ``edition_evidence`` of the first-stage platform
    and text platform probabilities and ``edition_counts``: what the other
    shops' pictures of the same edition show, which decides a flat-lay or an
    open case that shows no platform of its own.
    """
    phase1 = np.asarray(phase1, dtype=np.float32)
    return np.concatenate(
        [
            _log_probs(platform_probs),
            phase1,
            phase1.max(axis=1, keepdims=True),
            _log_probs(text_platform_probs),
            _log_probs(edition_platform_probs),
            _log_probs(edition_text_platform_probs),
            np.asarray(edition_others, dtype=np.float32).reshape(-1, 1),
        ],
        axis=1,
    )


def stage2_inputs(
    quality_probs: np.ndarray,
    platform_probs: np.ndarray,
    families: list[str],
    comparisons: np.ndarray,
    stats: np.ndarray,
    border: np.ndarray,
    phase1: np.ndarray,
    text_quality_probs: np.ndarray,
    titles: np.ndarray,
    box_front: np.ndarray,
    novelty: np.ndarray,
) -> np.ndarray:
    """Concatenate the second stage's inputs in layout order.

    ``border`` is ``border_columns`` of the covers' image features, ``titles``
    their ``title_match`` rows, ``box_front`` their ``box_front_comparison`` rows
    and ``novelty`` their ``text_novelty`` rows.
    ``phase1`` is ``phase1_onehot`` of the covers; the last column added from it
    is phase 1's confidence in the declared family minus its confidence in any other.
    """
    onehot = family_onehot(families)
    declared = (platform_probs * onehot).sum(axis=1, keepdims=True)
    phase1 = np.asarray(phase1, dtype=np.float32)
    agreement = (phase1 * onehot).sum(axis=1, keepdims=True) - (phase1 * (1.0 - onehot)).sum(axis=1, keepdims=True)
    return np.concatenate(
        [
            _log_probs(quality_probs),
            np.asarray(platform_probs, dtype=np.float32),
            declared.astype(np.float32),
            onehot,
            np.asarray(comparisons, dtype=np.float32),
            np.asarray(stats, dtype=np.float32).reshape(len(families), N_STATS),
            np.asarray(border, dtype=np.float32).reshape(len(families), BORDER_COLUMNS),
            phase1,
            agreement,
            _log_probs(text_quality_probs),
            np.asarray(titles, dtype=np.float32).reshape(len(families), N_TITLE_MATCH),
            np.asarray(box_front, dtype=np.float32).reshape(len(families), N_BOX_FRONT),
            np.asarray(novelty, dtype=np.float32).reshape(len(families), N_TEXT_NOVELTY),
        ],
        axis=1,
    )
