"""One plan of a SCIM filter or sort, in storage terms, for every database backend.

A SCIM filter names attributes; a database has columns, child rows and JSON.
This module does the SCIM half of the translation once, for SQLAlchemy
(shared/sql_storage.py) and for the Django ORM recipe alike: it resolves each
attribute path with scim2-models, decides where the value lives in the
tables both keep (`LAYOUT`), and turns the SCIM semantics (absent values,
`ne`, `pr` on complex attributes, multi-valued attributes, case folding) into
a small tree of conditions (`Plan`). Each backend then only writes that tree
in its own query language, and so gives the answers `ScimFilter.match`
gives in memory.

What no backend answers is refused here, for every backend alike, memory
included, with InvalidFilterException and the reason: see `REFUSED`.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from inspect import isclass
from typing import Any

from scim2_models import BaseModel
from scim2_models import Extension
from scim2_models import Group
from scim2_models import InvalidFilterException
from scim2_models import ScimFilter
from scim2_models import SearchRequest
from scim2_models.path import AttributeBinding
from scim2_models.path import AttrPath
from scim2_models.path import CompareOperator
from scim2_models.path import Comparison
from scim2_models.path import FilterVisitor
from scim2_models.path import LogicalExpr
from scim2_models.path import LogicalOperator
from scim2_models.path import Not
from scim2_models.path import Present
from scim2_models.path import ValuePath
from scim2_models.path import coerce_value

from shared.compiled_filter import compare_values
from shared.compiled_filter import is_present
from shared.discovery import UserResource
from shared.records import GROUP
from shared.records import USER

# --8<-- [start:plan]
# Where a compared value lives.


@dataclass(frozen=True)
class Column:
    """A column of the resource's row, or of a collection entry's row."""

    name: str
    type: type  # str, bool, int, float or datetime


@dataclass(frozen=True)
class JsonKey:
    """A value in `extra`, or in one element of a JSON array; () is the element."""

    path: tuple[str, ...]
    type: type


@dataclass(frozen=True)
class Constant:
    """A value every record of the type has: meta.resourceType, groups.type."""

    value: Any


Target = Column | JsonKey | Constant


@dataclass(frozen=True)
class Rows:
    """A multi-valued attribute kept as rows: emails, phone_numbers, members, groups."""

    name: str


@dataclass(frozen=True)
class JsonArray:
    """A multi-valued attribute kept as a JSON array in `extra`: addresses, roles..."""

    path: tuple[str, ...]


# The conditions. Compare is false when the target is NULL, as in SQL.


@dataclass(frozen=True)
class Compare:
    """`target op value`: op is never `ne`, value never None; strings already
    in their comparable form, and `fold` says to fold the target alike."""

    target: Target
    op: CompareOperator
    value: Any
    fold: bool


@dataclass(frozen=True)
class IsNull:
    target: Target


@dataclass(frozen=True)
class IsPresent:
    """Not NULL and, for a string, not empty (RFC 7644 §3.4.2.2)."""

    target: Target


@dataclass(frozen=True)
class Some:
    """One entry of the collection satisfies `where`, whose targets are its own."""

    collection: Rows | JsonArray
    where: "Plan"


@dataclass(frozen=True)
class AllOf:
    terms: tuple["Plan", ...]


@dataclass(frozen=True)
class AnyOf:
    terms: tuple["Plan", ...]


@dataclass(frozen=True)
class Negation:
    term: "Plan"


@dataclass(frozen=True)
class Truth:
    value: bool


Plan = Compare | IsNull | IsPresent | Some | AllOf | AnyOf | Negation | Truth


@dataclass(frozen=True)
class SortKey:
    """What records sort by; with `rows`, the primary (else first) entry's value."""

    target: Target
    fold: bool
    rows: Rows | None = None


# --8<-- [end:plan]

