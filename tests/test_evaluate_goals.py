"""The evaluation's operating points: clean recall at a share of defects called clean, platform accuracy at a coverage."""

import pytest

from coverpick.model.evaluate import clean_recall_at, format_report, platform_accuracy_at


def scored(labels: list[str], quality: str, clean_probability: float) -> dict:
    return {"labels": labels, "quality": quality, "clean_probability": clean_probability}


def test_clean_recall_at_picks_lowest_passing_threshold():
    records = [
        scored(["clean"], "clean", 0.95),
        scored(["clean"], "clean", 0.80),
        scored(["clean", "gkc"], "unknown", 0.30),
        scored(["clean"], "3d_render", 0.45),
        # Twenty defects: one called clean at 0.70, one at 0.50, the rest not clean.
        scored(["gkc"], "clean", 0.70),
        scored(["ciab"], "clean", 0.50),
        *[scored(["margins"], "margins", 0.10)] * 18,
    ]

    result = clean_recall_at(records, defect_share=0.05)

    # At 0.50 two of twenty defects (10 %) pass; at 0.70 one (5 %) does.
    assert result["threshold"] == pytest.approx(0.70)
    assert result["defects_called_clean"] == pytest.approx(0.05)
    # Two of the four clean listings reach 0.70; the 3d_render verdict never counts as called clean.
    assert result["recall"] == pytest.approx(0.5)
    # The clean cover with a key-card notice is called unknown, not gkc, so it does not count either.
    assert result["recall_with_notices"] == pytest.approx(0.5)


def test_clean_recall_with_notices_counts_the_notice_verdict():
    records = [
        scored(["clean"], "clean", 0.90),
        scored(["clean", "ciab"], "ciab", 0.10),
        scored(["clean", "gkc"], "ciab", 0.10),
        scored(["clean"], "gkc", 0.10),
        scored(["ciab"], "ciab", 0.05),
        scored(["margins"], "margins", 0.05),
    ]

    result = clean_recall_at(records, defect_share=0.0)

    assert result["recall"] == pytest.approx(0.25)
    # Only the ciab verdict on the clean cover that carries a code-in-a-box notice is added.
    assert result["recall_with_notices"] == pytest.approx(0.5)
    assert result["defects_called_clean"] == 0.0


def test_clean_recall_at_counts_unknown_as_clean_argmax():
    records = [scored(["clean"], "unknown", 0.30), scored(["placeholder"], "placeholder", 0.90)]

    result = clean_recall_at(records, defect_share=0.0)

    assert result["threshold"] == pytest.approx(0.30)
    assert result["recall"] == 1.0


def test_clean_recall_at_without_clean_listings():
    assert clean_recall_at([scored(["gkc"], "gkc", 0.1)])["recall"] is None


def guess(image_family: str | None, family: str, confidence: float) -> dict:
    return {"image_family": image_family, "platform_guess": family, "platform_confidence": confidence}


def test_platform_accuracy_at_keeps_the_surest_covers():
    records = [
        guess("sony", "sony", 0.99),
        guess("xbox", "xbox", 0.95),
        guess("nintendo", "sony", 0.90),
        guess("pc", "pc", 0.80),
        guess("xbox", "nintendo", 0.40),
        # A generic template shows no family and is left out.
        guess(None, "xbox", 0.99),
    ]

    result = platform_accuracy_at(records, coverage=0.8)

    assert result["coverage"] == pytest.approx(0.8)
    assert result["threshold"] == pytest.approx(0.80)
    assert result["accuracy"] == pytest.approx(0.75)
    assert platform_accuracy_at(records, coverage=1.0)["accuracy"] == pytest.approx(0.6)


def report_lines(records: list[dict]) -> list[str]:
    """Return format_report's lines for a result whose only measure is the clean operating point of ``records``."""
    result = {
        "listings": len(records),
        "folds": 2,
        "per_class": {},
        "defects_called_clean": 0.0,
        "platform_accuracy": 1.0,
        "platform_coverage": 1.0,
        "primary_clean_rate": None,
        "clean_at_goal": clean_recall_at(records),
        "platform_at_goal": {"accuracy": None},
    }
    return format_report(result)


def test_report_prints_both_clean_recalls():
    records = [scored(["clean"], "clean", 0.90), scored(["clean", "ciab"], "ciab", 0.10), scored(["margins"], "margins", 0.05)]

    lines = report_lines(records)

    assert "Clean recall 0.500 with 0.000 of defect covers called clean (clean threshold 0.900)" in lines
    assert "Clean recall counting notice verdicts: 1.000 at that threshold (a clean cover called gkc or ciab counts when it carries that notice)" in lines


@pytest.mark.parametrize(
    "records, expected",
    [
        # Every defect cover is called clean above every clean cover, so no threshold keeps the share at 5 %.
        (
            [scored(["clean"], "clean", 0.40), scored(["clean", "ciab"], "ciab", 0.10), scored(["margins"], "clean", 0.90)],
            "Clean recall: no clean threshold calls any clean cover clean while calling 5% or fewer of the defect "
            "covers clean, so it is 0 at that share (counting notice verdicts: 0.500)",
        ),
        (
            [scored(["clean"], "clean", 0.40)],
            "Clean recall at a clean threshold: not measured, since the reference labels need clean and defect covers both",
        ),
    ],
)
def test_report_says_clean_goal_unmet(records, expected):
    assert expected in report_lines(records)
