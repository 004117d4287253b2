"""Django settings for the SCIM server, and for its Django ORM recipe."""

import os
import secrets

from django.core.exceptions import ImproperlyConfigured

from integrations.django_app.databases import database_from_url
from shared import discovery

# Sessions, CSRF and the admin are not used: clients authenticate with a
# bearer token on every request, so the secret key only needs to exist.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = os.environ.get(
    "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver"
).split(",")

# The ORM recipe's models and migrations; with SCIM_DJANGO_ORM=1 the app also
# serves SCIM from them (integrations/django_app/apps.py). django.contrib.auth
# is there for the recipe that provisions into auth.User (auth_storage.py),
# which SCIM_DJANGO_AUTH=1 chooses, as SCIM_STORAGE would in a project.
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "integrations.django_app",
]
if os.environ.get("SCIM_DJANGO_AUTH") == "1":
    SCIM_STORAGE = "integrations.django_app.auth_storage.AuthUserStorage"
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
ROOT_URLCONF = "integrations.django_app.root_urls"
WSGI_APPLICATION = "integrations.django_app.wsgi.application"
# Used by the ORM recipe only: SCIM_DATABASE_URL, the URL SqlStorage reads, or
# else scim.sqlite3 in the working directory. Create the tables with
# `python -m django migrate`.
DATABASES = {"default": database_from_url(os.environ.get("SCIM_DATABASE_URL"))}
USE_TZ = True
# Log times (and anything else Django formats) in UTC, as SCIM's meta dates.
TIME_ZONE = "UTC"
# /Users/{id} must not be redirected to /Users/{id}/.
APPEND_SLASH = False

# --8<-- [start:settings]
# Like Flask's and FastAPI's create_app(), refuse to start without a token:
# SCIM_TOKENS (`tenant:token,...`) for several tenants, or SCIM_TOKEN alone
# for one. A project with tokens of its own sets SCIM_TENANT_OF instead: the
# dotted path of its function from a token to the tenant, or None.
SCIM_TOKENS = os.environ.get("SCIM_TOKENS")
SCIM_TOKEN = os.environ.get("SCIM_TOKEN")
if not (SCIM_TOKENS or SCIM_TOKEN):
    raise ImproperlyConfigured("Set the SCIM_TOKEN or SCIM_TOKENS environment variable")
# Django refuses a larger body when a view reads it (RequestDataTooBig).
DATA_UPLOAD_MAX_MEMORY_SIZE = discovery.MAX_PAYLOAD_SIZE
# --8<-- [end:settings]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # A 4xx is a SCIM Error the client reads; only a 5xx is worth a log line.
    "loggers": {"django.request": {"level": "ERROR"}},
}
