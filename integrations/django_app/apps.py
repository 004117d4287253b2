"""The Django app that holds the ORM recipe's models and migrations."""

import os
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.db.backends.signals import connection_created
from django.utils.module_loading import import_string


class ScimConfig(AppConfig):
    """Users and groups as Django models; SCIM_STORAGE (or SCIM_DJANGO_ORM=1)
    serves SCIM from them."""

    name = "integrations.django_app"
    label = "scim"
    verbose_name = "SCIM users and groups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: models can only be imported once the app registry is
        # ready, and shared.storage only when it is about to be switched.
        from integrations.django_app.orm_storage import register_functions

        # Before any connection opens: SQLite gets the SQL functions filters
        # use (scim_fold, the case folding of shared.records.fold).
        connection_created.connect(register_functions, dispatch_uid="scim-sql")
        # --8<-- [start:scim-storage]
        # SCIM_STORAGE names the storage class SCIM serves from, as a dotted
        # path: "integrations.django_app.auth_storage.AuthUserStorage"
        # provisions into the project's own users and groups.
        chosen = getattr(settings, "SCIM_STORAGE", None)
        if chosen is None and os.environ.get("SCIM_DJANGO_ORM") == "1":
            chosen = "integrations.django_app.orm_storage.DjangoOrmStorage"
        if chosen is not None:
            from shared import storage

            storage.use(import_string(chosen)())
        # --8<-- [end:scim-storage]
        checks.register(check_tenants, "scim")


def check_tenants(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """At `manage.py check` (runserver, migrate): SCIM_TOKENS can be served.

    Its entries must parse, and a storage that keeps one tenant's records
    (no `for_tenant`) must not be given another tenant's tokens.
    """
    from shared import auth
    from shared import storage

    tokens = getattr(settings, "SCIM_TOKENS", None)
    if not tokens or getattr(settings, "SCIM_TENANT_OF", None):
        return []
    try:
        storage.check_tenants(auth.TokenTable.parse(tokens).tenants)
    except (ValueError, storage.TenancyError) as exc:
        return [checks.Error(str(exc), obj="SCIM_TOKENS", id="scim.E001")]
    return []
