"""Django settings of the tests: the stock host project, the ORM app, test databases.

    DJANGO_SETTINGS_MODULE=django_orm_settings .venv/bin/pytest tests/test_django_orm.py

Settings are global to a process, so the whole suite runs on these: the host
project of hosts/django_settings.py (startproject's defaults, SCIM included at
/api/scim/v2/), with the ORM recipe's models installed. "default" is a SQLite
file of this process in the temporary directory, removed by the tests when they
end; "postgres" is a schema of this pytest worker in SCIM_TEST_POSTGRES_URL's
database, when that variable is set.
"""

import os
import tempfile

from hosts.django_settings import *  # noqa: F403
from hosts.django_settings import INSTALLED_APPS

from integrations.django_app.databases import database_from_url

APP = "integrations.django_app"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

if APP not in INSTALLED_APPS:
    INSTALLED_APPS = [*INSTALLED_APPS, APP]

_sqlite_file = os.path.join(
    tempfile.gettempdir(), f"scim-django-test-{WORKER}-{os.getpid()}.sqlite3"
)
DATABASES = {"default": database_from_url(f"sqlite:///{_sqlite_file}")}

if postgres_url := os.environ.get("SCIM_TEST_POSTGRES_URL"):
    # One schema per pytest-xdist worker, so parallel workers never collide.
    SCIM_TEST_POSTGRES_SCHEMA = f"scim_django_test_{WORKER}"
    DATABASES["postgres"] = database_from_url(postgres_url)
    DATABASES["postgres"]["OPTIONS"]["options"] = (
        f"-c search_path={SCIM_TEST_POSTGRES_SCHEMA}"
    )

# Django's advice for tests: a fast hasher, where production keeps PBKDF2's
# deliberately slow one (the auth.User recipe hashes through set_password).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
