"""Hostile input, generated: whatever a client sends, the server stays a SCIM server.

Hypothesis builds the requests a careless or malicious client could send:
valid User, Group, PatchOp, SearchRequest and BulkRequest bodies mutated a few
times (wrong types, nulls, huge strings, odd unicode, deep nesting, unknown or
renamed keys, weird ops, paths and bulkIds), filters from a small SCIM grammar
(and plain noise), odd query parameters, odd headers and content types, and
raw bytes. They go to every endpoint with every method, through each
framework's own test client, on the memory and the SQLite backends, and the
Django ORM recipe on SQLite behind the Django app.

Every response must keep three promises:

1. no 5xx, not even inside a Bulk response (but the 501 that RFC 7644 §3.11
   asks of a server without /Me);
2. every 4xx is a SCIM Error (RFC 7644 §3.12): Content-Type
   application/scim+json, `schemas` the Error URN, `status` the HTTP status as
   a JSON string (401 and 405 included), and so is each failed Bulk result;
3. a refused request changes nothing: a 4xx, a read, or a Bulk whose every
   operation failed leaves the whole store (ids, versions, members, times)
   exactly as it was.

Each (framework, backend) pair builds its app and its backend once. A few
users and groups are seeded, and seeded again only after an example changed
the store, so each example starts from the same state. Their ids change with
every seeding, so strategies name them by placeholder (`@USER0@`, ...) and
the placeholders are filled in as the request is sent.

`make test` runs a small seeded budget (the "hostile-ci" profile: the same
examples on every run). `make fuzz` sets SCIM_FUZZ=1 for the "hostile-fuzz"
profile: random examples, about FUZZ_MINUTES (10) minutes of them.
"""

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.parse import quote_plus
from urllib.parse import urlencode

import pytest
from conftest import BULK_SCHEMA
from conftest import ENTERPRISE
from conftest import ERROR_SCHEMA
from conftest import FRAMEWORKS
from conftest import GROUP_SCHEMA
from conftest import PATCH_SCHEMA
from conftest import SCIM_JSON
from conftest import SEARCH_SCHEMA
from conftest import TOKEN
from conftest import USER_SCHEMA
from conftest import Reply
from conftest import ScimClient
from conftest import make_app
from hypothesis import HealthCheck
from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from shared import discovery
from shared import mapping
from shared import storage

# --- Budgets -----------------------------------------------------------------

# `make test`: the same examples on every run, no example database left
# behind, and about a minute of wall time for the whole module on 2 cores.
settings.register_profile(
    "hostile-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
# `make fuzz`: fresh random examples each run; failures found are kept in a
# database outside the work tree, so the next run tries them first.
settings.register_profile(
    "hostile-fuzz",
    parent=settings.get_profile("hostile-ci"),
    derandomize=False,
    database=DirectoryBasedExampleDatabase(
        Path(tempfile.gettempdir()) / "scim2-cookbook-hostile-input"
    ),
)
FUZZING = os.environ.get("SCIM_FUZZ") == "1"
PROFILE = settings.get_profile("hostile-fuzz" if FUZZING else "hostile-ci")
# The CI budget takes about 35 s on 2 idle cores (measured, without failures
# to shrink), so a minute of fuzzing is about 1.7 times as many examples.
FUZZ_SCALE = 1.7 * float(os.environ.get("FUZZ_MINUTES", "10")) if FUZZING else 1


def budget(examples: int) -> settings:
    """The profile, with `examples` examples (times FUZZ_SCALE when fuzzing)."""
    return settings(PROFILE, max_examples=round(examples * FUZZ_SCALE))


# --- Placeholders for the seeded resources -----------------------------------

USER0 = "@USER0@"  # bjensen: enterprise extension, manager USER1, in GROUP0
USER1 = "@USER1@"  # a user with a non-ASCII userName, in GROUP0
GROUP0 = "@GROUP0@"  # both users
GROUP1 = "@GROUP1@"  # GROUP0, as a nested group
USER0_ETAG = "@USER0_ETAG@"
GROUP0_ETAG = "@GROUP0_ETAG@"
SEEDED_USER_NAMES = ("bjensen", "Jöns Ærøskøbing")

# --- Generic hostile values --------------------------------------------------


class Raw:
    """JSON text spliced as is into a body: what json.dumps cannot produce."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({abbreviated(self.text)})"


def abbreviated(value: str | bytes, limit: int = 1_000) -> str:
    """A repr short enough to read in a failure report, with the full length."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[: limit - 200]!r} ... {value[-150:]!r} ({len(value)} long)"


def nested(depth: int, shape: str) -> Raw:
    """`depth` levels of arrays or objects, closed or left open."""
    if shape == "arrays":
        return Raw("[" * depth + "]" * depth)
    if shape == "objects":
        return Raw('{"a":' * depth + "1" + "}" * depth)
    return Raw("[" * depth)  # unclosed


deep_nesting = st.builds(
    nested,
    st.sampled_from([2, 64, 1_000, 5_000, 100_000]),
    st.sampled_from(["arrays", "objects", "unclosed"]),
)
# Numbers and literals json.dumps never writes: Python's json.loads takes some.
odd_json_literals = st.sampled_from(
    [
        "NaN",
        "-Infinity",
        "1e999",
        "-0",
        "1E-400",
        "9" * 5_000,  # over Python's 4,300-digit limit for int()
        '"\\ud800"',  # a lone surrogate, escaped
        '"\\u0000"',
        '{"a": 1, "a": 2}',
        "[1,]",
        "'single'",
    ]
).map(Raw)
printable_ascii = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# Header values: httpx sends ASCII only, so that is what any client can send.
header_text = st.text(printable_ascii, max_size=40)
surrogates = st.text(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3
)
huge_strings = st.builds(
    lambda char, count: char * count,
    st.sampled_from(["x", "é", "😀", "\x00", " "]),
    st.sampled_from([256, 10_000, 300_000, discovery.MAX_PAYLOAD_SIZE + 1]),
)
tricky_strings = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\r\n",
        "\ufeff",
        "\u202eevil",
        "\ufb00",  # the "ff" ligature, which NFKC folds
        "\u0130",  # İ, which lower-cases to two code points
        "\u00df",  # ß, which upper-cases to two letters
        "A\u030a",  # A and a combining ring: NFC makes it one code point
        "null",
        "true",
        "0",
        "-1",
        "NaN",
        "bulkId:",
        "bulkId:u1",
        "bulkId:nope",
        USER0,
        GROUP0,
        USER_SCHEMA,
        ERROR_SCHEMA,
        'W/"1"',
        "*",
        "../../etc/passwd",
        "%00",
        "' OR 1=1 --",
        '"; DROP TABLE scim_users; --',
        "${jndi:ldap://x}",
        "{{7*7}}",
        "<script>alert(1)</script>",
    ]
)
hostile_strings = st.one_of(
    tricky_strings, st.text(max_size=30), surrogates, huge_strings
)
hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 2**31, 2**63, -(2**63) - 1, 2**64, 10**400]),
    st.floats(),  # NaN and infinities too, written as json.dumps does
    hostile_strings,
)
hostile_values = st.one_of(
    st.recursive(
        hostile_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.text(max_size=12), inner, max_size=3),
        ),
        max_leaves=5,
    ),
    deep_nesting,
    odd_json_literals,
)


