"""Django's DATABASES setting from a database URL, as `SCIM_DATABASE_URL` holds one.

The URLs are SQLAlchemy's, so one variable configures SqlStorage and the Django
ORM alike: `sqlite:///scim.sqlite3` (a relative path), `sqlite:////var/scim.db`
(an absolute one), `postgresql+psycopg://user:password@host:5432/scim`.
"""

from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import unquote
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

DEFAULT_URL = "sqlite:///scim.sqlite3"

SQLITE_OPTIONS = {
    # Take the write lock when a transaction begins: two workers that both read
    # before writing would otherwise fail at once with "database is locked"
    # instead of waiting for each other.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,  # seconds a writer waits for the lock
    # WAL lets readers go on while a writer holds the lock; in WAL mode,
    # synchronous=NORMAL never corrupts the file and spares a fsync per commit.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}


def database_from_url(url: str | None) -> dict[str, Any]:
    """One entry of DATABASES; no URL means a SQLite file in the working directory."""
    parts = urlsplit(url or DEFAULT_URL)
    scheme = parts.scheme.partition("+")[0]  # "postgresql+psycopg" -> "postgresql"
    if scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path.removeprefix("/"),
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    if scheme in ("postgresql", "postgres"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.removeprefix("/"),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            # libpq parameters such as sslmode or options=-csearch_path=...
            "OPTIONS": dict(parse_qsl(parts.query)),
        }
    raise ImproperlyConfigured(f"No Django database engine for {parts.scheme}:// URLs")
