import json

import numpy as np
import pytest

from coverpick.labels import LABEL_CLASSES, PLATFORM_FAMILIES
from coverpick.model.heads import DECLARED_FAMILY_SHOWN, MLP, CheckpointMismatch, HeadSet, check_meta, decide, rule_out_wrong_console
from coverpick.model.inputs import (
    BORDER_COLUMNS,
    LAYOUT_VERSION,
    border_columns,
    comparison_features,
    edition_counts,
    edition_evidence,
    edition_neighbours,
    fit_similarity_space,
    game_prototypes,
    image_columns,
    platform_layout,
    platform_stage2_inputs,
    platform_stage2_layout,
    quality_layout,
    stage2_layout,
    text_columns,
)
from coverpick.vision.presets import VIEWS, view_id
from coverpick.vision.profile import PROFILE_DIM, PROFILE_VERSION
from coverpick.vision.text import TEXT_DIM, TEXT_READINGS, TEXT_VERSION


def one_hot_probs(index: int, size: int, peak: float) -> np.ndarray:
    row = np.full(size, (1.0 - peak) / (size - 1), dtype=np.float32)
    row[index] = peak
    return row


def test_declared_family_shown_rules_out_wrong_console():
    wrong_console, clean = LABEL_CLASSES.index("wrong_console"), LABEL_CLASSES.index("clean")
    quality = np.tile(one_hot_probs(wrong_console, len(LABEL_CLASSES), 0.6), (4, 1))
    sony, pc = PLATFORM_FAMILIES.index("sony"), PLATFORM_FAMILIES.index("pc")
    platform = np.stack(
        [
            one_hot_probs(sony, len(PLATFORM_FAMILIES), DECLARED_FAMILY_SHOWN),  # declared sony, shown sony
            one_hot_probs(pc, len(PLATFORM_FAMILIES), 0.9),  # declared sony, shown pc
            one_hot_probs(sony, len(PLATFORM_FAMILIES), DECLARED_FAMILY_SHOWN - 0.05),  # declared sony, unsure
            one_hot_probs(sony, len(PLATFORM_FAMILIES), 0.9),  # declared other
        ]
    )

    result = rule_out_wrong_console(quality, platform, ["sony", "sony", "sony", "other"])

    assert result[0, wrong_console] == 0.0
    assert result[0].sum() == pytest.approx(1.0)
    # The other classes keep their proportions.
    assert result[0, clean] == pytest.approx(quality[0, clean] / (1.0 - quality[0, wrong_console]))
    np.testing.assert_array_equal(result[1:], quality[1:])
    assert [p.quality for p in decide(result, platform, 0.35, 0.7)][1:] == ["wrong_console"] * 3


@pytest.mark.parametrize("index", range(len(LABEL_CLASSES)))
def test_quality_verdict_is_the_class_name_verbatim(index):
    quality = one_hot_probs(index, len(LABEL_CLASSES), 0.9)[None]
    platform = one_hot_probs(0, len(PLATFORM_FAMILIES), 0.9)[None]
    (prediction,) = decide(quality, platform, clean_threshold=0.35, platform_threshold=0.7)
    assert prediction.quality == LABEL_CLASSES[index]
    assert set(prediction.quality_probs) == set(LABEL_CLASSES)


def test_clean_below_threshold_becomes_unknown():
    quality = np.stack([one_hot_probs(0, 14, 0.34), one_hot_probs(0, 14, 0.36)])
    platform = np.stack([one_hot_probs(1, 4, 0.9)] * 2)
    low, high = decide(quality, platform, clean_threshold=0.35, platform_threshold=0.7)
    assert low.quality == "unknown"
    assert low.quality_confidence == pytest.approx(0.34, abs=1e-6)
    assert high.quality == "clean"


def test_other_classes_have_no_floor():
    (prediction,) = decide(one_hot_probs(5, 14, 0.2)[None], one_hot_probs(1, 4, 0.9)[None], 0.35, 0.7)
    assert prediction.quality == "wrong_game"


def test_platform_below_threshold_abstains():
    quality = np.stack([one_hot_probs(0, 14, 0.9)] * 2)
    platform = np.stack([one_hot_probs(2, 4, 0.69), one_hot_probs(2, 4, 0.71)])
    low, high = decide(quality, platform, 0.35, 0.70)
    assert low.platform == "unknown"
    assert high.platform == "xbox"


