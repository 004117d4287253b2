"""The storage API on the project's own users and groups: `auth.User` and `auth.Group`.

Where orm_storage.py keeps SCIM-shaped models of the recipe's own, this
storage writes what an identity provider sends into the models the project
already logs people in with, through `get_user_model()` (so a custom
AUTH_USER_MODEL with the same fields works too):

    userName                     -> username (USERNAME_FIELD)
    name.givenName, familyName   -> first_name, last_name
    the primary (else first) work email, else the primary (else first) email
                                 -> email (get_email_field_name())
    active                       -> is_active: False, and ModelBackend refuses the login
    password                     -> set_password(), the project's PASSWORD_HASHERS
    Group displayName            -> Group.name
    Group members                -> user.groups

What those models have no column for (the SCIM id, externalId, the version,
displayName, title, emails as sent, the enterprise extension...) is kept in a
row of the recipe's own per user or group (`UserIdentity`, `GroupIdentity`,
in models.py), linked one to one. `is_staff`, `is_superuser` and the user's
permissions are never written: a save names the fields it writes.

SCIM sees the users and groups that have an identity row: those it created,
and those the project hands over with `adopt_users` / `adopt_groups`. The
project's other accounts (its superusers, say) stay out of its reach.

Django's rules hold: a username, name or email the model's own validators
refuse is a 400; `auth.Group` names are unique, and a group holds no groups.
"""

import uuid
from collections.abc import Callable
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.db import IntegrityError
from django.db import transaction
from django.db.models import Exists
from django.db.models import Expression
from django.db.models import F
from django.db.models import Model
from django.db.models import OuterRef
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import TextField
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.db.models.functions import NullIf
from django.db.models.signals import m2m_changed
from django.db.models.signals import post_save
from django.utils import timezone
from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import SearchRequest
from scim2_models import UniquenessException

from integrations.django_app.models import GroupIdentity
from integrations.django_app.models import UserIdentity
from integrations.django_app.orm_storage import CodePoints
from integrations.django_app.orm_storage import Fold
from integrations.django_app.orm_storage import JsonSome
from integrations.django_app.orm_storage import JsonValue
from integrations.django_app.orm_storage import Scope
from integrations.django_app.orm_storage import where
from shared.filter_plan import Column
from shared.filter_plan import JsonArray
from shared.filter_plan import JsonKey
from shared.filter_plan import Rows
from shared.filter_plan import SortKey
from shared.filter_plan import plan_filter
from shared.filter_plan import plan_sort
from shared.filter_plan import refuse
from shared.records import GROUP
from shared.records import USER
from shared.records import fold

# --8<-- [start:auth-mapping]
# Record fields the user model has a column for: the record key, the column.
USER_COLUMNS = {
    "given_name": "first_name",
    "family_name": "last_name",
    "active": "is_active",
}
# What the identity row keeps in `attributes`, keyed as records are.
USER_ATTRIBUTES = (
    "display_name",
    "title",
    "department",
    "employee_number",
    "manager_id",
    "emails",
    "phone_numbers",
    "extra",
)


def chosen_email(emails: list[dict[str, Any]]) -> str:
    """The address Django's `email` keeps: primary work, first work, primary, first."""
    work = [entry for entry in emails if entry.get("type") == "work"]
    for candidates in (work, emails):
        for entry in sorted(candidates, key=lambda entry: not entry.get("primary")):
            if entry.get("value"):
                return entry["value"]
    return ""  # Django's "no email": the column is NOT NULL


# --8<-- [end:auth-mapping]


