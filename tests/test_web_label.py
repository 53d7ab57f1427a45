import json

import pytest

from coverpick.catalogue.manual import set_labels
from coverpick.catalogue.models import AuditEvent, Verdict
from coverpick.labels import LABEL_CLASSES, LabelError, validate_label_set
from coverpick.web import labelling
from coverpick.web.labelling import CLASS_KEYS, EXCLUSIVITY_RULES, MAX_SKIPPED
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import _clear_cache, row_counts, staff_client, staff_user  # noqa: F401

pytestmark = pytest.mark.django_db


def manual_labels(listing):
    row = Verdict.objects.filter(listing=listing, source=Verdict.SOURCE_MANUAL_TRAIN).first()
    return row.labels if row else None


@pytest.fixture
def queued():
    """Three queued covers (verdict unknown) of one game, least confident first, plus a sibling."""
    game, (edition,) = make_game("Queue Game")
    version = heads_version()
    listings = []
    for confidence in (0.1, 0.2, 0.3):
        listing = make_listing(edition)
        verdict = predict(listing, version, "unknown", confidence=confidence)
        verdict.quality_probs = {"clean": confidence, "margins": 0.5, "3d_render": 0.2}
        verdict.save()
        listings.append(listing)
    sibling = make_listing(edition, "shop-z")
    return {"game": game, "listings": listings, "sibling": sibling, "version": version}


# The page ---------------------------------------------------------------------------


def test_label_page_shows_first_queued_cover(staff_client, queued):
    first = queued["listings"][0]
    response = staff_client.get("/admin/label/covers/")
    assert response.status_code == 200
    assert response.context["listing"].pk == first.pk
    body = response.content.decode()
    assert "Natural size 600×850 px" in body
    assert first.title in body
    assert "shop-a" in body
    assert "declared platform <strong>ps4</strong> (sony)" in body
    assert f"/covers/{queued['sibling'].cover.sha256}/" in body


def test_label_page_shows_top_probabilities(staff_client, queued):
    response = staff_client.get("/admin/label/covers/")
    assert response.context["probabilities"][0] == ("margins", 0.5)
    body = response.content.decode()
    assert "<strong>unknown</strong> at 10%" in body
    assert "margins" in body


def test_label_page_has_one_key_per_class(staff_client, queued):
    body = staff_client.get("/admin/label/covers/").content.decode()
    keys = list(CLASS_KEYS.values())
    assert len(CLASS_KEYS) == len(LABEL_CLASSES) == 14
    assert len(set(keys)) == 14
    assert not {"u", "s"} & set(keys)
    for name, key in CLASS_KEYS.items():
        assert f'data-key="{key}"' in body
        assert f'value="{name}"' in body


def test_label_page_counter_counts_queue(staff_client, queued):
    response = staff_client.get("/admin/label/covers/")
    assert response.context["counter_n"] == 1
    assert response.context["counter_total"] == 3
    assert "1 of 3" in response.content.decode()


def test_counter_keeps_total_after_saving(staff_client, queued):
    staff_client.post("/admin/label/covers/save/", {"listing": queued["listings"][0].pk, "labels": ["clean"]})
    response = staff_client.get("/admin/label/covers/")
    assert response.context["counter_n"] == 2
    assert response.context["counter_total"] == 3
    assert response.context["queue_size"] == 2


def test_label_page_empty_queue(staff_client):
    response = staff_client.get("/admin/label/covers/")
    assert response.status_code == 200
    assert "Nothing left to label" in response.content.decode()
    assert "No trained model is active" in response.content.decode()


def test_label_page_without_model_serves_unlabelled_covers(staff_client):
    """A catalogue imported without labels gets its first labels on this page."""
    game, (edition,) = make_game("First Labels")
    first, second = make_listing(edition), make_listing(edition)

    response = staff_client.get("/admin/label/covers/")
    assert response.context["listing"].pk == first.pk
    body = response.content.decode()
    assert "in the queue: 2 (unlabelled 2)" in body
    assert 'id="no-model"' in body
    assert "needs at least 10 labelled covers (0 so far)" in body

    staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["clean"]})
    assert manual_labels(first) == ["clean"]
    response = staff_client.get("/admin/label/covers/")
    assert response.context["listing"].pk == second.pk
    assert "needs at least 10 labelled covers (1 so far)" in response.content.decode()


def test_label_page_counter_names_its_parts(staff_client, queued):
    staff_client.post("/admin/label/covers/save/", {"listing": queued["listings"][0].pk, "labels": ["clean"]})
    body = staff_client.get("/admin/label/covers/").content.decode()
    assert "2 of 3" in body
    assert "decided in this session: 1, in the queue: 2" in body


def test_label_page_specific_listing(staff_client, queued):
    third = queued["listings"][2]
    response = staff_client.get("/admin/label/covers/", {"listing": third.pk})
    assert response.context["listing"].pk == third.pk


def test_label_page_bad_listing_parameter(staff_client):
    assert staff_client.get("/admin/label/covers/", {"listing": "x1"}).status_code == 400
    assert staff_client.get("/admin/label/covers/", {"listing": "999999"}).status_code == 404