def valid_meta(dim=8 + TEXT_DIM):
    return {
        "version": "heads-x",
        "backbone": "efficientnet_lite0",
        "backbone_precision": "fp32",
        "feature_dim": dim,
        "views": [view_id(view) for view in VIEWS],
        "strip_profile": PROFILE_VERSION,
        "cover_text": TEXT_VERSION,
        "text_readings": list(TEXT_READINGS),
        "stage2_layout": json.loads(json.dumps(stage2_layout())),
        "platform_stage2_layout": json.loads(json.dumps(platform_stage2_layout())),
        "classes": list(LABEL_CLASSES),
        "platform_families": list(PLATFORM_FAMILIES),
        "layout_version": LAYOUT_VERSION,
        "quality_layout": json.loads(json.dumps(quality_layout(dim))),
        "platform_layout": json.loads(json.dumps(platform_layout(dim))),
    }


def test_check_meta_accepts_matching_checkpoint():
    check_meta(valid_meta(), "efficientnet_lite0", "fp32")


def test_check_meta_rejects_other_precision():
    meta = valid_meta()
    meta["backbone_precision"] = "int8"

    with pytest.raises(CheckpointMismatch) as caught:
        check_meta(meta, "efficientnet_lite0", "fp32")

    message = str(caught.value)
    assert "backbone precision 'int8' differs from the configured 'fp32'" in message
    assert "set COVERPICK_BACKBONE_PRECISION=int8" in message
    assert "Retrain with `coverpick train`" in message


def test_check_meta_rejects_unrecorded_precision():
    meta = valid_meta()
    del meta["backbone_precision"]

    with pytest.raises(CheckpointMismatch, match="does not record the backbone precision"):
        check_meta(meta, "efficientnet_lite0", "int8")


def test_check_meta_skips_precision_when_not_given():
    meta = valid_meta()
    meta["backbone_precision"] = "int8"

    check_meta(meta, "efficientnet_lite0")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda m: m.update(classes=m["classes"][:-1]), "class list"),
        (lambda m: m.update(classes=m["classes"] + ["new_label"]), "class list"),
        (lambda m: m.update(backbone="mobilenet_v3_small"), "backbone"),
        (lambda m: m.update(quality_layout=[["features", 8]]), "quality input layout"),
        (lambda m: m.update(layout_version=0), "quality input layout"),
        (lambda m: m.update(views=["full"]), "backbone views"),
        # Heads trained on the bands view before it cut the padding.
        (lambda m: m.update(views=["full", "bands", "top-v2"]), "backbone views"),
        (lambda m: m.pop("strip_profile"), "strip profile"),
        (lambda m: m.update(stage2_layout=[["comparisons", 5]]), "second-stage input layout"),
        (lambda m: m.update(platform_stage2_layout=[["platform_log_probs", 4]]), "platform second-stage input layout"),
    ],
)
def test_check_meta_names_each_difference(change, fragment):
    meta = valid_meta()
    change(meta)
    with pytest.raises(CheckpointMismatch) as caught:
        check_meta(meta, "efficientnet_lite0")
    assert fragment in str(caught.value)


def linear_mlp(weights: np.ndarray, bias: np.ndarray | None = None) -> MLP:
    """An MLP whose ReLU layer passes its (non-negative) inputs through unchanged, so its logits are ``weights @ x``."""
    width = weights.shape[1]
    return MLP(
        mean=np.zeros(width, dtype=np.float32),
        std=np.ones(width, dtype=np.float32),
        w1=np.eye(width, dtype=np.float32),
        b1=np.zeros(width, dtype=np.float32),
        w2=weights.astype(np.float32),
        b2=np.zeros(len(weights), dtype=np.float32) if bias is None else bias.astype(np.float32),
    )


