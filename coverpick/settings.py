"""Django settings for coverpick.

The database comes from DATABASE_URL; without it coverpick uses SQLite in
COVERPICK_HOME with WAL journaling and a busy timeout, so the sweep and the
web server can share the file.
"""

from __future__ import annotations

import os

import dj_database_url

from coverpick import conf
from coverpick.web.deployment import DEVELOPMENT_KEY

DEBUG = os.environ.get("COVERPICK_DEBUG", "") in {"1", "true", "yes"}
SECRET_KEY = os.environ.get("COVERPICK_SECRET_KEY") or DEVELOPMENT_KEY
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("COVERPICK_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "coverpick.catalogue",
    "coverpick.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves stored public pages to anonymous visitors before the middleware below runs.
    "coverpick.web.page_cache.PageCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "coverpick.web.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "coverpick.wsgi.application"

SQLITE_BUSY_TIMEOUT_S = 30
# The database engines coverpick is tested on.
SUPPORTED_ENGINES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        try:
            database = dj_database_url.parse(url, conn_max_age=60)
        except ValueError as exc:
            raise conf.SettingError(
                f"DATABASE_URL={url!r} is invalid ({exc}). Use postgresql://user:password@host:port/name, "
                "or unset it to use SQLite in COVERPICK_HOME."
            ) from None
        if database["ENGINE"] not in SUPPORTED_ENGINES:
            # The URL may hold a password, so only its scheme is repeated.
            scheme = url.split(":", 1)[0]
            raise conf.SettingError(
                f"DATABASE_URL uses {scheme}://, which coverpick does not support. Use "
                "postgresql://user:password@host:port/name, or unset it to use SQLite in COVERPICK_HOME."
            )
        if database["ENGINE"] == "django.db.backends.postgresql":
            # The ranking query repeats its verdict subqueries in many CASE
            # branches, so its cost estimate passes PostgreSQL's JIT
            # thresholds. Compiling it took 14 of the 14.2 s that ranking the
            # sample's 879 listings took; without JIT it runs in well under a
            # second. coverpick's queries are small, so JIT is off for all.
            options = database.setdefault("OPTIONS", {})
            options["options"] = f"{options.get('options', '')} -c jit=off".strip()
        return database
    path = conf.sqlite_path()
    conf.make_folder(
        path.parent,
        f"COVERPICK_HOME={str(path.parent)!r} cannot be used as coverpick's folder",
        "Set COVERPICK_HOME to a folder that exists or that coverpick may create.",
    )
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # Keep each worker's connection between requests. Opening one and
        # running the PRAGMAs below took about 1 ms per request, most of the
        # time a cached page needs. Reads in autocommit still see every commit.
        "CONN_MAX_AGE": 600,
        "OPTIONS": {
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            # IMMEDIATE takes the write lock when a transaction starts, so two
            # writers queue on the busy timeout instead of failing on upgrade.
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        "TEST": {"NAME": str(path.with_name("coverpick-test.sqlite3"))},
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Staff accounts can pin covers and relabel the catalogue, so `coverpick createstaff`
# rejects short, common, all-digit or username-like passwords.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
STATIC_URL = "/static/"
STATIC_ROOT = str(conf.home() / "static")
MEDIA_URL = "/media/"
# A folder cache that every gunicorn worker shares, so per-user counters (the login limit) hold across workers.
# "pages" contains the public pages that coverpick.web.page_cache serves to anonymous visitors: one entry per
# game page and list page, overwritten when the catalogue changes, in a folder of its own.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(conf.home() / "cache")},
    "pages": {
        "BACKEND": "coverpick.web.page_cache.PageFileCache",
        "LOCATION": str(conf.home() / "cache" / "pages"),
        "OPTIONS": {"MAX_ENTRIES": 50_000},
    },
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level() -> str:
    level = os.environ.get("COVERPICK_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise conf.SettingError(
            f"COVERPICK_LOG_LEVEL={os.environ['COVERPICK_LOG_LEVEL']!r} is not a log level. "
            f"Use one of {', '.join(LOG_LEVELS)}, or unset it for INFO."
        )
    return level


_LOG_LEVEL = _log_level()
# Checked here, so every command rejects an invalid value, also those that use the active model's backbone.
conf.backbone_id()
conf.backbone_precision()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {"rejected_host": {"()": "coverpick.web.deployment.RejectedHostFilter"}},
    "loggers": {
        "coverpick": {"handlers": ["console"], "level": _LOG_LEVEL},
        # coverpick reports each image it cannot decode with its path and reason.
        # Pillow's own lines name no file, so they show only at DEBUG.
        "PIL": {"handlers": ["console"], "level": "DEBUG" if _LOG_LEVEL == "DEBUG" else "CRITICAL", "propagate": False},
        # Without these, Django drops server errors and rejected hosts when DEBUG is off.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "django.security": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "django.security.DisallowedHost": {
            "handlers": ["console"], "level": "WARNING", "propagate": False, "filters": ["rejected_host"],
        },
    },
}