def mostly(
    usual: st.SearchStrategy, odd: st.SearchStrategy, one_in: int = 4
) -> st.SearchStrategy:
    """`usual`, except one time in `one_in` `odd`; shrinks towards `usual`."""
    return st.integers(0, one_in - 1).flatmap(
        lambda n: odd if n == one_in - 1 else usual
    )


def texts(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """Text for a string attribute; one time in ten with lone surrogates in it.

    A JSON escape can carry one ("\\ud800"), Python strings hold it, and
    UTF-8 cannot encode it: a database driver or a hash then trips on it.
    """
    return mostly(
        st.text(min_size=min_size, max_size=max_size),
        st.builds(
            "{}{}{}".format, st.text(max_size=3), surrogates, st.text(max_size=3)
        ),
        10,
    )


# --- Attribute names and filters ---------------------------------------------

KNOWN_ATTRIBUTES = [
    "userName",
    "name",
    "name.givenName",
    "name.familyName",
    "displayName",
    "nickName",
    "title",
    "userType",
    "active",
    "externalId",
    "id",
    "password",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "phoneNumbers.value",
    "addresses.locality",
    "x509Certificates.value",
    "roles",
    "groups",
    "groups.value",
    "groups.display",
    "members",
    "members.value",
    "members.display",
    "members.type",
    "members.$ref",
    "meta",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "meta.version",
    "meta.location",
    "schemas",
    f"{USER_SCHEMA}:userName",
    f"{USER_SCHEMA}:name.givenName",
    f"{GROUP_SCHEMA}:displayName",
    f"{ENTERPRISE}:employeeNumber",
    f"{ENTERPRISE}:manager",
    f"{ENTERPRISE}:manager.value",
    ENTERPRISE,
]
ODD_ATTRIBUTES = [
    "",
    ".",
    "..",
    "a.b.c.d",
    "userName.sub.sub",
    "urn:",
    f"{USER_SCHEMA}:",
    f"{ENTERPRISE}:",
    "urn:x:y:z:attr",
    "emails[",
    "emails]",
    "$ref",
    "__class__",
    "__dict__",
    "model_fields",
    "user-name",
    "ñame",
]


def case_mangled(name: str) -> st.SearchStrategy:
    """The same name in another letter case: SCIM names are case-insensitive."""
    return st.sampled_from([name.upper(), name.lower(), name.swapcase()])


attribute_names = st.one_of(
    st.sampled_from(KNOWN_ATTRIBUTES),
    st.sampled_from(KNOWN_ATTRIBUTES).flatmap(case_mangled),
    st.sampled_from(ODD_ATTRIBUTES),
    st.from_regex(
        r"[A-Za-z][A-Za-z0-9_$-]{0,15}(\.[A-Za-z$][\w$]{0,8})?", fullmatch=True
    ),
    st.text(max_size=20),
)
multi_valued_attributes = st.sampled_from(
    ["emails", "members", "phoneNumbers", "addresses", "groups", "roles", "name", "x"]
)
COMPARE_OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
compare_operators = mostly(
    st.sampled_from(COMPARE_OPERATORS),
    st.one_of(
        st.sampled_from(COMPARE_OPERATORS).flatmap(case_mangled),
        st.sampled_from(["==", "eqq", "", "pr", "and", "not", "in", "like"]),
    ),
)
filter_values = st.one_of(
    texts(20).map(json.dumps),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        [
            '"bjensen"',
            '"BJENSEN"',
            f'"{USER0}"',
            f'"{GROUP0}"',
            "true",
            "false",
            "null",
            "1e308",
            "1e999",
            '"2011-05-13T04:42:34Z"',
            '"2011-13-45T99:99:99Z"',
            '"not a date"',
            '""',
            '"\\u0000"',
            '"unterminated',
            "bareword",
            "'single'",
            "[1]",
            "{}",
            "9" * 5_000,
        ]
    ),
)
separators = mostly(st.just(" "), st.sampled_from(["  ", "\t", "", "\n"]))


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    """`attribute op value`, each part well-formed or not."""
    space = draw(separators)
    attribute, value = draw(attribute_names), draw(filter_values)
    return f"{attribute}{space}{draw(compare_operators)}{space}{value}"


