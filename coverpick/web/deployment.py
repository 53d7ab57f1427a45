"""Startup checks for serving coverpick in production."""

from __future__ import annotations

import os

SECRET_KEY_VARIABLE = "COVERPICK_SECRET_KEY"


class DeploymentError(RuntimeError):
    """The environment is not fit to serve the site in production."""


def require_secret_key(environ: dict[str, str] | None = None) -> None:
    """Raise DeploymentError unless COVERPICK_SECRET_KEY is set to a non-empty value.

    Without it Django signs sessions and CSRF tokens with the public
    development key from coverpick.settings.
    """
    environ = os.environ if environ is None else environ
    if environ.get(SECRET_KEY_VARIABLE, "").strip():
        return
    raise DeploymentError(
        f"{SECRET_KEY_VARIABLE} is not set. Production serving needs a private secret key: create one with\n"
        f"    python -c 'import secrets; print(secrets.token_urlsafe(50))'\n"
        f"and export it as {SECRET_KEY_VARIABLE} in the server's environment "
        "(or pass --dev, or set COVERPICK_DEBUG=1, for local development)."
    )
