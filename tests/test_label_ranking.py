"""A staff label, review or pin chooses its game's primary cover again at once.

The deployed timer chooses primary covers only after a sweep, so without this
the game page would keep a cover staff had just labelled wrong_game.
"""

import io

import pytest
from PIL import Image

from coverpick.catalogue.importer import import_catalogue
from coverpick.catalogue.models import Game, Listing
from coverpick.ranking import compute_primaries
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import _clear_cache, staff_client, staff_user  # noqa: F401

pytestmark = pytest.mark.django_db


def primary_of(game: Game) -> int | None:
    game.refresh_from_db()
    return game.primary_listing_id


@pytest.fixture
def ranked_game():
    """A game whose primary is the classifier's surest clean cover, with a runner-up."""
    game, (edition,) = make_game("Ranked Game")
    version = heads_version()
    best, runner_up = make_listing(edition, "shop-a"), make_listing(edition, "shop-b")
    predict(best, version, "clean", confidence=0.95, clean_probability=0.95)
    predict(runner_up, version, "clean", confidence=0.80, clean_probability=0.80)
    compute_primaries(Game.objects.filter(pk=game.pk))
    assert primary_of(game) == best.pk
    return game, best, runner_up


def test_label_on_primary_reranks_game(staff_client, ranked_game):
    game, best, runner_up = ranked_game
    response = staff_client.post("/admin/label/covers/save/", {"listing": best.pk, "labels": ["wrong_game"]})
    assert response.status_code == 302
    assert primary_of(game) == runner_up.pk
    assert game.primary_tier == 0
    page = staff_client.get(f"/games/{game.pk}/")
    assert page.context["primary"].listing.pk == runner_up.pk

    # Undo restores the label-free state, and the classifier's best cover with it.
    staff_client.post("/admin/label/covers/undo/")
    assert primary_of(game) == best.pk


def test_grid_confirmation_ranks_the_game_again(staff_client, ranked_game):
    game, best, runner_up = ranked_game
    # A staff clean label outranks any classifier's clean probability.
    staff_client.post("/admin/label/covers/grid/", {"shown": [runner_up.pk], "confirm": [runner_up.pk]})
    assert primary_of(game) == runner_up.pk


def test_refused_label_ranks_nothing(staff_client, ranked_game):
    game, best, _ = ranked_game
    before = Game.objects.get(pk=game.pk).primary_computed_at
    response = staff_client.post("/admin/label/covers/save/", {"listing": best.pk, "labels": ["clean", "wrong_game"]})
    assert response.status_code == 400
    game.refresh_from_db()
    assert (game.primary_listing_id, game.primary_computed_at) == (best.pk, before)


# The import's label file -------------------------------------------------------------


def write_cover(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (300, 420), colour).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())


def test_label_file_ranks_the_games_it_labels(tmp_path):
    write_cover(tmp_path / "images" / "a.jpg", (200, 30, 30))
    write_cover(tmp_path / "images" / "b.jpg", (30, 30, 200))
    write_cover(tmp_path / "images" / "c.jpg", (30, 200, 30))
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "alpha.csv").write_text(
        "id;name;system;price;currency;image\n"
        "1;Alpha Game;PS4;10,00;EUR;images/a.jpg\n"
        "2;Alpha Game;PS4;11,00;EUR;images/b.jpg\n"
        "3;Other Game;PS4;12,00;EUR;images/c.jpg\n",
        encoding="utf-8",
    )
    import_catalogue(tmp_path, warn=lambda message: None)
    version = heads_version()
    first, second, other = (Listing.objects.get(product_id=product_id) for product_id in ("1", "2", "3"))
    predict(first, version, "clean", confidence=0.95, clean_probability=0.95)
    predict(second, version, "clean", confidence=0.80, clean_probability=0.80)
    predict(other, version, "clean", confidence=0.90, clean_probability=0.90)
    compute_primaries()
    game, other_game = first.edition.game, other.edition.game
    assert primary_of(game) == first.pk
    untouched_at = Game.objects.get(pk=other_game.pk).primary_computed_at

    (tmp_path / "labels.jsonl").write_text(
        '{"shop": "alpha", "product_id": "1", "labels": ["wrong_game"], "source": "manual-train"}\n', encoding="utf-8"
    )
    summary = import_catalogue(tmp_path, warn=lambda message: None)

    assert primary_of(game) == second.pk
    assert Game.objects.get(pk=other_game.pk).primary_computed_at == untouched_at
    assert summary.games_ranked_for_labels == 1
    assert "Primary covers chosen again for 1 game whose labels, reviews or pins changed" in summary.lines()

    # The same file again writes nothing, so no game is ranked for it.
    again = import_catalogue(tmp_path, warn=lambda message: None)
    assert again.games_ranked_for_labels == 0