presences = st.builds(lambda attribute: f"{attribute} pr", attribute_names)
grammar_filters = st.recursive(
    st.one_of(comparisons(), presences),
    lambda inner: st.one_of(
        st.builds("{} and {}".format, inner, inner),
        st.builds("{} or {}".format, inner, inner),
        st.builds("not ({})".format, inner),
        st.builds("not {}".format, inner),
        st.builds("({})".format, inner),
        st.builds("{}[{}]".format, multi_valued_attributes, inner),
        st.builds("{}[{}].{}".format, multi_valued_attributes, inner, attribute_names),
    ),
    max_leaves=6,
)


def repeated(term: str, count: int, shape: str) -> str:
    """A filter of `count` copies of a term: long chains, deep nesting."""
    if shape == "or-chain":
        return " or ".join([term] * count)
    if shape == "and-chain":
        return " and ".join([term] * count)
    if shape == "parentheses":
        return "(" * count + term + ")" * count
    if shape == "nots":
        return "not (" * count + term + ")" * count
    return "emails[" * count + term + "]" * count  # value paths in value paths


huge_filters = st.builds(
    repeated,
    st.one_of(comparisons(), presences),
    st.sampled_from([10, 200, 1_000, 5_000]),
    st.sampled_from(["or-chain", "and-chain", "parentheses", "nots", "value-paths"]),
)


@st.composite
def corrupted(draw: st.DrawFn, text: st.SearchStrategy) -> str:
    """A text with one character inserted or replaced: almost a filter."""
    value = draw(text)
    at = draw(st.integers(0, len(value)))
    junk = draw(st.sampled_from(list("()[]\"' \\.:,;") + ["\x00", "é", "😀"]))
    return value[:at] + junk + value[at + draw(st.integers(0, 1)) :]


filter_strings = st.one_of(
    grammar_filters,
    corrupted(grammar_filters),
    huge_filters,
    st.text(max_size=40),
)

# --- Valid bodies, to mutate -------------------------------------------------

user_names = st.one_of(
    texts(20, min_size=1),
    st.sampled_from(SEEDED_USER_NAMES).flatmap(case_mangled),  # 409: taken
)
emails = st.fixed_dictionaries(
    {"value": st.emails()},
    optional={
        "type": st.sampled_from(["work", "home", "other"]),
        "primary": st.booleans(),
    },
)
enterprise_parts = st.fixed_dictionaries(
    {},
    optional={
        "employeeNumber": texts(10),
        "department": texts(10),
        "manager": st.fixed_dictionaries({"value": st.sampled_from([USER0, USER1])}),
    },
)


def with_enterprise(body: dict[str, Any], extension: dict[str, Any] | None) -> dict:
    """The User body, with the enterprise extension when there is one."""
    if extension is None:
        return body
    return {**body, "schemas": [USER_SCHEMA, ENTERPRISE], ENTERPRISE: extension}


