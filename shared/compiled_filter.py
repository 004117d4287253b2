"""A SCIM filter compiled once into a Python predicate, for scans in memory.

`ScimFilter.match` resolves every attribute path and checks every operator
again for each resource it is given. A scan asks the same question of every
record in the store, so this module does that work once: a scim2-models
`FilterVisitor` turns the filter into closures that only read and compare.

Only the public API of scim2-models is used, so this file can be copied as
is. The filter, bound to the model, resolves its own attribute paths
(`ScimFilter.resolve`, `resolve_comparison`); values are put in the form
comparisons use by `AttributeBinding.comparable`, under the `ScimPolicy` in
force. The answers are those of `ScimFilter.match`, which the tests check
filter by filter.
"""

import operator
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from inspect import isclass
from typing import Any

from scim2_models import BaseModel
from scim2_models import Extension
from scim2_models import ScimFilter
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
from scim2_models.path import attribute_host
from scim2_models.path import coerce_value

Predicate = Callable[[Any], bool]


def _never(_: Any) -> bool:
    return False


@lru_cache(maxsize=256)
def compile_filter(scim_filter: ScimFilter, model: type) -> Predicate:
    """The predicate `resource -> bool` of a filter, for resources of `model`.

    Binding the filter to `model` checks it as `match` would: an operator the
    attribute cannot take, or a value it cannot hold, raises
    InvalidFilterException here rather than on the first record.
    """
    bound = _bind(scim_filter, model)
    return _Compiler(bound).visit(bound.ast)


def _bind(scim_filter: ScimFilter, model: type) -> ScimFilter:
    """The filter bound to `model`, which resolves attribute paths against it."""
    if type(scim_filter) is ScimFilter[model]:  # already bound: already checked
        return scim_filter
    return ScimFilter[model](scim_filter.ast)


class _Compiler(FilterVisitor[Predicate]):
    """Compile the nodes of `bound.ast` against the model `bound` is bound to.

    Inside a value selection (`emails[type eq "work"]`), the inner filter is
    bound to the entry type (`Email`) and `urn_prefix` is the URN of the
    selected attribute, as `match` does it.
    """

    def __init__(self, bound: ScimFilter, urn_prefix: str = "") -> None:
        self.bound = bound
        self.model = bound.model
        self.urn_prefix = urn_prefix

    def _resolve(
        self, attr_path: AttrPath, for_comparison: bool
    ) -> AttributeBinding | None:
        # strict=False: another resource type's attribute is false, not an
        # error (RFC 7644 §3.4.2.1), as in `match`.
        resolve = (
            self.bound.resolve_comparison if for_comparison else self.bound.resolve
        )
        resolved = resolve(attr_path, strict=False)
        if resolved is not None and self.urn_prefix:
            # An entry type has no schema: the attribute's full URN (the one a
            # policy's comparison_key is given) starts with the selected one.
            resolved = replace(resolved, urn=f"{self.urn_prefix}.{resolved.urn}")
        return resolved

    def visit_comparison(self, node: Comparison) -> Predicate:
        resolved = self._resolve(node.attr_path, for_comparison=True)
        if resolved is None:  # another resource type's attribute (RFC 7644 §3.4.2.1)
            return _never
        expected = coerce_value(resolved, node.value, node.op)
        op, test = node.op, _STRING_TESTS.get(node.op)
        if test is not None and isinstance(expected, str):
            return _string_test(resolved, expected, test)
        read = _reader(resolved)
        # On a multi-valued attribute, `ne` holds when no value equals the
        # operand, and every other operator when one value satisfies it.
        every = any if op != CompareOperator.ne else all

        def compare(resource: Any) -> bool:
            actual = read(resource)
            if isinstance(actual, list):
                return every(
                    compare_values(item, expected, op, resolved) for item in actual
                )
            return compare_values(actual, expected, op, resolved)

        return compare

    def visit_present(self, node: Present) -> Predicate:
        resolved = self._resolve(node.attr_path, for_comparison=False)
        if resolved is None:
            return _never
        read, per_item = _reader(resolved), resolved.sub_field_name is not None

        def present(resource: Any) -> bool:
            actual = read(resource)
            if per_item and isinstance(actual, list):
                return any(is_present(item) for item in actual)
            return is_present(actual)

        return present

    def visit_not(self, node: Not) -> Predicate:
        inner = self.visit(node.expr)
        return lambda resource: not inner(resource)

    def visit_logical_expr(self, node: LogicalExpr) -> Predicate:
        terms = [self.visit(term) for term in node.terms]
        if node.op == LogicalOperator.and_:
            return lambda resource: all(term(resource) for term in terms)
        return lambda resource: any(term(resource) for term in terms)

    def visit_value_path(self, node: ValuePath) -> Predicate:
        resolved = self._resolve(node.attr_path, for_comparison=False)
        if resolved is None:
            return _never
        entry_type = resolved.field_type
        if not (isclass(entry_type) and issubclass(entry_type, BaseModel)):
            # A list of plain values (schemas[value eq ...]): rare, so left to
            # scim2-models itself. (A selection only ever stands at the top of
            # a filter: one nested in another is not SCIM, errata 7122.)
            return ScimFilter[self.model](node).match
        # The inner filter is about one entry: compiled once for the entry type.
        inner = _Compiler(ScimFilter[entry_type](node.val_filter), resolved.urn)
        matches = inner.visit(node.val_filter)
        field_name = resolved.field_name

        def select(resource: Any) -> bool:
            host = attribute_host(resource, resolved)
            values = getattr(host, field_name, None) if host is not None else None
            return isinstance(values, list) and any(
                matches(item) for item in values if item is not None
            )

        return select