class AuthUserStorage:
    """The storage API on `get_user_model()` and `auth.Group`."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using  # the DATABASES alias
        self.user_model = get_user_model()
        self.user_name_field = self.user_model.USERNAME_FIELD
        self.email_field = self.user_model.get_email_field_name()
        # The table behind user.groups, one row per membership, and the name
        # of its key to the user model ("user" for auth.User).
        self.memberships = self.user_model.groups.through
        self.member = member_field(self.user_model)
        connect_signals(self.user_model)

    # --8<-- [start:auth-password]
    def hash_password(self, password: str) -> str:
        """What `set_password` makes of a password (shared.mapping asks for it).

        The clear password never reaches a record: the mapping hashes it
        with this, and `save_record` writes the hash as it is.
        """
        user = self.user_model()
        user.set_password(password)
        return user.password

    # --8<-- [end:auth-password]

    def reset(self) -> None:
        """Forget what SCIM manages (tests, demos); the project's other users stay."""
        with transaction.atomic(using=self.using):
            self._users().delete()
            self._groups().delete()

    # --8<-- [start:auth-adopt]
    def adopt_users(self, users: Iterable[Model]) -> int:
        """Give existing users a SCIM identity, so that SCIM sees and manages them.

        An identity provider that finds a userName taken (409) looks the user
        up by userName next: adopted, it finds the account and takes it over.
        """
        now = timezone.now()
        identities = [
            UserIdentity(
                user=user,
                scim_id=uuid.uuid4().hex,
                user_name_key=fold(getattr(user, self.user_name_field)),
                version=1,
                created=now,
                last_modified=now,
                attributes={"emails": _emails_of(getattr(user, self.email_field))},
            )
            for user in users
        ]
        with transaction.atomic(using=self.using):
            self._objects(UserIdentity).bulk_create(identities)
        return len(identities)

    def adopt_groups(self, groups: Iterable[Group]) -> int:
        """Give existing groups a SCIM identity."""
        now = timezone.now()
        identities = [
            GroupIdentity(
                group=group,
                scim_id=uuid.uuid4().hex,
                version=1,
                created=now,
                last_modified=now,
            )
            for group in groups
        ]
        self._objects(GroupIdentity).bulk_create(identities)
        return len(identities)

    # --8<-- [end:auth-adopt]

    # --8<-- [start:auth-read]
    def get_record(
        self, kind: str, record_id: str, members: bool = True
    ) -> dict[str, Any] | None:
        """A record, or None; `members=False` leaves a group's out, unread."""
        rows = self._rows(kind).filter(scim_identity__scim_id=record_id)
        records = self._records(kind, rows, members)
        return records[0] if records else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName, in any letter case (one index lookup)."""
        rows = self._users().filter(scim_identity__user_name_key=fold(user_name))
        records = self._records(USER, rows)
        return records[0] if records else None

    def list_records(
        self,
        kind: str,
        start: int = 0,
        stop: int | None = None,
        members: bool = True,
        *,
        past: int | None = None,
        backwards: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many records of a kind SCIM manages, and those in [start:stop)."""
        rows = self._rows(kind)
        page = _page(in_creation_order(rows, past, backwards), start, stop)
        return rows.count(), self._records(kind, page, members)

    def search_records(
        self,
        kind: str,
        search: SearchRequest,
        start: int,
        stop: int | None,
        to_resource: Callable[[dict[str, Any]], Any],
        members: bool = True,
        *,
        past: int | None = None,
        backwards: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Filter, sort and page in the database, on the project's own tables.

        The plan of shared/filter_plan.py is written by orm_storage's `where`,
        with the targets and collections of these models (`auth-layout`).
        """
        rows = self._rows(kind)
        if search.filter is not None:
            plan = plan_filter(kind, search.filter)
            rows = rows.filter(where(plan, TARGETS[kind], COLLECTIONS[kind]))
        order = []
        key = plan_sort(kind, search)
        if key is not None:
            value = sort_value(kind, key)
            if search.sort_order == SearchRequest.SortOrder.descending:
                order.append(value.desc(nulls_first=True))
            else:
                order.append(value.asc(nulls_last=True))
        if past is None and not backwards:
            page = rows.order_by(*order, "pk")
        else:
            page = in_creation_order(rows, past, backwards)
        return rows.count(), self._records(kind, _page(page, start, stop), members)

    # --8<-- [end:auth-read]

    # --8<-- [start:auth-write]
    def save_record(
        self, kind: str, record: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        """Create (no `id`) or update a user or group; `expected_version`: a CAS."""
        with transaction.atomic(using=self.using):
            now = timezone.now()
            identity = None
            if "id" in record:
                # Locked: the version checked is the one replaced.
                identity = self._locked(kind, record["id"])
                if expected_version not in (None, identity.version):
                    raise PreconditionFailedException()
            if kind == USER:
                record_id = self._save_user(record, identity, now)
            else:
                record_id = self._save_group(record, identity, now)
            return self.get_record(kind, record_id)

    def _save_user(
        self, record: dict[str, Any], identity: UserIdentity | None, now: datetime
    ) -> str:
        user = self.user_model() if identity is None else identity.user
        before = None if identity is None else _display(identity.attributes, user)
        user_name = record["user_name"]
        self._check_user_name(user_name, None if identity is None else user.pk)
        values = {
            self.user_name_field: user_name,
            self.email_field: chosen_email(record.get("emails") or []),
            "first_name": record.get("given_name") or "",
            "last_name": record.get("family_name") or "",
            # A user SCIM created without `active` may log in, as Django's own.
            "is_active": record.get("active") is not False,
        }
        for name, value in values.items():
            _validate(self.user_model, name, value)
            setattr(user, name, value)
        if record.get("password_hash") is not None:
            user.password = record["password_hash"]  # hash_password's, above
        elif identity is None:
            # Provisioned without a password, the user signs in through the
            # identity provider only (SSO): no password can match.
            user.set_unusable_password()
        attributes = {name: record.get(name) for name in USER_ATTRIBUTES}
        attributes["extra"] = attributes["extra"] or {}
        user.scim_writing = True  # its version moves on below, not in a signal
        if identity is None:
            user.save(using=self.using)
            identity = UserIdentity(user=user, scim_id=uuid.uuid4().hex, version=0)
            identity.created = now
        else:
            # Only the fields SCIM maps: never is_staff, is_superuser, or a
            # column the project changed meanwhile.
            user.save(using=self.using, update_fields=[*values, "password"])
        identity.user_name_key = fold(user_name)
        identity.external_id = record.get("external_id")
        identity.attributes = attributes
        self._write_identity(identity, now, user_name)
        if before is not None and before != _display(attributes, user):
            self._touch_groups_of([user.pk], now)  # they show its name
        return identity.scim_id

    def _save_group(
        self, record: dict[str, Any], identity: GroupIdentity | None, now: datetime
    ) -> str:
        group = Group() if identity is None else identity.group
        name = record["display_name"]
        _validate(Group, "name", name)
        group.name = name
        group.scim_writing = True
        _unique(lambda: group.save(using=self.using), f"displayName {name!r}")
        if identity is None:
            identity = GroupIdentity(group=group, scim_id=uuid.uuid4().hex, version=0)
            identity.created = now
        identity.external_id = record.get("external_id")
        identity.attributes = {"extra": record.get("extra") or {}}
        self._write_identity(identity, now)
        wanted = self._member_pks(group.pk, record.get("members") or [])
        current = set(
            self._members_of(group.pk).values_list(f"{self.member}_id", flat=True)
        )
        self._join(group.pk, wanted - current, now)
        self._leave(group.pk, current - wanted, now)
        return identity.scim_id

    def update_group(
        self,
        group_id: str,
        fields: dict[str, Any] | None,
        add: list[dict[str, Any]],
        remove: list[str],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Change a group's fields and some members: one row per member named."""
        with transaction.atomic(using=self.using):
            identity = self._locked(GROUP, group_id)
            if expected_version not in (None, identity.version):
                raise PreconditionFailedException()
            now = timezone.now()
            group = identity.group
            adding = self._member_pks(group.pk, add)
            current = set(
                self._members_of(group.pk)
                .filter(**{f"{self.member}_id__in": adding})
                .values_list(f"{self.member}_id", flat=True)
            )
            joining = adding - current
            leaving = set(
                self._members_of(group.pk)
                .filter(**{f"{self.member}__scim_identity__scim_id__in": remove})
                .values_list(f"{self.member}_id", flat=True)
            )
            changed = fields is not None and (
                fields["display_name"] != group.name
                or fields["external_id"] != identity.external_id
                or fields["extra"] != identity.attributes.get("extra", {})
            )
            if not (joining or leaving or changed):
                return self.get_record(GROUP, group_id, members=False)
            self._join(group.pk, joining, now)
            self._leave(group.pk, leaving, now)
            if changed:
                _validate(Group, "name", fields["display_name"])
                group.name = fields["display_name"]
                group.scim_writing = True
                _unique(
                    lambda: group.save(using=self.using, update_fields=["name"]),
                    f"displayName {group.name!r}",
                )
                identity.external_id = fields["external_id"]
                identity.attributes = {"extra": fields["extra"]}
            self._write_identity(identity, now)
            return self.get_record(GROUP, group_id, members=False)

    def delete_record(
        self, kind: str, record_id: str, expected_version: int | None = None
    ) -> None:
        """Delete a user or group; Django deletes its memberships with it."""
        with transaction.atomic(using=self.using):
            identity = self._locked(kind, record_id)
            if expected_version is not None and identity.version != expected_version:
                raise PreconditionFailedException()
            now = timezone.now()
            if kind == USER:
                user_pk = identity.user.pk
                self._touch_groups_of([user_pk], now)  # they lose a member
                identity.user.delete(using=self.using)
            else:
                # Its members' `groups` change: their versions move on.
                members = list(
                    self._members_of(identity.group.pk).values_list(
                        f"{self.member}_id", flat=True
                    )
                )
                self._touch_users(members, now)
                identity.group.delete(using=self.using)

    # --8<-- [end:auth-write]

    # --8<-- [start:auth-helpers]
    def _objects(self, model: type[Model]) -> QuerySet:
        return model._default_manager.using(self.using)

    def _users(self) -> QuerySet:
        """The users SCIM manages: those with an identity row."""
        return self._objects(self.user_model).filter(scim_identity__isnull=False)

    def _groups(self) -> QuerySet:
        return self._objects(Group).filter(scim_identity__isnull=False)

    def _rows(self, kind: str) -> QuerySet:
        return self._users() if kind == USER else self._groups()

    def _members_of(self, group_pk: int) -> QuerySet:
        """The memberships of a group that SCIM sees: its managed users'."""
        return self._objects(self.memberships).filter(
            group_id=group_pk, **{f"{self.member}__scim_identity__isnull": False}
        )

    def _locked(self, kind: str, record_id: str) -> UserIdentity | GroupIdentity:
        model = UserIdentity if kind == USER else GroupIdentity
        related = "user" if kind == USER else "group"
        identity = (
            self._objects(model)
            .select_for_update()
            .select_related(related)
            .filter(scim_id=record_id)
            .first()
        )
        if identity is None:
            raise NotFoundException(detail=f"{kind} {record_id} not found")
        return identity

    def _check_user_name(self, user_name: str, own_pk: int | None) -> None:
        """userName is unique in any letter case, against every account.

        Between SCIM's own users the unique `user_name_key` decides, even in
        a race; `iexact` also finds the project's other accounts.
        """
        taken = self._objects(self.user_model).filter(
            **{f"{self.user_name_field}__iexact": user_name}
        )
        if own_pk is not None:
            taken = taken.exclude(pk=own_pk)
        if taken.exists():
            raise UniquenessException(detail=f"userName {user_name!r} is already taken")

    def _write_identity(
        self,
        identity: UserIdentity | GroupIdentity,
        now: datetime,
        user_name: str | None = None,
    ) -> None:
        identity.version += 1
        identity.last_modified = now
        _unique(lambda: identity.save(using=self.using), f"userName {user_name!r}")

    def _member_pks(self, group_pk: int, members: list[dict[str, Any]]) -> set[int]:
        """The primary keys of the users a member list names; refuses the rest."""
        for member in members:
            if member.get("type", USER) != USER:
                raise InvalidValueException(
                    detail="auth.Group holds users only, not groups"
                )
        ids = {member["value"] for member in members}
        found = dict(
            self._objects(UserIdentity)
            .filter(scim_id__in=ids)
            .values_list("scim_id", "user_id")
        )
        missing = ids - found.keys()
        if missing:
            raise InvalidValueException(
                detail=f"member {sorted(missing)[0]!r} is not an existing User"
            )
        return set(found.values())

    def _join(self, group_pk: int, user_pks: set[int], now: datetime) -> None:
        self._objects(self.memberships).bulk_create(
            self.memberships(group_id=group_pk, **{f"{self.member}_id": pk})
            for pk in user_pks
        )
        self._touch_users(user_pks, now)  # their `groups` changed

    def _leave(self, group_pk: int, user_pks: set[int], now: datetime) -> None:
        if user_pks:
            self._objects(self.memberships).filter(
                group_id=group_pk, **{f"{self.member}_id__in": user_pks}
            ).delete()
            self._touch_users(user_pks, now)

    def _touch_users(self, user_pks: Iterable[int], now: datetime) -> None:
        self._objects(UserIdentity).filter(user_id__in=list(user_pks)).update(
            version=F("version") + 1, last_modified=now
        )

    def _touch_groups_of(self, user_pks: list[int], now: datetime) -> None:
        """New versions for the groups that list these users."""
        groups = self._objects(self.memberships).filter(
            **{f"{self.member}_id__in": user_pks}
        )
        self._objects(GroupIdentity).filter(
            group_id__in=groups.values("group_id")
        ).update(version=F("version") + 1, last_modified=now)

    def _records(
        self, kind: str, rows: QuerySet, members: bool = True
    ) -> list[dict[str, Any]]:
        if kind == USER:
            return self._user_records(rows)
        return self._group_records(rows, members)

    def _user_records(self, rows: QuerySet) -> list[dict[str, Any]]:
        users = list(rows.select_related("scim_identity"))
        groups: dict[int, list[dict[str, Any]]] = {}
        memberships = (
            self._objects(self.memberships)
            .filter(
                **{f"{self.member}_id__in": [user.pk for user in users]},
                group__scim_identity__isnull=False,
            )
            .order_by("group__name", "group__scim_identity__scim_id")
            .values_list(
                f"{self.member}_id", "group__scim_identity__scim_id", "group__name"
            )
        )
        for user_pk, group_id, name in memberships:
            groups.setdefault(user_pk, []).append({"value": group_id, "display": name})
        records = []
        for user in users:
            identity = user.scim_identity
            attributes = identity.attributes
            record = {name: attributes.get(name) for name in USER_ATTRIBUTES}
            record.update(
                id=identity.scim_id,
                version=identity.version,
                created=identity.created,
                last_modified=identity.last_modified,
                position=user.pk,
                user_name=getattr(user, self.user_name_field),
                external_id=identity.external_id,
                given_name=user.first_name or None,
                family_name=user.last_name or None,
                active=user.is_active,
                emails=attributes.get("emails") or [],
                phone_numbers=attributes.get("phone_numbers") or [],
                extra=attributes.get("extra") or {},
                groups=groups.get(user.pk, []),
            )
            if user.has_usable_password():
                record["password_hash"] = user.password
            records.append(record)
        return records

    def _group_records(
        self, rows: QuerySet, members: bool = True
    ) -> list[dict[str, Any]]:
        groups = list(rows.select_related("scim_identity"))
        by_group: dict[int, list[dict[str, Any]]] = {group.pk: [] for group in groups}
        if members:
            memberships = (
                self._objects(self.memberships)
                .filter(
                    group_id__in=list(by_group),
                    **{f"{self.member}__scim_identity__isnull": False},
                )
                .order_by("pk")  # the order members joined in
                .values_list(
                    "group_id",
                    f"{self.member}__scim_identity__scim_id",
                    f"{self.member}__{self.user_name_field}",
                    f"{self.member}__scim_identity__attributes__display_name",
                )
            )
            for group_pk, user_id, user_name, display_name in memberships:
                by_group[group_pk].append(
                    {
                        "value": user_id,
                        "type": USER,
                        "display": display_name or user_name,
                    }
                )
        records = []
        for group in groups:
            identity = group.scim_identity
            record = {
                "id": identity.scim_id,
                "version": identity.version,
                "created": identity.created,
                "last_modified": identity.last_modified,
                "position": group.pk,
                "display_name": group.name,
                "external_id": identity.external_id,
                "extra": identity.attributes.get("extra") or {},
            }
            if members:
                record["members"] = by_group[group.pk]
            records.append(record)
        return records


def member_field(user_model: type[Model]) -> str:
    """The name of the key of user.groups' rows to the user model."""
    return user_model.groups.field.m2m_field_name()


def _validate(model: type[Model], field_name: str, value: Any) -> None:
    """Django's own rules for a field (length, username characters, email): 400."""
    try:
        model._meta.get_field(field_name).run_validators(value)
    except ValidationError as error:
        raise InvalidValueException(
            detail=f"{model.__name__}.{field_name}: {' '.join(error.messages)}"
        ) from None


def _unique(write: Callable[[], Any], what: str) -> Any:
    """Run a write; a value a unique constraint refuses is a 409, never a 500."""
    try:
        return write()
    except IntegrityError:
        raise UniquenessException(detail=f"{what} is already taken") from None


def _display(attributes: dict[str, Any], user: Model) -> str:
    """The name a group shows for a user: displayName, else userName."""
    return attributes.get("display_name") or user.get_username()


def _emails_of(email: str) -> list[dict[str, Any]]:
    """An adopted user's email, as the SCIM list the identity row keeps."""
    return [{"value": email, "type": "work", "primary": True}] if email else []


def _page(rows: QuerySet, start: int, stop: int | None) -> QuerySet:
    """rows[start:stop], never a negative LIMIT."""
    return rows[start:] if stop is None else rows[start : max(start, stop)]


def in_creation_order(rows: QuerySet, past: int | None, backwards: bool) -> QuerySet:
    """A keyset on the primary key, which grows with every user or group created."""
    if past is not None:
        rows = rows.filter(pk__lt=past) if backwards else rows.filter(pk__gt=past)
    return rows.order_by("-pk" if backwards else "pk")


# --8<-- [end:auth-helpers]


# --8<-- [start:auth-signals]
# The project changes its users too: in the admin, a profile form, a login.
# Django's signals tell this storage, so that the version (the ETag clients
# compare, and the key of shared/representations.py's cache) moves on
# whenever what SCIM shows of a user or group changes. QuerySet.update() and
# bulk_update() send no signal: after those, call `touch_users(pks)`.


def connect_signals(user_model: type[Model]) -> None:
    """Listen to saves of users and groups, and to changes of user.groups."""
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="scim-user")
    post_save.connect(_group_saved, sender=Group, dispatch_uid="scim-group")
    m2m_changed.connect(
        _memberships_changed,
        sender=user_model.groups.through,
        dispatch_uid="scim-memberships",
    )


