"""Settings of a project whose AUTH_USER_MODEL is its own (tests/custom_user/).

AUTH_USER_MODEL cannot change once Django has started, so the test that uses
these runs in a process of its own (tests/test_django_auth.py).
"""

import os

from integrations.django_app.databases import database_from_url

SECRET_KEY = "custom-user-test"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "custom_user",
    "integrations.django_app",
]
AUTH_USER_MODEL = "custom_user.Person"
SCIM_STORAGE = "integrations.django_app.auth_storage.AuthUserStorage"
SCIM_TOKEN = "custom-user-token"
ROOT_URLCONF = "integrations.django_app.root_urls"
DATABASES = {"default": database_from_url(os.environ["CUSTOM_USER_DATABASE_URL"])}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]
APPEND_SLASH = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
