"""URL routes of the site; every route is in the "web" namespace."""

from django.urls import include, path, re_path

from coverpick.web.views import accounts, catalogue, files, label, reports

web_patterns = [
    path("", catalogue.game_list, name="games"),
    path("games/<int:game_id>/", catalogue.game_detail, name="game"),
    path("games/<int:game_id>/pin/", catalogue.pin, name="pin"),
    path("games/<int:game_id>/unpin/", catalogue.unpin, name="unpin"),
    re_path(r"^covers/(?P<sha256>[0-9a-f]{64})/$", files.cover_image, name="cover"),
    re_path(r"^assets/(?P<name>[a-z0-9_-]+\.(?:css|js))$", files.asset, name="asset"),
    path("accounts/login/", accounts.CoverpickLoginView.as_view(), name="login"),
    path("accounts/logout/", accounts.CoverpickLogoutView.as_view(), name="logout"),
    path("admin/label/covers/", label.label_page, name="label"),
    path("admin/label/covers/save/", label.label_save, name="label_save"),
    path("admin/label/covers/skip/", label.label_skip, name="label_skip"),
    path("admin/label/covers/undo/", label.label_undo, name="label_undo"),
    path("admin/label/covers/grid/", label.label_grid, name="label_grid"),
    path("reports/", reports.report_page, name="reports"),
    path("reports/recall.png", reports.recall_chart, name="recall_chart"),
    path("reports/verdicts.png", reports.verdict_chart, name="verdict_chart"),
]

urlpatterns = [path("", include((web_patterns, "web")))]