def test_bad_request_body_is_plain_text(staff_client):
    """The message quotes what was sent, so it must not be read as HTML."""
    response = staff_client.get("/admin/label/covers/", {"listing": "<img src=x onerror=alert(1)>"})
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "'<img src=x onerror=alert(1)>'" in response.content.decode()
    missing = staff_client.post("/admin/label/covers/save/", {"labels": ["clean"]})
    assert missing["Content-Type"] == "text/plain; charset=utf-8"
    assert missing.content.decode() == "Missing or invalid listing id: post listing=<id>."


def test_rules_in_page_match_server_rules(staff_client, queued):
    response = staff_client.get("/admin/label/covers/")
    body = response.content.decode()
    start = body.index('<script id="label-rules" type="application/json">') + len(
        '<script id="label-rules" type="application/json">'
    )
    rules = json.loads(body[start : body.index("</script>", start)])
    assert rules == EXCLUSIVITY_RULES
    for alone in rules["alone"]:
        with pytest.raises(LabelError):
            validate_label_set([alone, "gkc"])
    for defect in rules["defects"]:
        with pytest.raises(LabelError):
            validate_label_set([rules["clean"], defect])
    for pair in rules["pairs"]:
        with pytest.raises(LabelError):
            validate_label_set(pair)
    allowed = {"clean"} | set(rules["defects"]) | set(rules["alone"]) | {name for pair in rules["pairs"] for name in pair}
    assert allowed == set(LABEL_CLASSES)


# Saving ---------------------------------------------------------------------------------


def test_save_writes_manual_label_and_audit(staff_client, staff_user, queued):
    first = queued["listings"][0]
    response = staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["margins", "gkc"]})
    assert response.status_code == 302
    assert response["Location"] == "/admin/label/covers/"
    assert manual_labels(first) == ["gkc", "margins"]
    event = AuditEvent.objects.get(action="label", listing=first)
    assert event.user == staff_user
    assert Verdict.objects.get(listing=first, source="manual-train").user == staff_user


def test_save_moves_queue_on(staff_client, queued):
    first, second = queued["listings"][:2]
    staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["clean"]})
    response = staff_client.get("/admin/label/covers/")
    assert response.context["listing"].pk == second.pk


def test_save_rejects_invalid_set(staff_client, queued):
    first = queued["listings"][0]
    before = row_counts()
    response = staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["clean", "margins"]})
    assert response.status_code == 400
    assert "&#x27;clean&#x27; excludes defect labels" in response.content.decode()
    assert row_counts() == before
    assert labelling.undo_depth(staff_client.session) == 0
    # The page keeps the staff member's choice so it can be corrected.
    assert response.context["chosen"] == ["clean", "margins"]


@pytest.mark.parametrize(
    "labels",
    [[], ["wrong_game", "margins"], ["unclear", "clean"], ["gkc", "ciab"], ["no_such_class"]],
)
def test_save_rejects_rule_breaks(staff_client, queued, labels):
    before = row_counts()
    response = staff_client.post("/admin/label/covers/save/", {"listing": queued["listings"][0].pk, "labels": labels})
    assert response.status_code == 400
    assert row_counts() == before


def test_save_requires_listing_id(staff_client, queued):
    assert staff_client.post("/admin/label/covers/save/", {"labels": ["clean"]}).status_code == 400
    assert staff_client.post("/admin/label/covers/save/", {"listing": 999999, "labels": ["clean"]}).status_code == 404


# Undo -----------------------------------------------------------------------------------


def test_undo_deletes_new_label(staff_client, queued):
    first = queued["listings"][0]
    staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["clean"]})
    response = staff_client.post("/admin/label/covers/undo/")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/label/covers/?listing={first.pk}"
    assert manual_labels(first) is None
    assert AuditEvent.objects.filter(action="unlabel", listing=first).count() == 1


def test_undo_restores_previous_labels(staff_client, queued):
    first = queued["listings"][0]
    set_labels(first, ["margins"])
    staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["clean"]})
    assert manual_labels(first) == ["clean"]
    staff_client.post("/admin/label/covers/undo/")
    assert manual_labels(first) == ["margins"]


def test_undo_goes_back_one_decision_at_a_time(staff_client, queued):
    first, second = queued["listings"][:2]
    staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["clean"]})
    staff_client.post("/admin/label/covers/save/", {"listing": second.pk, "labels": ["placeholder"]})
    staff_client.post("/admin/label/covers/undo/")
    assert manual_labels(second) is None
    assert manual_labels(first) == ["clean"]
    staff_client.post("/admin/label/covers/undo/")
    assert manual_labels(first) is None


def test_undo_with_empty_stack_writes_nothing(staff_client, queued):
    before = row_counts()
    response = staff_client.post("/admin/label/covers/undo/", follow=True)
    assert "Nothing to undo in this session." in response.content.decode()
    assert row_counts() == before


