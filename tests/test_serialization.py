"""The serializer answers what scim2-models dumps, for every backend's records.

Responses are not dumped from SCIM resources: `mapping.dump_user` and
`mapping.dump_group` build the JSON straight from a record (the
`ResponseSerializer` section of shared/mapping.py). These tests hold that JSON
to scim2-models' own `model_dump` of the resource `to_scim_user` and
`to_scim_group` validate from the same record, in each response context, as
text: the same values, types and key order.

Hypothesis writes users (core attributes, the enterprise extension, the Acme
extension of shared/extension.py, and what the mapping keeps in `extra`:
addresses, ims, photos, x509Certificates, roles, entitlements...) and groups
of them through the protocol functions, on each storage backend, then reads
the records back, with and without group members.
"""

import base64
import json
from typing import Any

from conftest import ENTERPRISE
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from scim2_models import Address
from scim2_models import Context
from scim2_models import Email
from scim2_models import Im
from scim2_models import PhoneNumber
from scim2_models import Photo

from shared import resources
from shared import storage
from shared.endpoints import ENDPOINTS
from shared.extension import ACME
from shared.representations import REPRESENTATIONS

BASE = "http://testserver/scim/v2"
CONTEXTS = (
    Context.RESOURCE_QUERY_RESPONSE,
    Context.RESOURCE_CREATION_RESPONSE,
    Context.RESOURCE_REPLACEMENT_RESPONSE,
    Context.RESOURCE_PATCH_RESPONSE,
)
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
EXAMPLES = settings(
    max_examples=30,
    derandomize=True,  # the same examples on every run of `make test`
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # each example resets the store
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Any text a database keeps: no lone surrogate, no NUL (PostgreSQL).
text = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12
)
token = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)
url = token.map(lambda name: f"https://example.com/{name}")


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


@st.composite
def entries(
    draw: st.DrawFn, value: st.SearchStrategy, kind: st.SearchStrategy
) -> list[dict[str, Any]]:
    """A multi-valued attribute (RFC 7643 §2.4), at most one entry primary."""
    count = draw(st.integers(0, 3))
    primary = draw(st.sampled_from([None, *range(count)]))
    found = []
    for index in range(count):
        entry = {
            "value": draw(value),
            "display": draw(maybe(text)),
            "type": draw(maybe(kind)),
            "primary": True
            if index == primary
            else draw(st.sampled_from([None, False])),
        }
        found.append({key: item for key, item in entry.items() if item is not None})
    return found


def types(model: Any) -> st.SearchStrategy:
    return st.sampled_from([kind.value for kind in model.Type])


emails = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[A-Za-z0-9]{1,8}(\.[a-z0-9]{1,4})?", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True),
    st.sampled_from(["com", "ORG", "fr", "net"]),
)
certificates = st.binary(min_size=1, max_size=40).map(
    lambda raw: base64.b64encode(raw).decode()
)


def optional_keys(**strategies: st.SearchStrategy) -> st.SearchStrategy:
    """A dict with some of these keys (the attributes a client chose to send)."""
    return st.fixed_dictionaries({}, optional=strategies)


user_bodies = optional_keys(
    externalId=text,
    displayName=text,
    nickName=text,
    profileUrl=url,
    title=text,
    userType=text,
    preferredLanguage=st.sampled_from(["en-US", "fr", "de-CH"]),
    locale=st.sampled_from(["en-US", "fr-FR"]),
    timezone=st.sampled_from(["Europe/Paris", "America/Los_Angeles"]),
    active=st.booleans(),
    password=st.just("Secret-1x"),
    name=optional_keys(
        formatted=text,
        familyName=text,
        givenName=text,
        middleName=text,
        honorificPrefix=text,
        honorificSuffix=text,
    ),
    emails=entries(emails, types(Email)),
    phoneNumbers=entries(text, types(PhoneNumber)),
    ims=entries(text, types(Im)),
    photos=entries(url, types(Photo)),
    addresses=st.lists(
        optional_keys(
            formatted=text,
            streetAddress=text,
            locality=text,
            region=text,
            postalCode=text,
            country=st.sampled_from(["FR", "US"]),
            type=types(Address),
        ),
        max_size=2,
    ),
    entitlements=entries(text, text),
    roles=entries(text, text),
    x509Certificates=entries(certificates, text),
    **{
        ENTERPRISE: optional_keys(
            employeeNumber=text,
            costCenter=text,
            organization=text,
            division=text,
            department=text,
            manager=st.fixed_dictionaries(
                {"value": token}, optional={"displayName": text}
            ),
        ),
        ACME: optional_keys(badgeNumber=text, clearanceLevel=st.integers(0, 5)),
    },
)
group_bodies = optional_keys(externalId=text)