_STRING_TESTS: dict[CompareOperator, Callable[[str, str], bool]] = {
    CompareOperator.co: lambda value, operand: operand in value,
    CompareOperator.sw: str.startswith,
    CompareOperator.ew: str.endswith,
}

_ORDER_TESTS: dict[CompareOperator, Callable[[Any, Any], Any]] = {
    CompareOperator.eq: operator.eq,
    CompareOperator.ne: operator.ne,
    CompareOperator.gt: operator.gt,
    CompareOperator.ge: operator.ge,
    CompareOperator.lt: operator.lt,
    CompareOperator.le: operator.le,
}


def compare_values(
    actual: Any, expected: Any, op: CompareOperator, resolved: AttributeBinding
) -> bool:
    """`actual op expected` for one value of an attribute, as `match` compares.

    - null: `eq null` holds on a missing value, `ne null` on a present one,
      and every other operator is false when either side is missing;
    - both sides are compared in their `comparable` form, which for strings is
      the policy's `comparison_key` (NFC, and lower case unless caseExact);
      a string the policy cannot prepare equals nothing, so only `ne` holds;
    - co, sw and ew need two strings; values of types that do not compare
      (a string against a number) match nothing rather than raise.
    """
    if actual is None or expected is None:
        if op == CompareOperator.eq:
            return actual is None and expected is None
        if op == CompareOperator.ne:
            return (actual is None) != (expected is None)
        return False
    try:
        left = resolved.comparable(actual)
        right = resolved.comparable(expected)
    except ValueError:
        return op == CompareOperator.ne
    string_test = _STRING_TESTS.get(op)
    if string_test is not None:
        return (
            isinstance(left, str)
            and isinstance(right, str)
            and string_test(left, right)
        )
    try:
        return bool(_ORDER_TESTS[op](left, right))
    except TypeError:
        return False


def is_present(value: Any) -> bool:
    """RFC 7644 §3.4.2.2 `pr`: "non-empty or non-null", a non-empty node if complex.

    `False` and `0` are values, so present; an empty string or list is not,
    nor a complex value whose sub-attributes are all absent.
    """
    if value is None:
        return False
    if isinstance(value, str | bytes):
        return len(value) > 0
    if isinstance(value, BaseModel):
        return any(
            is_present(getattr(value, name, None)) for name in type(value).model_fields
        )
    if isinstance(value, dict):
        return any(is_present(item) for item in value.values())
    if isinstance(value, list | tuple | set):
        return any(is_present(item) for item in value)
    return True


def _string_test(
    resolved: AttributeBinding, expected: str, test: Callable[[str, str], bool]
) -> Predicate:
    """co, sw and ew, the scans' usual operators, in fewer steps than `compare_values`.

    The same answers: both sides in their comparable form under the policy in
    force (prepared on each call, since that policy may change between calls),
    a value that is not a string, or that the policy cannot prepare, matching
    nothing, and one matching value enough on a multi-valued attribute. The
    value is read here rather than by `_reader`: a scan runs this per record.
    """
    comparable = resolved.comparable
    field_name, sub_field = resolved.field_name, resolved.sub_field_name
    on_extension = _on_extension(resolved)

    def compare(resource: Any) -> bool:
        host = attribute_host(resource, resolved) if on_extension else resource
        head = getattr(host, field_name, None) if host is not None else None
        entry_field = None  # what to read off each entry of a list (emails.value)
        if sub_field is not None:
            if isinstance(head, list):
                entry_field = sub_field
            elif head is not None:
                head = getattr(head, sub_field, None)
        if isinstance(head, str):  # userName, name.givenName: one value
            try:
                return test(comparable(head), comparable(expected))
            except ValueError:
                return False
        if not isinstance(head, list):
            return False
        operand = None  # prepared once, and only if there is a string to test
        for item in head:
            value = item if entry_field is None else getattr(item, entry_field, None)
            if not isinstance(value, str):
                continue
            try:
                if operand is None:
                    operand = comparable(expected)
            except ValueError:
                return False
            try:
                if test(comparable(value), operand):
                    return True
            except ValueError:
                continue
        return False

    return compare


def _on_extension(resolved: AttributeBinding) -> bool:
    """Whether the attribute lives on an extension, off the resource itself."""
    return isclass(resolved.model) and issubclass(resolved.model, Extension)


def _reader(resolved: AttributeBinding) -> Callable[[Any], Any]:
    """How to read the compared value off a resource (a list for multi-valued)."""
    field_name, sub_field = resolved.field_name, resolved.sub_field_name
    on_extension = _on_extension(resolved)

    def read(resource: Any) -> Any:
        host = attribute_host(resource, resolved) if on_extension else resource
        if host is None:
            return None
        head = getattr(host, field_name, None)
        if sub_field is None:
            return head
        if isinstance(head, list):
            return [getattr(item, sub_field, None) for item in head if item is not None]
        return None if head is None else getattr(head, sub_field, None)

    return read
