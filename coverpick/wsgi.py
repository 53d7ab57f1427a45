"""WSGI entry point for gunicorn.

Outside debug mode the secret key must be set, whether gunicorn is started by
`coverpick serve` or directly, so sessions are never signed with the public
development key.
"""

import os

from django.core.wsgi import get_wsgi_application

from coverpick.web.deployment import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
if os.environ.get("COVERPICK_DEBUG", "") not in {"1", "true", "yes"}:
    require_secret_key()
application = get_wsgi_application()
