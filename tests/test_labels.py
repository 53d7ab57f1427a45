import pytest

from coverpick.labels import LABEL_CLASSES, LabelError, tier_for, validate_label_set


def test_label_classes_are_the_fourteen_in_order():
    assert LABEL_CLASSES == (
        "clean", "3d_render", "deluxe_bundle", "contents", "wrong_console", "wrong_game", "low_resolution",
        "multi_platform", "gkc", "ciab", "placeholder", "margins", "unclear", "bad_background",
    )


@pytest.mark.parametrize(
    "labels",
    [["clean"], ["clean", "gkc"], ["clean", "ciab"], ["3d_render", "wrong_console"], ["low_resolution", "margins"],
     ["wrong_game"], ["unclear"], ["gkc"]],
)
def test_valid_label_sets_pass(labels):
    assert set(validate_label_set(labels)) == set(labels)


@pytest.mark.parametrize(
    "labels, fragment",
    [
        (["wrong_game", "clean"], "'wrong_game' excludes every other label"),
        (["wrong_game", "3d_render"], "'wrong_game' excludes every other label"),
        (["unclear", "margins"], "'unclear' excludes every other label"),
        (["clean", "margins"], "'clean' excludes defect labels"),
        (["clean", "3d_render"], "'clean' excludes defect labels"),
        (["gkc", "ciab"], "'gkc' and 'ciab' exclude each other"),
        (["shiny"], "Unknown label(s) shiny"),
        ([], "at least one label"),
    ],
)
def test_invalid_label_sets_name_the_rule(labels, fragment):
    with pytest.raises(LabelError) as caught:
        validate_label_set(labels)
    assert fragment in str(caught.value)


def test_label_set_is_deduplicated_in_class_order():
    assert validate_label_set(["margins", "low_resolution", "margins"]) == ["low_resolution", "margins"]


@pytest.mark.parametrize(
    "verdict, tier",
    [("clean", 0), ("gkc", 0), ("ciab", 0), ("3d_render", 1), ("low_resolution", 2), ("deluxe_bundle", 2),
     ("margins", 3), ("unknown", 4), ("unclear", 4), (None, 4), ("contents", 5), ("multi_platform", 6),
     ("wrong_console", 6), ("wrong_game", 6), ("placeholder", 6)],
)
def test_tiers_follow_the_ranking_table(verdict, tier):
    assert tier_for(verdict) == tier