def test_undo_refuses_after_someone_else_relabelled(staff_client, queued):
    first = queued["listings"][0]
    staff_client.post("/admin/label/covers/save/", {"listing": first.pk, "labels": ["clean"]})
    set_labels(first, ["contents"])
    response = staff_client.post("/admin/label/covers/undo/", follow=True)
    assert "was relabelled after this decision" in response.content.decode()
    assert manual_labels(first) == ["contents"]
    assert labelling.undo_depth(staff_client.session) == 1


def test_undo_stack_is_capped(staff_client, staff_user):
    game, (edition,) = make_game()
    session = staff_client.session
    for _ in range(labelling.MAX_UNDO + 5):
        labelling.save_labels(session, make_listing(edition), ["clean"], staff_user)
    assert labelling.undo_depth(session) == labelling.MAX_UNDO


# Skip -----------------------------------------------------------------------------------


def test_skip_writes_nothing_and_hides_cover(staff_client, queued):
    first, second = queued["listings"][:2]
    before = row_counts()
    response = staff_client.post("/admin/label/covers/skip/", {"listing": first.pk})
    assert response.status_code == 302
    assert row_counts() == before
    assert staff_client.session["label_skipped"] == [first.pk]
    page = staff_client.get("/admin/label/covers/")
    assert page.context["listing"].pk == second.pk
    assert page.context["queue_size"] == 2


def test_skip_list_keeps_latest_500(staff_client, queued):
    session = staff_client.session
    for listing_id in range(1, MAX_SKIPPED + 11):
        labelling.remember_skip(session, listing_id)
    assert len(labelling.skipped_ids(session)) == MAX_SKIPPED
    assert labelling.skipped_ids(session)[0] == 11
    assert labelling.skipped_ids(session)[-1] == MAX_SKIPPED + 10


def test_skip_same_listing_twice_stored_once(staff_client, queued):
    first = queued["listings"][0]
    staff_client.post("/admin/label/covers/skip/", {"listing": first.pk})
    staff_client.post("/admin/label/covers/skip/", {"listing": first.pk})
    assert staff_client.session["label_skipped"] == [first.pk]


def test_skip_requires_listing_id(staff_client):
    assert staff_client.post("/admin/label/covers/skip/", {"listing": "x"}).status_code == 400


# Grid -----------------------------------------------------------------------------------


@pytest.fixture
def confident_clean():
    game, (edition,) = make_game("Grid Game")
    version = heads_version()
    listings = []
    for index in range(30):
        listing = make_listing(edition)
        predict(listing, version, "clean", confidence=0.9 + index / 1000)
        listings.append(listing)
    unsure = make_listing(edition)
    predict(unsure, version, "clean", confidence=0.6)
    labelled = make_listing(edition)
    predict(labelled, version, "clean", confidence=0.99)
    set_labels(labelled, ["margins"])
    return {"listings": listings, "unsure": unsure, "labelled": labelled}


def test_grid_shows_24_confident_unlabelled(staff_client, confident_clean):
    response = staff_client.get("/admin/label/covers/grid/")
    shown = [listing.pk for listing in response.context["listings"]]
    assert len(shown) == 24
    assert shown == [listing.pk for listing in confident_clean["listings"][:24]]
    assert confident_clean["unsure"].pk not in shown
    assert confident_clean["labelled"].pk not in shown


def test_grid_confirms_ticked_and_leaves_unticked(staff_client, staff_user, confident_clean):
    shown = [listing.pk for listing in confident_clean["listings"][:24]]
    unticked = shown[:3]
    ticked = shown[3:]
    response = staff_client.post("/admin/label/covers/grid/", {"shown": shown, "confirm": ticked})
    assert response.status_code == 302
    for listing in confident_clean["listings"][:24]:
        expected = None if listing.pk in unticked else ["clean"]
        assert manual_labels(listing) == expected, listing.pk
    assert AuditEvent.objects.filter(action="label", user=staff_user).count() == 21


def test_grid_ignores_ids_not_shown(staff_client, confident_clean):
    shown = [confident_clean["listings"][0].pk]
    outsider = confident_clean["listings"][1].pk
    staff_client.post("/admin/label/covers/grid/", {"shown": shown, "confirm": shown + [outsider]})
    assert manual_labels(confident_clean["listings"][1]) is None


def test_grid_keeps_labels_added_meanwhile(staff_client, confident_clean):
    target = confident_clean["listings"][0]
    set_labels(target, ["3d_render"])
    staff_client.post("/admin/label/covers/grid/", {"shown": [target.pk], "confirm": [target.pk]})
    assert manual_labels(target) == ["3d_render"]


def test_grid_undo_reverts_whole_batch(staff_client, confident_clean):
    shown = [listing.pk for listing in confident_clean["listings"][:5]]
    staff_client.post("/admin/label/covers/grid/", {"shown": shown, "confirm": shown})
    response = staff_client.post("/admin/label/covers/undo/")
    assert response["Location"] == "/admin/label/covers/grid/"
    assert not Verdict.objects.filter(listing_id__in=shown, source="manual-train").exists()


def test_grid_rejects_non_numeric_ids(staff_client, confident_clean):
    before = row_counts()
    assert staff_client.post("/admin/label/covers/grid/", {"shown": ["x"], "confirm": ["x"]}).status_code == 400
    assert row_counts() == before
