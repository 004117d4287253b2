"""The Django app that holds the ORM recipe's models and migrations."""

import os

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ScimConfig(AppConfig):
    """Users and groups as Django models; SCIM_DJANGO_ORM=1 serves SCIM from them."""

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
        if os.environ.get("SCIM_DJANGO_ORM") == "1":
            from integrations.django_app.orm_storage import DjangoOrmStorage
            from shared import storage

            storage.use(DjangoOrmStorage())
