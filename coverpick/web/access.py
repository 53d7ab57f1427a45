"""Access rules for staff pages: anonymous users are sent to log in, other non-staff users get 403."""

from __future__ import annotations

import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def staff_required(view):
    """Let only active staff users reach ``view``.

    An anonymous request is redirected to LOGIN_URL with a ``next`` parameter,
    and a logged-in user without ``is_staff`` gets 403. Either way the view
    does not run, so nothing is written.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("This page is for staff accounts only.")
        return view(request, *args, **kwargs)

    return wrapper


def is_staff(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)
