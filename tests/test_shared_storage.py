"""Unit tests of shared/storage.py and shared/mapping.py: no HTTP involved.

What every backend must do (the Storage Protocol) is in
tests/test_storage_contract.py; these are the module's own helpers, copies and
retries, and the mapping between records and resources.
"""

import pytest
from scim2_models import PreconditionFailedException

from shared import endpoints
from shared import mapping
from shared import representations
from shared import resources
from shared import storage
from shared.discovery import UserResource

pytestmark = pytest.mark.usefixtures("backend")


def user_record(user_name: str, **fields) -> dict:
    record = mapping.from_scim_user(UserResource(user_name=user_name))
    record.update(fields)
    return record


def group_record(display_name: str, *member_ids: str) -> dict:
    return {
        "display_name": display_name,
        "external_id": None,
        "members": [{"value": mid, "type": storage.USER} for mid in member_ids],
        "extra": {},
    }


def test_callers_get_copies_not_the_stored_records():
    saved = storage.save_record(storage.USER, user_record("bjensen"))
    saved["title"] = "changed behind the lock's back"
    storage.get_record(storage.USER, saved["id"])["emails"].append({"value": "x"})
    stored = storage.get_record(storage.USER, saved["id"])
    assert stored["title"] is None
    assert stored["emails"] == []


def test_iter_records_reads_every_page():
    for index in range(10):
        storage.save_record(storage.USER, user_record(f"user{index}"))
    names = [record["user_name"] for record in storage.iter_records(storage.USER, 3)]
    assert names == [f"user{index}" for index in range(10)]


def test_update_replays_a_change_that_lost_the_race(monkeypatch):
    """Without If-Match, a write that lost to another is redone on the fresh record."""
    alice = storage.save_record(storage.USER, user_record("alice"))
    real_save = storage.save_record
    raced = []

    def save_after_a_rival(kind, record, expected_version=None):
        if not raced:  # another writer slips in between our read and our write
            raced.append(True)
            real_save(kind, {**alice, "title": "Rival"})
        return real_save(kind, record, expected_version)

    monkeypatch.setattr(storage, "save_record", save_after_a_rival)
    body = (
        b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
        b' "Operations": [{"op": "replace", "path": "displayName", "value": "A"}]}'
    )
    reply = resources.patch_resource("Users", alice["id"], body, {}, "http://x")
    assert (reply.body["title"], reply.body["displayName"]) == ("Rival", "A")
    with pytest.raises(PreconditionFailedException):
        raced.clear()
        body = body.replace(b'"A"', b'"B"')  # a change: no change writes nothing
        resources.patch_resource("Users", alice["id"], body, {}, "http://x", 'W/"3"')


def test_a_group_rename_that_lost_the_race_is_redone(monkeypatch):
    """A group PATCH of other attributes is a compare-and-swap too; members
    added meanwhile survive it."""
    alice = storage.save_record(storage.USER, user_record("alice"))
    group = storage.save_record(storage.GROUP, group_record("Admins"))
    real_update = storage.update_group
    raced = []

    def update_after_a_rival(group_id, fields, add, remove, expected_version=None):
        if not raced:  # a rival adds alice, or takes her out again
            raced.append(True)
            if storage.get_record(storage.USER, alice["id"])["groups"]:
                real_update(group_id, None, [], [alice["id"]])
            else:
                alice_joins = [{"value": alice["id"], "type": "User"}]
                real_update(group_id, None, alice_joins, [])
        return real_update(group_id, fields, add, remove, expected_version)

    monkeypatch.setattr(storage, "update_group", update_after_a_rival)
    body = (
        b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
        b' "Operations": [{"op": "replace", "path": "displayName", "value": "Ops"}]}'
    )
    reply = resources.patch_resource("Groups", group["id"], body, {}, "http://x")
    assert reply.status == 204
    stored = storage.get_record(storage.GROUP, group["id"])
    assert stored["display_name"] == "Ops"
    assert [member["value"] for member in stored["members"]] == [alice["id"]]
    assert reply.headers["ETag"] == f'W/"{stored["version"]}"'
    with pytest.raises(PreconditionFailedException):
        raced.clear()
        body = body.replace(b'"Ops"', b'"Staff"')
        resources.patch_resource("Groups", group["id"], body, {}, "http://x", 'W/"3"')


def test_mapping_round_trip_keeps_every_attribute():
    payload = {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"},
        "addresses": [{"locality": "Paris", "country": "FR"}],
        "x509Certificates": [{"value": "aGVsbG8="}],
        mapping.ENTERPRISE: {"department": "R&D", "costCenter": "42"},
    }
    user = UserResource.model_validate(payload)
    record = mapping.from_scim_user(user)
    assert record["given_name"] == "Barbara"
    assert record["department"] == "R&D"
    assert record["extra"]["addresses"] == [{"locality": "Paris", "country": "FR"}]
    saved = storage.save_record(storage.USER, record)
    again = mapping.to_scim_user(saved, "http://x")
    assert again.name.middle_name == "J"
    assert again[mapping.ENTERPRISE].cost_center == "42"
    assert again.addresses[0].country == "FR"
    assert again.meta.version == mapping.make_etag(saved) == 'W/"1"'


def test_passwords_are_hashed_with_a_salt():
    first = mapping.hash_password("s3cret")
    assert "s3cret" not in first
    assert first != mapping.hash_password("s3cret")
    assert mapping.check_password("s3cret", first)
    assert not mapping.check_password("wrong", first)


def test_a_whole_resource_dumps_alike_in_every_response_context():
    """What lets the service reuse one cached JSON for reads and writes alike."""
    import json

    from scim2_models import Context

    base = "http://x/scim/v2"
    user = resources.create_resource(
        "Users",
        json.dumps(
            {
                "userName": "bjensen",
                "password": "Secret-1x",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com", "primary": True}],
                "addresses": [{"locality": "Paris"}],
                mapping.ENTERPRISE: {"department": "R&D"},
            }
        ).encode(),
        {},
        base,
    ).body
    group = resources.create_resource(
        "Groups",
        json.dumps({"displayName": "G", "members": [{"value": user["id"]}]}).encode(),
        {},
        base,
    ).body
    contexts = [
        Context.RESOURCE_QUERY_RESPONSE,
        Context.RESOURCE_CREATION_RESPONSE,
        Context.RESOURCE_REPLACEMENT_RESPONSE,
        Context.RESOURCE_PATCH_RESPONSE,
        Context.SEARCH_RESPONSE,
    ]
    for name, created in (("Users", user), ("Groups", group)):
        endpoint = endpoints.ENDPOINTS[name]
        record = storage.get_record(endpoint.kind, created["id"])
        resource = endpoint.to_scim(record, base)
        dumps = [resource.model_dump(scim_ctx=context) for context in contexts]
        assert all(dumped == dumps[0] for dumped in dumps)
        assert representations.REPRESENTATIONS.dump(endpoint, record, base) == dumps[0]