# --8<-- [start:layout]
# (attribute, sub-attribute) -> column, in the Python names scim2-models binds.
COLUMNS = {
    USER: {
        ("id", None): "id",
        # Kept folded and indexed: `userName eq` is one index lookup.
        ("user_name", None): "user_name_key",
        ("external_id", None): "external_id",
        ("display_name", None): "display_name",
        ("active", None): "active",
        ("title", None): "title",
        ("name", "given_name"): "given_name",
        ("name", "family_name"): "family_name",
        ("department", None): "department",
        ("employee_number", None): "employee_number",
        ("manager", "value"): "manager_id",
        ("meta", "created"): "created",
        ("meta", "last_modified"): "last_modified",
    },
    GROUP: {
        ("id", None): "id",
        ("external_id", None): "external_id",
        ("display_name", None): "display_name",
        ("meta", "created"): "created",
        ("meta", "last_modified"): "last_modified",
    },
}
FOLDED = {"user_name_key"}  # columns that hold the comparable form already
# Multi-valued attributes kept as rows, and what each row has.
ROWS = {
    USER: {"emails", "phone_numbers", "groups"},
    GROUP: {"members"},
}
ROW_COLUMNS = {"value", "type", "primary", "display"}
# What the storage derives rather than keeps: a user's groups are direct
# memberships; the mapping keeps only a manager's id, and never a password.
CONSTANTS = {
    ("meta", "resource_type"): None,  # the resource type itself
    ("groups", "type"): "direct",
    ("manager", "display_name"): None,
    ("password", None): None,
}
# Why some attributes are not filtered or sorted on, by any backend.
REFUSED = {
    ("meta", "location"): "meta.location depends on the URL SCIM is mounted at",
    ("meta", "version"): "meta.version is the ETag: use If-None-Match",
    ("schemas", None): "schemas is computed for each response",
    ("members", "ref"): "$ref depends on the URL SCIM is mounted at",
    ("groups", "ref"): "$ref depends on the URL SCIM is mounted at",
    ("manager", "ref"): "$ref depends on the URL SCIM is mounted at",
}
# --8<-- [end:layout]


def model_of(kind: str) -> type[BaseModel]:
    return UserResource if kind == USER else Group


def refuse(reason: str) -> InvalidFilterException:
    return InvalidFilterException(detail=f"Not supported: {reason}")


# --8<-- [start:plan-filter]
@lru_cache(maxsize=512)
def plan_filter(kind: str, scim_filter: ScimFilter) -> Plan:
    """The plan of a filter on records of a kind; raises InvalidFilterException."""
    bound = ScimFilter[model_of(kind)](scim_filter.ast)
    return _Planner(kind, bound).visit(bound.ast)


def plan_sort(kind: str, search: SearchRequest) -> SortKey | None:
    """What records of a kind sort by, or None to keep their stable order."""
    if search.sort_by is None:
        return None
    binding = search.sort_binding(model_of(kind))
    if binding is None:  # another type's attribute: no value, stable order
        return None
    head = (binding.field_name, binding.sub_field_name)
    _check(binding, head)
    folds = _python_type(binding) is str and not binding.case_exact
    if binding.field_name in ("emails", "phone_numbers"):
        sub = binding.sub_field_name or "value"
        return SortKey(
            Column(sub, _python_type(binding)), folds, Rows(binding.field_name)
        )
    if binding.is_multivalued:
        raise refuse(f"sorting by the multi-valued {binding.urn}")
    target = _Planner(kind, None).locate(binding)
    if isinstance(target, Constant):  # the same for every record
        return None
    return SortKey(target, folds and not _is_folded(target))


def plan_search(kind: str, search: SearchRequest) -> None:
    """Refuse, before any work, a filter or sort no backend answers."""
    if search.filter is not None:
        plan_filter(kind, search.filter)
    plan_sort(kind, search)


# --8<-- [end:plan-filter]


