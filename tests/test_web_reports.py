import io
import json

import pytest
from django.core.management import call_command
from PIL import Image

from coverpick import conf, reports
from coverpick.catalogue.manual import set_labels
from tests.factories import heads_version, make_game, make_listing, predict
from tests.test_web_support import _clear_cache, staff_client, staff_user  # noqa: F401

pytestmark = pytest.mark.django_db

METRICS = {
    "quality": {
        "per_class": {
            "clean": {"recall": 0.91, "count": 40},
            "margins": {"recall": 0.5, "count": 8},
        },
        "confusion": {},
    },
    "platform": {"accuracy": 0.97, "coverage": 0.8, "count": 120},
    "training_rows": 480,
    "validation_rows": 120,
}


@pytest.fixture
def version():
    version = heads_version("heads-report")
    version.metrics = METRICS
    version.backbone = "efficientnet_lite0"
    version.save()
    game, (edition,) = make_game()
    for quality in ("clean", "clean", "unknown", "margins", None):
        predict(make_listing(edition), version, quality)
    return version


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_recall_rows_use_live_counts_without_checkpoint(version):
    game, (edition,) = make_game()
    for _ in range(3):
        set_labels(make_listing(edition), ["clean"])
    rows = {row.name: row for row in reports.recall_rows(version)}
    assert rows["clean"].recall == 0.91
    assert rows["clean"].validation_count == 40
    assert rows["clean"].training_labels == 3
    assert rows["wrong_game"].recall is None
    assert reports.training_label_counts(version)[1] == "current manual labels"


def test_recall_rows_prefer_checkpoint_counts(version):
    folder = conf.model_dir() / "heads-report"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"label_counts": {"clean": 203, "margins": 38}}))
    version.checkpoint = "heads-report"
    version.save()
    rows = {row.name: row for row in reports.recall_rows(version)}
    assert rows["clean"].training_labels == 203
    assert rows["clean"].supported
    assert rows["margins"].training_labels == 38
    assert not rows["margins"].supported
    assert reports.training_label_counts(version)[1] == "training run"


def test_verdict_distribution_counts_active_version(version):
    other = heads_version("heads-other", active=False)
    game, (edition,) = make_game()
    predict(make_listing(edition), other, "placeholder")
    assert reports.verdict_distribution(version) == {"clean": 2, "margins": 1, "unknown": 1, "no verdict": 1}


def test_charts_are_png(version):
    assert png_size(reports.recall_chart(version))[0] > 500
    assert png_size(reports.verdict_chart(version))[0] > 500


def test_charts_without_version_say_so():
    assert reports.recall_chart(None).startswith(b"\x89PNG")
    assert reports.verdict_chart(None).startswith(b"\x89PNG")


def test_report_page_shows_tables_and_versions(staff_client, version):
    heads_version("heads-older", active=False)
    response = staff_client.get("/reports/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'src="/reports/recall.png"' in body
    assert 'src="/reports/verdicts.png"' in body
    assert "heads-report" in body
    assert "heads-older" in body
    assert "<strong>active</strong>" in body
    assert "91%" in body
    assert "97% (80%)" in body
    assert "480 / 120" in body
    assert "<td>unknown</td><td class=\"num\">1</td>" in body


def test_report_page_without_version(staff_client):
    response = staff_client.get("/reports/")
    assert response.status_code == 200
    assert "No trained heads are active yet" in response.content.decode()


def test_chart_views_send_png(staff_client, version):
    for url in ("/reports/recall.png", "/reports/verdicts.png"):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "image/png", url
        assert response["Cache-Control"] == "private, no-cache", url
        assert response.content.startswith(b"\x89PNG"), url


def test_report_command_writes_files(version, tmp_path):
    out = tmp_path / "report"
    stdout = io.StringIO()
    call_command("report", "--out", str(out), stdout=stdout)
    assert (out / "recall.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "verdicts.png").read_bytes().startswith(b"\x89PNG")
    counts = json.loads((out / "counts.json").read_text())
    assert counts["version"] == "heads-report"
    assert counts["verdicts"] == {"clean": 2, "margins": 1, "unknown": 1, "no verdict": 1}
    recall = {row["class"]: row for row in counts["recall"]}
    assert recall["clean"]["recall"] == 0.91
    assert f"Wrote {out / 'counts.json'}" in stdout.getvalue()


def test_report_command_without_version_warns(tmp_path):
    stderr = io.StringIO()
    call_command("report", "--out", str(tmp_path), stderr=stderr, stdout=io.StringIO())
    assert "No trained heads are active" in stderr.getvalue()
    assert json.loads((tmp_path / "counts.json").read_text())["version"] is None


def test_report_command_rejects_file_as_folder(tmp_path):
    from django.core.management.base import CommandError

    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(CommandError, match="exists and is not a folder; name a folder .*, such as .*file.txt-report"):
        call_command("report", "--out", str(target))