user_bodies = st.builds(
    with_enterprise,
    st.fixed_dictionaries(
        {"schemas": st.just([USER_SCHEMA]), "userName": user_names},
        optional={
            "name": st.fixed_dictionaries(
                {"givenName": texts(10), "familyName": texts(10)}
            ),
            "displayName": texts(20),
            "externalId": texts(10),
            "active": st.booleans(),
            "title": texts(10),
            "password": texts(20),
            "emails": st.lists(emails, max_size=3),
            "phoneNumbers": st.lists(
                st.fixed_dictionaries({"value": texts(12)}), max_size=2
            ),
        },
    ),
    st.none() | enterprise_parts,
)
# Ids a body or a path can name: the seeded ones, a bulkId reference, noise.
resource_references = st.one_of(
    st.sampled_from([USER0, USER1, GROUP0, GROUP1]),
    st.sampled_from(
        ["bulkId:u1", "bulkId:g1", "bulkId:nope", "bulkId:", "bulkId:bulkId:u1"]
    ),
    st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    texts(12),
)
members = st.fixed_dictionaries(
    {"value": resource_references},
    optional={
        "type": st.sampled_from(["User", "Group", "user", "Robot"]),
        "display": texts(10),
    },
)
group_bodies = st.fixed_dictionaries(
    {"schemas": st.just([GROUP_SCHEMA]), "displayName": texts(20)},
    optional={
        "members": st.lists(members, max_size=3),
        "externalId": texts(10),
    },
)
PATCH_OPERATIONS = ["add", "remove", "replace"]
patch_op_names = mostly(
    st.sampled_from(PATCH_OPERATIONS),
    st.one_of(
        st.sampled_from(PATCH_OPERATIONS).flatmap(case_mangled),
        st.sampled_from(["delete", "move", "copy", "test", "", " add", "replace\x00"]),
        st.none(),
    ),
)
# Paths with filters in them: `emails[type eq "work"].value`, `members[...]`.
value_paths = st.builds(
    "{}[{}]{}".format,
    multi_valued_attributes,
    mostly(comparisons(), filter_strings),
    st.sampled_from(
        ["", ".value", ".type", ".display", ".primary", ".nope", ".", "[x]"]
    ),
)
patch_paths = st.one_of(
    attribute_names,
    value_paths,
    st.just(f'members[value eq "{USER0}"]'),
    st.just('emails[type eq "work"].value'),
)
patch_values = st.one_of(
    texts(20),
    st.booleans(),
    st.lists(members, max_size=3),
    st.dictionaries(attribute_names, texts(10) | st.booleans(), max_size=3),
    user_bodies,
    hostile_values,
)
patch_operations = st.fixed_dictionaries(
    {"op": patch_op_names}, optional={"path": patch_paths, "value": patch_values}
)
patch_bodies = st.fixed_dictionaries(
    {
        "schemas": st.just([PATCH_SCHEMA]),
        "Operations": st.lists(patch_operations, min_size=1, max_size=4),
    }
)
attribute_lists = st.lists(attribute_names, max_size=4)
# RFC 9865 cursors: empty (a first page), well formed but forged, or anything.
cursor_values = st.one_of(
    st.sampled_from(["", "garbage", "~", ".", "0" * 32 + "." + "0" * 32, "x" * 5_000]),
    st.from_regex(r"[0-9a-f]{32}\.[0-9a-f]{32}", fullmatch=True),
    st.text(max_size=70),
)
search_bodies = st.fixed_dictionaries(
    {"schemas": st.just([SEARCH_SCHEMA])},
    optional={
        "filter": filter_strings,
        "attributes": attribute_lists,
        "excludedAttributes": attribute_lists,
        "sortBy": attribute_names,
        "sortOrder": st.sampled_from(["ascending", "descending", "DESCENDING", "up"]),
        "startIndex": st.integers(-5, 10) | st.integers(),
        "count": st.integers(-5, 300) | st.integers(),
        "cursor": cursor_values,
    },
)
bulk_ids = mostly(
    st.sampled_from(["u1", "u2", "g1"]),
    st.one_of(st.text(max_size=10), st.sampled_from(["", "bulkId:u1", "u1 "])),
)
etags = st.one_of(
    st.sampled_from([USER0_ETAG, GROUP0_ETAG, 'W/"1"', '"1"', 'W/"999"', "*"]),
    st.sampled_from(["", "W/", '"', 'W/"1", W/"2"', " , ", "W/W/W/"]),
    header_text,
)
item_paths = st.builds(
    "/{}/{}".format, st.sampled_from(["Users", "Groups"]), resource_references
)
bulk_operations = st.one_of(
    st.fixed_dictionaries(
        {
            "method": st.just("POST"),
            "path": st.just("/Users"),
            "bulkId": bulk_ids,
            "data": user_bodies,
        }
    ),
    st.fixed_dictionaries(
        {
            "method": st.just("POST"),
            "path": st.just("/Groups"),
            "bulkId": bulk_ids,
            "data": group_bodies,
        }
    ),
    st.fixed_dictionaries(
        {
            "method": st.just("PUT"),
            "path": item_paths,
            "data": user_bodies | group_bodies,
        },
        optional={"version": etags},
    ),
    st.fixed_dictionaries(
        {"method": st.just("PATCH"), "path": item_paths, "data": patch_bodies},
        optional={"version": etags},
    ),
    st.fixed_dictionaries(
        {"method": st.just("DELETE"), "path": item_paths}, optional={"version": etags}
    ),
)
bulk_methods = st.sampled_from(
    ["GET", "HEAD", "OPTIONS", "post", "Patch", "", "POST ", "CONNECT"]
)


def with_method(operation: dict[str, Any], method: str | None) -> dict[str, Any]:
    """The operation, with another method when there is one: GET, "post"..."""
    return operation if method is None else {**operation, "method": method}


bulk_bodies = st.fixed_dictionaries(
    {
        "schemas": st.just([BULK_SCHEMA]),
        "Operations": st.lists(
            st.builds(with_method, bulk_operations, mostly(st.none(), bulk_methods)),
            max_size=5,
        ),
    },
    optional={"failOnErrors": st.integers(-1, 5) | hostile_scalars},
)

# --- Mutations ---------------------------------------------------------------