def test_platform_stage2_reads_phase1():
    # Image features of two covers: six feature columns, then a text vector and a profile of zeros.
    dim = 6 + TEXT_DIM + PROFILE_DIM
    features = np.zeros((2, dim), dtype=np.float32)
    features[:, :6] = np.abs(np.random.default_rng(1).normal(size=(2, 6)))
    quality = linear_mlp(np.zeros((len(LABEL_CLASSES), sum(w for _, w in quality_layout(dim)))))
    # A platform head that leans to nintendo for every cover.
    platform = linear_mlp(np.zeros((len(PLATFORM_FAMILIES), dim - TEXT_DIM)), np.array([2.0, 0.0, 0.0, 0.0]))
    width = sum(w for _, w in platform_stage2_layout())
    # A second stage that adds phase 1's one-hot evidence, three times over, to the head's log-probabilities.
    weights = np.zeros((len(PLATFORM_FAMILIES), width))
    weights[:, : len(PLATFORM_FAMILIES)] = np.eye(len(PLATFORM_FAMILIES))
    weights[:, len(PLATFORM_FAMILIES) : 2 * len(PLATFORM_FAMILIES)] = 3.0 * np.eye(len(PLATFORM_FAMILIES))
    # Log-probabilities are negative. Standardising them with a mean of -10
    # lifts them above zero, so the ReLU passes them, and adds 10 to every logit alike.
    fused = linear_mlp(weights)
    fused.mean = np.concatenate([np.full(len(PLATFORM_FAMILIES), -10.0), np.zeros(width - len(PLATFORM_FAMILIES))]).astype(np.float32)
    # A text head without opinion: equal probabilities for every family.
    no_text = linear_mlp(np.zeros((len(PLATFORM_FAMILIES), TEXT_DIM)))
    phase1 = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.9, 0.0]], dtype=np.float32)
    families, games, editions, stats = ["nintendo", "xbox"], ["g1", "g2"], ["e1", "e2"], np.zeros((2, 10), np.float32)

    _, alone = HeadSet(quality, platform, None).predict(features, families, games, editions, stats, phase1, ["A", "B"])
    _, together = HeadSet(quality, platform, None, platform_stage2=fused, text_platform=no_text).predict(features, families, games, editions, stats, phase1, ["A", "B"])

    assert alone.argmax(axis=1).tolist() == [0, 0]
    # Without a phase-1 call the head's lean wins; phase 1's confident xbox call outweighs it.
    assert together.argmax(axis=1).tolist() == [0, 2]
    uniform = np.full((2, len(PLATFORM_FAMILIES)), 0.25)
    expected = platform_stage2_inputs(alone, phase1, uniform, uniform, uniform, np.zeros((2, 1)))
    assert expected.shape == (2, width)
    assert expected[1, 2 * len(PLATFORM_FAMILIES)] == pytest.approx(0.9)


def test_edition_evidence_averages_other_listings():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8], [np.nan, np.nan]], dtype=np.float32)
    editions = ["e1", "e1", "e1", "e2", "e3"]
    # Row 4's edition is not asked for, so its unfilled row is never read.
    evidence = edition_evidence(probs, editions, np.array([0, 2, 3]))
    assert evidence.tolist() == [[0.25, 0.75], [0.5, 0.5], [0.5, 0.5]]
    assert edition_neighbours(editions, np.array([3, 1])).tolist() == [0, 1, 2, 3]
    assert edition_counts(editions, np.array([0, 3])).ravel().tolist() == pytest.approx([np.log(3.0), 0.0])


def test_platform_stage2_reads_edition_listings():
    """A cover with no platform of its own takes the family the other pictures of its edition show, also when predicted alone."""
    dim = 6 + TEXT_DIM + PROFILE_DIM
    features = np.zeros((3, dim), dtype=np.float32)
    # Covers 0 and 1 carry a sony marking in feature column 1; cover 2, a flat-lay, carries none.
    features[:2, 1] = 1.0
    quality = linear_mlp(np.zeros((len(LABEL_CLASSES), sum(w for _, w in quality_layout(dim)))))
    marking = np.zeros((len(PLATFORM_FAMILIES), dim - TEXT_DIM))
    marking[1, 1] = 3.0
    platform = linear_mlp(marking, np.array([0.5, 0.0, 0.0, 0.0]))
    width = sum(w for _, w in platform_stage2_layout())
    family = len(PLATFORM_FAMILIES)
    # A second stage that adds the cover's own log-probabilities to those of its edition's other pictures.
    weights = np.zeros((family, width))
    weights[:, :family] = np.eye(family)
    start = 3 * family + 1
    weights[:, start : start + family] = np.eye(family)
    fused = linear_mlp(weights)
    fused.mean = np.full(width, -10.0, dtype=np.float32)
    no_text = linear_mlp(np.zeros((family, TEXT_DIM)))
    heads = HeadSet(quality, platform, None, platform_stage2=fused, text_platform=no_text)
    args = (["sony"] * 3, ["g1"] * 3, ["e1"] * 3, np.zeros((3, 10), np.float32), np.zeros((3, family), np.float32), ["A"] * 3)

    _, alone = HeadSet(quality, platform, None).predict(features, *args)
    _, together = heads.predict(features, *args)
    _, flat_lay = heads.predict(features, *args, rows=np.array([2]))

    assert alone.argmax(axis=1).tolist() == [1, 1, 0]
    assert together.argmax(axis=1).tolist() == [1, 1, 1]
    assert np.allclose(flat_lay, together[2:])


