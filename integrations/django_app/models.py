"""The tables of the Django ORM recipe, shaped like those of shared/sql_storage.py.

A user row holds the attributes the application acts on and an `extra` JSON
for the rest; emails and phone numbers are child rows; a group's members are
rows of their own, so adding a member inserts one row. The tables are prefixed
`django_scim_`, so SqlStorage's `scim_` tables can live in the same database.
Strings are nullable because SCIM tells a missing value from an empty one (`pr`).
Users and groups name their tenant: the storage asks for one tenant's rows only.
"""

from django.conf import settings
from django.db import models

from shared.tenants import DEFAULT_TENANT

# --8<-- [start:django-models]


class ScimUser(models.Model):
    # `seq` orders records by creation: the stable default order of pages.
    seq = models.BigAutoField(primary_key=True)
    # Whose user it is (shared/tenants.py).
    tenant = models.CharField(max_length=64, default=DEFAULT_TENANT)
    # The SCIM id, random, so unique across tenants. Django keeps the field
    # name `id` for primary keys.
    scim_id = models.CharField(max_length=32, unique=True)
    version = models.PositiveIntegerField()
    created = models.DateTimeField()
    last_modified = models.DateTimeField()
    user_name = models.TextField()
    # userName is caseExact false: uniqueness is enforced on the folded form,
    # within a tenant (Meta.constraints).
    user_name_key = models.TextField()
    external_id = models.TextField(null=True)
    display_name = models.TextField(null=True)
    given_name = models.TextField(null=True)
    family_name = models.TextField(null=True)
    active = models.BooleanField(null=True)
    title = models.TextField(null=True)
    department = models.TextField(null=True)
    employee_number = models.TextField(null=True)
    manager_id = models.TextField(null=True)  # whatever value the client sent
    password_hash = models.TextField(null=True)
    extra = models.JSONField(default=dict)

    class Meta:
        db_table = "django_scim_users"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user_name_key"], name="scim_user_tenant_user_name"
            )
        ]
        # A tenant's page in creation order is one index range scan.
        indexes = [models.Index(fields=["tenant", "seq"], name="scim_user_tenant_seq")]


class MultiValuedEntry(models.Model):
    """One value of a multi-valued attribute of users (RFC 7643 §2.4)."""

    position = models.PositiveIntegerField()
    value = models.TextField(null=True, db_index=True)
    type = models.TextField(null=True)
    primary = models.BooleanField(null=True)
    display = models.TextField(null=True)

    class Meta:
        abstract = True
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "position"], name="%(app_label)s_%(class)s_position"
            )
        ]


class UserEmail(MultiValuedEntry):
    user = models.ForeignKey(
        ScimUser, models.CASCADE, to_field="scim_id", related_name="emails"
    )

    class Meta(MultiValuedEntry.Meta):
        db_table = "django_scim_user_emails"


class UserPhoneNumber(MultiValuedEntry):
    user = models.ForeignKey(
        ScimUser, models.CASCADE, to_field="scim_id", related_name="phone_numbers"
    )

    class Meta(MultiValuedEntry.Meta):
        db_table = "django_scim_user_phone_numbers"


class ScimGroup(models.Model):
    seq = models.BigAutoField(primary_key=True)
    tenant = models.CharField(max_length=64, default=DEFAULT_TENANT)
    scim_id = models.CharField(max_length=32, unique=True)
    version = models.PositiveIntegerField()
    created = models.DateTimeField()
    last_modified = models.DateTimeField()
    display_name = models.TextField()
    external_id = models.TextField(null=True)
    extra = models.JSONField(default=dict)

    class Meta:
        db_table = "django_scim_groups"
        indexes = [models.Index(fields=["tenant", "seq"], name="scim_group_tenant_seq")]


class Membership(models.Model):
    group = models.ForeignKey(
        ScimGroup, models.CASCADE, to_field="scim_id", related_name="memberships"
    )
    # A member is a user or a group, so there is no foreign key to one table.
    member_id = models.CharField(max_length=32, db_index=True)
    member_type = models.CharField(max_length=5)  # "User" or "Group"
    display = models.TextField(null=True)  # only the one a client gave

    class Meta:
        db_table = "django_scim_memberships"
        ordering = ["id"]  # the order members joined in
        constraints = [
            models.UniqueConstraint(
                fields=["group", "member_id"], name="scim_membership_unique"
            )
        ]


# --8<-- [end:django-models]


# --8<-- [start:auth-identity]
# The recipe that provisions into the project's own user model and auth.Group
# (auth_storage.py): what those have no column for, one row per user or group.


class UserIdentity(models.Model):
    """A user's SCIM identity: its id, externalId, version and other attributes."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        primary_key=True,
        related_name="scim_identity",
    )
    scim_id = models.CharField(max_length=32, unique=True)
    # userName is caseExact false in SCIM, `username` case-sensitive in
    # Django: SCIM's uniqueness is this unique folded copy of the username.
    user_name_key = models.TextField(unique=True)
    external_id = models.TextField(null=True)
    version = models.PositiveIntegerField()
    created = models.DateTimeField()
    last_modified = models.DateTimeField()
    # displayName, title, emails, phoneNumbers, the enterprise extension...:
    # everything the user model has no column for, keyed as records are.
    attributes = models.JSONField(default=dict)

    class Meta:
        db_table = "django_scim_user_identities"


class GroupIdentity(models.Model):
    """A group's SCIM identity: auth.Group has only a name."""

    group = models.OneToOneField(
        "auth.Group", models.CASCADE, primary_key=True, related_name="scim_identity"
    )
    scim_id = models.CharField(max_length=32, unique=True)
    external_id = models.TextField(null=True)
    version = models.PositiveIntegerField()
    created = models.DateTimeField()
    last_modified = models.DateTimeField()
    attributes = models.JSONField(default=dict)

    class Meta:
        db_table = "django_scim_group_identities"


# --8<-- [end:auth-identity]
