"""Limits that turn resource exhaustion into a SCIM 400, checked before any work.

A hostile or broken client can send a body that is small but deeply nested, or
a filter that is short but has thousands of terms. Either one used to reach a
parser or a database that gives up with an exception of its own (a
RecursionError, SQLite's "Expression tree is too large"), which became a 500.
Each limit here is checked on the raw request, before scim2-models or a
storage backend sees it, and answers with an error that names the limit. The
values are in `shared/discovery.py`, beside the limits the
ServiceProviderConfig announces.
"""

import json
import re
from typing import Any

from scim2_models import InvalidFilterException
from scim2_models import InvalidPathException
from scim2_models import InvalidSyntaxException
from scim2_models import ScimFilter
from scim2_models.path import Comparison
from scim2_models.path import FilterNode
from scim2_models.path import FilterVisitor
from scim2_models.path import LogicalExpr
from scim2_models.path import Not
from scim2_models.path import Present
from scim2_models.path import ValuePath

from shared import discovery

# What a bracket count keeps of a body: brackets, and the quotes that say which
# brackets are text. Everything else goes in one C-speed translate.
_DROPPED = bytes(byte for byte in range(256) if byte not in b'"[]{}')
# A string once only quotes and brackets are left, closed or running to the end.
_JSON_STRING = re.compile(rb'"[^"]*+"?')
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_TEXT = re.compile("[\ud800-\udfff]")
_OPENERS_IN_A_ROW = re.compile(rb"[\[{]{%d}" % (discovery.MAX_JSON_DEPTH + 1))


# --8<-- [start:read-json]
def read_json(body: bytes) -> Any:
    """Parse a request body as JSON, refusing it when it nests too deeply."""
    if not body.strip():
        raise InvalidSyntaxException(detail="The request body is empty")
    check_json_depth(body)
    try:
        # RFC 8259 §8.1: JSON between systems is UTF-8. Decoding strictly also
        # refuses the bytes of a lone surrogate, which json.loads would let in.
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise InvalidSyntaxException(detail="The body is not UTF-8") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidSyntaxException(
            detail=f"The body is not valid JSON: {exc}"
        ) from None
    if _SURROGATE_ESCAPE.search(body):
        # JSON lets "\ud800" stand alone, Unicode does not: no database could
        # store such a string, so it is refused here, once, for all of them.
        try:
            json.dumps(payload, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidSyntaxException(
                detail="The body holds a lone surrogate, which is not text"
            ) from None
    return payload


def check_json_depth(body: bytes) -> None:
    """Refuse a body whose arrays and objects nest deeper than MAX_JSON_DEPTH.

    Counted without parsing: escaped backslashes and quotes are dropped, then
    everything but quotes and brackets, then the strings; each pass then
    removes the innermost pairs of brackets, so the number of passes is the
    depth. Every step runs in C, at most MAX_JSON_DEPTH passes of them, and a
    run of openers longer than the limit ends the count at once.
    """
    if body.count(b"[") + body.count(b"{") <= discovery.MAX_JSON_DEPTH:
        return  # too few openers to nest that deep: most bodies, at C speed
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _JSON_STRING.sub(b"", unescaped.translate(None, _DROPPED))
    for _ in range(discovery.MAX_JSON_DEPTH):
        if not brackets:
            return
        if _OPENERS_IN_A_ROW.search(brackets):
            break
        inner = _INNERMOST_PAIR.sub(b"", brackets)
        if inner == brackets:  # brackets that do not pair up: the parser
            return  # will refuse the body, and say where
        brackets = inner
    if brackets:
        raise InvalidSyntaxException(
            detail="The body nests arrays and objects more than "
            f"{discovery.MAX_JSON_DEPTH} levels deep"
        )


# --8<-- [end:read-json]


# --8<-- [start:filter-limits]
def check_filter_length(text: Any) -> None:
    """Refuse a filter too long to parse: before scim2-models parses it."""
    if isinstance(text, str) and len(text) > discovery.MAX_FILTER_LENGTH:
        raise InvalidFilterException(
            detail=f"The filter is longer than {discovery.MAX_FILTER_LENGTH} characters"
        )


def check_patch_path_lengths(payload: Any) -> None:
    """The same for the paths of a PatchOp body, which may carry a filter."""
    operations = payload.get("Operations") if isinstance(payload, dict) else None
    for operation in operations if isinstance(operations, list) else ():
        paths = [
            value
            for key, value in (operation.items() if isinstance(operation, dict) else ())
            if key.lower() == "path"  # attribute names are case-insensitive
        ]
        if any(
            isinstance(p, str) and len(p) > discovery.MAX_FILTER_LENGTH for p in paths
        ):
            raise InvalidPathException(
                detail=f"The path is longer than {discovery.MAX_FILTER_LENGTH} "
                "characters"
            )


def check_filter_terms(scim_filter: ScimFilter | None) -> None:
    """Refuse a filter with more terms than a database is asked to combine."""
    if scim_filter is None:
        return
    terms = _TermCounter().visit(scim_filter.ast)
    if terms > discovery.MAX_FILTER_TERMS:
        raise InvalidFilterException(
            detail=f"The filter has {terms} terms, more than the "
            f"{discovery.MAX_FILTER_TERMS} this server accepts"
        )


def check_patch_path_terms(path: Any) -> None:
    """Refuse a PATCH path whose filter has too many terms."""
    node = path.ast if path is not None else None
    if isinstance(node, FilterNode):
        terms = _TermCounter().visit(node)
        if terms > discovery.MAX_FILTER_TERMS:
            raise InvalidPathException(
                detail=f"The path filter has {terms} terms, more than the "
                f"{discovery.MAX_FILTER_TERMS} this server accepts"
            )


class _TermCounter(FilterVisitor[int]):
    """How many comparisons and presence tests a filter combines; text only."""

    def visit_comparison(self, node: Comparison) -> int:
        # A filter literal may spell a lone surrogate ("\ud800"), which is not
        # text: no database can compare with it.
        if isinstance(node.value, str) and _SURROGATE_TEXT.search(node.value):
            raise InvalidFilterException(
                detail="The filter compares with a lone surrogate, which is not text"
            )
        return 1

    def visit_present(self, node: Present) -> int:
        return 1

    def visit_not(self, node: Not) -> int:
        return self.visit(node.expr)

    def visit_logical_expr(self, node: LogicalExpr) -> int:
        return sum(self.visit(term) for term in node.terms)

    def visit_value_path(self, node: ValuePath) -> int:
        return self.visit(node.val_filter)


# --8<-- [end:filter-limits]