def _user_saved(
    sender: type[Model], instance: Model, using: str, update_fields: Any, **kwargs: Any
) -> None:
    if getattr(instance, "scim_writing", False):
        return
    shown = {
        sender.USERNAME_FIELD,
        sender.get_email_field_name(),
        *USER_COLUMNS.values(),
    }
    if update_fields is not None and not shown & set(update_fields):
        return  # a login's last_login, say: nothing SCIM shows
    # A username the project changed is still unique in any letter case.
    UserIdentity.objects.using(using).filter(user_id=instance.pk).update(
        version=F("version") + 1,
        last_modified=timezone.now(),
        user_name_key=fold(instance.get_username()),
    )


def _group_saved(instance: Group, using: str, **kwargs: Any) -> None:
    if not getattr(instance, "scim_writing", False):
        touch(GroupIdentity, [instance.pk], using)


def _memberships_changed(
    instance: Model, action: str, reverse: bool, pk_set: Any, using: str, **kwargs: Any
) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if action == "pre_clear":  # which ones, before they are gone
        related = instance.groups if not reverse else instance.user_set
        pk_set = set(related.values_list("pk", flat=True))
    users, groups = ([instance.pk], pk_set) if not reverse else (pk_set, [instance.pk])
    touch(UserIdentity, users, using)
    touch(GroupIdentity, groups, using)


