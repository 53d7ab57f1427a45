"""Startup checks for serving coverpick in production."""

from __future__ import annotations

import logging
import os

SECRET_KEY_VARIABLE = "COVERPICK_SECRET_KEY"
# A key that signs sessions must not be guessable. Django's own deployment
# check warns below 50 characters or 5 distinct ones; 32 characters of
# secrets.token_urlsafe carry about 190 bits.
SECRET_KEY_MIN_LENGTH = 32
SECRET_KEY_MIN_DISTINCT = 5
# The key coverpick.settings falls back to when none is set, public in its source.
DEVELOPMENT_KEY = "coverpick-insecure-development-key"


class DeploymentError(RuntimeError):
    """The environment is not fit to serve the site in production."""


def require_secret_key(environ: dict[str, str] | None = None) -> None:
    """Raise DeploymentError unless COVERPICK_SECRET_KEY is set to a long, varied value.

    Without it Django signs sessions and CSRF tokens with the public
    development key from coverpick.settings, and a short key can be guessed.
    """
    environ = os.environ if environ is None else environ
    key = environ.get(SECRET_KEY_VARIABLE, "").strip()
    fix = (
        "Production serving needs a private secret key: create one with\n"
        "    python -c 'import secrets; print(secrets.token_urlsafe(50))'\n"
        f"and export it as {SECRET_KEY_VARIABLE} in the server's environment "
        "(or pass --dev, or set COVERPICK_DEBUG=1, for local development)."
    )
    if not key:
        raise DeploymentError(f"{SECRET_KEY_VARIABLE} is not set. {fix}")
    if key == DEVELOPMENT_KEY or key.startswith("django-insecure-"):
        raise DeploymentError(f"{SECRET_KEY_VARIABLE} is a published development key. {fix}")
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_DISTINCT:
        raise DeploymentError(
            f"{SECRET_KEY_VARIABLE} is too weak: {len(key)} characters, {len(set(key))} of them distinct; it needs at "
            f"least {SECRET_KEY_MIN_LENGTH} characters and {SECRET_KEY_MIN_DISTINCT} distinct ones. {fix}"
        )


class RejectedHostFilter(logging.Filter):
    """Shorten Django's log line for a request to a host not in ALLOWED_HOSTS: no traceback, and coverpick's variable named.

    Anyone can send such requests, so each would otherwise log a full traceback
    that advises editing ALLOWED_HOSTS, a setting coverpick fills from the environment.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if " You may need" in message:
            # Only a well-formed host name gets that hint, because adding a malformed one would not help.
            message = f"{message.split(' You may need', 1)[0]} Add the host to COVERPICK_ALLOWED_HOSTS if it is yours."
        record.msg = message
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        return True