# --8<-- [start:planner]
class _Planner(FilterVisitor[Plan]):
    """Plan the nodes of a filter bound to the model of `kind`.

    Inside a value selection (`emails[type eq "work"]`), the inner filter is
    bound to the entry type, and `entry` is the collection it selects in, and
    `entry_field` that collection's attribute.
    """

    def __init__(
        self,
        kind: str,
        bound: ScimFilter | None,
        entry: "Rows | JsonArray | None" = None,
        entry_field: str = "",
    ) -> None:
        self.kind = kind
        self.bound = bound
        self.entry = entry
        self.entry_field = entry_field

    def visit_logical_expr(self, node: LogicalExpr) -> Plan:
        terms = tuple(self.visit(term) for term in node.terms)
        return AllOf(terms) if node.op == LogicalOperator.and_ else AnyOf(terms)

    def visit_not(self, node: Not) -> Plan:
        return Negation(self.visit(node.expr))

    def visit_present(self, node: Present) -> Plan:
        binding = self._resolve(node.attr_path, comparison=False)
        if binding is None:
            return Truth(False)
        if self.entry is not None:  # emails[primary pr]
            return _is_present(self._inner_target(binding))
        collection = self._collection(binding)
        if collection is not None:
            if binding.sub_field_name is None:  # emails pr: a non-empty entry
                where = self._any_present(binding.field_name, binding.field_type)
            else:
                where = _is_present(self._entry_target(binding))
            return Some(collection, where)
        if binding.sub_field_name is None and _is_complex(binding.field_type):
            # name pr: one of its sub-attributes is present
            attr, uri = node.attr_path.attr, node.attr_path.uri
            return AnyOf(
                tuple(
                    self.visit_present(
                        Present(AttrPath(attr, _alias(binding.field_type, name), uri))
                    )
                    for name in binding.field_type.model_fields
                    if (binding.field_name, name) not in REFUSED
                )
            )
        return _is_present(self.locate(binding))

    def visit_comparison(self, node: Comparison) -> Plan:
        binding = self._resolve(node.attr_path, comparison=True)
        if binding is None:
            return Truth(False)
        if binding.sub_field_name is None and _is_complex(binding.field_type):
            # name eq "x", addresses co "x": no value of its own to compare.
            raise refuse(
                f"comparing {binding.urn} as a whole: compare one of its sub-attributes"
            )
        expected = coerce_value(binding, node.value, node.op)
        if self.entry is not None:  # emails[type eq "work"]
            return _compare(self._inner_target(binding), node.op, expected, binding)
        collection = self._collection(binding)
        if collection is None:
            return _compare(self.locate(binding), node.op, expected, binding)
        target = self._entry_target(binding)
        if expected is None and node.op in (CompareOperator.eq, CompareOperator.ne):
            # Without the attribute, a resource has one null value; with it,
            # one value per entry (null when the entry has no such sub-attribute).
            absent = Negation(Some(collection, Truth(True)))
            some_null = Some(collection, _is_null(target))
            if node.op == CompareOperator.eq:
                return AnyOf((absent, some_null))
            return AllOf((Negation(absent), Negation(some_null)))
        if node.op == CompareOperator.ne:  # no entry equals the operand
            equal = _compare(target, CompareOperator.eq, expected, binding)
            return Negation(Some(collection, equal))
        return Some(collection, _compare(target, node.op, expected, binding))

    def visit_value_path(self, node: ValuePath) -> Plan:
        binding = self._resolve(node.attr_path, comparison=False)
        if binding is None:
            return Truth(False)
        collection = self._collection(binding)
        if collection is None or not _is_complex(binding.field_type):
            raise refuse(f"selecting values of {binding.urn}")
        inner = ScimFilter[binding.field_type](node.val_filter)
        planner = _Planner(self.kind, inner, collection, binding.field_name)
        return Some(collection, planner.visit(node.val_filter))

    def _resolve(
        self, attr_path: AttrPath, comparison: bool
    ) -> AttributeBinding | None:
        # strict=False: another resource type's attribute is false, not an
        # error (RFC 7644 §3.4.2.1), as in `ScimFilter.match`.
        resolve = self.bound.resolve_comparison if comparison else self.bound.resolve
        return resolve(attr_path, strict=False)

    # Where values live.

    def locate(self, binding: AttributeBinding) -> Target:
        """Where a single value lives: a column, a constant, or JSON in `extra`."""
        head = (binding.field_name, binding.sub_field_name)
        _check(binding, head)
        if head in COLUMNS[self.kind]:
            return Column(COLUMNS[self.kind][head], _python_type(binding))
        if head == ("meta", "resource_type"):
            return Constant(self.kind)
        if head in CONSTANTS:
            return Constant(CONSTANTS[head])
        kind = _python_type(binding)
        if kind is datetime:
            raise refuse(f"{binding.urn}, a date kept in JSON")
        return JsonKey(json_path(binding), kind)

    def _collection(self, binding: AttributeBinding) -> "Rows | JsonArray | None":
        if not binding.is_multivalued:
            return None
        _check(binding, (binding.field_name, binding.sub_field_name))
        if binding.field_name in ROWS[self.kind]:
            return Rows(binding.field_name)
        path = json_path(binding)
        return JsonArray(path[:-1] if binding.sub_field_name else path)

    def _entry_target(self, binding: AttributeBinding) -> Target:
        """`emails.value`: where the sub-attribute lives in one entry."""
        if binding.sub_field_name is None:  # a list of plain values
            return JsonKey((), _python_type(binding))
        return self._entry_value(
            binding.field_name,
            binding.field_type,
            binding.sub_field_name,
            _python_type(binding),
        )

    def _inner_target(self, binding: AttributeBinding) -> Target:
        """`type` in emails[type eq "work"]: bound to the entry type itself."""
        _check(binding, (self.entry_field, binding.field_name))
        return self._entry_value(
            self.entry_field, binding.model, binding.field_name, _python_type(binding)
        )

    def _entry_value(self, field: str, entry_type: Any, sub: str, kind: type) -> Target:
        if field in ROWS[self.kind]:
            if (field, sub) in CONSTANTS:
                return Constant(CONSTANTS[(field, sub)])
            return Column(sub, kind) if sub in ROW_COLUMNS else Constant(None)
        if kind is datetime:
            raise refuse(f"{field}.{sub}, a date kept in JSON")
        return JsonKey((_alias(entry_type, sub),), kind)

    def _any_present(self, field: str, entry_type: Any) -> Plan:
        """`emails pr`: an entry with at least one sub-attribute present."""
        if not _is_complex(entry_type):
            return _is_present(JsonKey((), str))
        return AnyOf(
            tuple(
                _is_present(
                    self._entry_value(
                        field, entry_type, name, _root_type(entry_type, name)
                    )
                )
                for name in entry_type.model_fields
                if (field, name) not in REFUSED and name != "ref"
            )
        )