def locations(value: Any, here: tuple = ()) -> Iterator[tuple]:
    """The path (keys and indexes) to every node of a JSON value, root first."""
    yield here
    if isinstance(value, dict):
        for key, item in value.items():
            yield from locations(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from locations(item, (*here, index))


def node_at(value: Any, path: tuple) -> Any:
    """The node at the end of `path`."""
    for step in path:
        value = value[step]
    return value


def replaced(value: Any, path: tuple, new: Any) -> Any:
    """A copy of `value` with the node at `path` replaced; the rest is shared."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = replaced(value[head], rest, new)
    return copy


def renamed(mapping: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The object with one key renamed, in its place."""
    return {(new if key == old else key): item for key, item in mapping.items()}


# Mutations that grow a body stop at about this size: over the 1 MiB limit,
# but not so far over that encoding it would take seconds and gigabytes.
BODY_LIMIT = 2 * discovery.MAX_PAYLOAD_SIZE


def size_of(value: Any) -> int:
    """Roughly how many characters a JSON value takes once encoded."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, Raw):
        return len(value.text)
    if isinstance(value, dict):
        return 2 + sum(len(key) + 4 + size_of(item) for key, item in value.items())
    if isinstance(value, list):
        return 2 + sum(size_of(item) + 1 for item in value)
    return 8


@st.composite
def mutated_node(draw: st.DrawFn, node: Any) -> Any:
    """The node changed once, in a way that suits what it is."""
    choices = ["replace", "null", "wrap-list", "wrap-object"]
    if isinstance(node, dict):
        choices += ["add-key", "empty"] + (["drop-key", "rename-key"] if node else [])
    if isinstance(node, list):
        choices += ["append", "empty"] + (["drop", "repeat"] if node else [])
    if isinstance(node, str):
        choices += ["case", "pad", "huge", "unicode", "bulk-id", "id"]
    choice = draw(st.sampled_from(choices))
    if choice == "replace":
        return draw(hostile_values)
    if choice == "null":
        return None
    if choice == "wrap-list":
        return [node]
    if choice == "wrap-object":
        return {"value": node}
    if choice == "empty":
        return type(node)()
    if choice == "add-key":
        return {**node, draw(attribute_names): draw(hostile_values)}
    if choice == "drop-key":
        key = draw(st.sampled_from(sorted(node)))
        return {name: item for name, item in node.items() if name != key}
    if choice == "rename-key":
        key = draw(st.sampled_from(sorted(node)))
        # Another case, a schema URN in front (valid SCIM), or noise.
        new = draw(
            st.one_of(
                case_mangled(key),
                st.sampled_from([f"{USER_SCHEMA}:{key}", f" {key}", f"{key}\x00"]),
                attribute_names,
            )
        )
        return renamed(node, key, new)
    if choice == "append":
        return [*node, draw(hostile_values)]
    if choice == "drop":
        index = draw(st.integers(0, len(node) - 1))
        return node[:index] + node[index + 1 :]
    if choice == "repeat":
        item = node[draw(st.integers(0, len(node) - 1))]
        copies = draw(st.sampled_from([1, 50, 1_000]))
        return node + [item] * min(copies, max(1, BODY_LIMIT // size_of(item)))
    if choice == "case":
        return draw(case_mangled(node))
    if choice == "pad":
        return draw(st.sampled_from([" ", "\t", "\n", "\x00", "\u200b"])) + node + " "
    if choice == "huge":
        length = draw(st.sampled_from([1_000, 200_000, discovery.MAX_PAYLOAD_SIZE]))
        return ((node or "x") * (length // max(1, len(node)) + 1))[:length]
    if choice == "unicode":
        return node + draw(st.one_of(st.text(min_size=1, max_size=5), surrogates))
    if choice == "bulk-id":
        return "bulkId:" + node
    return draw(st.sampled_from([USER0, USER1, GROUP0, GROUP1]))


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy, most: int = 3) -> Any:
    """A body from `bodies`, then up to `most` mutations anywhere in it.

    No mutation at all is one of the cases: valid requests are exercised too.
    """
    value = draw(bodies)
    for _ in range(draw(st.integers(0, most))):
        path = draw(st.sampled_from(list(locations(value))))
        value = replaced(value, path, draw(mutated_node(node_at(value, path))))
    return value


# --- Encoding bodies ---------------------------------------------------------


def encoded(value: Any, style: str) -> bytes:
    """A JSON value as request bytes, `Raw` fragments spliced in as they are."""
    fragments: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, Raw):
            fragments.append(item.text)
            return f"\x00raw{len(fragments) - 1}\x00"
        if isinstance(item, dict):
            return {key: mark(child) for key, child in item.items()}
        if isinstance(item, list):
            return [mark(child) for child in item]
        return item

    text = json.dumps(mark(value), ensure_ascii=style == "ascii")
    for index, fragment in enumerate(fragments):
        text = text.replace(json.dumps(f"\x00raw{index}\x00"), fragment, 1)
    if style == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    body = text.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8
    return b"\xef\xbb\xbf" + body if style == "utf-8-bom" else body


def json_bytes(values: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    """JSON values encoded as a client would, or in ASCII, with a BOM, in UTF-16."""
    styles = mostly(st.just("utf-8"), st.sampled_from(["ascii", "utf-8-bom", "utf-16"]))
    return st.builds(encoded, values, styles)


raw_bytes = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b" ",
            b"null",
            b"[]",
            b"{}",
            b'"x"',
            b"0",
            b"\xff\xfe",
            b"\xef\xbb\xbf{}",
            b"a=b&c=d",
            b"<User><userName>x</userName></User>",
            b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": ',
        ]
    ),
    st.text(max_size=40).map(str.encode),
)

# --- Query strings and headers -----------------------------------------------

odd_numbers = st.one_of(
    st.integers().map(str),
    st.sampled_from(
        ["0", "-1", "1", "201", "1.5", "1e3", "abc", "", " 1 ", "+1", "0x10", "١"]
        + ["01", "-0", "nan", "inf", "True", "1_000", "9223372036854775807"]
        # Past what a 64-bit database integer holds.
        + ["9223372036854775808", "99999999999999999999", "-99999999999999999999"]
    ),
)
query_values = {
    "filter": filter_strings,
    "attributes": attribute_lists.map(",".join),
    "excludedAttributes": attribute_lists.map(", ".join),
    "startIndex": odd_numbers,
    "count": odd_numbers,
    "sortBy": attribute_names,
    "sortOrder": st.sampled_from(["ascending", "descending", "Descending", "", "up"]),
    "cursor": cursor_values,
}
query_junk = st.sampled_from(
    ["", "&", "&&=", "=", "%", "%ZZ", "%FF%FE=%FE", "filter=%00", "count=%F0%9F%98%80"]
    + ["a[]=1", "filter", ";", "startIndex=1&startIndex=-5", "filter=&filter=x"]
    + ["cursor", "cursor=&cursor=x", "cursor=%C3%A9", "cursor=&startIndex=2"]
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """A few query parameters with odd values, and sometimes noise after them."""
    names = draw(
        st.lists(
            mostly(
                st.sampled_from(list(query_values)),
                st.sampled_from(["FILTER", "Count", "unknown", "", "filter "]),
            ),
            max_size=3,
        )
    )
    pairs = [
        (name, draw(query_values.get(name, st.text(max_size=10)))) for name in names
    ]
    query = urlencode(pairs, errors="surrogatepass")
    junk = draw(mostly(st.just(""), query_junk))
    return "&".join(part for part in (query, junk) if part)


AUTHORIZATION = f"Bearer {TOKEN}"
odd_authorizations = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            "Bearer",
            "Bearer ",
            f"bearer {TOKEN}",
            f"BEARER   {TOKEN}",
            f"Bearer {TOKEN} ",
            f"Bearer\t{TOKEN}",
            f"Bearer {TOKEN[:-1]}",
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN}, Bearer other",
            f"Token {TOKEN}",
            "Basic dGVzdDp0ZXN0",
            "Bearer " + "x" * 10_000,
        ]
    ),
    header_text,
)
CONTENT_TYPES = [
    "application/json",
    "application/scim+json; charset=utf-8",
    "Application/SCIM+JSON",
    "application/json;charset=UTF-16",
    "application/scim+json; charset=",
    "application/scim+json;;;",
    "text/plain",
    "application/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "*/*",
    "",
]
content_types = mostly(st.just(SCIM_JSON), st.sampled_from(CONTENT_TYPES) | header_text)


@st.composite
def request_headers(draw: st.DrawFn) -> dict:
    """The bearer token (most of the time), preconditions, Accept."""
    headers = {}
    authorization = draw(mostly(st.just(AUTHORIZATION), odd_authorizations, 10))
    if authorization is not None:
        headers["Authorization"] = authorization
    for name in ("If-Match", "If-None-Match"):
        if draw(st.integers(0, 3)) == 3:
            headers[name] = draw(etags)
    if draw(st.integers(0, 7)) == 7:
        headers["Accept"] = draw(
            st.sampled_from(["text/html", "*/*", ""]) | header_text
        )
    return headers


# --- Requests ----------------------------------------------------------------


class HostileRequest:
    """One generated request, placeholders still in; printed short when it fails."""

    def __init__(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = SCIM_JSON,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers or {}
        self.body = body
        self.content_type = content_type

    @property
    def is_bulk(self) -> bool:
        """A POST /Bulk, whose response lists a result per operation."""
        return self.method == "POST" and self.path == "/Bulk"

    @property
    def is_read(self) -> bool:
        """A request that must never change the store, whatever it answers."""
        if self.method == "POST":
            return self.path.endswith("/.search")
        return self.method in ("GET", "HEAD", "OPTIONS")

    def __repr__(self) -> str:
        parts = [repr(self.method), abbreviated(self.path)]
        if self.query:
            parts.append(f"query={abbreviated(self.query)}")
        if self.headers != {"Authorization": AUTHORIZATION}:
            shown = (
                f"{name!r}: {abbreviated(value)}"
                for name, value in self.headers.items()
            )
            parts.append(f"headers={{{', '.join(shown)}}}")
        if self.body is not None:
            parts.append(f"body={abbreviated(self.body)}")
            if self.content_type != SCIM_JSON:
                parts.append(f"content_type={self.content_type!r}")
        return f"HostileRequest({', '.join(parts)})"

    # Hypothesis prints objects with its own pretty-printer: keep this repr.
    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@st.composite
def resource_writes(draw: st.DrawFn) -> HostileRequest:
    """POST to /Users or /Groups; PUT, PATCH or DELETE on one of them."""
    endpoint = draw(st.sampled_from(["Users", "Groups"]))
    method = draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]))
    resource_bodies = user_bodies if endpoint == "Users" else group_bodies
    if method == "POST":
        path = f"/{endpoint}"
    else:
        seeded = [USER0, USER1] if endpoint == "Users" else [GROUP0, GROUP1]
        reference = draw(mostly(st.sampled_from(seeded), resource_references))
        path = f"/{endpoint}/{reference}"
    body = None
    if method in ("POST", "PUT"):
        body = draw(json_bytes(mutated(resource_bodies)))
    elif method == "PATCH":
        body = draw(json_bytes(mutated(patch_bodies)))
    return HostileRequest(
        method,
        path,
        query=draw(mostly(st.just(""), query_strings())),
        headers=draw(request_headers()),
        body=body,
        content_type=draw(content_types),
    )


@st.composite
def searches(draw: st.DrawFn) -> HostileRequest:
    """GET a list with odd query parameters, POST a SearchRequest, GET one."""
    kind = draw(st.sampled_from(["list", "search", "get"]))
    if kind == "list":
        path = draw(st.sampled_from(["/Users", "/Groups"]))
        return HostileRequest(
            "GET", path, query=draw(query_strings()), headers=draw(request_headers())
        )
    if kind == "search":
        path = draw(st.sampled_from(["/.search", "/Users/.search", "/Groups/.search"]))
        return HostileRequest(
            "POST",
            path,
            query=draw(mostly(st.just(""), query_strings())),
            headers=draw(request_headers()),
            body=draw(json_bytes(mutated(search_bodies))),
            content_type=draw(content_types),
        )
    path = draw(item_paths)
    return HostileRequest(
        "GET", path, query=draw(query_strings()), headers=draw(request_headers())
    )


bulk_requests = st.builds(
    HostileRequest,
    st.just("POST"),
    st.just("/Bulk"),
    headers=request_headers(),
    body=json_bytes(mutated(bulk_bodies)),
    content_type=content_types,
)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ODD_METHODS = ["HEAD", "OPTIONS", "TRACE", "PROPFIND", "FOO"]
ENDPOINT_PATHS = [
    "/Users",
    "/Groups",
    f"/Users/{USER0}",
    f"/Groups/{GROUP0}",
    f"/Users/{GROUP0}",
    "/.search",
    "/Users/.search",
    "/Groups/.search",
    "/Bulk",
    "/Schemas",
    f"/Schemas/{USER_SCHEMA}",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/ServiceProviderConfig",
    "/Me",
]
ODD_PATHS = [
    "",
    "/",
    "/users",
    "/USERS",
    "/Users/",
    f"/Users/{USER0}/",
    "/Users/a/b",
    "/Bulk/",
    "//Users",
    "/Users/.search/x",
    "/ServiceProviderConfig/x",
    "/Schemas/urn:nope",
    "/ResourceTypes/Nope",
    "/Users/%00",
    "/Users/%2e%2e",
    "/Users/%2F",
    "/Users/%ZZ",
    "/%",
]
any_paths = st.one_of(
    st.sampled_from(ENDPOINT_PATHS),
    st.sampled_from(ODD_PATHS),
    st.builds(
        "/{}/{}".format,
        st.sampled_from(["Users", "Groups", "Schemas", "ResourceTypes"]),
        st.text(min_size=1, max_size=40)
        | st.sampled_from(["x" * 10_000, "é", ".search", "bulkId:u1"]),
    ),
)
any_bodies = st.one_of(
    st.none(),
    raw_bytes,
    json_bytes(mutated(user_bodies | group_bodies)),
    json_bytes(mutated(patch_bodies | search_bodies | bulk_bodies)),
)


@st.composite
def any_requests(draw: st.DrawFn) -> HostileRequest:
    """Any method on any path, with any body: discovery endpoints included."""
    return HostileRequest(
        draw(mostly(st.sampled_from(METHODS), st.sampled_from(ODD_METHODS))),
        draw(any_paths),
        query=draw(mostly(st.just(""), query_strings(), 3)),
        headers=draw(request_headers()),
        body=draw(any_bodies),
        content_type=draw(content_types),
    )


# --- The server under test ---------------------------------------------------

SEED_USERS = [
    {"schemas": [USER_SCHEMA], "userName": SEEDED_USER_NAMES[1], "active": False},
    {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": SEEDED_USER_NAMES[0],
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        "externalId": "bj-1",
        "active": True,
        ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": USER1}},
    },
]
SEED_GROUPS = [
    {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Admins",
        "members": [{"value": USER0}, {"value": USER1}],
    },
    {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Everyone",
        "members": [{"value": GROUP0, "type": "Group"}],
    },
]


HTTPX_MAX_URL = 65_000  # httpx's limit is 65,536 characters, scheme and host included


class Server:
    """One framework's app on one storage backend, and the resources seeded in it."""

    def __init__(self, framework: str) -> None:
        self.client = ScimClient(framework, make_app(framework))
        self.placeholders: dict[str, str] = {}
        self.stale = True  # seed before the first example

    def seed(self) -> None:
        """An empty store, then the seeded users and groups: the same every time."""
        storage.reset()
        self.placeholders = {}
        for placeholder, path, body in [
            (USER1, "/Users", SEED_USERS[0]),
            (USER0, "/Users", SEED_USERS[1]),  # USER1 is its manager
            (GROUP0, "/Groups", SEED_GROUPS[0]),
            (GROUP1, "/Groups", SEED_GROUPS[1]),
        ]:
            reply = self.client.post(path, json.loads(self.fill(json.dumps(body))))
            assert reply.status == 201, reply.body
            self.placeholders[placeholder] = reply.json["id"]
        # The versions, once every membership is in place.
        for placeholder, kind, record_id in [
            (USER0_ETAG, storage.USER, self.placeholders[USER0]),
            (GROUP0_ETAG, storage.GROUP, self.placeholders[GROUP0]),
        ]:
            self.placeholders[placeholder] = mapping.make_etag(
                storage.get_record(kind, record_id)
            )
        self.stale = False

    def fill(self, text: str) -> str:
        """The text with the seeded ids and versions in place of placeholders."""
        for placeholder, value in self.placeholders.items():
            text = text.replace(placeholder, value)
        return text

    def fill_query(self, query: str) -> str:
        """The same in a query string, where placeholders are URL-encoded."""
        for placeholder, value in self.placeholders.items():
            query = query.replace(quote_plus(placeholder), quote_plus(value))
        return self.fill(query)

    def fill_bytes(self, body: bytes) -> bytes:
        """The same in a body (not found, as it should be, in a UTF-16 one)."""
        for placeholder, value in self.placeholders.items():
            body = body.replace(placeholder.encode(), value.encode())
        return body

    def send(self, request: HostileRequest) -> Reply:
        # What no client can put in a URL as is (controls, spaces, non-ASCII,
        # lone surrogates) goes percent-encoded, surrogates as the invalid
        # UTF-8 they would be; a "%" stays, so escapes like %ZZ reach the app.
        path = quote(
            self.fill(request.path), safe="/%:@!$&'()*+,;=~", errors="surrogatepass"
        )
        if request.query:
            path += "?" + self.fill_query(request.query)
        # httpx, under FastAPI's test client, refuses to send a longer URL.
        assume(self.client.framework != "fastapi" or len(path) < HTTPX_MAX_URL)
        # Starlette's Mount never routes a path with a newline to the SCIM
        # sub-application: the host answers it, which test_host_apps.py checks.
        assume(
            self.client.framework != "fastapi" or "\n" not in self.fill(request.path)
        )
        return self.client.request(
            request.method,
            path,
            body=None if request.body is None else self.fill_bytes(request.body),
            headers={name: self.fill(value) for name, value in request.headers.items()},
            token=None,  # the Authorization header, if any, is the request's own
            content_type=request.content_type,
        )

    def exercise(self, request: HostileRequest) -> None:
        """Send one request and check the three promises on its response."""
        if self.stale:
            self.seed()
        before = snapshot()
        with errors_logged() as logged:
            reply = self.send(request)
        after = snapshot()
        self.stale = after != before
        check_response(request, reply, logged)
        if refused(request, reply):
            assert after == before, "a refused request changed the store"


class LoggedErrors(logging.Handler):
    """The exceptions the app logs while it answers: why it sent a 5xx."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.exceptions: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.exceptions.append(record.exc_info[1])


@contextmanager
def errors_logged() -> Iterator[list[BaseException]]:
    """The exceptions the app logs meanwhile, kept instead of printed.

    A failure carries its cause, chained. Printed too, a failure that
    shrinking replays hundreds of times would bury the report under copies of
    one traceback, so the root logger's handlers stand aside meanwhile.
    """
    root = logging.getLogger()
    handlers, logged = root.handlers, LoggedErrors()
    root.handlers = [logged]
    try:
        yield logged.exceptions
    finally:
        root.handlers = handlers


def snapshot() -> tuple:
    """Every record of the store, as storage gives them: nothing left out."""
    return (
        storage.list_records(storage.USER, 0, None),
        storage.list_records(storage.GROUP, 0, None),
    )


def check_response(
    request: HostileRequest, reply: Reply, logged: list[BaseException]
) -> None:
    """No 5xx, and every error a SCIM Error: the response's, each Bulk result's."""
    failed_operations = []
    if request.is_bulk and reply.status == 200:
        results = reply.json["Operations"]
        failed_operations = [
            result for result in results if int(result["status"]) >= 400
        ]
    # The one 5xx a client may see: /Me is not implemented, and RFC 7644 §3.11
    # asks for 501 then. It is a SCIM Error like the others.
    if reply.status >= 500 and not (reply.status == 501 and request.path == "/Me"):
        fail_with_cause(f"{reply.status}: {abbreviated(reply.body)}", logged)
    for result in failed_operations:
        if int(result["status"]) >= 500:
            fail_with_cause(f"a Bulk operation answered {result}", logged)
    if reply.status >= 400:
        check_scim_error(reply, has_body=request.method != "HEAD")
    for result in failed_operations:
        assert result["response"]["schemas"] == [ERROR_SCHEMA], result
        assert result["response"]["status"] == result["status"], result


def fail_with_cause(message: str, logged: list[BaseException]) -> None:
    """Fail, chained to the exception the app logged, when it logged one.

    Its traceback then shows in the report, and Hypothesis, which reads
    __context__, tells 5xx of different causes apart: each is shrunk and
    reported on its own instead of hiding behind the first one found.
    """
    error = AssertionError(message)
    if logged:
        error.__cause__ = error.__context__ = logged[0]
    raise error


def check_scim_error(reply: Reply, has_body: bool = True) -> None:
    """A SCIM Error (RFC 7644 §3.12), with status as a JSON string."""
    content_type = reply.headers.get("content-type", "")
    assert content_type.startswith(SCIM_JSON), (reply.status, content_type, reply.body)
    if not has_body:  # HEAD: the headers of the answer a GET would have
        return
    error = reply.json
    assert error["schemas"] == [ERROR_SCHEMA], error
    assert error["status"] == str(reply.status), error
    assert b"Traceback" not in reply.body


def refused(request: HostileRequest, reply: Reply) -> bool:
    """Whether the request must have left the store as it was."""
    if reply.status >= 400 or request.is_read:
        return True
    if request.is_bulk and reply.status == 200:
        results = reply.json["Operations"]
        return all(int(result["status"]) >= 400 for result in results)
    return False


# Every framework on memory, and each database behind one framework, as the
# behaviour suites do (SERVED_BY in conftest.py): the frameworks differ above
# the storage, the databases below it, and the storage contract suite holds
# each database to memory's answers. The Django ORM recipe serves Django only.
TARGETS = [(framework, "memory") for framework in FRAMEWORKS] + [
    ("flask", "sqlite"),
    ("django", "django-sqlite"),
]


@pytest.fixture(scope="module", params=TARGETS, ids=["-".join(t) for t in TARGETS])
def server(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Server]:
    """The app and its backend, built once per (framework, backend)."""
    from shared.sql_storage import SqlStorage

    framework, backend = request.param
    if backend == "memory":
        chosen = storage.MemoryStorage()
    elif backend == "django-sqlite":
        from integrations.django_app.orm_storage import DjangoOrmStorage

        request.getfixturevalue("django_databases")
        chosen = DjangoOrmStorage(using="default")
    else:
        chosen = SqlStorage(f"sqlite:///{tmp_path_factory.mktemp('hostile')}/scim.db")
    previous = storage.backend()
    storage.use(chosen)
    try:
        yield Server(framework)
    finally:
        storage.use(previous)
        if backend == "sqlite":
            chosen.engine.dispose()


@pytest.fixture(autouse=True)
def seed_again(server: Server) -> None:
    """conftest empties the storage before each test: seed again."""
    server.stale = True


# --- The properties ----------------------------------------------------------


@budget(150)
@given(hostile=resource_writes())
def test_resource_writes(server: Server, hostile: HostileRequest) -> None:
    """Creations, replacements, patches and deletions."""
    server.exercise(hostile)


@budget(150)
@given(hostile=searches())
def test_searches(server: Server, hostile: HostileRequest) -> None:
    """Lists, searches and reads, filters above all."""
    server.exercise(hostile)


@budget(100)
@given(hostile=bulk_requests)
def test_bulk(server: Server, hostile: HostileRequest) -> None:
    """BulkRequests: odd operations, methods, bulkIds and versions."""
    server.exercise(hostile)


@budget(150)
@given(hostile=any_requests())
def test_any_request(server: Server, hostile: HostileRequest) -> None:
    """Any method, path, body, header: the routing and the discovery."""
    server.exercise(hostile)