def test_column_slices_with_rows():
    rng = np.random.default_rng(3)
    features = rng.random((6, 40 + TEXT_DIM + PROFILE_DIM), dtype=np.float32)
    rows = np.array([4, 0, 4, 2])

    image = image_columns(features, rows)
    assert image.shape == (4, 40 + PROFILE_DIM)
    assert np.array_equal(image, image_columns(features[rows]))
    assert np.array_equal(image[:, :40], features[rows, :40])
    assert np.array_equal(image[:, 40:], features[rows, -PROFILE_DIM:])

    text = text_columns(features, rows)
    assert np.array_equal(text, features[rows, 40 : 40 + TEXT_DIM])
    assert np.array_equal(text_columns(features), features[:, 40 : 40 + TEXT_DIM])

    assert np.array_equal(border_columns(features, rows), features[rows, -BORDER_COLUMNS:])


def test_prototype_excludes_same_edition_and_is_zero_without_other_editions():
    features = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 4.0], [9.0, 9.0]], dtype=np.float32)
    games = ["g1", "g1", "g1", "g2"]
    editions = ["g1-ps4", "g1-ps4", "g1-x360", "g2-ps4"]
    prototypes = game_prototypes(features, games, editions)
    assert prototypes[0].tolist() == [0.0, 4.0]
    assert prototypes[1].tolist() == [0.0, 4.0]
    assert prototypes[2].tolist() == [2.0, 0.0]
    assert prototypes[3].tolist() == [0.0, 0.0]


def test_similarity_space_separates_games():
    rng = np.random.default_rng(0)
    games, identity_dims = 30, 6
    identity = rng.normal(size=(games, identity_dims))
    rows, game_ids = [], []
    for game in range(games):
        for _ in range(3):
            shared = np.concatenate([[40.0 + 8.0 * rng.normal()], np.zeros(identity_dims)])
            own = np.concatenate([[0.0], identity[game] + 0.2 * rng.normal(size=identity_dims)])
            rows.append(np.concatenate([shared + own, rng.normal(size=identity_dims + 1)]))
            game_ids.append(game)
    features = np.array(rows, dtype=np.float32)
    # The last cover of game 0 is replaced by a cover of another game.
    features[2, : identity_dims + 1] = np.concatenate([[40.0], rng.normal(size=identity_dims)])
    editions = [f"{game}-ps4" for game in game_ids]

    raw = comparison_features(features, game_ids, editions)
    whitened = comparison_features(features, game_ids, editions, fit_similarity_space(features, full_dim=identity_dims + 1))
    raw_gap = min(raw[0, 2], raw[1, 2]) - raw[2, 2]
    whitened_gap = min(whitened[0, 2], whitened[1, 2]) - whitened[2, 2]
    assert raw_gap < 0.05
    assert whitened_gap > 0.4


def test_similarity_space_fits_on_a_bounded_sample(monkeypatch):
    from coverpick.model import inputs

    monkeypatch.setattr(inputs, "SIMILARITY_FIT_ROWS", 50)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(400, 12)).astype(np.float32)
    space = fit_similarity_space(features, full_dim=12, dims=4)
    again = fit_similarity_space(features, full_dim=12, dims=4)
    assert space.components.shape == (4, 12)
    assert np.array_equal(space.components, again.components)
    assert not np.allclose(space.mean, features.mean(axis=0), atol=1e-6)