def _root_type(model: type[BaseModel], field_name: str) -> type:
    return _known_type(model.get_field_root_type(field_name))


def _python_type(binding: AttributeBinding) -> type:
    return _known_type(binding.target_type)


def _known_type(target: Any) -> type:
    """The type a backend stores a value as: bool, int, float, datetime, bytes, str."""
    if isclass(target):
        for known in (bool, int, float, datetime, bytes, str):
            if issubclass(target, known):
                return known
    return str


def _is_folded(target: Target) -> bool:
    return isinstance(target, Column) and target.name in FOLDED


def _alias(model: type[BaseModel], field_name: str) -> str:
    field = model.model_fields[field_name]
    return field.serialization_alias or field.alias or field_name


def json_path(binding: AttributeBinding) -> tuple[str, ...]:
    """The keys leading to an attribute inside `extra`, in SCIM's JSON spelling.

    The URN spells the attribute as the schema does, after the schema's URN
    (`...:2.0:User:name.givenName`); an extension's attributes are kept under
    its schema URN, as a resource dumps them.
    """
    names = tuple(binding.urn.rpartition(":")[2].split("."))
    if isclass(binding.model) and issubclass(binding.model, Extension):
        return (str(binding.model.__schema__), *names)
    return names


def _check(binding: AttributeBinding, head: tuple[str, str | None]) -> None:
    reason = REFUSED.get(head) or REFUSED.get((head[0], None))
    if reason:
        raise refuse(reason)
    if _python_type(binding) is bytes:
        raise refuse(f"{binding.urn}: binary values are compared by no backend")


def _is_complex(field_type: Any) -> bool:
    return isclass(field_type) and issubclass(field_type, BaseModel)


def _is_null(target: Target) -> Plan:
    if isinstance(target, Constant):
        return Truth(target.value is None)
    return IsNull(target)


def _is_present(target: Target) -> Plan:
    if isinstance(target, Constant):
        return Truth(is_present(target.value))
    return IsPresent(target)


def _compare(target: Target, op: CompareOperator, expected: Any, binding: Any) -> Plan:
    """One value against the operand, with the answers of `ScimFilter.match`.

    `eq null` holds on an absent value and `ne null` on a present one; `ne`
    holds where `eq` does not, absent values included; co, sw and ew need a
    string operand, and a value of another type (a date without a zone too)
    equals nothing; nor does a string the policy cannot prepare. The emitters
    then only ever compare values of one type.
    """
    if isinstance(target, Constant):
        return Truth(compare_values(target.value, expected, op, binding))
    if expected is None:
        if op == CompareOperator.eq:
            return IsNull(target)
        return Negation(IsNull(target)) if op == CompareOperator.ne else Truth(False)
    try:
        operand = binding.comparable(expected)
    except ValueError:
        return Truth(op == CompareOperator.ne)
    if isinstance(operand, datetime) and operand.tzinfo is None:
        # Stored dates are in UTC; one without a zone is no moment to compare.
        return Truth(op == CompareOperator.ne)
    text = isinstance(operand, str) and target.type is str
    if op in STRING_OPERATORS and not text:  # co "1" on a number: no match
        return Truth(False)
    if not _same_kind(target.type, operand):  # a string is never equal to 3
        return Truth(op == CompareOperator.ne)
    fold = text and not binding.case_exact
    fold = fold and not _is_folded(target)
    if op == CompareOperator.ne:
        return Negation(Compare(target, CompareOperator.eq, operand, fold))
    return Compare(target, op, operand, fold)


def _same_kind(kind: type, operand: Any) -> bool:
    """Whether Python compares values of `kind` with the operand at all."""
    if kind in (int, float):
        return isinstance(operand, int | float)
    return isinstance(operand, kind)


STRING_OPERATORS = (CompareOperator.co, CompareOperator.sw, CompareOperator.ew)


# --8<-- [end:planner]
