"""Login with a failure limit per username and client address, and logout."""

from __future__ import annotations

import logging

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView

from coverpick.web import login_throttle as throttle

logger = logging.getLogger(__name__)


class ThrottledAuthenticationForm(AuthenticationForm):
    """Reject a login without checking the password once its username and address reach the failure limit."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = throttle.client_address(self.request)
        if throttle.is_locked(username, address):
            raise forms.ValidationError(
                f"Too many failed logins for this username from your address. "
                f"Wait {throttle.WINDOW_S // 60} minutes, then try again.",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            failures = throttle.record_failure(username, address)
            logger.info("Failed login: username=%r address=%s failures=%s", username, address, failures)
            raise
        throttle.clear_failures(username, address)
        return cleaned


class CoverpickLoginView(LoginView):
    template_name = "web/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        """Render the form again, with status 429 (Too Many Requests) when the failure limit rejected it."""
        response = super().form_invalid(form)
        if form.has_error("__all__", code="throttled"):
            response.status_code = 429
        return response


class CoverpickLogoutView(LogoutView):
    next_page = "/"