def touch(model: type[Model], pks: Iterable[int], using: str) -> None:
    """New versions for the identities of these users or groups."""
    model.objects.using(using).filter(pk__in=list(pks)).update(
        version=F("version") + 1, last_modified=timezone.now()
    )


def touch_users(pks: Iterable[int], using: str = DEFAULT_DB_ALIAS) -> None:
    """After a QuerySet.update() of users: their versions move on."""
    touch(UserIdentity, pks, using)


# --8<-- [end:auth-signals]


# --8<-- [start:auth-layout]
# Where the values a filter plan names live in these models. The plan's
# `Column`s are named as SqlStorage's columns; here each is a field of the
# user model, of auth.Group, or a key of the identity row's `attributes`.
IDENTITY = "scim_identity__"
ATTRIBUTES = F(IDENTITY + "attributes")
TEXT = TextField()
EMPTY = Value("", output_field=TEXT)


def _in_attributes(path: tuple[str, ...], kind: type) -> Expression:
    return JsonValue(path, kind, ATTRIBUTES)


USER_TARGETS: dict[str, Callable[[type], Expression]] = {
    "id": lambda kind: F(IDENTITY + "scim_id"),
    "user_name_key": lambda kind: F(IDENTITY + "user_name_key"),  # folded
    "external_id": lambda kind: F(IDENTITY + "external_id"),
    "created": lambda kind: F(IDENTITY + "created"),
    "last_modified": lambda kind: F(IDENTITY + "last_modified"),
    # Django keeps "" for no name; SCIM has no value (`pr`, `eq null`).
    "given_name": lambda kind: NullIf(F("first_name"), EMPTY, output_field=TEXT),
    "family_name": lambda kind: NullIf(F("last_name"), EMPTY, output_field=TEXT),
    "active": lambda kind: F("is_active"),
}
GROUP_TARGETS: dict[str, Callable[[type], Expression]] = {
    "id": lambda kind: F(IDENTITY + "scim_id"),
    "display_name": lambda kind: F("name"),
    "external_id": lambda kind: F(IDENTITY + "external_id"),
    "created": lambda kind: F(IDENTITY + "created"),
    "last_modified": lambda kind: F(IDENTITY + "last_modified"),
}


