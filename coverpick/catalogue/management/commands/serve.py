"""coverpick serve: run the web site with gunicorn, or with Django's development server (--dev)."""

from __future__ import annotations

import logging
import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from coverpick.web.deployment import DeploymentError, require_secret_key

logger = logging.getLogger(__name__)

WSGI_APP = "coverpick.wsgi:application"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_WORKERS = 2


# gunicorn 25 added a control socket, on by default at one fixed path per
# user, so two servers on one host would share it. coverpick does not use it.
CONTROL_SOCKET_SINCE = (25, 0)


def gunicorn_argv(host: str, port: int, workers: int, gunicorn_version: tuple[int, ...] | None = None) -> list[str]:
    """Build the gunicorn command line; access and error logs go to the terminal."""
    if gunicorn_version is None:
        from gunicorn import version_info as gunicorn_version
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        WSGI_APP,
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        # Longer than the SQLite busy timeout, so a request waiting for the
        # write lock gets the database's error instead of a killed worker.
        "--timeout",
        str(int(settings.SQLITE_BUSY_TIMEOUT_S) + 30),
    ]
    if tuple(gunicorn_version[:2]) >= CONTROL_SOCKET_SINCE:
        argv.append("--no-control-socket")
    return argv


def unapplied_migrations() -> list[str]:
    """Return the migrations not yet applied to the default database, as "app.name" strings."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


class Command(BaseCommand):
    help = (
        "Serve the web site with gunicorn (production) or with Django's development server (--dev). "
        "Production needs COVERPICK_SECRET_KEY unless COVERPICK_DEBUG=1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=DEFAULT_HOST, help=f"Address to listen on (default: {DEFAULT_HOST})")
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port to listen on (default: {DEFAULT_PORT})")
        parser.add_argument(
            "--workers", type=int, default=DEFAULT_WORKERS,
            help=f"Number of gunicorn worker processes (default: {DEFAULT_WORKERS}; ignored with --dev)",
        )
        parser.add_argument("--dev", action="store_true", help="Use Django's auto-reloading development server instead of gunicorn")

    def handle(self, host, port, workers, dev, **options):
        if not 0 < port < 65536:
            raise CommandError(f"Invalid port {port}: use a number from 1 to 65535.")
        if workers < 1:
            raise CommandError(f"Invalid worker count {workers}: use at least 1.")
        pending = unapplied_migrations()
        if pending:
            raise CommandError(
                f"The database has {len(pending)} unapplied migration(s), starting with {pending[0]}. "
                "Run `coverpick migrate` with the same COVERPICK_HOME or DATABASE_URL, then start the server again."
            )
        if dev:
            # The development server is for local use: it runs in debug mode, which also
            # lets coverpick.wsgi start without COVERPICK_SECRET_KEY (the reloader's child
            # process reads the setting from this environment).
            os.environ["COVERPICK_DEBUG"] = "1"
            settings.DEBUG = True
            self.stdout.write(f"Starting the development server on http://{host}:{port}/ (DEBUG=True)")
            call_command("runserver", f"{host}:{port}")
            return
        if not settings.DEBUG:
            try:
                require_secret_key()
            except DeploymentError as exc:
                raise CommandError(str(exc)) from exc
        argv = gunicorn_argv(host, port, workers)
        logger.info("Starting gunicorn: bind=%s:%s workers=%s debug=%s", host, port, workers, settings.DEBUG)
        self.stdout.write(f"Starting gunicorn on http://{host}:{port}/ with {workers} worker{'s' if workers != 1 else ''}")
        self.stdout.flush()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coverpick.settings")
        # exec replaces this process, so signals from a supervisor reach gunicorn directly.
        os.execv(argv[0], argv)