def assert_dumps_alike(name: str, record: dict[str, Any]) -> str:
    """The serializer's JSON of a record is scim2-models' dump, in every context."""
    endpoint = ENDPOINTS[name]
    serialized = json.dumps(endpoint.dump(record, BASE))
    resource = endpoint.to_scim(record, BASE)
    for context in CONTEXTS:
        assert serialized == json.dumps(resource.model_dump(scim_ctx=context)), context
    return serialized


def created(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST the body; its answer is the dump of the record stored."""
    response = resources.create_resource(name, json.dumps(body).encode(), {}, BASE)
    assert response.status == 201, response.body
    record = storage.get_record(ENDPOINTS[name].kind, response.body["id"])
    assert response.content.decode() == assert_dumps_alike(name, record)
    return record


@EXAMPLES
@given(data=st.data())
def test_the_json_of_a_record_is_what_scim2_models_dumps(backend, data):
    storage.reset()
    REPRESENTATIONS.clear()
    users = []
    for index, body in enumerate(
        data.draw(st.lists(user_bodies, min_size=1, max_size=3))
    ):
        body["userName"] = f"user{index}-{data.draw(text)}"
        manager = body.get(ENTERPRISE, {}).get("manager")
        if manager and users and data.draw(st.booleans()):
            manager["value"] = users[0]["id"]  # an existing user, or any id
        users.append(created("Users", body))

    groups = []
    for body in data.draw(st.lists(group_bodies, max_size=2)):
        members = data.draw(st.lists(st.sampled_from(users + groups), unique_by=id))
        body["displayName"] = data.draw(text)
        body["members"] = [
            {"value": member["id"], "type": "Group" if "members" in member else "User"}
            | ({"display": data.draw(text)} if data.draw(st.booleans()) else {})
            for member in members
        ]
        groups.append(created("Groups", body))

    # Read back: users now show their groups, and groups their members' names.
    for user in users:
        assert_dumps_alike("Users", storage.get_record(storage.USER, user["id"]))
    for group in groups:
        for members in (True, False):
            record = storage.get_record(storage.GROUP, group["id"], members)
            assert_dumps_alike("Groups", record)


@EXAMPLES
@given(body=user_bodies, replacement=user_bodies, name=text)
def test_writes_answer_what_scim2_models_dumps(backend, body, replacement, name):
    """A PUT, a PATCH and a GET answer the dump of the record they leave."""
    storage.reset()
    REPRESENTATIONS.clear()
    user = created("Users", body | {"userName": "bjensen"})
    path = ("Users", user["id"])

    replacement["userName"] = "bjensen"
    put = resources.replace_resource(*path, json.dumps(replacement).encode(), {}, BASE)
    assert put.status == 200, put.body
    record = storage.get_record(storage.USER, user["id"])
    assert put.content.decode() == assert_dumps_alike("Users", record)

    operation = {"op": "replace", "path": "displayName", "value": name}
    patch = {"schemas": [PATCH_OP], "Operations": [operation]}
    patched = resources.patch_resource(*path, json.dumps(patch).encode(), {}, BASE)
    assert patched.status == 200, patched.body
    record = storage.get_record(storage.USER, user["id"])
    assert patched.content.decode() == assert_dumps_alike("Users", record)

    read = resources.get_resource(*path, {}, BASE)
    assert read.content == patched.content