def _targets(columns: dict[str, Callable[[type], Expression]]) -> Scope:
    def value(target: Column | JsonKey) -> Expression:
        if isinstance(target, JsonKey):  # the rest of what a client sent
            return _in_attributes(("extra", *target.path), target.type)
        if target.name in columns:
            return columns[target.name](target.type)
        return _in_attributes((target.name,), target.type)  # displayName, title...

    return value


TARGETS = {USER: _targets(USER_TARGETS), GROUP: _targets(GROUP_TARGETS)}


def _entry_value(target: Column | JsonKey) -> Expression:
    """A sub-attribute of one entry of a JSON array (emails[type eq "work"])."""
    path = (target.name,) if isinstance(target, Column) else target.path
    return JsonValue(path, target.type)


def user_collections(collection: Rows | JsonArray, holds: Callable[[Scope], Q]) -> Q:
    """A user's multi-valued attributes: JSON arrays, and its auth.Group rows."""
    member = member_field(get_user_model())
    if collection == Rows("groups"):
        memberships = get_user_model().groups.through._default_manager.filter(
            **{f"{member}_id": OuterRef("pk")}, group__scim_identity__isnull=False
        )
        columns = {
            "value": F("group__scim_identity__scim_id"),
            "display": F("group__name"),
        }
        return Q(Exists(memberships.filter(holds(_columns(columns)))))
    if isinstance(collection, Rows):  # emails, phone_numbers: kept as sent
        array = _in_attributes((collection.name,), list)
        return Q(JsonSome(array, holds(_entry_value)))
    array = _in_attributes(("extra", *collection.path), list)
    return Q(JsonSome(array, holds(_entry_value)))


