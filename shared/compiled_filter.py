"""A SCIM filter compiled once into a Python predicate, for scans in memory.

`ScimFilter.match` resolves every attribute path and checks every operator
again for each resource it is given. A scan asks the same question of every
record in the store, so this module does that work once: a scim2-models
`FilterVisitor` turns the filter into closures that only read and compare.
The comparisons are scim2-models' own (`_compare`, `_is_present`), so the
answers are those of `ScimFilter.match`, which the tests check filter by filter.
"""

from collections.abc import Callable
from functools import lru_cache
from inspect import isclass
from typing import Any

from scim2_models import BaseModel
from scim2_models import ScimFilter
from scim2_models.path import FilterVisitor
from scim2_models.path.expressions import CompareOperator
from scim2_models.path.expressions import Comparison
from scim2_models.path.expressions import LogicalExpr
from scim2_models.path.expressions import LogicalOperator
from scim2_models.path.expressions import Not
from scim2_models.path.expressions import Present
from scim2_models.path.expressions import ValuePath
from scim2_models.path.resolution import AttributeBinding
from scim2_models.path.resolution import _resolve_filter_path
from scim2_models.path.resolution import _validate_operator
from scim2_models.path.resolution import attribute_host
from scim2_models.path.resolution import coerce_value
from scim2_models.path.visitor import _compare
from scim2_models.path.visitor import _Evaluator
from scim2_models.path.visitor import _is_present
from scim2_models.policy import _effective_policy
from scim2_models.resources.resource import Extension

Predicate = Callable[[Any], bool]


def _never(_: Any) -> bool:
    return False


@lru_cache(maxsize=256)
def compile_filter(scim_filter: ScimFilter, model: type) -> Predicate:
    """The predicate `resource -> bool` of a filter, for resources of `model`."""
    return _Compiler(model).visit(scim_filter.ast)


class _Compiler(FilterVisitor[Predicate]):
    def __init__(self, model: type, urn_prefix: str = "") -> None:
        self.model = model
        self.urn_prefix = urn_prefix

    def _resolve(self, node: Any, for_comparison: bool) -> AttributeBinding | None:
        resolved = _resolve_filter_path(
            self.model, node.attr_path, strict=False, for_comparison=for_comparison
        )
        if resolved is not None and self.urn_prefix:
            resolved = resolved._nested_in(self.urn_prefix)
        return resolved

    def visit_comparison(self, node: Comparison) -> Predicate:
        resolved = self._resolve(node, for_comparison=True)
        if resolved is None:  # another resource type's attribute (RFC 7644 §3.4.2.1)
            return _never
        _validate_operator(resolved, node.op)
        expected = coerce_value(resolved, node.value, node.op)
        read, op = _reader(resolved), node.op
        test = _STRING_TESTS.get(op)
        if test is not None and isinstance(expected, str):
            return _string_test(read, resolved, expected, test)
        # On a multi-valued attribute, `ne` holds when no value equals the
        # operand, and every other operator when one value satisfies it.
        every = any if op != CompareOperator.ne else all

        def compare(resource: Any) -> bool:
            actual = read(resource)
            if isinstance(actual, list):
                return every(_compare(item, expected, op, resolved) for item in actual)
            return _compare(actual, expected, op, resolved)

        return compare

    def visit_present(self, node: Present) -> Predicate:
        resolved = self._resolve(node, for_comparison=False)
        if resolved is None:
            return _never
        read, per_item = _reader(resolved), resolved.sub_field_name is not None

        def present(resource: Any) -> bool:
            actual = read(resource)
            if per_item and isinstance(actual, list):
                return any(_is_present(item) for item in actual)
            return _is_present(actual)

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
        resolved = self._resolve(node, for_comparison=False)
        if resolved is None:
            return _never
        if not (
            isclass(resolved.field_type) and issubclass(resolved.field_type, BaseModel)
        ):
            # A list of plain values (schemas[value eq ...]): rare, not compiled.
            model, prefix = self.model, self.urn_prefix
            return lambda resource: _Evaluator(
                model, resource, urn_prefix=prefix
            ).visit(node)
        # The inner filter is about one entry: compiled once for the entry type.
        inner = _Compiler(resolved.field_type, resolved.urn).visit(node.val_filter)
        field_name = resolved.field_name

        def select(resource: Any) -> bool:
            host = attribute_host(resource, resolved)
            values = getattr(host, field_name, None) if host is not None else None
            return isinstance(values, list) and any(
                inner(item) for item in values if item is not None
            )

        return select


_STRING_TESTS: dict[CompareOperator, Callable[[str, str], bool]] = {
    CompareOperator.co: lambda value, operand: operand in value,
    CompareOperator.sw: str.startswith,
    CompareOperator.ew: str.endswith,
}


def _string_test(
    read: Callable[[Any], Any],
    resolved: AttributeBinding,
    expected: str,
    test: Callable[[str, str], bool],
) -> Predicate:
    """co, sw and ew, the scans' usual operators, with fewer steps than `_compare`.

    The same answers: both sides in their comparable form under the policy in
    force, a value that is not a string (or that the policy cannot prepare)
    matching nothing, and one matching value enough on a multi-valued attribute.
    """

    def compare(resource: Any) -> bool:
        actual = read(resource)
        if actual is None:
            return False
        key = _effective_policy().comparison_key
        try:
            operand = key(resolved, expected)
        except ValueError:
            return False
        for value in actual if isinstance(actual, list) else (actual,):
            if isinstance(value, str):
                try:
                    if test(key(resolved, value), operand):
                        return True
                except ValueError:
                    continue
        return False

    return compare


def _reader(resolved: AttributeBinding) -> Callable[[Any], Any]:
    """How to read the compared value off a resource (a list for multi-valued)."""
    field_name, sub_field = resolved.field_name, resolved.sub_field_name
    # Only an extension attribute lives off the resource (attribute_host).
    on_extension = isclass(resolved.model) and issubclass(resolved.model, Extension)

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