def group_collections(collection: Rows | JsonArray, holds: Callable[[Scope], Q]) -> Q:
    """A group's members (the rows of user.groups), and JSON arrays of its own."""
    if collection == Rows("members"):
        user_model = get_user_model()
        member = member_field(user_model)
        memberships = user_model.groups.through._default_manager.filter(
            group_id=OuterRef("pk"), **{f"{member}__scim_identity__isnull": False}
        )
        display = JsonValue(
            ("display_name",), str, F(member + "__" + IDENTITY + "attributes")
        )
        columns = {
            "value": F(member + "__" + IDENTITY + "scim_id"),
            "type": Value(USER, output_field=TextField()),
            "display": Coalesce(
                NullIf(display, EMPTY),
                F(member + "__" + user_model.USERNAME_FIELD),
                output_field=TextField(),
            ),
        }
        return Q(Exists(memberships.filter(holds(_columns(columns)))))
    array = _in_attributes(("extra", *collection.path), list)
    return Q(JsonSome(array, holds(_entry_value)))


def _columns(columns: dict[str, Expression]) -> Scope:
    return lambda target: columns.get(target.name, Value(None))


COLLECTIONS = {USER: user_collections, GROUP: group_collections}


def sort_value(kind: str, key: SortKey) -> Expression:
    """What records sort by; emails and phone numbers, kept as JSON, sort no one."""
    if key.rows is not None:
        raise refuse(f"sorting by {key.rows.name} in the auth.User recipe")
    value = TARGETS[kind](key.target)
    if key.fold:
        value = Fold(value)
    return CodePoints(value) if key.target.type is str else value


# --8<-- [end:auth-layout]
